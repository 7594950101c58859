"""Rich presentation of pepcurr's results: tables and timelines, no computation.

Each function takes a ``rich.console.Console`` (the CLI passes one; tests pass
one that records) and data that the library already computed.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

    from curriculum_cli.analysis.compare import Comparison
    from curriculum_cli.curriculum.schema import Curriculum
    from curriculum_cli.spectra.inspection import MgfReport, ValueRange

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
TIMELINE_WIDTH_RANGE = (20, 60)
"""Fewest and most characters of the shared step axis in ``render_schedule``."""


def _steps(step: int | None) -> str:
    return "never" if step is None else f"{step:,}"


def _gate_lines(curriculum: Curriculum) -> list[str]:
    """One line per gated stage: the earliest step it may start at and its gate."""
    lines = []
    for index, (start, stage) in enumerate(
        zip(curriculum.stage_starts(), curriculum.stages, strict=True)
    ):
        gate = stage.start_when
        if gate is not None:
            lines.append(
                f"stages[{index}] ({stage.name}): starts at the first validation from its "
                f"earliest start ({start:,} as planned) with {gate.metric} >= {gate.at_least:g}, "
                f"or at step {gate.latest_step:,} at the latest; its {stage.steps:,} steps count "
                "from its actual start"
            )
    return lines


def render_curriculum_summary(
    console: Console, curriculum: Curriculum, source: str, warnings: list[str]
) -> None:
    """Stages table, total steps, loss introductions and final weights of one curriculum."""
    table = Table(
        title=f"{source}: {curriculum.name}",
        title_justify="left",
        caption="len: peptide length (residues); peaks: noise peaks; drop: peak dropout; "
        "ppm: m/z error; int: intensity variation; spec, prec: loss weights",
        caption_justify="left",
        box=None,
        header_style="bold underline",
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("stage", overflow="fold")
    for header in ("start", "steps", "len", "peaks", "drop", "ppm", "int", "spec", "prec"):
        table.add_column(header, justify="right", no_wrap=True)
    for index, (start, stage) in enumerate(
        zip(curriculum.stage_starts(), curriculum.stages, strict=True)
    ):
        table.add_row(
            str(index),
            stage.name,
            f"{start:,}" if stage.start_when is None else f"≥{start:,}",
            f"{stage.steps:,}",
            f"{stage.min_length}–{stage.max_length}",
            str(stage.noise_peaks),
            f"{stage.peak_dropout:g}",
            f"{stage.mass_error_ppm:g}",
            f"{stage.intensity_variation:g}",
            f"{stage.spectrum_loss_weight:g}",
            f"{stage.precursor_loss_weight:g}",
        )
    console.print(table)
    introductions = curriculum.introductions()
    gates = curriculum.introduction_gates()
    onsets = [
        f"{loss} loss {curriculum.introduction_text(loss)}"
        if gates[loss] is not None
        else f"{loss} loss from step {_steps(introductions[loss])}"
        for loss in ("spectrum", "precursor")
    ]
    final = curriculum.stages[-1]
    console.print(
        f"total steps {curriculum.total_steps:,}; {', '.join(onsets)}; "
        f"final weights spectrum {final.spectrum_loss_weight:g}, "
        f"precursor {final.precursor_loss_weight:g}",
        highlight=False,
        soft_wrap=True,
    )
    for line in _gate_lines(curriculum):
        console.print(line, highlight=False, soft_wrap=True)
    if curriculum.world is not None:
        console.print(_world_line(curriculum.world), highlight=False, soft_wrap=True)
    if curriculum.gated:
        console.print(
            f"≥: at the earliest (gated). The run lasts {curriculum.total_steps:,} steps whenever "
            "the gates open; a late gate moves the later stages and shortens the last one.",
            highlight=False,
            soft_wrap=True,
        )
    for warning in warnings:
        console.print(
            Text(f"warning: {source}: {warning}", style="yellow"), soft_wrap=True, highlight=False
        )
    if not warnings:
        console.print(Text("ok, no warnings", style="green"))
    console.print()


def _world_line(world) -> str:
    """What a curriculum's world is, for ``validate``."""
    reference = world.reference
    shortest, longest = world.lengths
    return (
        f"world: calibrated on {world.source.n_spectra} spectra of "
        f"{', '.join(world.source.files)} (peptides of {shortest}-{longest} residues, charges "
        f"{min(world.spectra.charge)}-{max(world.spectra.charge)}); the noise columns scale "
        f"its physics, full at {reference.noise_peaks} peaks, drop {reference.peak_dropout:g}, "
        f"{reference.mass_error_ppm:g} ppm, int {reference.intensity_variation:g}"
    )


def render_preset_list(console: Console, curricula: list[Curriculum]) -> None:
    """One row per shipped curriculum: what ``pepcurr generate NAME`` would write."""
    table = Table(title="Presets (pepcurr generate NAME)", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("stages", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("spectrum\nfrom", justify="right", no_wrap=True)
    table.add_column("precursor\nfrom", justify="right", no_wrap=True)
    gate_metrics = []
    for curriculum in curricula:
        introductions = curriculum.introductions()
        gates = curriculum.introduction_gates()
        cells = []
        for loss in ("spectrum", "precursor"):
            gate = gates[loss]
            if gate is None:
                cells.append(_steps(introductions[loss]))
            else:
                cells.append(f"≥ {gate.at_least:g} by {gate.latest_step:,}")
                gate_metrics += [gate.metric] if gate.metric not in gate_metrics else []
        table.add_row(curriculum.name, str(len(curriculum.stages)), f"{curriculum.total_steps:,}",
                      *cells)  # fmt: skip
    console.print(table)
    if gate_metrics:
        console.print(
            f"≥ A by S: on at the first validation with {' or '.join(gate_metrics)} >= A, "
            "or at step S at the latest",
            highlight=False,
        )
    for curriculum in curricula:
        console.print(f"[bold]{curriculum.name}[/bold]: {curriculum.description}", highlight=False)
    console.print(
        "also: pepcurr generate phased --spectrum-at S --precursor-at P [--total T]\n"
        "      pepcurr generate phased --spectrum-at-accuracy A --precursor-at-accuracy B "
        "[--latest-spectrum S] [--latest-precursor P] [--total T]",
        highlight=False,
    )


# (row label, attribute of Stage, style) for the timeline rows of each curriculum.
_TIMELINE_ROWS = (
    ("spectrum weight", "spectrum_loss_weight", "cyan"),
    ("precursor weight", "precursor_loss_weight", "magenta"),
    ("max length", "max_length", "green"),
    ("noise peaks", "noise_peaks", "yellow"),
    ("peak dropout", "peak_dropout", "yellow"),
    ("mass error ppm", "mass_error_ppm", "yellow"),
)
_LOSS_OF_FIELD = {"spectrum_loss_weight": "spectrum", "precursor_loss_weight": "precursor"}


def _sparkline(curriculum: Curriculum, field: str, axis_steps: int, width: int, top: float) -> str:
    """One character per ``axis_steps / width`` steps: the value at its first step."""
    characters = []
    for column in range(width):
        step = round(column * axis_steps / width)
        if step >= curriculum.total_steps:
            characters.append(" ")
            continue
        value = getattr(curriculum.stage_at(step)[1], field)
        if value <= 0 or top <= 0:
            characters.append("·")
        else:
            level = min(len(SPARK_LEVELS), max(1, round(value / top * len(SPARK_LEVELS))))
            characters.append(SPARK_LEVELS[level - 1])
    return "".join(characters)


def _value_range(curriculum: Curriculum, field: str) -> str:
    first, last = getattr(curriculum.stages[0], field), getattr(curriculum.stages[-1], field)
    loss = _LOSS_OF_FIELD.get(field)
    if loss is not None:
        if curriculum.introduction_gates()[loss] is not None:
            return f"gated (below) → {last:g}"
        return f"on at {_steps(curriculum.introductions()[loss])} → {last:g}"
    return f"{first:g} → {last:g}"


def _round_up_nicely(value: float) -> float:
    """The smallest of 1, 2, 2.5, 4, 5 times a power of ten that is >= ``value``."""
    power = 10 ** math.floor(math.log10(value))
    return next(power * m for m in (1, 2, 2.5, 4, 5, 10) if power * m >= value)


def render_schedule(console: Console, curricula: list[Curriculum]) -> None:
    """All curricula on one step axis: where each loss turns on, how lengths and noise rise.

    One table per curriculum, each row a sparkline over the same steps. Bar
    heights are scaled per quantity to the largest value over all curricula
    shown, so the rows of different curricula compare; ``·`` means zero. A
    gated curriculum is drawn with every gate open at its earliest step, and
    its gates are listed under its table.
    """
    axis_steps = max(curriculum.total_steps for curriculum in curricula)
    narrowest, widest = TIMELINE_WIDTH_RANGE
    steps_per_char = _round_up_nicely(axis_steps / max(narrowest, min(widest, console.width - 46)))
    width = math.ceil(axis_steps / steps_per_char)
    axis_label = f"0{f'{axis_steps:,}':>{width - 1}}"
    tops = {
        field: max(getattr(stage, field) for curriculum in curricula for stage in curriculum.stages)
        for _, field, _ in _TIMELINE_ROWS
    }
    console.print(
        f"Schedules on one step axis: 1 character = {steps_per_char:,g} steps",
        highlight=False,
    )
    for curriculum in curricula:
        table = Table(
            title=f"{curriculum.name} ({curriculum.total_steps:,} steps)",
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            padding=(0, 1),
        )
        table.add_column("quantity", no_wrap=True)
        table.add_column(axis_label, no_wrap=True)
        table.add_column("first → last", no_wrap=True)
        for label, field, style in _TIMELINE_ROWS:
            sparkline = _sparkline(curriculum, field, axis_steps, width, tops[field])
            table.add_row(label, Text(sparkline, style=style), _value_range(curriculum, field))
        console.print(table)
        if curriculum.gated:
            for loss in ("spectrum", "precursor"):
                if curriculum.introduction_gates()[loss] is not None:
                    console.print(
                        f"  {loss} loss {curriculum.introduction_text(loss)}",
                        highlight=False,
                        soft_wrap=True,
                    )
            console.print(
                "  (bars: every gate open at its earliest step; a late gate moves the later "
                "stages and shortens the last one)",
                highlight=False,
                soft_wrap=True,
            )


# ----------------------------------------------------------------------------
# Spectra: the inspect report of an MGF file
# ----------------------------------------------------------------------------

MAX_SKIPPED_SHOWN = 5
"""How many skipped-spectrum messages ``render_inspect_report`` prints before summarising."""


def _range(summary: ValueRange) -> str:
    return f"{summary.min:g}–{summary.max:g} (median {summary.median:g})"


def render_inspect_report(console: Console, report: MgfReport) -> None:
    """The ``inspect_mgf`` report as a two-column table, skipped spectra as warnings."""
    table = Table(
        title=f"{report.path}: {report.n_spectra:,} "
        + ("spectrum" if report.n_spectra == 1 else "spectra"),
        title_justify="left",
        box=None,
        show_header=False,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("skipped", f"{report.n_skipped:,} invalid spectra")
    charges = ", ".join(f"{z}+: {n:,}" for z, n in report.charges.items())
    table.add_row("charges", charges)
    table.add_row("peaks in file", _range(report.peaks_in_file))
    table.add_row("peaks used", f"{_range(report.peaks_used)}; {report.preprocessing}")
    n_annotated = report.n_annotated
    table.add_row("annotated (SEQ)", f"{n_annotated:,} of {report.n_spectra:,}")
    if report.peptide_length is not None:
        table.add_row("peptide length", f"{_range(report.peptide_length)} residues")
        mods = ", ".join(f"{name} {n:,}" for name, n in report.modifications.items())
        table.add_row("modifications", mods or "none")
        outside = report.n_outside_vocabulary
        table.add_row(
            "outside vocabulary",
            f"{outside:,} peptides hold {', '.join(report.residues_outside_vocabulary)} "
            "(no training target)"
            if outside
            else "none (every peptide is a training target)",
        )
    error = report.precursor_error_ppm
    if error is not None:
        table.add_row(
            "precursor error",
            f"median {error.median:+.2f} ppm, median |error| {error.median_abs:.2f} ppm, "
            f"worst {error.worst:+.2f} ppm (TITLE={error.worst_title}); "
            f"{error.n_over_tolerance:,} over {error.tolerance_ppm:g} ppm",
        )
    coverage = report.fragment_coverage
    if coverage is not None:
        table.add_row(
            "b/y ions found",
            f"mean {coverage.mean:.0%}, median {coverage.median:.0%}, "
            f"lowest {coverage.min:.0%} (TITLE={coverage.min_title}) "
            f"within {coverage.tolerance_da:g} Da",
        )
    console.print(table)
    skipped = report.skipped
    for message in skipped[:MAX_SKIPPED_SHOWN]:
        console.print(Text(f"skipped: {message}", style="yellow"), soft_wrap=True)
    if len(skipped) > MAX_SKIPPED_SHOWN:
        console.print(
            Text(f"... and {len(skipped) - MAX_SKIPPED_SHOWN:,} more skipped", style="yellow")
        )


# ----------------------------------------------------------------------------
# Training progress
# ----------------------------------------------------------------------------


class TrainingProgress:
    """Progress of a training run: a rich bar on a terminal, plain lines otherwise.

    Implements the training loop's ``Reporter`` protocol. ``quiet`` shows only
    warnings and the final summary.
    """

    def __init__(self, console: Console, quiet: bool = False, plain_every_s: float = 10.0):
        self.console = console
        self.quiet = quiet
        self.plain_every_s = plain_every_s
        self._progress = None
        self._task = None
        self._last_plain = 0.0
        self._total = 0

    def start(self, total_steps: int, start_step: int) -> None:
        self._total = total_steps
        if self.quiet or not self.console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.fields[stage]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[losses]}"),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=total_steps, completed=start_step, stage="", losses="", speed=""
        )

    def update(self, step: int, record: dict) -> None:
        losses = (
            f"loss {record['loss']:.3f} ce {record['ce']:.3f} "
            f"spec {record['spectrum']:.3f} prec {record['precursor']:.2f} "
            f"acc {record.get('residue_accuracy', record['token_accuracy']):.3f}"
        )
        speed = f"{record['steps_per_s']:.1f} steps/s"
        if self._progress is not None:
            self._progress.update(
                self._task, completed=step, stage=record["stage"], losses=losses, speed=speed
            )
        elif not self.quiet and time.monotonic() - self._last_plain >= self.plain_every_s:
            self._last_plain = time.monotonic()
            self.console.print(
                f"step {step}/{self._total} {record['stage']} {losses} {speed}",
                highlight=False,
                soft_wrap=True,
            )

    def message(self, text: str) -> None:
        if self.quiet and not text.startswith("warning"):
            return
        console = self._progress.console if self._progress is not None else self.console
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def render_train_result(console: Console, result) -> None:
    """A short summary of a finished (or stopped) run."""
    console.print(
        f"[bold]{result.status}[/] at step {result.step}/{result.total_steps} "
        f"in {result.elapsed_s:.0f} s; skipped steps {result.skipped_steps}, "
        f"loss spikes {result.loss_spikes}; run directory {result.run_dir}",
        highlight=False,
        soft_wrap=True,
    )
    for split, values in result.final_val.items():
        parts = [f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float)]
        console.print(f"  {split}: " + ", ".join(parts), highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------
# Comparison of runs (compare, ab) and evaluation
# ----------------------------------------------------------------------------

_MISSING = "—"


def _format_value(kind: str, value, key: str = "") -> str:
    """One value of a comparison row, formatted by the row's kind (see ``compare.Row``)."""
    if kind == "text":
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _MISSING
    if not math.isfinite(number):
        if key == "steps_to_target":
            return "not reached"
        if key.endswith("_introduced"):
            return "never"
        return _MISSING
    if kind == "fraction":
        return f"{number:.3f}"
    if kind == "loss":
        return f"{number:.4g}"
    if kind == "ppm":
        return f"{number:,.1f}" if abs(number) < 100 else f"{number:,.0f}"
    if kind in ("count", "step", "censored"):
        return f"{number:,.0f}" if number == round(number) else f"{number:,.1f}"
    if kind == "cosine":
        return f"{number:+.3f}"
    return f"{number:.3g}"


def _format_spread(kind: str, spread: float) -> str:
    """A standard deviation: two significant digits, or the value's own format."""
    if kind in ("loss", "ratio", "cosine"):
        return f"{spread:.2g}"
    return _format_value(kind, spread)


def _shows_spread(kind: str, spread: float) -> bool:
    """A standard deviation is shown unless missing, or 0 for a step or a count."""
    return math.isfinite(spread) and not (spread == 0 and kind in ("step", "count"))


def comparison_cells(comparison: Comparison) -> list[tuple[str, list[str], list[bool]]]:
    """Each table row as ``(label, cells, is_best)``: what every renderer shows.

    Grouped comparisons show ``mean ± sd``; "steps to target" shows how many
    seeds of an arm reached it and their median, seeds that never reached it
    counted (censored) rather than dropped.
    """
    table = []
    columns = comparison.columns
    for row in comparison.rows:
        best = comparison.best_columns(row.key)
        cells = []
        for column in columns:
            if row.kind == "censored" and comparison.grouped:
                cells.append(comparison.censored[column]["text"])
                continue
            text = _format_value(row.kind, comparison.value(row.key, column), row.key)
            spread = comparison.spread(row.key, column)
            if _shows_spread(row.kind, spread) and text not in (_MISSING, "not reached", "never"):
                text += f" ± {_format_spread(row.kind, spread)}"
            cells.append(text)
        table.append((row.label, cells, [column in best for column in columns]))
    return table


def _column_headers(comparison: Comparison) -> list[str]:
    if not comparison.grouped:
        return list(comparison.columns)
    sizes = comparison.runs.groupby("group", sort=False).size()
    return [f"{group} (n={sizes[group]})" for group in comparison.columns]


def _longest_word(texts: list[str]) -> int:
    return max((len(word) for text in texts for word in text.split()), default=0)


def _width_for_file(console: Console, table: Table, rows: list[list[str]]) -> int | None:
    """Wide enough that no word is cut off, when the output goes to a file or pipe.

    ``rows`` holds the header and every row, label first; each value column gets
    its longest word as its least width. A terminal keeps its width (wider lines
    would wrap); a log file has none, and rich's default 80 columns would shorten
    long arm names such as "realistic-current" to "realistic-c…".
    """
    if console.is_terminal:
        return None
    label = max(len(row[0]) for row in rows)
    for index, column in enumerate(table.columns[1:], start=1):
        column.min_width = _longest_word([row[index] for row in rows])
    padding = 2 * len(table.columns) + 4
    return max(console.width, label + sum(c.min_width or 0 for c in table.columns) + padding)


def render_comparison(console: Console, comparison: Comparison) -> None:
    """The comparison as a rich table (better value per row in bold green), verdict, warnings."""
    statistic = "mean ± sd over seeds" if comparison.grouped else "one column per run"
    table = Table(
        title=f"Runs at nominal step {comparison.at_nominal:,} ({statistic})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    headers = _column_headers(comparison)
    table.add_column("", no_wrap=True)
    for header in headers:
        table.add_column(header, justify="right")
    rows = comparison_cells(comparison)
    for label, cells, best in rows:
        styled = [
            Text(c, style="bold green") if b else Text(c) for c, b in zip(cells, best, strict=True)
        ]
        table.add_row(label, *styled)
    texts = [["", *headers]] + [[label, *cells] for label, cells, _ in rows]
    width = _width_for_file(console, table, texts)
    if width is None:
        console.print(table)
    else:
        narrower, console.width = console.width, width  # print() never goes wider than the console
        try:
            console.print(table)
        finally:
            console.width = narrower
    if comparison.confounds:
        console.print(Text("What else differs between the arms:", style="bold"))
        for line in comparison.confounds:
            console.print(Text(f"  - {line}"), soft_wrap=True, highlight=False)
    console.print(Text(comparison.verdict, style="bold"), soft_wrap=True, highlight=False)
    rescore = rescore_lines(comparison)
    if rescore:
        console.print(Text(rescore[0], style="bold"), soft_wrap=True, highlight=False)
        for line in rescore[1:]:
            console.print(Text(f"  - {line}"), soft_wrap=True, highlight=False)
    _print_warnings(console, comparison.warnings)


def rescore_lines(comparison: Comparison) -> list[str]:
    """``compare --rescore``: a heading, then the bootstraps and the re-scored verdicts."""
    found = comparison.rescore
    if found is None:
        return []
    steps = sorted(set(found.steps.values()))
    at = f"step {steps[0]:,}" if len(steps) == 1 else f"steps {steps[0]:,}-{steps[-1]:,}"
    baseline = comparison.groups[0]
    lines = [
        f"Final checkpoints ({at}) re-scored, {found.metric}, paired bootstrap over spectra "
        f"({found.draws:,} resamples, seed {found.bootstrap_seed}):"
    ]
    for which, boots in (("own validation set", found.own),
                         (f"{found.n_spectra:,} fixed spectra", found.fixed)):  # fmt: skip
        lines += [f"{which}: {boot.text(baseline)}" for boot in boots]
    lines += found.notes
    lines += [verdict.sentence for verdict in comparison.rescore_verdicts]
    return lines


def _plain(value):
    """A JSON-safe scalar: NaN and infinities become None, numpy scalars Python ones."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def comparison_json(comparison: Comparison) -> str:
    """The comparison as JSON: rows with a value (and sd) per column, runs, verdict, warnings."""
    import json

    columns = comparison.columns
    rows = []
    for row in comparison.rows:
        entry = {
            "key": row.key,
            "label": row.label,
            "better": row.better,
            "values": {c: _plain(comparison.value(row.key, c)) for c in columns},
            "best": comparison.best_columns(row.key),
        }
        if comparison.grouped and row.kind != "text":
            entry["sd"] = {c: _plain(comparison.spread(row.key, c)) for c in columns}
        rows.append(entry)
    data = {
        "at_nominal_step": comparison.at_nominal,
        "metric": comparison.metric,
        "target": comparison.target,
        "grouped": comparison.grouped,
        "columns": columns,
        "rows": rows,
        "runs": [
            {k: _plain(v) for k, v in record.items()}
            for record in comparison.runs.to_dict(orient="records")
        ],
        "margin": comparison.margin,
        "steps_to_target": comparison.censored,
        "confounds": comparison.confounds,
        **verdict_data(comparison),
        "rescore": _rescore_data(comparison),
        "warnings": comparison.warnings,
    }
    return json.dumps(data, indent=2, default=_plain) + "\n"


def _overall(verdicts) -> str | None:
    """One word for several comparisons: the first of ``difference``, ``undecided``,
    ``equivalent``, ``identical`` that any comparison has."""
    kinds = {v.kind for v in verdicts}
    return next((k for k in ("difference", "undecided", "equivalent", "identical") if k in kinds),
                None)  # fmt: skip


def verdict_data(comparison: Comparison) -> dict:
    """The verdict as data: ``verdict`` (``difference``, ``equivalent``, ``identical``,
    ``undecided``).

    With two arms, the one comparison's ``winner``, ``test``, ``interval``,
    ``p_value`` (Holm-adjusted when there are several arms) and ``reason``;
    ``comparisons`` lists every arm against the baseline in full (with its
    ``sensitivity``: what it could have seen). With three or more arms
    ``verdict`` is ``difference`` if any arm differs, else ``undecided`` if any
    comparison is, else ``equivalent`` if any is, else ``identical``.
    """
    verdicts = comparison.verdicts
    single = verdicts[0] if len(verdicts) == 1 else None
    return {
        "verdict": _overall(verdicts),
        "winner": single.winner if single else None,
        "test": single.test if single else None,
        "interval": [_plain(single.ci_low), _plain(single.ci_high)] if single else None,
        "p_value": _plain(single.p_adjusted) if single else None,
        "reason": (single.reason or None) if single else None,
        "sentence": comparison.verdict,
        "comparisons": [v.to_dict() for v in verdicts],
    }


def _rescore_data(comparison: Comparison) -> dict | None:
    """``compare --rescore`` as data: values per run, bootstraps, the re-scored verdicts."""
    from dataclasses import asdict

    found = comparison.rescore
    if found is None:
        return None
    return {
        "metric": found.metric, "split": found.split, "n_spectra": found.n_spectra,
        "seed": found.seed, "checkpoint_steps": found.steps, "values": found.values,
        "bootstrap": {"draws": found.draws, "seed": found.bootstrap_seed,
                      "own": [{k: _plain(v) for k, v in asdict(b).items()} for b in found.own],
                      "fixed": [{k: _plain(v) for k, v in asdict(b).items()}
                                for b in found.fixed]},
        "notes": found.notes,
        "verdict": _overall(comparison.rescore_verdicts),
        "comparisons": [v.to_dict() for v in comparison.rescore_verdicts],
    }  # fmt: skip


def comparison_csv(comparison: Comparison) -> str:
    """The comparison as CSV: one line per row, raw numbers, a value (and sd) column per column."""
    import pandas as pd

    records = []
    for row in comparison.rows:
        record = {"key": row.key, "label": row.label, "better": row.better or ""}
        for column in comparison.columns:
            if row.kind == "censored" and comparison.grouped:
                summary = comparison.censored[column]
                record[column] = _plain(summary["median"])
                record[f"{column} sd"] = summary["text"]
                continue
            record[column] = _plain(comparison.value(row.key, column))
            if comparison.grouped:
                record[f"{column} sd"] = _plain(comparison.spread(row.key, column))
        records.append(record)
    return pd.DataFrame.from_records(records).to_csv(index=False)


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as a Markdown table (better value per row in bold), verdict and warnings."""
    headers = _column_headers(comparison)
    lines = [
        f"Runs at nominal step {comparison.at_nominal:,}"
        + (" (mean ± sd over seeds)" if comparison.grouped else ""),
        "",
        "| | " + " | ".join(headers) + " |",
        "|---|" + "---:|" * len(headers),
    ]
    for label, cells, best in comparison_cells(comparison):
        shown = [f"**{c}**" if b else c for c, b in zip(cells, best, strict=True)]
        lines.append(f"| {label.strip()} | " + " | ".join(shown) + " |")
    if comparison.confounds:
        lines += ["", "What else differs between the arms:", ""]
        lines += [f"- {line}" for line in comparison.confounds]
    lines += ["", comparison.verdict]
    rescore = rescore_lines(comparison)
    if rescore:
        lines += ["", rescore[0], ""] + [f"- {line}" for line in rescore[1:]]
    lines += [f"\n> warning: {warning}" for warning in comparison.warnings]
    return "\n".join(lines) + "\n"


COMPARISON_FORMATS = {
    "json": comparison_json,
    "csv": comparison_csv,
    "markdown": comparison_markdown,
}
"""Text renderers of ``compare --format``; ``table`` is ``render_comparison``."""


def render_evaluation(console: Console, result) -> None:
    """Metrics of ``pepcurr evaluate`` (an ``evaluation.EvaluationResult``), settings, warnings."""
    settings = result.settings
    tolerance = settings["precursor_tol_ppm"]
    console.print(
        f"{result.source} on {result.mgf}: {result.n_annotated} of {result.n_spectra} spectra "
        "annotated",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("metric")
    table.add_column("value", justify="right")
    metrics = result.metrics
    for label, key, text in (
        ("AA precision", "aa_precision", "{:.3f}"),
        ("AA recall", "aa_recall", "{:.3f}"),
        ("peptide recall", "peptide_recall", "{:.3f}"),
        ("fits the precursor", "fits_precursor", "{:.1%}"),
        ("precursor error, median abs. ppm", "precursor_error_ppm_median", "{:,.1f}"),
    ):
        value = metrics.get(key, math.nan)
        table.add_row(label, text.format(value) if math.isfinite(value) else _MISSING)
    console.print(table)
    console.print(
        f"{_decoding(settings)}, precursor filter "
        + ("off" if tolerance is None else f"{tolerance:g} ppm")
        + f", isotope offsets {settings['isotope_offsets']}, at most {settings['max_length']} "
        f"residues, device {settings['device']}; AA and peptide metrics as Casanovo computes them "
        "(docs/metrics.md)",
        highlight=False,
        soft_wrap=True,
    )
    if result.n_skipped:
        console.print(Text(f"{result.n_skipped} spectra skipped", style="yellow"))
    _print_warnings(console, result.warnings)


def render_split(console: Console, result) -> None:
    """What ``pepcurr split`` wrote (a ``split.SplitResult``) and the inputs' shared groups."""
    groups = "backbones" if result.group == "backbone" else "peptides"
    for path, (n_spectra, n_groups) in result.inputs.items():
        console.print(f"read {path}: {n_spectra:,} spectra, {n_groups:,} {groups}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    for overlap in result.overlaps:
        examples = ", ".join(overlap.examples)
        console.print(
            Text(f"warning: {overlap.first} and {overlap.second} share {overlap.n_peptides:,} "
                 f"{groups} (I = L), e.g. {examples}", style="yellow"),
            soft_wrap=True, highlight=False,
        )  # fmt: skip
    for split, path in result.files.items():
        where = f"wrote {path}" if path is not None else "no file (fraction 0)"
        console.print(
            f"{split:>5}: {result.n_spectra[split]:,} spectra, {result.n_peptides[split]:,} "
            f"{groups} ({result.fractions[split]:.0%} asked); {where}",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    if result.group == "backbone":
        rule = ("backbone is in two splits (grouped by unmodified sequence, I = L: a peptide "
                "and its modified forms stay together)")  # fmt: skip
    else:
        rule = "peptide is in two splits (grouped by peptide: I = L, modifications count)"
    console.print(f"no {rule}; seed {result.seed}", highlight=False, soft_wrap=True)
    _print_warnings(console, result.warnings)


def render_annotation(console: Console, result, vocab: str) -> None:
    """What ``pepcurr annotate`` wrote (an ``annotate.AnnotationResult``): every PSM counted."""
    run = f" of run {result.run}" if result.run else ""
    qvalues = " (q-values computed from scores, target-decoy)" if result.qvalues_computed else ""
    lines = [
        f"read {result.n_psms:,} PSMs{run} from {result.psms} ({result.psm_format}) and "
        f"{result.n_spectra:,} MS/MS spectra from {result.spectra}",
        f"  {result.n_decoys:,} decoys",
        f"  {result.n_above_fdr:,} targets above q-value {result.fdr:g}{qvalues}",
    ]
    if result.n_other_run:
        lines.append(f"  {result.n_other_run:,} of other runs")
    spelled = ", ".join(f"{name} {count}" for name, count in result.unspellable.items())
    lines.append(f"  {result.n_unspellable:,} with a modification vocabulary {vocab} cannot spell"
                 + (f" ({spelled})" if spelled else ""))  # fmt: skip
    lines.append(f"  {result.n_duplicate:,} not the best PSM of their spectrum")
    examples = ", ".join(result.no_spectrum_examples)
    lines.append(f"  {result.n_no_spectrum:,} found no spectrum"
                 + (f" (e.g. {examples})" if examples else ""))  # fmt: skip
    if result.n_no_precursor:
        lines.append(f"  {result.n_no_precursor:,} whose spectrum lacks a precursor m/z or charge")
    lines.append(f"  {result.n_written:,} annotate a spectrum: wrote {result.output}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    if result.outside_vocabulary:
        names = ", ".join(f"{n} {c}" for n, c in result.outside_vocabulary.items())
        console.print(Text(f"warning: written peptides hold tokens vocabulary {vocab} lacks "
                           f"({names}): they train no target with it; --vocab casanovo or a "
                           "vocabulary file has them", style="yellow"),
                      highlight=False, soft_wrap=True)  # fmt: skip


def render_prediction(console: Console, result) -> None:
    """What ``pepcurr predict`` wrote (an ``evaluation.PredictionResult``)."""
    settings = result.settings
    tolerance = settings["precursor_tol_ppm"]
    console.print(
        f"{result.source} on {result.mgf}: {result.n_predicted:,} of {result.n_spectra:,} "
        f"spectra got a peptide, {result.n_fit:,} fit the precursor "
        + ("(filter off)" if tolerance is None else f"within {tolerance:g} ppm")
        + f"; {_decoding(settings)}; wrote {result.mztab}",
        highlight=False,
        soft_wrap=True,
    )
    if result.n_skipped:
        console.print(Text(f"{result.n_skipped} spectra skipped", style="yellow"))
    _print_warnings(console, result.warnings)


def _decoding(settings: dict) -> str:
    """``beam size N``, or how a parallel model was decoded (``evaluation`` settings)."""
    return f"decoded {settings['decoding']}" if "decoding" in settings else (
        f"beam size {settings['beam_size']}")  # fmt: skip


def _print_warnings(console: Console, warnings: list[str]) -> None:
    """One yellow ``warning: ...`` line each, unwrapped."""
    for warning in warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True, highlight=False)


def render_calibration(console: Console, calibration, output) -> None:
    """What ``pepcurr calibrate`` fitted (a ``calibration.Calibration``), one line per part,
    each with the spectra or ions behind it."""
    for what, text in calibration.report:
        console.print(f"{what}: {text}", highlight=False, soft_wrap=True)
    world = calibration.world
    shortest, longest = world.lengths
    console.print(
        f"wrote {output}: a world of {world.source.n_spectra} spectra (peptides of {shortest}-"
        f"{longest} residues, charges {min(world.spectra.charge)}-{max(world.spectra.charge)}); "
        "pepcurr spectra -c and pepcurr realism -c read it",
        highlight=False, soft_wrap=True,
    )  # fmt: skip


_REALISM_LABELS = {
    "n_peaks": "peaks",
    "by_peak_share": "b/y peaks",
    "by_intensity_share": "b/y int.",
    "by_coverage": "b/y cov.",
}


def realism_data(report) -> dict:
    """``pepcurr realism --format json``: the report as plain data."""
    from dataclasses import asdict

    return asdict(report)


def render_realism(console: Console, report) -> None:
    """Real medians beside each stage's, and the classifier's AUC (a ``realism.RealismReport``);
    with one stage, every feature."""
    from curriculum_cli.analysis.realism import FEATURE_SETS, FEATURES, TABLE_FEATURES

    world = "its world" if report.world else "the plain b/y-ladder generator"
    console.print(
        f"real: {', '.join(report.real_files)} ({report.n_real} spectra); synthetic: "
        f"{report.curriculum} ({world}), seed {report.seed}. Medians per spectrum (peaks, "
        "share of peaks and of intensity in b/y ions, b/y 1+ coverage); AUC of a 5-fold "
        "cross-validated logistic regression on 4, 9 and 20 features telling real from "
        "synthetic (0.5: it cannot)",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    sets = {"table": "4", "core": "9", "all": "20"}
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("spectra", no_wrap=True)
    table.add_column("n", justify="right")
    for name in TABLE_FEATURES:
        table.add_column(_REALISM_LABELS[name], justify="right")
    for name in FEATURE_SETS:
        table.add_column(f"AUC {sets[name]}", justify="right")
    blank = [""] * len(FEATURE_SETS)
    real = [_realism_value(n, report.real_medians[n]) for n in TABLE_FEATURES]
    table.add_row("real", str(report.n_real), *real, *blank)
    for stage in report.stages:
        table.add_row(
            stage.stage, str(stage.n),
            *[_realism_value(n, stage.medians[n]) for n in TABLE_FEATURES],
            *[f"{stage.auc[s][0]:.3f}" for s in FEATURE_SETS],
        )  # fmt: skip
    first, second = report.halves_n
    table.add_row(f"real halves {first}/{second}", "", *[""] * len(TABLE_FEATURES),
                  *[f"{report.halves[s][0]:.3f}" for s in FEATURE_SETS])  # fmt: skip
    console.print(table)
    if len(report.stages) == 1:
        stage = report.stages[0]
        detail = Table(box=box.SIMPLE_HEAD, title=f"every feature, {stage.stage}")
        for column in ("feature (median)", "real", "synthetic", "synthetic/real"):
            detail.add_column(column, justify="left" if column.startswith("f") else "right")
        for name in FEATURES:
            real, synthetic = report.real_medians[name], stage.medians[name]
            ratio = f"{synthetic / real:.2f}" if real else "-"
            detail.add_row(name, f"{real:.3f}", f"{synthetic:.3f}", ratio)
        console.print(detail)


def _realism_value(name: str, value: float) -> str:
    return f"{value:.0f}" if name == "n_peaks" else f"{value:.3f}"

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

    from curriculum_cli.curriculum import Curriculum

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
TIMELINE_WIDTH_RANGE = (20, 60)
"""Fewest and most characters of the shared step axis in ``render_schedule``."""


def _steps(step: int | None) -> str:
    return "never" if step is None else f"{step:,}"


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
            f"{start:,}",
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
    final = curriculum.stages[-1]
    console.print(
        f"total steps {curriculum.total_steps:,}; "
        f"spectrum loss from step {_steps(introductions['spectrum'])}, "
        f"precursor loss from step {_steps(introductions['precursor'])}; "
        f"final weights spectrum {final.spectrum_loss_weight:g}, "
        f"precursor {final.precursor_loss_weight:g}",
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


def render_preset_list(console: Console, curricula: list[Curriculum]) -> None:
    """One row per shipped curriculum: what ``pepcurr generate NAME`` would write."""
    table = Table(title="Presets (pepcurr generate NAME)", title_justify="left")
    table.add_column("name")
    table.add_column("stages", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("spectrum\nfrom", justify="right")
    table.add_column("precursor\nfrom", justify="right")
    for curriculum in curricula:
        introductions = curriculum.introductions()
        table.add_row(
            curriculum.name,
            str(len(curriculum.stages)),
            f"{curriculum.total_steps:,}",
            _steps(introductions["spectrum"]),
            _steps(introductions["precursor"]),
        )
    console.print(table)
    for curriculum in curricula:
        console.print(f"[bold]{curriculum.name}[/bold]: {curriculum.description}", highlight=False)
    console.print(
        "also: pepcurr generate phased --spectrum-at S --precursor-at P [--total T]",
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
    shown, so the rows of different curricula compare; ``·`` means zero.
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




# ----------------------------------------------------------------------------
# Training progress
# ----------------------------------------------------------------------------


class TrainingProgress:
    """Progress of a training run: a rich bar on a terminal, plain lines otherwise.

    Implements the engine's ``Reporter`` protocol. ``quiet`` shows only
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
            f"acc {record['token_accuracy']:.3f}"
        )
        speed = f"{record['steps_per_s']:.1f} steps/s"
        if self._progress is not None:
            self._progress.update(
                self._task, completed=step, stage=record["stage"], losses=losses, speed=speed
            )
        elif not self.quiet and time.monotonic() - self._last_plain >= self.plain_every_s:
            self._last_plain = time.monotonic()
            self.console.print(
                f"step {step}/{self._total} {record['stage']} {losses} {speed}", highlight=False
            )

    def message(self, text: str) -> None:
        if self.quiet and not text.startswith("warning"):
            return
        console = self._progress.console if self._progress is not None else self.console
        console.print(text, highlight=False, markup=False)

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
    )
    for split, values in result.final_val.items():
        parts = [f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float)]
        console.print(f"  {split}: " + ", ".join(parts), highlight=False)

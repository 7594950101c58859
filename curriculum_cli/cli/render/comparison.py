"""Comparisons of runs (``compare``, ``ab``): a rich table, JSON, CSV or Markdown of a
``compare.Comparison``, with the verdicts ``verdict`` decided and the re-scored checkpoints."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from curriculum_cli.analysis.plain import plain
from curriculum_cli.cli.render.common import MISSING, print_table, print_warnings

if TYPE_CHECKING:
    from rich.console import Console

    from curriculum_cli.analysis.compare import Comparison


def _format_value(kind: str, value, key: str = "") -> str:
    """One value of a comparison row, formatted by the row's kind (see ``compare.Row``)."""
    if kind == "text":
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(number):
        if key == "steps_to_target":
            return "not reached"
        if key.endswith("_introduced"):
            return "never"
        return MISSING
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
            if _shows_spread(row.kind, spread) and text not in (MISSING, "not reached", "never"):
                text += f" ± {_format_spread(row.kind, spread)}"
            cells.append(text)
        table.append((row.label, cells, [column in best for column in columns]))
    return table


def _column_headers(comparison: Comparison) -> list[str]:
    if not comparison.grouped:
        return list(comparison.columns)
    sizes = comparison.runs_per_group
    return [f"{group} (n={sizes[group]})" for group in comparison.columns]


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
    print_table(console, table, [["", *headers]] + [[label, *cells] for label, cells, _ in rows])
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
    print_warnings(console, comparison.warnings)


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
            "values": {c: plain(comparison.value(row.key, c)) for c in columns},
            "best": comparison.best_columns(row.key),
        }
        if comparison.grouped and row.kind != "text":
            entry["sd"] = {c: plain(comparison.spread(row.key, c)) for c in columns}
        rows.append(entry)
    data = {
        "at_nominal_step": comparison.at_nominal,
        "metric": comparison.metric,
        "target": comparison.target,
        "grouped": comparison.grouped,
        "columns": columns,
        "rows": rows,
        "runs": [
            {k: plain(v) for k, v in record.items()}
            for record in comparison.runs.to_dict(orient="records")
        ],
        "margin": comparison.margin,
        "steps_to_target": comparison.censored,
        "confounds": comparison.confounds,
        **verdict_data(comparison),
        "rescore": _rescore_data(comparison),
        "warnings": comparison.warnings,
    }
    return json.dumps(data, indent=2, default=plain) + "\n"


def verdict_data(comparison: Comparison) -> dict:
    """The verdict as data: ``verdict`` (``difference``, ``equivalent``, ``identical``,
    ``undecided``).

    With two arms, the one comparison's ``winner``, ``test``, ``interval``,
    ``p_value`` (Holm-adjusted when there are several arms) and ``reason``;
    ``comparisons`` lists every arm against the baseline in full (with its
    ``sensitivity``: what it could have seen). With three or more arms
    ``verdict`` is the kind that heads them (``Comparison.overall_kind``: ``difference``
    if any arm differs, else ``undecided`` if any comparison is, and so on).
    """
    verdicts = comparison.verdicts
    single = verdicts[0] if len(verdicts) == 1 else None
    return {
        "verdict": comparison.overall_kind,
        "winner": single.winner if single else None,
        "test": single.test if single else None,
        "interval": [plain(single.ci_low), plain(single.ci_high)] if single else None,
        "p_value": plain(single.p_adjusted) if single else None,
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
                      "own": [plain(asdict(b)) for b in found.own],
                      "fixed": [plain(asdict(b))
                                for b in found.fixed]},
        "notes": found.notes,
        "verdict": comparison.rescore_overall_kind,
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
                record[column] = plain(summary["median"])
                record[f"{column} sd"] = summary["text"]
                continue
            record[column] = plain(comparison.value(row.key, column))
            if comparison.grouped:
                record[f"{column} sd"] = plain(comparison.spread(row.key, column))
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

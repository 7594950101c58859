"""Evaluation of a trained run: what ``evaluate`` measured and what ``predict`` wrote."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from curriculum_cli.cli.render.common import MISSING, print_warnings

if TYPE_CHECKING:
    from rich.console import Console

    from curriculum_cli.analysis.evaluation import EvaluationResult, PredictionResult


def render_evaluation(console: Console, result: EvaluationResult) -> None:
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
        table.add_row(label, text.format(value) if math.isfinite(value) else MISSING)
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
    print_warnings(console, result.warnings)


def render_prediction(console: Console, result: PredictionResult) -> None:
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
    print_warnings(console, result.warnings)


def _decoding(settings: dict) -> str:
    """``beam size N``, or how a parallel model was decoded (``evaluation`` settings)."""
    return f"decoded {settings['decoding']}" if "decoding" in settings else (
        f"beam size {settings['beam_size']}")  # fmt: skip

"""Realism: what ``calibrate`` fitted, and real spectra beside each stage's synthetic ones
(``realism``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

from curriculum_cli.cli.render.common import MISSING, print_warnings

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from curriculum_cli.analysis.realism import RealismReport
    from curriculum_cli.spectra.calibration import Calibration


def render_calibration(console: Console, calibration: Calibration, output: Path) -> None:
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
    print_warnings(console, calibration.warnings)


_REALISM_LABELS = {
    "n_peaks": "peaks",
    "by_peak_share": "b/y peaks",
    "by_intensity_share": "b/y int.",
    "by_coverage": "b/y cov.",
}


def realism_data(report: RealismReport) -> dict:
    """``pepcurr realism --format json``: the report as plain data."""
    from dataclasses import asdict

    return asdict(report)


def render_realism(console: Console, report: RealismReport) -> None:
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
    halves = [f"{report.halves[s][0]:.3f}" if report.halves else MISSING for s in FEATURE_SETS]
    table.add_row(f"real halves {first}/{second}", "", *[""] * len(TABLE_FEATURES), *halves)
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

"""Matplotlib figures of pepcurr's data, written as image files (no window, no pyplot).

matplotlib is imported inside each function so that ``pepcurr --help`` stays
instant; figures are drawn on a plain ``Figure`` (Agg canvas), so no global
backend state is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.errors import PepcurrError

if TYPE_CHECKING:
    from curriculum_cli.curriculum import Curriculum

CURRICULUM_LINESTYLES = ("-", "--", ":", "-.")
CURRICULUM_LINEWIDTHS = (3.2, 2.2, 1.8, 1.4)
"""Thick to thin, so that curricula drawn later stay visible where values coincide."""

# (panel y label, [(stage attribute, legend label, colour)]) from top to bottom.
_SCHEDULE_PANELS = (
    (
        "loss weight",
        [
            ("spectrum_loss_weight", "spectrum loss weight", "tab:blue"),
            ("precursor_loss_weight", "precursor loss weight", "tab:orange"),
        ],
    ),
    (
        "peptide length\n(residues)",
        [
            ("max_length", "max length", "tab:green"),
            ("min_length", "min length", "tab:olive"),
        ],
    ),
    ("noise peaks\n(per spectrum)", [("noise_peaks", "noise peaks", "tab:red")]),
    (
        "fraction",
        [
            ("peak_dropout", "peak dropout", "tab:purple"),
            ("intensity_variation", "intensity variation", "tab:brown"),
        ],
    ),
    ("mass error (ppm)", [("mass_error_ppm", "mass error", "tab:gray")]),
)
_LOSS_COLOURS = {"spectrum": "tab:blue", "precursor": "tab:orange"}


def _thousands(step: float, _position: int) -> str:
    return f"{step / 1000:g}k" if step else "0"


def plot_schedule(curricula: list[Curriculum], path: Path) -> Path:
    """Draw the curricula's stage values on one shared step axis and save them to ``path``.

    Panels, top to bottom: the two auxiliary loss weights, the peptide length
    range, noise peaks, dropout and intensity variation (fractions), and the
    m/z error in ppm. Each curriculum has one line style (and width); vertical
    lines in the loss's colour and the curriculum's style mark where each
    auxiliary loss is introduced. Returns ``path``.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(11, 13), layout="constrained")
    axes = figure.subplots(len(_SCHEDULE_PANELS), 1, sharex=True)
    curriculum_handles = []
    for number, curriculum in enumerate(curricula):
        linestyle = CURRICULUM_LINESTYLES[number % len(CURRICULUM_LINESTYLES)]
        linewidth = CURRICULUM_LINEWIDTHS[number % len(CURRICULUM_LINEWIDTHS)]
        steps = [*curriculum.stage_starts(), curriculum.total_steps]
        for ax, (_, quantities) in zip(axes, _SCHEDULE_PANELS, strict=True):
            for field, _, colour in quantities:
                values = [getattr(stage, field) for stage in curriculum.stages]
                ax.plot(
                    steps,
                    [*values, values[-1]],
                    drawstyle="steps-post",
                    color=colour,
                    linestyle=linestyle,
                    linewidth=linewidth,
                )
        introductions = curriculum.introductions()
        for loss, step in introductions.items():
            if step is not None:
                for ax in axes:
                    ax.axvline(
                        step,
                        color=_LOSS_COLOURS[loss],
                        linestyle=linestyle,
                        linewidth=1.0,
                        alpha=0.55,
                    )
        onsets = ", ".join(
            f"{loss} on at {'never' if step is None else f'{step:,}'}"
            for loss, step in introductions.items()
        )
        curriculum_handles.append(
            Line2D(
                [],
                [],
                color="black",
                linestyle=linestyle,
                linewidth=linewidth,
                label=f"{curriculum.name} ({curriculum.total_steps:,} steps; {onsets})",
            )
        )
    for ax, (ylabel, quantities) in zip(axes, _SCHEDULE_PANELS, strict=True):
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(
            handles=[Line2D([], [], color=colour, label=label) for _, label, colour in quantities],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize="small",
        )
    figure.legend(
        handles=curriculum_handles,
        loc="outside lower center",
        ncols=1,
        fontsize="medium",
        title="line style = curriculum",
    )
    axes[-1].set_xlabel("training step (optimizer updates)")
    axes[-1].xaxis.set_major_formatter(FuncFormatter(_thousands))
    axes[-1].set_xlim(0, max(curriculum.total_steps for curriculum in curricula))
    figure.suptitle(
        "Curriculum schedules: "
        + " vs ".join(curriculum.name for curriculum in curricula)
        + "\n(vertical lines: where each auxiliary loss is introduced, in the loss's colour)"
    )
    try:
        figure.savefig(path, dpi=110)
    except (OSError, ValueError) as error:
        raise PepcurrError(f"{path}: cannot write the plot: {error}") from None
    return path

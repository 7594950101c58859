"""Rich presentation of pepcurr's results: tables and timelines, no computation.

Each function takes a ``rich.console.Console`` (the CLI passes one; tests pass
one that records) and data that the library already computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

    from curriculum_cli.curriculum import Curriculum

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
TIMELINE_WIDTH = 50
"""Characters of the shared step axis in ``render_schedule``."""


def _steps(step: int | None) -> str:
    return "never" if step is None else f"{step:,}"


def render_curriculum_summary(
    console: Console, curriculum: Curriculum, source: str, warnings: list[str]
) -> None:
    """Stages table, total steps, loss introductions and final weights of one curriculum."""
    table = Table(title=f"{source}: {curriculum.name}", title_justify="left", expand=False)
    for header, justify in (
        ("#", "right"),
        ("stage", "left"),
        ("steps", "right"),
        ("length", "center"),
        ("noise\npeaks", "right"),
        ("drop-\nout", "right"),
        ("ppm", "right"),
        ("int.\nvar", "right"),
        ("spec.\nweight", "right"),
        ("prec.\nweight", "right"),
    ):
        table.add_column(header, justify=justify)
    for index, (start, stage) in enumerate(
        zip(curriculum.stage_starts(), curriculum.stages, strict=True)
    ):
        table.add_row(
            str(index),
            stage.name,
            f"{start:,}–{start + stage.steps:,}",
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
    table.add_column("description")
    for curriculum in curricula:
        introductions = curriculum.introductions()
        table.add_row(
            curriculum.name,
            str(len(curriculum.stages)),
            f"{curriculum.total_steps:,}",
            _steps(introductions["spectrum"]),
            _steps(introductions["precursor"]),
            curriculum.description,
        )
    console.print(table)
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


def _sparkline(curriculum: Curriculum, field: str, axis_steps: int, top: float) -> str:
    """One character per ``axis_steps / TIMELINE_WIDTH`` steps: the value at its first step."""
    characters = []
    for column in range(TIMELINE_WIDTH):
        step = column * axis_steps // TIMELINE_WIDTH
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
    values = [getattr(stage, field) for stage in curriculum.stages]
    introductions = curriculum.introductions()
    loss = {"spectrum_loss_weight": "spectrum", "precursor_loss_weight": "precursor"}.get(field)
    if loss is not None:
        return f"on at {_steps(introductions[loss])}, {values[0]:g} → {values[-1]:g}"
    return f"{values[0]:g} → {values[-1]:g}"


def render_schedule(console: Console, curricula: list[Curriculum]) -> None:
    """All curricula on one step axis: where each loss turns on, how lengths and noise rise.

    Each row is a sparkline; bar heights are scaled per quantity to the largest
    value over all curricula shown, so the rows of different curricula compare.
    """
    axis_steps = max(curriculum.total_steps for curriculum in curricula)
    step_per_char = axis_steps / TIMELINE_WIDTH
    axis_label = f"0{f'{axis_steps:,}':>{TIMELINE_WIDTH - 1}}"
    table = Table(
        title=f"Schedules on one step axis (1 character = {step_per_char:,.0f} steps)",
        title_justify="left",
    )
    table.add_column("curriculum")
    table.add_column("quantity")
    table.add_column(axis_label, no_wrap=True)
    table.add_column("first → last")
    tops = {
        field: max(getattr(stage, field) for curriculum in curricula for stage in curriculum.stages)
        for _, field, _ in _TIMELINE_ROWS
    }
    for number, curriculum in enumerate(curricula):
        for row, (label, field, style) in enumerate(_TIMELINE_ROWS):
            table.add_row(
                curriculum.name if row == 0 else "",
                label,
                Text(_sparkline(curriculum, field, axis_steps, tops[field]), style=style),
                _value_range(curriculum, field),
                end_section=row == len(_TIMELINE_ROWS) - 1 and number < len(curricula) - 1,
            )
    console.print(table)

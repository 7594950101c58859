"""Curricula: a curriculum's stages and gates (``validate``), the presets (``generate --list``),
and schedules on one step axis (``plot-schedule``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

    from curriculum_cli.curriculum.schema import Curriculum
    from curriculum_cli.curriculum.world import World

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


def _world_line(world: World) -> str:
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
        console.print(Text.assemble((curriculum.name, "bold"), f": {curriculum.description}"),
                      highlight=False)  # fmt: skip
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
        step = curriculum.introductions()[loss]
        return "never" if step is None else f"on at {_steps(step)} → {last:g}"
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

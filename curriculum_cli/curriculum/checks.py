"""Checking a curriculum: its errors, and the legal but suspicious (values that go back down,
stages too short to matter, gates that cannot act). ``pepcurr validate`` shows them
(``check_curriculum``); ``--strict`` makes the warnings errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curriculum_cli.curriculum.files import load_curriculum
from curriculum_cli.curriculum.schema import LOSS_WEIGHT_FIELDS, Curriculum
from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.stage_data import NOISE_FIELDS

SHORT_STAGE_FRACTION = 0.01
"""A stage shorter than this fraction of the total is flagged as suspicious."""


@dataclass(frozen=True)
class CurriculumCheck:
    """What ``pepcurr validate`` learns about one source: the curriculum or its errors."""

    source: str
    curriculum: Curriculum | None
    errors: list[str]
    warnings: list[str]


def check_curriculum(source: str | Path) -> CurriculumCheck:
    """Load ``source`` (``files.load_curriculum``) and collect its errors (one line each) or
    its warnings."""
    try:
        curriculum = load_curriculum(source)
    except CurriculumError as error:
        return CurriculumCheck(str(source), None, str(error).splitlines(), [])
    return CurriculumCheck(str(source), curriculum, [], curriculum_warnings(curriculum))


def curriculum_warnings(curriculum: Curriculum) -> list[str]:
    """Legal but suspicious things, one message per finding, each naming the stage.

    A curriculum is expected to make the task harder and the auxiliary losses
    stronger as it goes; a value that goes back down is more often a typo than
    a plan. A stage under 1% of the total is too short to have an effect.
    """
    warnings = []
    watched_fields = (*LOSS_WEIGHT_FIELDS.values(), "max_length", *NOISE_FIELDS)
    for index in range(1, len(curriculum.stages)):
        before, stage = curriculum.stages[index - 1], curriculum.stages[index]
        for field in watched_fields:
            old, new = getattr(before, field), getattr(stage, field)
            if new < old:
                warnings.append(
                    f"stages[{index}] ({stage.name}): {field} goes down from {old} to {new} "
                    f"after {before.name}; curricula normally only raise it"
                )
    total = curriculum.total_steps
    for index, stage in enumerate(curriculum.stages):
        if stage.steps < SHORT_STAGE_FRACTION * total:
            warnings.append(
                f"stages[{index}] ({stage.name}): {stage.steps:,} steps is under "
                f"{SHORT_STAGE_FRACTION:.0%} of the {total:,} total; too short to matter"
            )
    return warnings + gate_warnings(curriculum)


def gate_warnings(curriculum: Curriculum) -> list[str]:
    """Gates that cannot act, and stages that would not fit if every gate opened at its latest.

    The run's length is fixed (``total_steps``); a gate that opens late
    delays every later stage and shortens the last one.
    """
    warnings = []
    total = curriculum.total_steps
    planned, latest = curriculum.stage_starts(), curriculum.latest_starts()
    for index, stage in enumerate(curriculum.stages):
        gate = stage.start_when
        where = f"stages[{index}] ({stage.name})"
        if gate is not None and gate.latest_step <= planned[index]:
            warnings.append(
                f"{where}: start_when.latest_step ({gate.latest_step:,}) is not after the "
                f"stage's planned start ({planned[index]:,}), so the gate never delays it"
            )
        if latest[index] >= total:
            warnings.append(
                f"{where}: if every gate opens only at its latest_step, the stage starts at "
                f"{latest[index]:,}, at or past the run's {total:,} steps, and never runs"
            )
    last_steps = total - latest[-1]
    if curriculum.gated and 0 < last_steps < SHORT_STAGE_FRACTION * total:
        last = curriculum.stages[-1]
        warnings.append(
            f"stages[{len(curriculum.stages) - 1}] ({last.name}): if every gate opens only at "
            f"its latest_step, only {last_steps:,} of the {total:,} steps are left for it"
        )
    return warnings

"""Sweep factors: arms derived from one base curriculum by changing only its loss schedule.

A *factor* is one knob of an auxiliary loss's schedule; a *level* one value of it:

- ``spectrum_start``, ``precursor_start``: the nominal step at which that loss comes
  on (``0`` .. the last step, or ``never``);
- ``spectrum_weight``, ``precursor_weight``: a multiplier of the base's weights
  (``0.5``, ``1``, ``2``; 0 is the same as ``never``).

The onset rule (one rule for every start level; ``docs/sweep.md`` and ``pepcurr
plot-schedule`` show it): before the level's step the loss weighs 0; from it on the
loss has the base's weight at that step, except before the base's own onset, where
it has the base's first non-zero weight. So a later start keeps the base's weights
wherever the loss is on (it joins the base's ramp where the ramp is), an earlier
start extends the base's first weight back to the new step, and every arm ends
with the base's weights. A start inside a stage splits the stage in two at that
step (same data settings, the second named ``<stage>.from-<step>``): the spectra
an arm trains on are the base's at every step, and only the loss weights and their
exposure differ. Data stages, lengths, noise, the world and the total length are
untouched.

Levels are nominal steps (of the unscaled curriculum); ``--scale`` scales the stage
boundaries as for every curriculum (``Curriculum.scaled``), so two arms of one sweep
keep the same length. A gated base (``start_when``) is refused: its onsets are not
steps.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from curriculum_cli.curriculum.schema import LOSS_WEIGHT_FIELDS, Curriculum, Stage
from curriculum_cli.errors import CurriculumError, validation_problem_lines

NEVER = "never"
"""The start level of a loss that never comes on."""

MAX_LEVELS = 32
"""Most levels one factor may have (a typo guard: every level is an arm per seed)."""


class Factor(StrEnum):
    """A knob of an auxiliary loss's schedule that a sweep varies."""

    spectrum_start = "spectrum_start"
    precursor_start = "precursor_start"
    spectrum_weight = "spectrum_weight"
    precursor_weight = "precursor_weight"

    @property
    def loss(self) -> str:
        """The auxiliary loss it acts on: ``spectrum`` or ``precursor``."""
        return self.value.split("_", 1)[0]

    @property
    def is_start(self) -> bool:
        return self.value.endswith("_start")


Level = int | float | str
"""A start level is a nominal step (``int``) or ``NEVER``; a weight level a multiplier."""


@dataclass(frozen=True)
class FactorLevels:
    """One ``--vary FACTOR=LEVELS``: the factor and its levels, in the order given."""

    factor: Factor
    levels: tuple[Level, ...]


def level_text(level: Level) -> str:
    """A level as names and tables show it: ``10000``, ``never``, ``0.5``."""
    if isinstance(level, float):
        return f"{level:g}"
    return str(level)


def parse_vary(text: str) -> FactorLevels:
    """``spectrum_start=0,10000,never`` as a ``FactorLevels``; a ``CurriculumError`` naming
    what is wrong (unknown factor, bad or repeated level)."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not values.strip():
        raise CurriculumError(
            f"--vary {text!r}: write FACTOR=LEVEL,LEVEL,... (e.g. spectrum_start=0,10000,never)"
        )
    try:
        factor = Factor(name)
    except ValueError:
        known = ", ".join(f.value for f in Factor)
        raise CurriculumError(
            f"--vary {text!r}: unknown factor {name!r}; use one of {known}"
        ) from None
    levels = [_parse_level(factor, item.strip(), text) for item in values.split(",")]
    seen = set()
    for level in levels:
        if level in seen:
            raise CurriculumError(f"--vary {text!r}: level {level_text(level)} is listed twice")
        seen.add(level)
    if len(levels) > MAX_LEVELS:
        raise CurriculumError(f"--vary {text!r}: {len(levels)} levels, at most {MAX_LEVELS}")
    return FactorLevels(factor, tuple(levels))


def _parse_level(factor: Factor, item: str, text: str) -> Level:
    if factor.is_start:
        if item == NEVER:
            return NEVER
        try:
            step = int(item.replace("_", ""))
        except ValueError:
            raise CurriculumError(
                f"--vary {text!r}: {item!r} is not a step (a whole number >= 0) or 'never'"
            ) from None
        if step < 0:
            raise CurriculumError(f"--vary {text!r}: step {step} is negative")
        return step
    try:
        multiplier = float(item)
    except ValueError:
        raise CurriculumError(f"--vary {text!r}: {item!r} is not a number (a multiplier)") from None
    if not (math.isfinite(multiplier) and multiplier >= 0):
        raise CurriculumError(f"--vary {text!r}: multiplier {item} must be a number >= 0")
    return multiplier


def parse_control(texts: list[str], varied: list[FactorLevels]) -> dict[Factor, Level]:
    """``--control FACTOR=LEVEL`` (repeatable) as factor -> level, each factor varied and
    each level one of its levels."""
    control: dict[Factor, Level] = {}
    by_factor = {fl.factor: fl for fl in varied}
    for text in texts:
        parsed = parse_vary(text)
        if len(parsed.levels) != 1:
            raise CurriculumError(f"--control {text!r}: give one level per factor")
        if parsed.factor not in by_factor:
            raise CurriculumError(f"--control {text!r}: {parsed.factor} is not varied (--vary)")
        if parsed.levels[0] not in by_factor[parsed.factor].levels:
            shown = ", ".join(level_text(v) for v in by_factor[parsed.factor].levels)
            raise CurriculumError(
                f"--control {text!r}: {level_text(parsed.levels[0])} is not one of the levels "
                f"of {parsed.factor} ({shown})"
            )
        control[parsed.factor] = parsed.levels[0]
    return control


def base_level(base: Curriculum, factor: Factor) -> Level:
    """The level the base curriculum itself has: its onset step (or ``never``), or 1."""
    if not factor.is_start:
        return 1.0
    step = base.introductions()[factor.loss]
    return NEVER if step is None else step


def check_base(base: Curriculum, factors: list[Factor]) -> None:
    """A ``CurriculumError`` when ``base`` cannot be swept over ``factors``."""
    if base.gated:
        raise CurriculumError(
            f"{base.name}: a gated curriculum (start_when) switches its losses on at an "
            "accuracy, not a step; sweep an ungated base"
        )
    for factor in factors:
        if base.introductions()[factor.loss] is None:
            raise CurriculumError(
                f"{base.name} never switches the {factor.loss} loss on, so it has no weights "
                f"for {factor} to start or scale; use a base that does"
            )


def with_levels(base: Curriculum, levels: dict[Factor, Level], name: str) -> Curriculum:
    """``base`` with each factor at its level (the module's rule), named ``name``.

    Per loss, a start level applies before a weight multiplier. A ``CurriculumError``
    for a start at or past the base's last step (that is ``never``) and for a weight
    that the schema's bound (``Stage.spectrum_loss_weight`` <= 10) refuses.
    """
    check_base(base, list(levels))
    stages = list(base.stages)
    for factor, level in levels.items():
        if factor.is_start:
            stages = _start_at(stages, factor.loss, level, base)
    for factor, level in levels.items():
        if not factor.is_start:
            stages = _scaled_weights(stages, factor.loss, float(level), base)
    shown = ", ".join(f"{f}={level_text(v)}" for f, v in levels.items())
    description = (
        f"{base.name} with {shown} (pepcurr sweep; only the loss schedule differs from "
        f"{base.name}: docs/sweep.md)."
    )
    data = {**base.model_dump(), "name": name, "description": description,
            "stages": [stage.model_dump() for stage in stages]}  # fmt: skip
    try:
        return Curriculum.model_validate(data)
    except ValidationError as error:
        lines = validation_problem_lines(error, f"sweep arm {name}")
        raise CurriculumError("\n".join(lines)) from None


def _start_at(stages: list[Stage], loss: str, level: Level, base: Curriculum) -> list[Stage]:
    field = LOSS_WEIGHT_FIELDS[loss]
    if level == NEVER:
        return [stage.model_copy(update={field: 0.0}) for stage in stages]
    start = int(level)
    if start >= base.total_steps:
        raise CurriculumError(
            f"{loss}_start={start}: {base.name} ends at step {base.total_steps:,}; a loss "
            "that starts there never comes on (use never)"
        )
    onset = base.introductions()[loss]
    first_weight = getattr(base.stages[base.introducing_stages()[loss]], field)
    out, stage_start = [], 0
    for stage in _split_at(stages, start):
        before_onset = stage_start < onset
        if stage_start < start:
            weight = 0.0
        elif before_onset:
            weight = first_weight
        else:
            weight = getattr(stage, field)
        out.append(stage.model_copy(update={field: weight}))
        stage_start += stage.steps
    return out


def _split_at(stages: list[Stage], step: int) -> list[Stage]:
    """``stages`` with the stage that holds ``step`` (not at its start) split there."""
    out, stage_start = [], 0
    for stage in stages:
        if stage_start < step < stage_start + stage.steps:
            head = step - stage_start
            out.append(stage.model_copy(update={"steps": head}))
            tail = stage.model_copy(
                update={"steps": stage.steps - head, "name": f"{stage.name}.from-{step}"}
            )
            out.append(tail)
        else:
            out.append(stage)
        stage_start += stage.steps
    return out


def _scaled_weights(stages: list[Stage], loss: str, factor: float, base: Curriculum) -> list[Stage]:
    field = LOSS_WEIGHT_FIELDS[loss]
    out = []
    for index, stage in enumerate(stages):
        weight = getattr(stage, field) * factor
        limit = Stage.model_fields[field].metadata
        bound = next((m.le for m in limit if getattr(m, "le", None) is not None), math.inf)
        if weight > bound:
            raise CurriculumError(
                f"{loss}_weight={factor:g}: stage {index} '{stage.name}' of {base.name} would "
                f"weigh {weight:g}, above the bound {bound:g} of {field}"
            )
        out.append(stage.model_copy(update={field: weight}))
    return out


@dataclass(frozen=True)
class Arm:
    """One cell of a sweep: its levels (factor -> level), its name and curriculum."""

    levels: dict[Factor, Level]
    name: str
    curriculum: Curriculum
    control: bool


def arm_name(base: Curriculum, levels: dict[Factor, Level]) -> str:
    """``realistic-current.spectrum_start=10000`` (factors in the order varied)."""
    return ".".join([base.name, *(f"{f}={level_text(v)}" for f, v in levels.items())])


def sweep_arms(
    base: Curriculum, varied: list[FactorLevels], control: dict[Factor, Level] | None = None
) -> list[Arm]:
    """Every cell of the full factorial of ``varied`` on ``base``, the control first.

    ``control``: factor -> level of the control cell (each factor left out: the base's
    own level, added to the factor's levels if not listed). The other cells follow in
    the order the levels were given (the first factor slowest).
    """
    if not varied:
        raise CurriculumError("a sweep varies at least one factor (--vary FACTOR=LEVELS)")
    factors = [fl.factor for fl in varied]
    if len(set(factors)) < len(factors):
        raise CurriculumError("a factor is varied twice; give all its levels in one --vary")
    check_base(base, factors)
    control = dict(control or {})
    grid = []
    for fl in varied:
        levels = list(fl.levels)
        own = control.setdefault(fl.factor, base_level(base, fl.factor))
        if own not in levels:
            levels.append(own)
        grid.append(levels)
    arms = []
    for cell in itertools.product(*grid):
        levels = dict(zip(factors, cell, strict=True))
        name = arm_name(base, levels)
        arms.append(Arm(levels, name, with_levels(base, levels, name), levels == control))
    arms.sort(key=lambda arm: not arm.control)  # stable: the control first
    return arms

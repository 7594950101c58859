"""The curriculum schema (``Curriculum``, ``Stage``, ``StartWhen``) and the queries the rest of
pepcurr asks of it.

A curriculum is a list of stages run one after the other. Each stage says, for
a number of optimizer steps, which peptide lengths the synthetic spectra have,
how much noise they carry (its ``spectra.stage_data.StageData``, the spectra wing's
fields), and how strongly the two auxiliary mass-physics losses (spectrum loss and
precursor loss) weigh next to cross-entropy. Its ``world`` (``spectra.world``) is
the physics of realistic spectra.

Step convention, used everywhere in pepcurr: a step is the 0-based index of an
optimizer update. Stage ``k`` covers the half-open range
``[start_k, start_k + steps_k)``, so the revised curriculum's 15,000-step
foundation stage holds steps 0 to 14,999 and step 15,000 is the first step of
the next stage. The file format is described for users in
``docs/curriculum-format.md``.

A stage may be *gated* (``start_when``): it starts at the first validation at
or after its earliest start at which a validation metric reaches a threshold,
or at a latest step. ``stage_starts``, ``stage_at`` and ``introductions`` keep
describing the planned schedule (every gate open at its earliest start, the
truth for an ungated curriculum); ``schedule.StageSchedule`` resolves the gates during a
run. Files are read and written by ``files``, suspicious values found by ``checks``.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.stage_data import StageData
from curriculum_cli.spectra.world import World

SCHEMA_VERSION = 1
"""The only curriculum file version this pepcurr reads and writes."""

MAX_STAGE_STEPS = 100_000_000
"""Upper bound on one stage's steps: far beyond any real run, it only catches typos."""

LOSS_WEIGHT_FIELDS = {"spectrum": "spectrum_loss_weight", "precursor": "precursor_loss_weight"}
"""Auxiliary loss name (as used in introductions and logs) -> stage field holding its weight."""

AUXILIARY_LOSSES = tuple(LOSS_WEIGHT_FIELDS)
"""The auxiliary losses, in the order logs, checkpoints and tables list them."""

GATE_SPLITS = {"easy": "val_easy", "hard": "val_hard"}
"""Split suffix of a gate metric -> the validation set (``split`` of ``val`` records) it reads."""

GATE_VALIDATION_METRICS = ("residue_accuracy", "token_accuracy")
"""Fields of ``val`` records a gate may read (teacher-forced accuracies, 0-1)."""

MAX_GATE_OVER = 100
"""Most validations a gate's metric may be averaged over (``StartWhen.over``)."""

GATE_METRICS = tuple(
    f"{metric}_{suffix}" for metric in GATE_VALIDATION_METRICS for suffix in GATE_SPLITS
)
"""The ``start_when.metric`` names: ``<metric>_<split>``, e.g. ``residue_accuracy_easy``."""


class StartWhen(BaseModel):
    """A stage's gate: start once a validation metric reaches a threshold, or at a latest step."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    metric: str = Field(
        description="Validation metric that opens the gate, <metric>_<split>: one of "
        + ", ".join(GATE_METRICS)
        + "."
    )
    at_least: float = Field(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="The stage starts at the first validation with metric >= this (fraction, 0-1).",
    )
    latest_step: int = Field(
        ge=1,
        le=MAX_STAGE_STEPS,
        description="The stage starts at this step at the latest, whatever the metric "
        "(optimizer updates from the start of the run; scaled like the stage steps).",
    )
    over: int = Field(
        default=1,
        ge=1,
        le=MAX_GATE_OVER,
        description="Validations the metric is averaged over: the gate reads the mean of the "
        "last `over` validations (so one lucky validation does not open it). 1: the last "
        "validation alone.",
    )

    @model_serializer(mode="wrap")
    def _omit_default_over(self, handler) -> dict[str, Any]:
        """Leave ``over`` out when it is 1, so curricula and ``run.json`` files without it
        read and write exactly as before it existed."""
        data = handler(self)
        if data.get("over") == 1:
            data.pop("over")
        return data

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in GATE_METRICS:
            raise PydanticCustomError(
                "gate_metric",
                "unknown metric '{metric}'; use one of {known}",
                {"metric": metric, "known": ", ".join(GATE_METRICS)},
            )
        return metric

    @property
    def split(self) -> str:
        """The validation set the metric is read on: ``val_easy`` or ``val_hard``."""
        return GATE_SPLITS[self.metric.rsplit("_", 1)[1]]

    @property
    def field(self) -> str:
        """The field of the ``val`` record the metric is read from, e.g. ``residue_accuracy``."""
        return self.metric.rsplit("_", 1)[0]

    def describe(self) -> str:
        """``residue_accuracy_easy >= 0.55 (at the latest 30,000)``; with ``over`` > 1 the
        metric reads ``mean of 3 validations of residue_accuracy_easy``."""
        metric = self.metric if self.over == 1 else (
            f"mean of {self.over} validations of {self.metric}")  # fmt: skip
        return f"{metric} >= {self.at_least:g} (at the latest {self.latest_step:,})"


class StageTiming(BaseModel):
    """When a stage runs: its name, its steps and its gate (the first fields of a stage)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(
        min_length=1,
        max_length=80,
        description="Name shown in tables and logs; unique within a curriculum.",
    )
    steps: int = Field(
        ge=1,
        le=MAX_STAGE_STEPS,
        description="Number of optimizer updates the stage lasts (from its actual start; for a "
        "stage before a gated one, the least it lasts).",
    )
    start_when: StartWhen | None = Field(
        default=None,
        description="Gate (not on the first stage): start at the first validation at or after "
        "the earliest start at which a metric reaches a threshold, or at latest_step. "
        "Absent: start when the previous stage has run its steps.",
    )


class Stage(StageData, StageTiming):
    """One block of consecutive training steps with fixed data and loss settings: its timing
    (``StageTiming``), the spectra it trains on (``spectra.stage_data.StageData``: lengths and
    noise) and its loss weights. Pydantic puts the last base's fields first, so a stage's
    fields (and its JSON) read timing, data, weights, as the file format has them."""

    spectrum_loss_weight: float = Field(
        default=0.0,
        ge=0.0,
        le=10.0,
        allow_inf_nan=False,
        description="Weight of the fragment (spectrum) loss next to cross-entropy; 0 = off.",
    )
    precursor_loss_weight: float = Field(
        default=0.0,
        ge=0.0,
        le=10.0,
        allow_inf_nan=False,
        description="Weight of the precursor (total mass) loss next to cross-entropy; 0 = off.",
    )
    real_fraction: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Share of each batch drawn from real spectra (train --train-data), the "
        "rest synthetic (fraction, 0-1). Absent: 1 when training data is given, else 0.",
    )

    @property
    def loss_weights(self) -> dict[str, float]:
        """Auxiliary loss name -> its weight next to cross-entropy in this stage."""
        return {loss: getattr(self, field) for loss, field in LOSS_WEIGHT_FIELDS.items()}

    @model_serializer(mode="wrap")
    def _omit_absent_gate(self, handler) -> dict[str, Any]:
        """Leave ``start_when`` out of files and ``run.json`` when there is none, and
        ``real_fraction`` when it was never given (so ``with_real_fraction`` can resolve it)."""
        data = handler(self)
        if data.get("start_when") is None:
            data.pop("start_when", None)
        if "real_fraction" not in self.model_fields_set:
            data.pop("real_fraction", None)
        return data


class Curriculum(BaseModel):
    """A named sequence of stages: the unit pepcurr generates, validates, trains and compares."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: int = Field(
        default=SCHEMA_VERSION,
        description=f"Version of this file format; pepcurr reads version {SCHEMA_VERSION}.",
    )
    name: str = Field(min_length=1, max_length=80, description="Short name used in run names.")
    description: str = Field(default="", description="Free text: what the curriculum is for.")
    world: World | None = Field(
        default=None,
        description="The physics of the spectra (pepcurr calibrate writes one): realistic "
        "spectra instead of the plain b/y ladder. Absent: the plain generator.",
    )
    stages: list[Stage] = Field(description="Stages in the order they are trained.")

    @model_serializer(mode="wrap")
    def _omit_absent_world(self, handler) -> dict[str, Any]:
        """Leave ``world`` out of files and ``run.json`` when there is none."""
        data = handler(self)
        if data.get("world") is None:
            data.pop("world", None)
        return data

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != SCHEMA_VERSION:
            raise PydanticCustomError(
                "schema_version",
                "version {version} is not supported; this pepcurr reads schema_version {known}",
                {"version": version, "known": SCHEMA_VERSION},
            )
        return version

    @field_validator("stages")
    @classmethod
    def _stages_present_and_unique(cls, stages: list[Stage]) -> list[Stage]:
        if not stages:
            raise PydanticCustomError(
                "no_stages", "a curriculum needs at least one stage; add a stage to the list"
            )
        first_index: dict[str, int] = {}
        for index, stage in enumerate(stages):
            if stage.name in first_index:
                raise PydanticCustomError(
                    "duplicate_stage_name",
                    "stage name '{name}' is used by stages[{first}] and stages[{again}]; "
                    "give each stage a unique name",
                    {"name": stage.name, "first": first_index[stage.name], "again": index},
                )
            first_index[stage.name] = index
        if stages[0].start_when is not None:
            raise ValidationError.from_exception_data(
                "Curriculum",
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "gate_on_first_stage",
                            "the first stage starts at step 0 and cannot be gated; "
                            "remove start_when or move it to a later stage",
                        ),
                        loc=(0, "start_when"),
                        input=stages[0].start_when.model_dump(),
                    )
                ],
            )
        return stages

    @model_validator(mode="after")
    def _stages_inside_the_world(self) -> Curriculum:
        """In a world, every stage's length range must hold some of the world's spectra."""
        if self.world is None:
            return self
        for index, stage in enumerate(self.stages):
            if not self.world.rows_between(stage.min_length, stage.max_length):
                shortest, longest = self.world.lengths
                raise ValidationError.from_exception_data(
                    "Curriculum",
                    [
                        InitErrorDetails(
                            type=PydanticCustomError(
                                "outside_world",
                                "the world has no spectrum of a peptide with {low}-{high} "
                                "residues (its peptides have {shortest}-{longest}); widen the "
                                "stage's lengths",
                                {"low": stage.min_length, "high": stage.max_length,
                                 "shortest": shortest, "longest": longest},
                            ),
                            loc=("stages", index, "max_length"),
                            input=stage.max_length,
                        )
                    ],
                )  # fmt: skip
        return self

    @property
    def total_steps(self) -> int:
        """Optimizer updates over all stages."""
        return sum(stage.steps for stage in self.stages)

    @property
    def max_length(self) -> int:
        """Longest peptide (residues) any stage asks for: sizes the model's positions."""
        return max(stage.max_length for stage in self.stages)

    def stage_starts(self) -> list[int]:
        """First step of each stage (the stage boundaries); the first is always 0."""
        starts = []
        step = 0
        for stage in self.stages:
            starts.append(step)
            step += stage.steps
        return starts

    def stage_at(self, step: int) -> tuple[int, Stage]:
        """Index and stage in force at a 0-based step.

        A step at or past ``total_steps`` gives the last stage, so a run that goes
        on after the curriculum ends keeps its final settings.
        """
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        index = bisect.bisect_right(self.stage_starts(), step) - 1
        return index, self.stages[index]

    def stage_named_or_at(self, name: str | None, step: int | None) -> tuple[int, Stage]:
        """Index and stage named ``name``, or in force at ``step`` (exactly one of the two; a
        step past the curriculum's end is refused)."""
        if (name is None) == (step is None):
            raise CurriculumError("give exactly one of --stage NAME and --step N")
        if step is not None and step >= self.total_steps:  # stage_at: the last stage
            raise CurriculumError(f"--step {step:,}: {self.name} has steps 0-"
                                  f"{self.total_steps - 1:,}")  # fmt: skip
        if step is not None:
            return self.stage_at(step)
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index, stage
        names = ", ".join(stage.name for stage in self.stages)
        raise CurriculumError(f"{self.name} has no stage {name!r}; its stages: {names}")

    def introducing_stages(self) -> dict[str, int | None]:
        """Index of the first stage in which each auxiliary loss has a weight > 0 (None: never)."""
        found: dict[str, int | None] = {loss: None for loss in LOSS_WEIGHT_FIELDS}
        for index, stage in enumerate(self.stages):
            for loss, field in LOSS_WEIGHT_FIELDS.items():
                if found[loss] is None and getattr(stage, field) > 0:
                    found[loss] = index
        return found

    def introductions(self) -> dict[str, int | None]:
        """First step at which each auxiliary loss has a weight > 0 (None: never).

        Keys are ``"spectrum"`` and ``"precursor"``. For a loss introduced by a
        gated stage this is the planned step (the earliest possible one); its
        gate is in ``introduction_gates``.
        """
        starts = self.stage_starts()
        return {
            loss: None if index is None else starts[index]
            for loss, index in self.introducing_stages().items()
        }

    def fixed_introductions(self) -> dict[str, int | None]:
        """Introductions whose step is known before the run starts.

        Those of stages before the first gated stage (no gate can move them);
        None for a loss never introduced or introduced at or after the first
        gated stage. For an ungated curriculum the same as ``introductions``.
        """
        first_gated = next(
            (i for i, stage in enumerate(self.stages) if stage.start_when is not None),
            len(self.stages),
        )
        planned = self.introductions()
        return {
            loss: planned[loss] if index is not None and index < first_gated else None
            for loss, index in self.introducing_stages().items()
        }

    def introduction_gates(self) -> dict[str, StartWhen | None]:
        """The gate of the stage that introduces each auxiliary loss (None: not gated, or never)."""
        return {
            loss: None if index is None else self.stages[index].start_when
            for loss, index in self.introducing_stages().items()
        }

    def introduction_text(self, loss: str) -> str:
        """When ``loss`` comes on: ``on at 15,000``, ``never``, or its stage's gate.

        A gated introduction reads ``on when residue_accuracy_easy >= 0.55 (at the
        latest 40,000)``.
        """
        gate = self.introduction_gates()[loss]
        if gate is not None:
            return f"on when {gate.describe()}"
        step = self.introductions()[loss]
        return "never" if step is None else f"on at {step:,}"

    @property
    def gated(self) -> bool:
        """True when any stage has a ``start_when`` gate."""
        return any(stage.start_when is not None for stage in self.stages)

    def latest_starts(self) -> list[int]:
        """First step of each stage when every gate opens only at its ``latest_step``.

        With ``stage_starts`` (every gate open at once) it bounds where each
        stage can start; a value at or past ``total_steps`` means the stage
        would not run.
        """
        starts = [0]
        for before, stage in zip(self.stages, self.stages[1:], strict=False):
            earliest = starts[-1] + before.steps
            gate = stage.start_when
            starts.append(earliest if gate is None else max(earliest, gate.latest_step))
        return starts

    def with_real_fraction(self, has_real_data: bool) -> Curriculum:
        """Every stage's ``real_fraction`` resolved: a stage that does not give it trains on
        real spectra only (1) when there is real data, on synthetic ones only (0) otherwise.

        A ``CurriculumError`` when a stage asks for real spectra and there are none.
        """
        stages = []
        for index, stage in enumerate(self.stages):
            if "real_fraction" in stage.model_fields_set:
                if stage.real_fraction > 0 and not has_real_data:
                    raise CurriculumError(
                        f"stages.{index}.real_fraction: stage '{stage.name}' draws "
                        f"{stage.real_fraction:g} of each batch from real spectra, but no "
                        "training data was given; add --train-data FILE.mgf"
                    )
                stages.append(stage)
            elif has_real_data:
                stages.append(stage.model_copy(update={"real_fraction": 1.0}))
            else:
                stages.append(stage)
        return self.model_copy(update={"stages": stages})

    def scaled(self, factor: float) -> Curriculum:
        """The same shape over ``factor`` times the steps (each stage at least 1 step).

        Used to run a 100k-step curriculum in, say, 2k steps (factor 0.02). The
        stage *boundaries* are scaled and rounded, not each stage's length: a
        stage that starts at nominal step ``s`` starts at ``round(s * factor)``
        (later if the stages before it needed their 1 step), so the total and
        every introduction land within half a step of the exact value, and two
        curricula of the same nominal length keep the same scaled length (with
        per-stage rounding, revised's 7,500-step stages made it 505 steps long
        against current's 500 at factor 0.005). The gates' ``latest_step`` is
        scaled the same way; thresholds stay as they are.
        """
        if not (math.isfinite(factor) and factor > 0):
            raise CurriculumError(f"scale factor must be a finite number > 0, got {factor}")
        stages, nominal_end, end = [], 0, 0
        for stage in self.stages:
            nominal_end += stage.steps
            start, end = end, max(end + 1, round(nominal_end * factor))
            if end - start > MAX_STAGE_STEPS:  # model_copy below checks no bound
                raise CurriculumError(f"scale {factor:g} makes stage {stage.name!r} of {self.name} "
                                      f"{float(end - start):.3g} steps long; a stage lasts at most "
                                      f"{MAX_STAGE_STEPS:,}")  # fmt: skip
            stages.append(_scaled_stage(stage, end - start, factor))
        return Curriculum.model_validate({**self.model_dump(), "stages": stages})


def _scaled_stage(stage: Stage, steps: int, factor: float) -> Stage:
    """``stage`` lasting ``steps`` steps, its gate's ``latest_step`` times ``factor`` (>= 1)."""
    update: dict[str, Any] = {"steps": steps}
    if stage.start_when is not None:
        latest = max(1, round(stage.start_when.latest_step * factor))
        update["start_when"] = stage.start_when.model_copy(update={"latest_step": latest})
    return stage.model_copy(update=update)

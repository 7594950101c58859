"""The curriculum schema and the queries the rest of pepcurr asks of it.

A curriculum is a list of stages run one after the other. Each stage says, for
a number of optimizer steps, which peptide lengths the synthetic spectra have,
how much noise they carry, and how strongly the two auxiliary mass-physics
losses (spectrum loss and precursor loss) weigh next to cross-entropy.

Step convention, used everywhere in pepcurr: a step is the 0-based index of an
optimizer update. Stage ``k`` covers the half-open range
``[start_k, start_k + steps_k)``, so the revised curriculum's 15,000-step
foundation stage holds steps 0 to 14,999 and step 15,000 is the first step of
the next stage. The file format is described for users in
``docs/curriculum-format.md``.
"""

from __future__ import annotations

import bisect
import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from curriculum_cli.errors import CurriculumError, validation_problem_lines

SCHEMA_VERSION = 1
"""The only curriculum file version this pepcurr reads and writes."""

MIN_PEPTIDE_LENGTH = 6
"""Shortest peptide (residues) the synthetic generator and the model support."""

MAX_PEPTIDE_LENGTH = 40
"""Longest peptide (residues): bounds the decoder's positions and the padded batch width."""

MAX_STAGE_STEPS = 100_000_000
"""Upper bound on one stage's steps: far beyond any real run, it only catches typos."""

SHORT_STAGE_FRACTION = 0.01
"""A stage shorter than this fraction of the total is flagged as suspicious."""

MAX_PROBLEM_LINES = 5
"""How many schema problems one error message lists before it summarises the rest."""

LOSS_WEIGHT_FIELDS = {"spectrum": "spectrum_loss_weight", "precursor": "precursor_loss_weight"}
"""Auxiliary loss name (as used in introductions and logs) -> stage field holding its weight."""

AUXILIARY_LOSSES = tuple(LOSS_WEIGHT_FIELDS)
"""The auxiliary losses, in the order logs, checkpoints and tables list them."""

NOISE_FIELDS = ("noise_peaks", "peak_dropout", "mass_error_ppm", "intensity_variation")
"""Stage fields that make spectra harder; a curriculum normally only raises them."""

DATA_FIELDS = ("min_length", "max_length", *NOISE_FIELDS)
"""Stage fields that say what spectra the stage trains on (the rest are its steps and weights)."""


class Stage(BaseModel):
    """One block of consecutive training steps with fixed data and loss settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(
        min_length=1,
        max_length=80,
        description="Name shown in tables and logs; unique within a curriculum.",
    )
    steps: int = Field(
        ge=1,
        le=MAX_STAGE_STEPS,
        description="Number of optimizer updates the stage lasts.",
    )
    min_length: int = Field(
        ge=MIN_PEPTIDE_LENGTH,
        le=MAX_PEPTIDE_LENGTH,
        description="Shortest synthetic peptide of the stage, in residues.",
    )
    max_length: int = Field(
        ge=MIN_PEPTIDE_LENGTH,
        le=MAX_PEPTIDE_LENGTH,
        description="Longest synthetic peptide of the stage, in residues (inclusive).",
    )
    noise_peaks: int = Field(
        default=0,
        ge=0,
        le=500,
        description="Random noise peaks added to each spectrum (count).",
    )
    peak_dropout: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Probability that each true fragment peak is removed (fraction, 0-1).",
    )
    mass_error_ppm: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        allow_inf_nan=False,
        description="Standard deviation of the m/z error added to each peak, in ppm.",
    )
    intensity_variation: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Relative spread of peak intensities around their nominal value (0-1).",
    )
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

    @property
    def loss_weights(self) -> dict[str, float]:
        """Auxiliary loss name -> its weight next to cross-entropy in this stage."""
        return {loss: getattr(self, field) for loss, field in LOSS_WEIGHT_FIELDS.items()}

    @model_validator(mode="after")
    def _lengths_in_order(self) -> Stage:
        if self.min_length > self.max_length:
            raise PydanticCustomError(
                "length_order",
                "min_length ({min_length}) is greater than max_length ({max_length}); "
                "make min_length <= max_length",
                {"min_length": self.min_length, "max_length": self.max_length},
            )
        return self


class Curriculum(BaseModel):
    """A named sequence of stages: the unit pepcurr generates, validates, trains and compares."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: int = Field(
        default=SCHEMA_VERSION,
        description=f"Version of this file format; pepcurr reads version {SCHEMA_VERSION}.",
    )
    name: str = Field(min_length=1, max_length=80, description="Short name used in run names.")
    description: str = Field(default="", description="Free text: what the curriculum is for.")
    stages: list[Stage] = Field(description="Stages in the order they are trained.")

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
        return stages

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
        """Index and stage named ``name``, or in force at ``step`` (exactly one of the two)."""
        if (name is None) == (step is None):
            raise CurriculumError("give exactly one of --stage NAME and --step N")
        if step is not None:
            return self.stage_at(step)
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index, stage
        names = ", ".join(stage.name for stage in self.stages)
        raise CurriculumError(f"{self.name} has no stage {name!r}; its stages: {names}")

    def introductions(self) -> dict[str, int | None]:
        """First step at which each auxiliary loss has a weight > 0 (None: never).

        Keys are ``"spectrum"`` and ``"precursor"``.
        """
        found: dict[str, int | None] = {loss: None for loss in LOSS_WEIGHT_FIELDS}
        for start, stage in zip(self.stage_starts(), self.stages, strict=True):
            for loss, field in LOSS_WEIGHT_FIELDS.items():
                if found[loss] is None and getattr(stage, field) > 0:
                    found[loss] = start
        return found

    def scaled(self, factor: float) -> Curriculum:
        """The same shape over ``factor`` times the steps (each stage at least 1 step).

        Used to run a 100k-step curriculum in, say, 2k steps (factor 0.02):
        boundaries and introductions move with the factor, up to rounding.
        """
        if not (math.isfinite(factor) and factor > 0):
            raise CurriculumError(f"scale factor must be a finite number > 0, got {factor}")
        stages = [
            stage.model_copy(update={"steps": max(1, round(stage.steps * factor))})
            for stage in self.stages
        ]
        return Curriculum.model_validate({**self.model_dump(), "stages": stages})


def curriculum_json(curriculum: Curriculum) -> str:
    """The curriculum as a file: JSON indented by 2, ending in a newline."""
    return curriculum.model_dump_json(indent=2) + "\n"


def save_curriculum(curriculum: Curriculum, path: Path, *, overwrite: bool = False) -> None:
    """Write ``curriculum`` to ``path``; refuse to replace an existing file unless told to."""
    if path.is_dir():
        raise CurriculumError(f"{path}: is a directory; give a file name")
    if path.exists() and not overwrite:
        raise CurriculumError(f"{path}: file exists; use --force to overwrite it")
    try:
        path.write_text(curriculum_json(curriculum), encoding="utf-8")
    except OSError as error:
        raise CurriculumError(f"{path}: cannot write: {error.strerror}") from None


def read_curriculum_file(path: Path) -> Curriculum:
    """A curriculum from a JSON file.

    Every failure is a ``CurriculumError`` whose message starts with the file
    name and says, one line per problem, what is wrong and where.
    """
    data = _read_json_object(path)
    try:
        return Curriculum.model_validate(data)
    except ValidationError as error:
        raise CurriculumError(
            "\n".join(validation_problem_lines(error, str(path), MAX_PROBLEM_LINES))
        ) from None


def _read_json_object(path: Path) -> dict[str, Any]:
    """The top-level JSON object of a file, or a one-line ``CurriculumError``."""
    if path.is_dir():
        raise CurriculumError(f"{path}: is a directory, expected a curriculum JSON file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CurriculumError(f"{path}: cannot read: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CurriculumError(f"{path}: not a text file (not UTF-8); expected JSON") from None
    if "\x00" in text:
        raise CurriculumError(f"{path}: binary file (holds NUL bytes); expected JSON")
    if not text.strip():
        raise CurriculumError(f"{path}: file is empty; expected a JSON object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CurriculumError(
            f"{path}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    if not isinstance(data, dict):
        raise CurriculumError(
            f"{path}: the top level is a JSON {_json_kind(data)}; "
            'expected an object like {"name": ..., "stages": [...]}'
        )
    return data


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


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
    return warnings

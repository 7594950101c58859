"""The shipped curricula and the ``phased`` builders that make new A/B arms.

- ``current``: the system's existing 100k-step curriculum, as data (10 stages of
  10,000 steps; spectrum loss from step 10,000, precursor loss from 20,000).
- ``revised``: the seed design document's phased introduction (spectrum loss
  from 15,000, precursor loss from 30,000), built by ``phased(15_000, 30_000)``.
- ``conservative``: the document's "even more conservative" alternative
  (spectrum from 20,000, precursor from 35,000), built by ``phased(20_000, 35_000)``.

The document's hypothesis is about accuracy, not steps: a loss should come on
once the model is accurate enough. Three gated presets test it directly, each
built by ``phased_gated``: ``gated-current`` (spectrum loss at 40% residue
accuracy, precursor at 60%), ``gated-revised`` (55%/70%) and
``gated-conservative`` (60%/75%). They share every stage and data setting;
only the thresholds differ.

The realistic presets ask the same questions on spectra like real ones:
``calibrated-hcd`` is the world ``pepcurr calibrate`` fitted to 125 annotated
MassIVE-KB HCD spectra (shipped as package data, ``worlds/calibrated-hcd.json``: a
one-stage curriculum at full strength); ``realistic-current``, ``realistic-revised``
and ``realistic-conservative`` are the design document's arms in that world, with
their stages, introductions and loss weights unchanged.

``curricula/*.json`` in the repository are these presets written by
``pepcurr generate NAME``; a test keeps them equal.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.curriculum.schema import Curriculum, Stage, StartWhen
from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.stage_data import DATA_FIELDS, MAX_PEPTIDE_LENGTH, MIN_PEPTIDE_LENGTH

if TYPE_CHECKING:
    from curriculum_cli.spectra.calibration import Calibration

PRESET_NAMES = ("current", "revised", "conservative")
"""The step-based presets (``plot-schedule``'s default)."""

GATED_PRESETS = {
    "gated-current": (0.40, 0.60),
    "gated-revised": (0.55, 0.70),
    "gated-conservative": (0.60, 0.75),
}
"""Gated preset -> (spectrum, precursor) introduction thresholds of ``GATE_METRIC``."""

WORLD_PRESETS = {"calibrated-hcd": "calibrated-hcd.json"}
"""Calibrated worlds shipped with pepcurr (``pepcurr calibrate`` output, in ``worlds/``)."""

REALISTIC_PRESETS = {
    "realistic-current": "current",
    "realistic-revised": "revised",
    "realistic-conservative": "conservative",
}
"""Realistic arm -> the arm whose stages it keeps, in the ``REALISTIC_WORLD``."""

REALISTIC_WORLD = "calibrated-hcd"

ALL_PRESET_NAMES = (*PRESET_NAMES, *GATED_PRESETS, *REALISTIC_PRESETS, *WORLD_PRESETS)
"""Every name ``preset`` and ``load_curriculum`` accept."""

_WORLDS_DIR = Path(__file__).parent / "worlds"

SEED_DOCUMENT = "the design document 'Revised Curriculum: Phased Auxiliary Loss Introduction'"

# Columns of the stage tables below: the name, the data fields, then the two loss weights.
_STAGE_COLUMNS = ("name", *DATA_FIELDS, "spectrum_loss_weight", "precursor_loss_weight")

CURRENT_STAGE_STEPS = 10_000

_CURRENT_STAGES = (
    ("stage_1_foundation", 7, 10, 0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ("stage_2_spectrum", 7, 10, 0, 0.0, 0.0, 0.0, 0.05, 0.0),
    ("stage_3_precursor_intro", 7, 11, 1, 0.02, 2.0, 0.0, 0.08, 0.01),
    ("stage_4_light_noise", 7, 12, 2, 0.05, 5.0, 0.0, 0.10, 0.02),
    ("stage_5_mild_noise", 7, 13, 3, 0.08, 7.5, 0.0, 0.12, 0.025),
    ("stage_6_moderate_noise", 7, 14, 5, 0.10, 10.0, 0.0, 0.13, 0.03),
    ("stage_7_moderate_high", 7, 15, 6, 0.12, 12.0, 0.0, 0.14, 0.04),
    ("stage_8_high_noise", 7, 16, 7, 0.13, 13.0, 0.10, 0.14, 0.05),
    ("stage_9_near_realistic", 7, 17, 8, 0.14, 14.0, 0.15, 0.15, 0.06),
    ("stage_10_realistic", 7, 18, 10, 0.15, 15.0, 0.20, 0.15, 0.08),
)

# The seed document's stages as written; noise-dependent fields are taken from
# the current curriculum's stage with the same noise_peaks. Step counts come
# from ``phased``: foundation, 2a/2b, 3a/3b, then the seven last stages.
_PHASED_STAGES = (
    ("stage_1_foundation", 7, 10, 0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ("stage_2a_fragments_intro", 7, 11, 1, 0.02, 2.0, 0.0, 0.08, 0.0),
    ("stage_2b_fragments_ramp", 7, 12, 2, 0.05, 5.0, 0.0, 0.12, 0.0),
    ("stage_3a_precursor_intro", 7, 13, 3, 0.08, 7.5, 0.0, 0.15, 0.01),
    ("stage_3b_precursor_ramp", 7, 14, 5, 0.10, 10.0, 0.0, 0.18, 0.02),
    ("stage_4_moderate_high", 7, 15, 6, 0.12, 12.0, 0.0, 0.19, 0.03),
    ("stage_5_moderate_high_ramp", 7, 15, 6, 0.12, 12.0, 0.0, 0.20, 0.04),
    ("stage_6_high_noise", 7, 16, 7, 0.13, 13.0, 0.10, 0.21, 0.05),
    ("stage_7_high_noise_ramp", 7, 16, 7, 0.13, 13.0, 0.10, 0.22, 0.06),
    ("stage_8_near_realistic", 7, 17, 8, 0.14, 14.0, 0.15, 0.23, 0.065),
    ("stage_9_near_realistic_ramp", 7, 17, 9, 0.145, 14.5, 0.175, 0.24, 0.07),
    ("stage_10_realistic", 7, 18, 10, 0.15, 15.0, 0.20, 0.25, 0.08),
)

PRECURSOR_RAMP_STEPS = 7_500
"""Steps of each of stages 3a and 3b in ``phased`` (as in the seed document)."""

LAST_STAGE_COUNT = 7
LAST_STAGE_QUANTUM = 500
"""The first six of the seven last stages get a multiple of this many steps."""


def _stages(rows: tuple[tuple, ...], steps: list[int]) -> list[Stage]:
    return [
        Stage(steps=stage_steps, **dict(zip(_STAGE_COLUMNS, row, strict=True)))
        for row, stage_steps in zip(rows, steps, strict=True)
    ]


def phased(
    spectrum_at: int, precursor_at: int, total: int = 100_000, name: str | None = None
) -> Curriculum:
    """The seed's phased curriculum with the two losses switched on at chosen steps.

    Rule (so that one command makes a new A/B arm): the foundation stage covers
    ``[0, spectrum_at)``; stages 2a and 2b split ``[spectrum_at, precursor_at)``
    in half (2b takes the odd step); 3a and 3b take 7,500 steps each; the
    remaining ``R = total - precursor_at - 15,000`` steps go to the seven last
    stages, the first six getting ``floor(R / 7 / 500) * 500`` each and the last
    the rest. All other values are those of the revised curriculum.
    """
    if spectrum_at < 1:
        raise CurriculumError(
            f"spectrum_at must be >= 1 (the foundation stage needs steps), got {spectrum_at}"
        )
    if precursor_at - spectrum_at < 2:
        raise CurriculumError(
            f"precursor_at ({precursor_at}) must be at least 2 steps after spectrum_at "
            f"({spectrum_at}): stages 2a and 2b lie between them"
        )
    smallest_total = precursor_at + 2 * PRECURSOR_RAMP_STEPS + LAST_STAGE_COUNT * LAST_STAGE_QUANTUM
    if total < smallest_total:
        raise CurriculumError(
            f"total ({total}) is too small: after precursor_at ({precursor_at}) come "
            f"{2 * PRECURSOR_RAMP_STEPS:,} steps of stages 3a/3b and at least "
            f"{LAST_STAGE_COUNT * LAST_STAGE_QUANTUM:,} for the seven last stages; "
            f"use total >= {smallest_total}"
        )
    fragment_steps = precursor_at - spectrum_at
    remaining = total - precursor_at - 2 * PRECURSOR_RAMP_STEPS
    last_each = remaining // LAST_STAGE_COUNT // LAST_STAGE_QUANTUM * LAST_STAGE_QUANTUM
    steps = [
        spectrum_at,
        fragment_steps // 2,
        fragment_steps - fragment_steps // 2,
        PRECURSOR_RAMP_STEPS,
        PRECURSOR_RAMP_STEPS,
        *[last_each] * (LAST_STAGE_COUNT - 1),
        remaining - (LAST_STAGE_COUNT - 1) * last_each,
    ]
    return Curriculum(
        name=name or f"phased_s{spectrum_at}_p{precursor_at}",
        description=(
            f"Phased introduction (pepcurr generate phased): spectrum loss from step "
            f"{spectrum_at:,}, precursor loss from step {precursor_at:,}, {total:,} steps in "
            f"total; stage values as in the revised curriculum of {SEED_DOCUMENT}."
        ),
        stages=_stages(_PHASED_STAGES, steps),
    )


# The gated arms: one data setting throughout (current's stage_4_light_noise), so that
# the data a model sees never depends on when a gate opens.
GATED_DATA = dict(min_length=7, max_length=12, noise_peaks=2, peak_dropout=0.05,
                  mass_error_ppm=5.0, intensity_variation=0.0)  # fmt: skip
GATE_METRIC = "residue_accuracy_easy"
"""What the gated arms' gates read: teacher-forced accuracy over residues (no ``<eos>``)."""

# (name, steps, spectrum weight, precursor weight) of the gated arms' stages; the last
# stage takes the rest of the total. Stages 2 and 3 are gated.
_GATED_STAGES = (
    ("stage_1_foundation", 1_000, 0.0, 0.0),
    ("stage_2_spectrum_intro", 5_000, 0.10, 0.0),
    ("stage_3_precursor_intro", 10_000, 0.15, 0.02),
    ("stage_4_full", None, 0.20, 0.05),
)
GATED_LATEST = (40_000, 60_000)
"""Default ``latest_step`` of the spectrum and the precursor gate (of a 100,000-step run)."""


def phased_gated(
    spectrum_at_accuracy: float,
    precursor_at_accuracy: float,
    spectrum_latest: int = GATED_LATEST[0],
    precursor_latest: int = GATED_LATEST[1],
    total: int = 100_000,
    name: str | None = None,
) -> Curriculum:
    """An arm whose losses come on when accuracy reaches a threshold, not at a fixed step.

    Rule: one data setting throughout (``GATED_DATA``: lengths 7-12, 2 noise
    peaks, 5% dropout, 5 ppm); ``stage_1_foundation`` trains CE alone for at
    least 1,000 steps; ``stage_2_spectrum_intro`` (spectrum weight 0.1) starts
    at the first validation with ``residue_accuracy_easy >= spectrum_at_accuracy``,
    at the latest at ``spectrum_latest``, and lasts at least 5,000 steps;
    ``stage_3_precursor_intro`` (0.15 / 0.02) starts likewise on
    ``precursor_at_accuracy`` and ``precursor_latest`` and lasts 10,000 steps;
    ``stage_4_full`` (0.2 / 0.05) runs to the end of the ``total`` steps.
    """
    for label, value in (("spectrum", spectrum_at_accuracy), ("precursor", precursor_at_accuracy)):
        if not 0.0 <= value <= 1.0:
            raise CurriculumError(
                f"--{label}-at-accuracy must be a fraction from 0 to 1 (0.55 = 55%), got {value}"
            )
    fixed = sum(steps for _, steps, _, _ in _GATED_STAGES[:-1])
    if total <= fixed:
        raise CurriculumError(
            f"total ({total}) is too small: the first three gated stages take {fixed:,} steps; "
            f"use total > {fixed}"
        )
    for label, latest in (("spectrum", spectrum_latest), ("precursor", precursor_latest)):
        if not 1 <= latest < total:
            raise CurriculumError(
                f"--latest-{label} ({latest}) must be from 1 to below the total ({total}), "
                f"or the {label} loss might never come on"
            )
    gates = {
        "stage_2_spectrum_intro": (spectrum_at_accuracy, spectrum_latest),
        "stage_3_precursor_intro": (precursor_at_accuracy, precursor_latest),
    }
    stages = []
    for stage_name, steps, spectrum, precursor in _GATED_STAGES:
        gate = gates.get(stage_name)
        stages.append(
            Stage(
                name=stage_name,
                steps=total - fixed if steps is None else steps,
                start_when=None
                if gate is None
                else StartWhen(metric=GATE_METRIC, at_least=gate[0], latest_step=gate[1]),
                spectrum_loss_weight=spectrum,
                precursor_loss_weight=precursor,
                **GATED_DATA,
            )
        )
    return Curriculum(
        name=name or f"gated_s{spectrum_at_accuracy:g}_p{precursor_at_accuracy:g}",
        description=(
            f"Gated introduction (pepcurr generate phased --spectrum-at-accuracy): spectrum "
            f"loss once {GATE_METRIC} >= {spectrum_at_accuracy:g} (at the latest at step "
            f"{spectrum_latest:,}), precursor loss once it is >= {precursor_at_accuracy:g} "
            f"(at the latest {precursor_latest:,}); {total:,} steps, one data setting throughout "
            "so that when the gates open changes nothing but the losses."
        ),
        stages=stages,
    )


_GATED_HYPOTHESES = {
    "gated-current": "the accuracies at which the existing curriculum switches the losses on",
    "gated-revised": "the thresholds the document proposes",
    "gated-conservative": "the document's 'even more conservative' thresholds",
}


def _gated_preset(name: str) -> Curriculum:
    spectrum_at, precursor_at = GATED_PRESETS[name]
    return phased_gated(spectrum_at, precursor_at, name=name).model_copy(
        update={
            "description": (
                f"The hypothesis of {SEED_DOCUMENT} (switch a loss on once accuracy is high "
                f"enough) as gates, with {_GATED_HYPOTHESES[name]}: spectrum loss once "
                f"{GATE_METRIC} reaches {spectrum_at:.0%} (at the latest at step "
                f"{GATED_LATEST[0]:,}), precursor loss once it reaches {precursor_at:.0%} (at "
                f"the latest {GATED_LATEST[1]:,}); 100,000 steps. Every stage trains on the "
                "same data (current's stage_4_light_noise: lengths 7-12, 2 noise peaks, 5% "
                "dropout, 5 ppm), so that the data never depends on when a gate opens and the "
                "three gated presets differ only in their thresholds."
            )
        }
    )


def preset(name: str) -> Curriculum:
    """One of the shipped curricula by name (see ``ALL_PRESET_NAMES``)."""
    if name in GATED_PRESETS:
        return _gated_preset(name)
    if name in WORLD_PRESETS:
        return _world_preset(name)
    if name in REALISTIC_PRESETS:
        return _realistic_preset(name)
    if name == "current":
        return Curriculum(
            name="current",
            description=(
                "The system's existing curriculum, the baseline of "
                f"{SEED_DOCUMENT}: 10 stages of 10,000 steps, spectrum loss from step "
                "10,000 (about 40% accuracy), precursor loss from step 20,000."
            ),
            stages=_stages(_CURRENT_STAGES, [CURRENT_STAGE_STEPS] * len(_CURRENT_STAGES)),
        )
    if name == "revised":
        return phased(15_000, 30_000, name="revised").model_copy(
            update={
                "description": (
                    f"The revised curriculum proposed in {SEED_DOCUMENT}: a 15,000-step "
                    "cross-entropy foundation, spectrum loss from step 15,000, precursor "
                    "loss from step 30,000, full multi-task stages from 45,000; 100,000 steps."
                )
            }
        )
    if name == "conservative":
        return phased(20_000, 35_000, name="conservative").model_copy(
            update={
                "description": (
                    f"The 'even more conservative' alternative of {SEED_DOCUMENT}: "
                    "the revised shape with a 20,000-step foundation, spectrum loss from "
                    "step 20,000, precursor loss from step 35,000; 100,000 steps."
                )
            }
        )
    raise CurriculumError(
        f"unknown preset {name!r}; the presets are: {', '.join(ALL_PRESET_NAMES)}"
    )


@functools.lru_cache(maxsize=4)
def _world_preset(name: str) -> Curriculum:
    """A world shipped as package data: the curriculum file ``pepcurr calibrate`` wrote."""
    path = _WORLDS_DIR / WORLD_PRESETS[name]
    return Curriculum.model_validate(json.loads(path.read_text(encoding="utf-8")))


def _realistic_preset(name: str) -> Curriculum:
    arm = preset(REALISTIC_PRESETS[name])
    world = preset(REALISTIC_WORLD).world
    last = arm.stages[-1].name
    description = (
        f"The {arm.name} arm of {SEED_DOCUMENT} on spectra like real ones: its stages, "
        f"introductions and loss weights unchanged, in the {REALISTIC_WORLD} world (pepcurr "
        f"calibrate on {world.source.n_spectra} annotated MassIVE-KB HCD spectra). Each "
        "stage's noise fields scale the world's physics relative to its reference, so "
        f"{last} has the spectra as calibrated."
    )
    data = {**arm.model_dump(), "name": name, "description": description,
            "world": world.model_dump()}  # fmt: skip
    return Curriculum.model_validate(data)


def calibrated_curriculum(calibration: Calibration, name: str) -> Curriculum:
    """What ``pepcurr calibrate`` writes: a one-stage curriculum of the calibration's world at
    full strength: the stage's noise fields are the world's reference values, its lengths the
    spectra's (within pepcurr's 6-40)."""
    world = calibration.world
    shortest, longest = world.lengths
    reference = world.reference
    files = ", ".join(world.source.files)
    stage = {
        "name": "calibrated", "steps": 100_000,
        "min_length": min(max(shortest, MIN_PEPTIDE_LENGTH), MAX_PEPTIDE_LENGTH),
        "max_length": min(max(longest, MIN_PEPTIDE_LENGTH), MAX_PEPTIDE_LENGTH),
        **reference.model_dump(),
    }  # fmt: skip
    return Curriculum.model_validate({
        "name": name,
        "description": f"Spectra like the {world.source.n_spectra} annotated spectra of "
        f"{files} (pepcurr calibrate), at full strength: one stage, no auxiliary loss.",
        "world": world.model_dump(),
        "stages": [stage],
    })  # fmt: skip


def from_options(
    name: str | None,
    spectrum_at: int | None = None,
    precursor_at: int | None = None,
    total: int | None = None,
    *,
    spectrum_at_accuracy: float | None = None,
    precursor_at_accuracy: float | None = None,
    latest_spectrum: int | None = None,
    latest_precursor: int | None = None,
) -> Curriculum:
    """The curriculum ``pepcurr generate`` asks for: a preset, or ``phased`` with its steps.

    ``phased`` with ``--spectrum-at/--precursor-at`` gives ``phased``; with
    ``--spectrum-at-accuracy/--precursor-at-accuracy`` (and optionally
    ``--latest-spectrum/--latest-precursor``) it gives ``phased_gated``.
    ``total`` defaults to 100,000; presets have fixed steps.
    """
    steps_given = spectrum_at is not None or precursor_at is not None
    accuracy_given = spectrum_at_accuracy is not None or precursor_at_accuracy is not None
    latest_given = latest_spectrum is not None or latest_precursor is not None
    if name == "phased":
        total = 100_000 if total is None else total
        if accuracy_given or latest_given:
            if steps_given:
                raise CurriculumError(
                    "give either --spectrum-at/--precursor-at (steps) or "
                    "--spectrum-at-accuracy/--precursor-at-accuracy (gates), not both"
                )
            if spectrum_at_accuracy is None or precursor_at_accuracy is None:
                raise CurriculumError(
                    "a gated phased arm needs both --spectrum-at-accuracy and "
                    "--precursor-at-accuracy"
                )
            return phased_gated(
                spectrum_at_accuracy,
                precursor_at_accuracy,
                GATED_LATEST[0] if latest_spectrum is None else latest_spectrum,
                GATED_LATEST[1] if latest_precursor is None else latest_precursor,
                total,
            )
        if spectrum_at is None or precursor_at is None:
            raise CurriculumError(
                "phased needs both --spectrum-at and --precursor-at "
                "(or both --spectrum-at-accuracy and --precursor-at-accuracy)"
            )
        return phased(spectrum_at, precursor_at, total)
    if steps_given or accuracy_given or latest_given or total is not None:
        raise CurriculumError(
            "--spectrum-at, --precursor-at, --spectrum-at-accuracy, --precursor-at-accuracy, "
            "--latest-spectrum, --latest-precursor and --total only apply to 'phased'; "
            "use 'pepcurr generate phased ...' for other step counts"
        )
    if name is None:
        raise CurriculumError(
            f"name a curriculum to generate: one of {', '.join(ALL_PRESET_NAMES)}, or phased"
        )
    return preset(name)

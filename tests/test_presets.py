"""The shipped curricula: the issue's tables, the JSON files, and the ``phased`` rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from curriculum_cli.curriculum.checks import curriculum_warnings
from curriculum_cli.curriculum.files import curriculum_json, load_curriculum
from curriculum_cli.curriculum.presets import (
    ALL_PRESET_NAMES,
    GATED_PRESETS,
    PRESET_NAMES,
    WORLD_PRESETS,
    from_options,
    phased,
    phased_gated,
    preset,
)
from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.stage_data import DATA_FIELDS

CURRICULA_DIR = Path(__file__).parents[1] / "curricula"


@pytest.mark.parametrize("name", ALL_PRESET_NAMES)
def test_repository_json_equals_the_preset(name):
    path = CURRICULA_DIR / f"{name}.json"
    assert load_curriculum(path) == preset(name)
    assert path.read_text() == curriculum_json(preset(name))
    assert preset(name).name == name
    if name not in WORLD_PRESETS:
        assert "design document" in preset(name).description


@pytest.mark.parametrize(
    ("name", "spectrum_at", "precursor_at"),
    [("current", 10_000, 20_000), ("revised", 15_000, 30_000), ("conservative", 20_000, 35_000)],
)
def test_preset_introductions_and_totals(name, spectrum_at, precursor_at):
    curriculum = preset(name)
    assert curriculum.total_steps == 100_000
    assert curriculum.introductions() == {"spectrum": spectrum_at, "precursor": precursor_at}


def test_current_is_ten_stages_of_ten_thousand_steps():
    current = preset("current")
    assert [stage.steps for stage in current.stages] == [10_000] * 10
    last = current.stages[-1]
    assert (last.name, last.min_length, last.max_length, last.noise_peaks) == (
        "stage_10_realistic",
        7,
        18,
        10,
    )
    assert (last.peak_dropout, last.mass_error_ppm, last.intensity_variation) == (0.15, 15.0, 0.2)
    assert (last.spectrum_loss_weight, last.precursor_loss_weight) == (0.15, 0.08)


def test_revised_keeps_the_seed_names_and_step_counts():
    revised = preset("revised")
    assert [stage.name for stage in revised.stages[:5]] == [
        "stage_1_foundation",
        "stage_2a_fragments_intro",
        "stage_2b_fragments_ramp",
        "stage_3a_precursor_intro",
        "stage_3b_precursor_ramp",
    ]
    assert [stage.steps for stage in revised.stages] == [15_000] + [7_500] * 10 + [10_000]
    assert [stage.spectrum_loss_weight for stage in revised.stages] == [
        0.0, 0.08, 0.12, 0.15, 0.18, 0.19, 0.20, 0.21, 0.22, 0.23, 0.24, 0.25
    ]  # fmt: skip
    assert [stage.precursor_loss_weight for stage in revised.stages] == [
        0.0, 0.0, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.065, 0.07, 0.08
    ]  # fmt: skip


def test_conservative_spreads_the_last_stages_over_50k_to_100k():
    conservative = preset("conservative")
    steps = [stage.steps for stage in conservative.stages]
    assert steps == [20_000, 7_500, 7_500, 7_500, 7_500] + [7_000] * 6 + [8_000]
    assert conservative.stage_starts()[5] == 50_000


def test_phased_reproduces_revised():
    assert phased(15_000, 30_000).stages == preset("revised").stages


def test_phased_reproduces_conservative():
    assert phased(20_000, 35_000).stages == preset("conservative").stages


def test_phased_rule_for_an_odd_split_and_a_short_total():
    curriculum = phased(10_001, 20_000, total=50_000)
    steps = [stage.steps for stage in curriculum.stages]
    assert steps[:5] == [10_001, 4_999, 5_000, 7_500, 7_500]
    # R = 50,000 - 20,000 - 15,000 = 15,000; floor(15,000 / 7 / 500) * 500 = 2,000.
    assert steps[5:] == [2_000] * 6 + [3_000]
    assert curriculum.total_steps == 50_000
    assert curriculum.introductions() == {"spectrum": 10_001, "precursor": 20_000}
    assert curriculum.name == "phased_s10001_p20000"


@pytest.mark.parametrize(
    ("spectrum_at", "precursor_at", "total", "message"),
    [
        (0, 30_000, 100_000, "spectrum_at must be >= 1"),
        (30_000, 30_000, 100_000, "must be at least 2 steps after spectrum_at"),
        (30_000, 20_000, 100_000, "must be at least 2 steps after spectrum_at"),
        (15_000, 30_000, 48_499, r"total \(48499\) is too small.*use total >= 48500"),
    ],
)
def test_phased_refuses_impossible_parameters(spectrum_at, precursor_at, total, message):
    with pytest.raises(CurriculumError, match=message):
        phased(spectrum_at, precursor_at, total)


def test_phased_smallest_total_is_accepted():
    assert phased(15_000, 30_000, total=48_500).total_steps == 48_500


def test_unknown_preset_lists_the_names():
    with pytest.raises(CurriculumError, match="current, revised, conservative"):
        preset("aggressive")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((None,), "name a curriculum"),
        (("phased", 15_000), "needs both --spectrum-at and --precursor-at"),
        (("revised", 15_000, 30_000), "only apply to 'phased'"),
        (("revised", None, None, 50_000), "only apply to 'phased'"),
    ],
)
def test_generate_options_that_do_not_fit_together(arguments, message):
    with pytest.raises(CurriculumError, match=message):
        from_options(*arguments)


# ----------------------------------------------------------------------------
# Gated arms: the design document's hypotheses as accuracy thresholds
# ----------------------------------------------------------------------------


def test_the_repository_holds_every_preset_and_nothing_else():
    assert sorted(path.stem for path in CURRICULA_DIR.glob("*.json")) == sorted(ALL_PRESET_NAMES)
    assert PRESET_NAMES == ("current", "revised", "conservative")


@pytest.mark.parametrize(
    ("name", "spectrum_at", "precursor_at"),
    [
        ("gated-current", 0.40, 0.60),
        ("gated-revised", 0.55, 0.70),
        ("gated-conservative", 0.60, 0.75),
    ],
)
def test_gated_presets_thresholds(name, spectrum_at, precursor_at):
    gates = preset(name).introduction_gates()
    assert (gates["spectrum"].metric, gates["spectrum"].at_least) == (
        "residue_accuracy_easy",
        spectrum_at,
    )
    assert (gates["precursor"].metric, gates["precursor"].at_least) == (
        "residue_accuracy_easy",
        precursor_at,
    )
    assert (gates["spectrum"].latest_step, gates["precursor"].latest_step) == (40_000, 60_000)
    assert GATED_PRESETS[name] == (spectrum_at, precursor_at)


def _without_thresholds(name: str) -> list[dict]:
    stages = preset(name).model_dump()["stages"]
    for stage in stages:
        if "start_when" in stage:
            stage["start_when"].pop("at_least")
    return stages


def test_gated_presets_differ_only_in_their_thresholds():
    first, *others = GATED_PRESETS
    for name in others:
        assert _without_thresholds(name) == _without_thresholds(first), name


def test_gated_presets_use_one_data_setting_throughout():
    for name in GATED_PRESETS:
        curriculum = preset(name)
        settings = {tuple(getattr(stage, f) for f in DATA_FIELDS) for stage in curriculum.stages}
        # the current curriculum's stage_4_light_noise
        light_noise = preset("current").stages[3]
        assert settings == {tuple(getattr(light_noise, f) for f in DATA_FIELDS)}


def test_gated_preset_shape():
    curriculum = preset("gated-revised")
    assert curriculum.total_steps == 100_000
    assert [stage.steps for stage in curriculum.stages] == [1_000, 5_000, 10_000, 84_000]
    assert [stage.start_when is not None for stage in curriculum.stages] == [
        False, True, True, False
    ]  # fmt: skip
    assert [(s.spectrum_loss_weight, s.precursor_loss_weight) for s in curriculum.stages] == [
        (0.0, 0.0), (0.1, 0.0), (0.15, 0.02), (0.2, 0.05)
    ]  # fmt: skip
    # planned (earliest) and latest introductions; the last stage keeps >= 30,000 steps
    assert curriculum.introductions() == {"spectrum": 1_000, "precursor": 6_000}
    assert curriculum.latest_starts() == [0, 40_000, 60_000, 70_000]
    assert curriculum_warnings(curriculum) == []


def test_generate_phased_gated_reproduces_the_gated_presets():
    for name, (spectrum_at, precursor_at) in GATED_PRESETS.items():
        arm = from_options(
            "phased", spectrum_at_accuracy=spectrum_at, precursor_at_accuracy=precursor_at
        )
        assert arm.stages == preset(name).stages
        assert arm.name == f"gated_s{spectrum_at:g}_p{precursor_at:g}"


def test_phased_gated_latest_steps_and_total():
    arm = from_options(
        "phased",
        total=50_000,
        spectrum_at_accuracy=0.5,
        precursor_at_accuracy=0.6,
        latest_spectrum=20_000,
        latest_precursor=30_000,
    )
    assert arm.total_steps == 50_000 and arm.stages[-1].steps == 34_000
    gates = arm.introduction_gates()
    assert (gates["spectrum"].latest_step, gates["precursor"].latest_step) == (20_000, 30_000)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"spectrum_at_accuracy": 0.5}, "needs both --spectrum-at-accuracy and"),
        ({"spectrum_at_accuracy": 0.5, "precursor_at_accuracy": 0.6, "spectrum_at": 10},
         "either --spectrum-at/--precursor-at"),
        ({"latest_spectrum": 10_000}, "needs both --spectrum-at-accuracy and"),
        ({"spectrum_at_accuracy": 55, "precursor_at_accuracy": 0.7},
         r"--spectrum-at-accuracy must be a fraction from 0 to 1 \(0.55 = 55%\), got 55"),
        ({"spectrum_at_accuracy": 0.5, "precursor_at_accuracy": 0.6, "latest_precursor": 100_000},
         r"--latest-precursor \(100000\) must be from 1 to below the total"),
        ({"spectrum_at_accuracy": 0.5, "precursor_at_accuracy": 0.6, "total": 16_000},
         r"total \(16000\) is too small"),
    ],
)  # fmt: skip
def test_phased_gated_refuses_options_that_do_not_fit(arguments, message):
    with pytest.raises(CurriculumError, match=message):
        from_options("phased", **arguments)


def test_gate_options_only_apply_to_phased():
    with pytest.raises(CurriculumError, match="only apply to 'phased'"):
        from_options("revised", spectrum_at_accuracy=0.5)
    with pytest.raises(CurriculumError, match="fraction from 0 to 1"):
        phased_gated(0.5, -0.1)

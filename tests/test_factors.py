"""Sweep factors (``curriculum/factors.py``): arms that differ from their base only in the
loss schedule, by the onset rule and the weight multiplier."""

from __future__ import annotations

import pytest

from curriculum_cli.curriculum.factors import (
    NEVER,
    Factor,
    base_level,
    parse_control,
    parse_vary,
    sweep_arms,
    with_levels,
)
from curriculum_cli.curriculum.files import load_curriculum
from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.stage_data import DATA_FIELDS

BASE = "realistic-current"


def _weight_at(curriculum, loss: str, step: int) -> float:
    return curriculum.stage_at(step)[1].loss_weights[loss]


def _data_at(curriculum, step: int) -> dict:
    stage = curriculum.stage_at(step)[1]
    return {field: getattr(stage, field) for field in DATA_FIELDS}


@pytest.fixture(scope="module")
def base():
    return load_curriculum(BASE)


def test_parse_vary_reads_steps_never_and_multipliers():
    assert parse_vary("spectrum_start=0,10_000,never").levels == (0, 10_000, NEVER)
    assert parse_vary("precursor_weight=0.5,1,2").levels == (0.5, 1.0, 2.0)
    assert parse_vary(" spectrum_start = 5000").factor is Factor.spectrum_start


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("spectrum_start", "FACTOR=LEVEL"),
        ("spectrum_begin=0", "unknown factor 'spectrum_begin'"),
        ("spectrum_start=ten", "'ten' is not a step"),
        ("spectrum_start=-5", "negative"),
        ("spectrum_start=0,0", "listed twice"),
        ("spectrum_weight=nan", "must be a number >= 0"),
        ("spectrum_weight=x", "not a number"),
    ],
)
def test_parse_vary_names_what_is_wrong(text, says):
    with pytest.raises(CurriculumError, match=says):
        parse_vary(text)


@pytest.mark.parametrize("start", [0, 5_000, 15_000, 20_000, 30_000])
def test_a_start_level_follows_the_onset_rule_and_keeps_the_data(base, start):
    arm = with_levels(base, {Factor.spectrum_start: start}, "arm")
    onset = base.introductions()["spectrum"]  # 10,000 in realistic-current
    first = _weight_at(base, "spectrum", onset)
    assert arm.total_steps == base.total_steps
    assert arm.world == base.world
    assert arm.introductions()["spectrum"] == start
    assert arm.introductions()["precursor"] == base.introductions()["precursor"]
    for step in range(0, base.total_steps, 500):
        assert _data_at(arm, step) == _data_at(base, step)
        assert _weight_at(arm, "precursor", step) == _weight_at(base, "precursor", step)
        if step < start:
            expected = 0.0
        elif step < onset:
            expected = first  # the base's first weight, extended back to the new start
        else:
            expected = _weight_at(base, "spectrum", step)
        assert _weight_at(arm, "spectrum", step) == expected, step


def test_the_base_level_is_the_base_itself(base):
    level = base_level(base, Factor.spectrum_start)
    assert level == 10_000
    arm = with_levels(base, {Factor.spectrum_start: level}, "same")
    assert arm.stages == base.stages


def test_never_and_a_zero_multiplier_switch_the_loss_off(base):
    never = with_levels(base, {Factor.precursor_start: NEVER}, "never")
    zero = with_levels(base, {Factor.precursor_weight: 0.0}, "zero")
    for arm in (never, zero):
        assert arm.introductions()["precursor"] is None
        assert arm.introductions()["spectrum"] == base.introductions()["spectrum"]


def test_a_multiplier_scales_every_weight_of_its_loss(base):
    arm = with_levels(base, {Factor.spectrum_weight: 2.0}, "double")
    for stage, before in zip(arm.stages, base.stages, strict=True):
        assert stage.spectrum_loss_weight == 2.0 * before.spectrum_loss_weight
        assert stage.precursor_loss_weight == before.precursor_loss_weight


def test_a_start_inside_a_stage_splits_it_with_the_same_data(base):
    arm = with_levels(base, {Factor.spectrum_start: 15_000}, "split")
    assert len(arm.stages) == len(base.stages) + 1
    head, tail = arm.stages[1], arm.stages[2]
    assert (head.steps, tail.steps) == (5_000, 5_000)
    assert tail.name == f"{head.name}.from-15000"
    assert head.model_dump(exclude={"steps", "name", "spectrum_loss_weight"}) == tail.model_dump(
        exclude={"steps", "name", "spectrum_loss_weight"}
    )


@pytest.mark.parametrize("scale", [0.0025, 0.005, 0.01])
def test_arms_of_one_sweep_keep_one_length_at_every_scale(base, scale):
    varied = [parse_vary("spectrum_start=0,5000,15000,20000,30000,never")]
    arms = sweep_arms(base, varied)
    lengths = {arm.curriculum.scaled(scale).total_steps for arm in arms}
    assert lengths == {base.scaled(scale).total_steps}


def test_sweep_arms_put_the_control_first_and_add_the_base_level():
    base = load_curriculum(BASE)
    arms = sweep_arms(base, [parse_vary("spectrum_start=0,never")])
    assert [arm.name for arm in arms] == [
        f"{BASE}.spectrum_start=10000",
        f"{BASE}.spectrum_start=0",
        f"{BASE}.spectrum_start=never",
    ]
    assert [arm.control for arm in arms] == [True, False, False]


def test_a_full_factorial_and_a_chosen_control():
    base = load_curriculum(BASE)
    varied = [parse_vary("spectrum_start=10000,never"), parse_vary("precursor_start=0,20000")]
    control = parse_control(["spectrum_start=never", "precursor_start=0"], varied)
    arms = sweep_arms(base, varied, control)
    assert len(arms) == 4
    assert arms[0].levels == {Factor.spectrum_start: NEVER, Factor.precursor_start: 0}
    assert arms[0].curriculum.introductions() == {"spectrum": None, "precursor": 0}


@pytest.mark.parametrize(
    ("varied", "says"),
    [
        (["spectrum_start=100000"], "never comes on"),
        (["spectrum_weight=100"], "above the bound 10"),
    ],
)
def test_levels_the_schema_refuses_are_named(varied, says):
    base = load_curriculum(BASE)
    with pytest.raises(CurriculumError, match=says):
        sweep_arms(base, [parse_vary(text) for text in varied])


def test_a_gated_base_or_a_loss_never_on_is_refused():
    with pytest.raises(CurriculumError, match="gated curriculum"):
        sweep_arms(load_curriculum("gated-revised"), [parse_vary("spectrum_start=0")])
    never = with_levels(load_curriculum(BASE), {Factor.spectrum_start: NEVER}, "off")
    with pytest.raises(CurriculumError, match="never switches the spectrum loss on"):
        sweep_arms(never, [parse_vary("spectrum_start=0")])


def test_control_levels_must_be_varied_levels():
    varied = [parse_vary("spectrum_start=0,never")]
    with pytest.raises(CurriculumError, match="not one of the levels"):
        parse_control(["spectrum_start=5000"], varied)
    with pytest.raises(CurriculumError, match="is not varied"):
        parse_control(["precursor_start=0"], varied)

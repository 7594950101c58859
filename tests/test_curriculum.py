"""The curriculum schema, its queries, loading from files, and warnings."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from curriculum_cli.curriculum.checks import check_curriculum, curriculum_warnings
from curriculum_cli.curriculum.files import curriculum_json, load_curriculum, save_curriculum
from curriculum_cli.curriculum.presets import PRESET_NAMES, preset
from curriculum_cli.curriculum.schedule import StageSchedule, gate_metric_values
from curriculum_cli.curriculum.schema import GATE_METRICS, Curriculum, Stage, StartWhen
from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.stage_data import MAX_PEPTIDE_LENGTH, MIN_PEPTIDE_LENGTH


def test_noise_fields_and_weights_default_to_zero():
    stage = Stage(name="plain", steps=10, min_length=7, max_length=9)
    assert stage.noise_peaks == 0
    assert stage.peak_dropout == stage.mass_error_ppm == stage.intensity_variation == 0.0
    assert stage.spectrum_loss_weight == stage.precursor_loss_weight == 0.0


def test_every_field_has_a_description():
    for model in (Stage, Curriculum):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_models_are_frozen():
    curriculum = preset("revised")
    with pytest.raises(ValidationError):
        curriculum.name = "other"


def test_length_bounds_are_the_documented_constants():
    assert (MIN_PEPTIDE_LENGTH, MAX_PEPTIDE_LENGTH) == (6, 40)
    Stage(name="widest", steps=1, min_length=6, max_length=40)
    with pytest.raises(ValidationError, match="greater than or equal to 6"):
        Stage(name="short", steps=1, min_length=5, max_length=10)


def test_min_length_above_max_length_names_both_fields():
    with pytest.raises(ValidationError) as caught:
        Stage(name="backwards", steps=1, min_length=12, max_length=10)
    assert "min_length (12) is greater than max_length (10)" in str(caught.value)


def test_queries_of_the_revised_curriculum():
    revised = preset("revised")
    assert revised.total_steps == 100_000
    assert revised.max_length == 18
    assert revised.stage_starts()[:5] == [0, 15_000, 22_500, 30_000, 37_500]
    assert revised.introductions() == {"spectrum": 15_000, "precursor": 30_000}


@pytest.mark.parametrize(
    ("step", "index", "name"),
    [
        (0, 0, "stage_1_foundation"),
        (14_999, 0, "stage_1_foundation"),
        (15_000, 1, "stage_2a_fragments_intro"),
        (29_999, 2, "stage_2b_fragments_ramp"),
        (30_000, 3, "stage_3a_precursor_intro"),
        (99_999, 11, "stage_10_realistic"),
        (100_000, 11, "stage_10_realistic"),
        (10**9, 11, "stage_10_realistic"),
    ],
)
def test_stage_at_boundaries(step, index, name):
    found_index, stage = preset("revised").stage_at(step)
    assert (found_index, stage.name) == (index, name)


def test_stage_at_refuses_a_negative_step():
    with pytest.raises(ValueError, match="step must be >= 0"):
        preset("revised").stage_at(-1)


def test_introductions_are_none_for_a_loss_never_switched_on():
    curriculum = Curriculum(
        name="ce_only", stages=[Stage(name="only", steps=5, min_length=7, max_length=9)]
    )
    assert curriculum.introductions() == {"spectrum": None, "precursor": None}


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("factor", [0.02, 0.1, 0.5, 3.0])
def test_scaling_keeps_the_shape(name, factor):
    curriculum = preset(name)
    scaled = curriculum.scaled(factor)
    assert scaled.name == curriculum.name
    assert len(scaled.stages) == len(curriculum.stages)
    # Boundaries are scaled, not lengths: the total and each introduction round by at most half
    # a step, and curricula of the same nominal length keep the same scaled length.
    assert abs(scaled.total_steps - curriculum.total_steps * factor) <= 0.5
    for loss, step in curriculum.introductions().items():
        assert abs(scaled.introductions()[loss] - step * factor) <= 0.5


def test_arms_of_the_same_nominal_length_stay_the_same_length_when_scaled():
    lengths = {preset(name).scaled(0.005).total_steps for name in PRESET_NAMES}
    assert lengths == {500}
    assert preset("revised").scaled(0.005).introductions() == {"spectrum": 75, "precursor": 150}


def test_scaling_revised_to_2k_steps():
    scaled = preset("revised").scaled(0.02)
    assert scaled.total_steps == 2_000
    assert scaled.introductions() == {"spectrum": 300, "precursor": 600}


def test_scaling_keeps_at_least_one_step_per_stage():
    scaled = preset("current").scaled(1e-6)
    assert [stage.steps for stage in scaled.stages] == [1] * 10


@pytest.mark.parametrize("factor", [0, -1, float("nan"), float("inf")])
def test_scaling_refuses_a_factor_that_is_not_positive(factor):
    with pytest.raises(CurriculumError, match="scale factor"):
        preset("revised").scaled(factor)


def test_load_accepts_preset_names_and_files(write_json, tiny_curriculum_data):
    assert load_curriculum("revised") == preset("revised")
    loaded = load_curriculum(write_json(tiny_curriculum_data))
    assert loaded.total_steps == 1_000
    assert loaded.introductions() == {"spectrum": 400, "precursor": 400}


def test_load_reports_schema_problems_one_line_each(write_json, tiny_curriculum_data):
    tiny_curriculum_data["stages"][0]["steps"] = 0
    tiny_curriculum_data["stages"][1]["peak_dropout"] = 2
    path = write_json(tiny_curriculum_data)
    with pytest.raises(CurriculumError) as caught:
        load_curriculum(path)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith(f"{path}: stages[0].steps: ")
    assert lines[1].startswith(f"{path}: stages[1].peak_dropout: ")
    assert len(lines) == 2


def test_load_caps_the_number_of_problem_lines(write_json, tiny_curriculum_data):
    tiny_curriculum_data["stages"][1] = {f"typo_{i}": 1 for i in range(10)}
    with pytest.raises(CurriculumError) as caught:
        load_curriculum(write_json(tiny_curriculum_data))
    lines = str(caught.value).splitlines()
    assert len(lines) == 6
    assert lines[-1].endswith("more problem(s)")


def test_malformed_json_gives_line_and_column(write_json):
    path = write_json('{\n  "name": "x",\n  "stages": [,]\n}')
    with pytest.raises(CurriculumError, match=r"malformed JSON at line 3, column 14"):
        load_curriculum(path)


def test_json_round_trip_is_exact(tmp_path):
    for name in PRESET_NAMES:
        path = tmp_path / f"{name}.json"
        save_curriculum(preset(name), path)
        assert path.read_text() == curriculum_json(preset(name))
        assert load_curriculum(path) == preset(name)


def test_save_refuses_to_overwrite_unless_told(tmp_path):
    path = tmp_path / "c.json"
    save_curriculum(preset("current"), path)
    with pytest.raises(CurriculumError, match="file exists; use --force"):
        save_curriculum(preset("revised"), path)
    save_curriculum(preset("revised"), path, overwrite=True)
    assert load_curriculum(path).name == "revised"


def test_shipped_curricula_have_no_warnings():
    for name in PRESET_NAMES:
        assert curriculum_warnings(preset(name)) == []


def test_warnings_name_the_stage_and_the_field(tiny_curriculum_data):
    stages = tiny_curriculum_data["stages"]
    stages[0].update(spectrum_loss_weight=0.2, max_length=14, noise_peaks=5, peak_dropout=0.1)
    stages.append({"name": "blip", "steps": 5, "min_length": 7, "max_length": 12})
    warnings = curriculum_warnings(Curriculum.model_validate(tiny_curriculum_data))
    text = "\n".join(warnings)
    assert "stages[1] (physics): spectrum_loss_weight goes down from 0.2 to 0.1" in text
    assert "stages[1] (physics): max_length goes down from 14 to 12" in text
    assert "stages[1] (physics): noise_peaks goes down from 5 to 2" in text
    assert "stages[1] (physics): peak_dropout goes down" in text
    assert "stages[2] (blip): noise_peaks goes down from 2 to 0" in text
    assert "stages[2] (blip): 5 steps is under 1% of the 1,005 total" in text


def test_check_curriculum_collects_errors_instead_of_raising(tmp_path):
    check = check_curriculum(tmp_path / "absent.json")
    assert check.curriculum is None
    assert "no such file" in check.errors[0]
    assert check_curriculum("current").errors == []


# ----------------------------------------------------------------------------
# Gated stages (start_when) and the schedule that resolves them
# ----------------------------------------------------------------------------

GATE = {"metric": "residue_accuracy_easy", "at_least": 0.55, "latest_step": 700}


def gated_data(tiny_curriculum_data, **gate) -> dict:
    """The tiny curriculum (400 + 600 steps) with a gate on its second stage."""
    tiny_curriculum_data["stages"][1]["start_when"] = {**GATE, **gate}
    return tiny_curriculum_data


def test_a_valid_gate(tiny_curriculum_data):
    curriculum = Curriculum.model_validate(gated_data(tiny_curriculum_data))
    gate = curriculum.stages[1].start_when
    assert isinstance(gate, StartWhen)
    assert (gate.split, gate.field) == ("val_easy", "residue_accuracy")
    assert gate.describe() == "residue_accuracy_easy >= 0.55 (at the latest 700)"
    assert curriculum.gated and curriculum.introductions() == {"spectrum": 400, "precursor": 400}
    assert curriculum.introduction_gates() == {"spectrum": gate, "precursor": gate}
    assert curriculum.latest_starts() == [0, 700]
    assert curriculum_warnings(curriculum) == []
    for field in StartWhen.model_fields.values():
        assert field.description


def test_gate_metric_names():
    assert GATE_METRICS == (
        "residue_accuracy_easy",
        "residue_accuracy_hard",
        "token_accuracy_easy",
        "token_accuracy_hard",
    )


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ({"metric": "accuracy_easy"}, "stages[1].start_when.metric: unknown metric 'accuracy_e"),
        ({"at_least": 1.01}, "stages[1].start_when.at_least: Input should be less than or equal"),
        ({"at_least": -0.1}, "stages[1].start_when.at_least: Input should be greater than or"),
        ({"latest_step": 0}, "stages[1].start_when.latest_step: Input should be greater than or"),
        ({"latest_step": 7.5}, "stages[1].start_when.latest_step: Input should be a valid integer"),
        ({"after": 3}, "stages[1].start_when.after: unknown key"),
        ({"over": 0}, "stages[1].start_when.over: Input should be greater than or equal to 1"),
        ({"over": "3"}, "stages[1].start_when.over: Input should be a valid integer"),
    ],
)  # fmt: skip
def test_an_invalid_gate_is_one_line_naming_the_field(
    write_json, tiny_curriculum_data, gate, expected
):
    path = write_json(gated_data(tiny_curriculum_data, **gate))
    with pytest.raises(CurriculumError) as caught:
        load_curriculum(path)
    assert str(caught.value).splitlines() == [str(caught.value)]
    assert str(caught.value).startswith(f"{path}: {expected}")


def test_the_first_stage_cannot_be_gated(write_json, tiny_curriculum_data):
    tiny_curriculum_data["stages"][0]["start_when"] = GATE
    path = write_json(tiny_curriculum_data)
    with pytest.raises(CurriculumError) as caught:
        load_curriculum(path)
    assert str(caught.value) == (
        f"{path}: stages[0].start_when: the first stage starts at step 0 and cannot be gated; "
        "remove start_when or move it to a later stage"
    )


def test_a_gate_over_several_validations_is_written_only_when_not_one(tiny_curriculum_data):
    over = Curriculum.model_validate(gated_data(copy.deepcopy(tiny_curriculum_data), over=3))
    assert over.stages[1].start_when.over == 3
    assert over.stages[1].start_when.describe() == (
        "mean of 3 validations of residue_accuracy_easy >= 0.55 (at the latest 700)"
    )
    assert '"over": 3' in curriculum_json(over)
    one = Curriculum.model_validate(gated_data(tiny_curriculum_data, over=1))
    assert one == Curriculum.model_validate(gated_data(tiny_curriculum_data))  # 1 = the default
    assert "over" not in one.model_dump()["stages"][1]["start_when"]  # as before it existed
    assert '"over"' not in curriculum_json(preset("gated-revised"))


def test_an_ungated_stage_writes_no_start_when():
    assert "start_when" not in curriculum_json(preset("revised"))
    assert "start_when" not in preset("revised").model_dump()["stages"][0]


def test_scaling_scales_latest_step(tiny_curriculum_data):
    curriculum = Curriculum.model_validate(gated_data(tiny_curriculum_data))
    scaled = curriculum.scaled(0.1)
    gate = scaled.stages[1].start_when
    assert (gate.metric, gate.at_least, gate.latest_step) == ("residue_accuracy_easy", 0.55, 70)
    assert curriculum.scaled(1e-6).stages[1].start_when.latest_step == 1


def test_warnings_for_gates_that_cannot_act_or_do_not_fit(tiny_curriculum_data):
    moot = Curriculum.model_validate(
        gated_data(copy.deepcopy(tiny_curriculum_data), latest_step=400)
    )
    assert curriculum_warnings(moot) == [
        "stages[1] (physics): start_when.latest_step (400) is not after the stage's planned "
        "start (400), so the gate never delays it"
    ]
    late = Curriculum.model_validate(
        gated_data(copy.deepcopy(tiny_curriculum_data), latest_step=1000)
    )
    assert curriculum_warnings(late) == [
        "stages[1] (physics): if every gate opens only at its latest_step, the stage starts at "
        "1,000, at or past the run's 1,000 steps, and never runs"
    ]
    tight = Curriculum.model_validate(gated_data(tiny_curriculum_data, latest_step=995))
    assert curriculum_warnings(tight) == [
        "stages[1] (physics): if every gate opens only at its latest_step, only 5 of the "
        "1,000 steps are left for it"
    ]


def three_stages(first_gate=None, second_gate=None) -> Curriculum:
    """Stages of 10, 5 and 20 steps (35 in all), the last two optionally gated."""

    def stage(name, steps, gate):
        return Stage(name=name, steps=steps, min_length=7, max_length=9, start_when=gate)

    return Curriculum(
        name="three",
        stages=[stage("a", 10, None), stage("b", 5, first_gate), stage("c", 20, second_gate)],
    )


def run_schedule(schedule, steps, validations, start: int = 0) -> list:
    """Steps ``start..steps-1`` as the engine takes them; returns the stages started.

    ``validations`` maps a step to the gate values of the validation made at
    it. As in the engine, the validation at step ``s`` (after the update that
    reached ``s``) is recorded before ``advance(s)``; a checkpoint at ``s`` is
    taken between the two, so a resumed schedule starts with ``advance(s)``.
    """
    started = []
    for step in range(start, steps):
        if step in validations and (step > start or start == 0):
            schedule.record_validation(step, validations[step])
        new = schedule.advance(step)
        if new is not None:
            started.append(new)
    return started


def test_an_ungated_schedule_is_the_planned_one():
    curriculum = three_stages()
    schedule = StageSchedule(curriculum)
    started = run_schedule(schedule, 35, {})
    assert [s.step for s in started] == curriculum.stage_starts() == [0, 10, 15]
    assert all(s.trigger is None and s.gate_fields() == {} for s in started)
    replay = StageSchedule(curriculum)
    for step in range(35):
        replay.advance(step)
        assert replay.index == curriculum.stage_at(step)[0], step


def test_a_gate_opens_at_the_first_validation_from_the_earliest_start_at_or_above():
    gate = StartWhen(metric="residue_accuracy_easy", at_least=0.5, latest_step=30)
    schedule = StageSchedule(three_stages(first_gate=gate))
    values = {
        8: {"residue_accuracy_easy": 0.9},  # before the earliest start (10): not used
        12: {"residue_accuracy_easy": 0.49},
        16: {"residue_accuracy_easy": 0.5},  # at the threshold: opens
        20: {"residue_accuracy_easy": 0.7},
    }
    started = run_schedule(schedule, 35, values)
    assert [(s.index, s.step, s.trigger) for s in started] == [
        (0, 0, None),
        (1, 16, "metric"),
        (2, 21, None),  # b's 5 steps count from its actual start
    ]
    assert started[1].gate_fields() == {
        "trigger": "metric",
        "metric": "residue_accuracy_easy",
        "value": 0.5,
        "threshold": 0.5,
    }


def test_a_gate_opens_at_latest_step_with_the_last_value_seen():
    gate = StartWhen(metric="token_accuracy_hard", at_least=0.9, latest_step=23)
    schedule = StageSchedule(three_stages(first_gate=gate))
    started = run_schedule(schedule, 35, {12: {"token_accuracy_hard": 0.3}, 22: {}})
    assert [(s.step, s.trigger, s.value) for s in started[1:]] == [
        (23, "latest_step", 0.3),
        (28, None, None),
    ]


def test_a_latest_step_before_the_earliest_start_starts_the_stage_at_its_earliest_start():
    gate = StartWhen(metric="token_accuracy_hard", at_least=0.9, latest_step=3)
    started = run_schedule(StageSchedule(three_stages(first_gate=gate)), 35, {})
    assert [(s.step, s.trigger, s.value) for s in started[1:]] == [
        (10, "latest_step", None),
        (15, None, None),
    ]


def test_a_delayed_stage_can_leave_no_room_for_the_next():
    late = StartWhen(metric="residue_accuracy_hard", at_least=1.0, latest_step=33)
    schedule = StageSchedule(three_stages(first_gate=late))
    started = run_schedule(schedule, 35, {})
    assert [s.step for s in started] == [0, 33]  # c could start at 38, after the run's 35


def test_schedule_state_round_trips_and_resumes_the_same_decisions():
    gate = StartWhen(metric="residue_accuracy_easy", at_least=0.5, latest_step=30)
    values = {6: {"residue_accuracy_easy": 0.7}, 12: {"residue_accuracy_easy": 0.6}}
    expected = run_schedule(StageSchedule(three_stages(first_gate=gate)), 35, values)
    assert [s.step for s in expected] == [0, 12, 17]
    for stop in (6, 11, 12, 13, 17, 20):
        first = StageSchedule(three_stages(first_gate=gate))
        before = run_schedule(first, stop, values)
        if stop in values:  # the validation at the checkpoint's step comes before it
            first.record_validation(stop, values[stop])
        state = first.state_dict()
        second = StageSchedule(three_stages(first_gate=gate))
        second.load_state_dict(copy.deepcopy(state))
        assert second.state_dict() == state
        after = run_schedule(second, 35, values, start=stop)
        assert before + after == expected, stop


def test_a_gate_over_three_validations_is_not_opened_by_one_lucky_validation():
    values = {8: 0.2, 12: 0.9, 16: 0.3, 20: 0.6, 24: 0.7}  # 0.9 at 12: a lucky one
    validations = {step: {"residue_accuracy_easy": v} for step, v in values.items()}
    one = StartWhen(metric="residue_accuracy_easy", at_least=0.5, latest_step=30)
    started = run_schedule(StageSchedule(three_stages(first_gate=one)), 35, validations)
    assert started[1].step == 12  # the last validation alone
    three = one.model_copy(update={"over": 3})
    started = run_schedule(StageSchedule(three_stages(first_gate=three)), 35, validations)
    # means of the last 3: at 12 only 2 seen; at 16 (0.2+0.9+0.3)/3 = 0.467; at 20 0.6
    assert (started[1].step, started[1].trigger) == (20, "metric")
    assert started[1].value == pytest.approx((0.9 + 0.3 + 0.6) / 3)
    assert started[1].gate_fields()["over"] == 3
    # the same decisions after a resume from any step (the recent values are checkpointed)
    for stop in (9, 12, 13, 16, 19):
        first = StageSchedule(three_stages(first_gate=three))
        before = run_schedule(first, stop, validations)
        if stop in validations:
            first.record_validation(stop, validations[stop])
        second = StageSchedule(three_stages(first_gate=three))
        second.load_state_dict(copy.deepcopy(first.state_dict()))
        after = run_schedule(second, 35, validations, start=stop)
        assert before + after == started, stop


def test_load_planned_rebuilds_the_starts_of_an_ungated_run():
    schedule = StageSchedule(three_stages())
    schedule.load_planned(1)
    assert (schedule.starts, schedule.index, schedule.stage.name) == ([0, 10], 1, "b")
    assert schedule.advance(14) is None and schedule.advance(15).index == 2


def test_gate_metric_values_reads_both_splits():
    results = {
        "val_easy": {"token_accuracy": 0.5, "residue_accuracy": 0.4, "ce": 2.0},
        "val_hard": {"token_accuracy": 0.3},
    }
    assert gate_metric_values(results) == {
        "residue_accuracy_easy": 0.4,
        "token_accuracy_easy": 0.5,
        "token_accuracy_hard": 0.3,
    }


def test_introductions_known_in_advance_and_as_a_run_goes():
    gate = StartWhen(metric="residue_accuracy_easy", at_least=0.5, latest_step=30)
    data = dict(min_length=7, max_length=9)
    curriculum = Curriculum(
        name="two_losses",
        stages=[
            Stage(name="a", steps=10, **data),
            Stage(name="b", steps=5, spectrum_loss_weight=0.1, **data),
            Stage(name="c", steps=20, start_when=gate, spectrum_loss_weight=0.1,
                  precursor_loss_weight=0.01, **data),
        ],
    )  # fmt: skip
    assert curriculum.introductions() == {"spectrum": 10, "precursor": 15}
    assert curriculum.fixed_introductions() == {"spectrum": 10, "precursor": None}
    assert preset("revised").fixed_introductions() == preset("revised").introductions()
    schedule = StageSchedule(curriculum)
    assert schedule.introductions() == {"spectrum": 10, "precursor": None}
    run_schedule(schedule, 25, {})
    assert schedule.introductions() == {"spectrum": 10, "precursor": None}
    run_schedule(schedule, 31, {}, start=25)  # the gate's latest step
    assert schedule.introductions() == {"spectrum": 10, "precursor": 30}

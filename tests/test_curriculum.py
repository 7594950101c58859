"""The curriculum schema, its queries, loading from files, and warnings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from curriculum_cli.curriculum import (
    MAX_PEPTIDE_LENGTH,
    MIN_PEPTIDE_LENGTH,
    Curriculum,
    Stage,
    curriculum_json,
    curriculum_warnings,
    save_curriculum,
)
from curriculum_cli.errors import CurriculumError
from curriculum_cli.presets import PRESET_NAMES, check_curriculum, load_curriculum, preset


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
    # Each stage rounds by at most half a step.
    assert abs(scaled.total_steps - curriculum.total_steps * factor) <= len(curriculum.stages) / 2
    for loss, step in curriculum.introductions().items():
        assert abs(scaled.introductions()[loss] - step * factor) <= len(curriculum.stages) / 2


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

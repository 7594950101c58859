"""``pepcurr generate``, ``validate`` and ``plot-schedule`` end to end through Typer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.curriculum.files import load_curriculum
from curriculum_cli.curriculum.presets import preset
from curriculum_cli.curriculum.schema import GATE_METRICS

CURRICULA_DIR = Path(__file__).parents[1] / "curricula"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

runner = CliRunner()


def invoke(*arguments: str):
    return runner.invoke(app, [str(argument) for argument in arguments])


def _mutated(change):
    """A function that applies ``change`` to a copy of the tiny curriculum and returns it."""

    def make(data: dict):
        data = copy.deepcopy(data)
        change(data)
        return data

    return make


def _set(path: tuple, value):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return _mutated(change)


def _delete(path: tuple):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return _mutated(change)


def _duplicate_names(data):
    data["stages"][1]["name"] = "warmup"


def _json_with_literal(value: str):
    """A text maker that writes the tiny curriculum with a raw JSON literal as a weight."""

    def make(data: dict) -> str:
        data = copy.deepcopy(data)
        data["stages"][1]["spectrum_loss_weight"] = "__LITERAL__"
        return json.dumps(data).replace('"__LITERAL__"', value)

    return make


# Each: a maker of the file's content from the tiny curriculum, and text the error must hold.
INVALID_CURRICULA = [
    pytest.param(_set(("nmae",), "x"), "nmae: unknown key", id="unknown-top-key"),
    pytest.param(
        _set(("stages", 1, "noise_peak"), 3),
        "stages[1].noise_peak: unknown key",
        id="unknown-stage-key",
    ),
    pytest.param(
        _set(("stages", 0, "min_length"), 12),
        "stages[0]: min_length (12) is greater than max_length (10)",
        id="min-above-max",
    ),
    pytest.param(
        _set(("stages",), []), "stages: a curriculum needs at least one stage", id="no-stages"
    ),
    pytest.param(
        _mutated(_duplicate_names),
        "stages: stage name 'warmup' is used by stages[0] and stages[1]",
        id="duplicate-stage-names",
    ),
    pytest.param(
        _set(("stages", 0, "steps"), 0), "stages[0].steps: Input should be greater", id="zero-steps"
    ),
    pytest.param(
        _set(("stages", 1, "precursor_loss_weight"), -0.1),
        "stages[1].precursor_loss_weight: Input should be greater than or equal to 0",
        id="negative-weight",
    ),
    pytest.param(
        _json_with_literal("NaN"),
        "stages[1].spectrum_loss_weight: Input should be a finite number",
        id="nan-weight",
    ),
    pytest.param(
        _json_with_literal("Infinity"),
        "stages[1].spectrum_loss_weight: Input should be a finite number",
        id="infinite-weight",
    ),
    pytest.param(
        _set(("stages", 1, "peak_dropout"), 1.5),
        "stages[1].peak_dropout: Input should be less than or equal to 1",
        id="dropout-above-one",
    ),
    pytest.param(
        _set(("stages", 1, "mass_error_ppm"), -2.0),
        "stages[1].mass_error_ppm: Input should be greater than or equal to 0",
        id="negative-ppm",
    ),
    pytest.param(
        _set(("stages", 0, "min_length"), 5),
        "stages[0].min_length: Input should be greater than or equal to 6",
        id="length-below-6",
    ),
    pytest.param(
        _set(("stages", 1, "max_length"), 41),
        "stages[1].max_length: Input should be less than or equal to 40",
        id="length-above-40",
    ),
    pytest.param(
        _set(("stages", 0, "steps"), "400"),
        "stages[0].steps: Input should be a valid integer, got '400'",
        id="string-steps",
    ),
    pytest.param(
        _set(("stages", 0, "steps"), True),
        "stages[0].steps: Input should be a valid integer, got True",
        id="boolean-steps",
    ),
    pytest.param(
        _delete(("stages", 1, "max_length")),
        "stages[1].max_length: required field is missing",
        id="missing-max-length",
    ),
    pytest.param(_delete(("name",)), "name: required field is missing", id="missing-name"),
    pytest.param(
        _set(("stages",), {"a": 1}), "stages: Input should be a valid list", id="stages-not-a-list"
    ),
    pytest.param(
        _set(("schema_version",), 2),
        "schema_version: version 2 is not supported",
        id="unknown-schema-version",
    ),
    pytest.param(
        lambda data: '{\n  "name": "x",\n  "stages": [\n',
        "malformed JSON at line 4, column 1",
        id="malformed-json",
    ),
    pytest.param(
        lambda data: '{"name": "x", "stages": [],}',
        "malformed JSON at line 1, column 28",
        id="trailing-comma",
    ),
    pytest.param(lambda data: "", "file is empty", id="empty-file"),
    pytest.param(lambda data: "  \n\n", "file is empty", id="whitespace-only"),
    pytest.param(lambda data: json.dumps([data]), "the top level is a JSON array", id="json-array"),
    pytest.param(lambda data: '"revised"', "the top level is a JSON string", id="json-string"),
    pytest.param(
        _set(
            ("stages", 1, "start_when"), {"metric": "accuracy", "at_least": 0.5, "latest_step": 9}
        ),
        "stages[1].start_when.metric: unknown metric 'accuracy'; use one of residue_accuracy_easy",
        id="gate-unknown-metric",
    ),
    pytest.param(
        _set(
            ("stages", 1, "start_when"),
            {"metric": GATE_METRICS[0], "at_least": 55, "latest_step": 9},
        ),
        "stages[1].start_when.at_least: Input should be less than or equal to 1",
        id="gate-threshold-above-one",
    ),
    pytest.param(
        _set(
            ("stages", 0, "start_when"),
            {"metric": GATE_METRICS[0], "at_least": 0.5, "latest_step": 9},
        ),
        "stages[0].start_when: the first stage starts at step 0 and cannot be gated",
        id="gate-on-first-stage",
    ),
]


@pytest.mark.parametrize(("make", "expected"), INVALID_CURRICULA)
def test_validate_rejects_invalid_curricula(write_json, tiny_curriculum_data, make, expected):
    path = write_json(make(tiny_curriculum_data))
    result = invoke("validate", path)
    assert result.exit_code == 2, result.output
    assert f"error: {path}: {expected}" in result.stderr
    assert "Traceback" not in result.output


def test_validate_rejects_a_binary_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02}q\x00")
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert f"error: {path}: not a text file (not UTF-8); expected JSON" in result.stderr


def test_validate_rejects_a_file_with_nul_bytes(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00\x01\x02abc")
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert "binary file (holds NUL bytes)" in result.stderr


def test_validate_rejects_a_directory(tmp_path):
    result = invoke("validate", tmp_path)
    assert result.exit_code == 2
    assert f"error: {tmp_path}: is a directory" in result.stderr


def test_validate_rejects_a_missing_path(tmp_path):
    result = invoke("validate", tmp_path / "nope.json")
    assert result.exit_code == 2
    assert "nope.json: no such file (and not a preset name: current" in result.stderr


def test_validate_shipped_curricula_reports_introductions():
    paths = sorted(CURRICULA_DIR.glob("*.json"))
    assert [path.stem for path in paths] == [
        "calibrated-hcd", "conservative", "current", "gated-conservative", "gated-current",
        "gated-revised", "realistic-conservative", "realistic-current", "realistic-revised",
        "revised",
    ]  # fmt: skip
    result = invoke("validate", *paths)
    assert result.exit_code == 0, result.output
    for name, spectrum_at, precursor_at in (
        ("current", "10,000", "20,000"),
        ("revised", "15,000", "30,000"),
        ("conservative", "20,000", "35,000"),
    ):
        assert (
            f"total steps 100,000; spectrum loss from step {spectrum_at}, "
            f"precursor loss from step {precursor_at}"
        ) in result.output, name
    for spectrum_at, precursor_at in (("0.4", "0.6"), ("0.55", "0.7"), ("0.6", "0.75")):
        assert (
            f"total steps 100,000; spectrum loss on when residue_accuracy_easy >= {spectrum_at} "
            "(at the latest 40,000), precursor loss on when residue_accuracy_easy >= "
            f"{precursor_at} (at the latest 60,000)"
        ) in result.output
    assert result.output.count("ok, no warnings") == 10
    assert result.output.count("world: calibrated on 125 spectra of data/split/train.mgf") == 4


def test_validate_goes_on_after_an_invalid_file(write_json):
    bad = write_json("[]", "bad.json")
    result = invoke("validate", bad, "revised")
    assert result.exit_code == 2
    assert "bad.json: the top level is a JSON array" in result.stderr
    assert "spectrum loss from step 15,000" in result.stdout


def test_validate_warnings_exit_0_unless_strict(write_json, tiny_curriculum_data):
    tiny_curriculum_data["stages"][0]["max_length"] = 14
    path = write_json(tiny_curriculum_data)
    result = invoke("validate", path)
    assert result.exit_code == 0
    assert "max_length goes down from 14 to 12" in result.output
    strict = invoke("validate", "--strict", path)
    assert strict.exit_code == 2
    assert "1 warning(s), errors under --strict" in strict.stderr


def test_generate_writes_a_preset_equal_to_the_repository_file(tmp_path):
    path = tmp_path / "revised.json"
    result = invoke("generate", "revised", "-o", path)
    assert result.exit_code == 0, result.output
    assert path.read_text() == (CURRICULA_DIR / "revised.json").read_text()


def test_generate_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "arm.json"
    path.write_text("keep me")
    result = invoke("generate", "current", "-o", path)
    assert result.exit_code == 2
    assert "file exists; use --force to overwrite it" in result.stderr
    assert path.read_text() == "keep me"
    assert invoke("generate", "current", "-o", path, "--force").exit_code == 0
    assert load_curriculum(path) == preset("current")


def test_generate_phased_makes_an_ab_arm(tmp_path):
    path = tmp_path / "arm.json"
    result = invoke(
        "generate", "phased", "--spectrum-at", 20_000, "--precursor-at", 35_000, "-o", path
    )
    assert result.exit_code == 0, result.output
    assert load_curriculum(path).stages == preset("conservative").stages


def test_generate_phased_refuses_impossible_steps():
    result = invoke("generate", "phased", "--spectrum-at", 30_000, "--precursor-at", 20_000)
    assert result.exit_code == 2
    assert "precursor_at (20000) must be at least 2 steps after spectrum_at" in result.stderr


def test_generate_without_output_prints_json():
    result = invoke("generate", "conservative")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["name"] == "conservative"


def test_generate_list_shows_the_presets():
    result = invoke("generate", "--list")
    assert result.exit_code == 0
    for name in ("current", "revised", "conservative", "phased"):
        assert name in result.output


def test_plot_schedule_shows_the_three_presets_in_the_terminal():
    result = invoke("plot-schedule")
    assert result.exit_code == 0, result.output
    for expected in ("current (100,000 steps)", "on at 15,000", "on at 35,000", "noise peaks"):
        assert expected in result.output


def test_plot_schedule_writes_a_png(tmp_path):
    path = tmp_path / "schedule.png"
    result = invoke("plot-schedule", "current", CURRICULA_DIR / "revised.json", "-o", path)
    assert result.exit_code == 0, result.output
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert 20_000 < len(data) < 5_000_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 800


def test_plot_schedule_rejects_an_unknown_source(tmp_path):
    result = invoke("plot-schedule", "revisde")
    assert result.exit_code == 2
    assert "revisde: no such file (and not a preset name" in result.stderr


# ----------------------------------------------------------------------------
# Gated curricula
# ----------------------------------------------------------------------------


def test_validate_an_invalid_gate_is_one_line(write_json, tiny_curriculum_data):
    tiny_curriculum_data["stages"][1]["start_when"] = {
        "metric": "residue_accuracy_easy",
        "at_least": 1.5,
        "latest_step": 700,
    }
    path = write_json(tiny_curriculum_data)
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: stages[1].start_when.at_least: Input should be less than or equal to 1"
    ]


def test_validate_shows_the_gate_and_warns_when_it_cannot_act(write_json, tiny_curriculum_data):
    gate = {"metric": "token_accuracy_hard", "at_least": 0.3, "latest_step": 700}
    tiny_curriculum_data["stages"][1]["start_when"] = gate
    result = invoke("validate", write_json(tiny_curriculum_data))
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich may wrap long lines
    assert "spectrum loss on when token_accuracy_hard >= 0.3 (at the latest 700)" in output
    assert "stages[1] (physics): starts at the first validation from its earliest start" in output
    assert "≥400" in output
    gate["latest_step"] = 1_000
    result = invoke("validate", "--strict", write_json(tiny_curriculum_data, "late.json"))
    assert result.exit_code == 2
    assert "the stage starts at 1,000, at or past the run's 1,000 steps" in result.output


def test_generate_phased_gated_makes_the_gated_revised_arm(tmp_path):
    path = tmp_path / "arm.json"
    result = invoke(
        "generate", "phased", "--spectrum-at-accuracy", 0.55, "--precursor-at-accuracy", 0.70,
        "-o", path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_curriculum(path).stages == preset("gated-revised").stages
    later = tmp_path / "later.json"
    result = invoke(
        "generate", "phased", "--spectrum-at-accuracy", 0.55, "--precursor-at-accuracy", 0.70,
        "--latest-spectrum", 30_000, "--latest-precursor", 50_000, "-o", later,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    gates = load_curriculum(later).introduction_gates()
    assert (gates["spectrum"].latest_step, gates["precursor"].latest_step) == (30_000, 50_000)


def test_generate_phased_refuses_steps_and_accuracies_together():
    result = invoke(
        "generate", "phased", "--spectrum-at", 1000, "--precursor-at", 5000,
        "--spectrum-at-accuracy", 0.5, "--precursor-at-accuracy", 0.6,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "give either --spectrum-at/--precursor-at (steps) or" in result.stderr


def test_generate_list_shows_the_gated_presets():
    result = invoke("generate", "--list")
    assert result.exit_code == 0
    for text in ("gated-current", "gated-revised", "gated-conservative", "≥ 0.55 by 40,000"):
        assert text in result.output
    assert "--spectrum-at-accuracy A --precursor-at-accuracy B" in result.output


def test_plot_schedule_shows_the_gates(tmp_path):
    path = tmp_path / "gated.png"
    result = invoke("plot-schedule", "revised", "gated-current", "gated-revised", "-o", path)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "gated-revised (100,000 steps)" in output and "on at 15,000" in output
    assert "spectrum loss on when residue_accuracy_easy >= 0.55 (at the latest 40,000)" in output
    assert "precursor loss on when residue_accuracy_easy >= 0.6 (at the latest 60,000)" in output
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and 20_000 < len(data) < 5_000_000

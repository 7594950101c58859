"""The user's own model through ``--model FILE.py:FACTORY``: trains, resumes, evaluates, errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.curriculum.files import save_curriculum
from curriculum_cli.training.config import read_provenance, read_run_config
from curriculum_cli.training.runlog import read_run
from tests.helpers import SAMPLE_MGF, TEST_DATA, two_stage_curriculum

CUSTOM = TEST_DATA / "custom_model.py"
runner = CliRunner()


def invoke(*arguments):
    return runner.invoke(app, [str(argument) for argument in arguments])


@pytest.fixture
def curriculum_file(tmp_path):
    path = tmp_path / "tiny.json"
    save_curriculum(two_stage_curriculum(6, 6), path)
    return path


def test_a_model_from_a_file_trains_resumes_and_evaluates(curriculum_file, tmp_path):
    run_dir = tmp_path / "run"
    common = ["train", "-c", curriculum_file, "--out", run_dir, "--model", f"{CUSTOM}:tiny_gru",
              "--batch-size", "8", "--val-every", "4", "--grad-every", "4", "--decode-size", "4",
              "-q"]  # fmt: skip
    first = invoke(*common, "--max-steps", "5")
    assert first.exit_code == 0, first.output
    config = read_run_config(run_dir)
    assert config.model == f"{CUSTOM}:tiny_gru" and config.architecture is None
    provenance = read_provenance(run_dir)
    assert provenance["model_file"] == str(CUSTOM) and len(provenance["model_file_sha256"]) == 64
    again = invoke(*common, "--resume")
    assert again.exit_code == 0, again.output
    log = read_run(run_dir)
    assert log.status == "finished" and log.last_step == 12
    assert set(log.events("grad")["step"]) >= {0, 4, 8}
    mgf = tmp_path / "two.mgf"
    mgf.write_text("END IONS".join(SAMPLE_MGF.read_text().split("END IONS")[:2]) + "END IONS\n")
    evaluated = invoke("evaluate", run_dir, "--mgf", mgf, "--beam-size", "2", "--max-length", "8")
    assert evaluated.exit_code == 0, evaluated.output
    assert "2 of 2 spectra annotated" in evaluated.stdout


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{custom}:wrong_shape", "forward() must return logits of shape [B, T, V]"),
        ("{custom}:not_a_module", "the factory returned str, not a torch.nn.Module"),
        ("{custom}:absent", "has no function 'absent'"),
        ("{tmp}/none.py:tiny_gru", "no such file"),
        ("no_such_package.models:build", "cannot import no_such_package.models"),
        ("huge", "is neither a preset"),
    ],
)
def test_a_bad_model_is_one_clear_line_and_exit_2(curriculum_file, tmp_path, spec, message):
    spec = spec.format(custom=CUSTOM, tmp=tmp_path)
    result = invoke("train", "-c", curriculum_file, "--out", tmp_path / "run", "--model", spec)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()

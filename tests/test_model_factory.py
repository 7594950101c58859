"""The user's own model through ``--model FILE.py:FACTORY``: trains, resumes, evaluates, errors."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.curriculum.files import save_curriculum
from curriculum_cli.errors import ModelError
from curriculum_cli.model.factory import build_model
from curriculum_cli.spectra.vocabulary import Vocabulary
from curriculum_cli.training.config import read_provenance, read_run_config
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlog import read_run
from tests.helpers import SAMPLE_MGF, TEST_DATA, two_stage_curriculum

CUSTOM = TEST_DATA / "custom_model.py"
PARALLEL = TEST_DATA / "parallel_model.py"
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
        # the factory's own error, a bare assert shown by its line and place
        ("{custom}:heads_do_not_divide", "heads_do_not_divide(vocab) fails: AssertionError: "
         "assert width % heads == 0 (at custom_model.py:"),
        ("{custom}:needs_a_config", "needs_a_config(vocab, config) cannot be called with one "
         "argument; pepcurr calls needs_a_config(vocab) with the run's Vocabulary"),
        # a parallel model that returns (logits of every step, latent): not a list of steps
        ("{parallel}:with_latent", "returned a tuple of tensors [3, 2, 21, 21], [2, 21, 32], "
         "not refinement steps of one shape [B, W, V]"),
    ],
)  # fmt: skip
def test_a_bad_model_is_one_clear_line_and_exit_2(curriculum_file, tmp_path, spec, message):
    spec = spec.format(custom=CUSTOM, tmp=tmp_path, parallel=PARALLEL)
    result = invoke("train", "-c", curriculum_file, "--out", tmp_path / "run", "--model", spec)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    if ":" in spec:  # a factory: one line (a bad preset name is a usage error of its own)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "run").exists()


def test_a_failing_factory_is_named_as_given_with_its_own_message():
    with pytest.raises(ModelError) as caught:
        build_model(f"{CUSTOM}:factory", None, Vocabulary.default())
    message = str(caught.value)
    assert message.startswith(f"--model {CUSTOM}:factory: factory(vocab) fails: ValueError: "
                              "no weights for this vocabulary (at custom_model.py:")  # fmt: skip
    assert "\n" not in message


SHORT = ["--batch-size", "8", "--val-every", "4", "--grad-every", "4", "--decode-size", "4", "-q"]


@pytest.fixture
def two_spectra(tmp_path):
    mgf = tmp_path / "two.mgf"
    mgf.write_text("END IONS".join(SAMPLE_MGF.read_text().split("END IONS")[:2]) + "END IONS\n")
    return mgf


def test_a_relative_model_file_is_recorded_absolute_and_found_from_another_folder(
    curriculum_file, tmp_path, two_spectra, monkeypatch
):
    work, elsewhere, run_dir = tmp_path / "work", tmp_path / "elsewhere", tmp_path / "run"
    work.mkdir()
    elsewhere.mkdir()
    shutil.copy(CUSTOM, work / "adapter.py")
    monkeypatch.chdir(work)
    trained = invoke("train", "-c", curriculum_file, "--out", run_dir, "--model",
                     "adapter.py:tiny_gru", "--max-steps", "4", *SHORT)  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert read_run_config(run_dir).model == f"{work / 'adapter.py'}:tiny_gru"
    monkeypatch.chdir(elsewhere)
    evaluate = ["evaluate", run_dir, "--mgf", two_spectra, "--max-length", "8"]
    evaluated = invoke(*evaluate)
    assert evaluated.exit_code == 0, evaluated.output
    # a run recorded before: a relative model in its config, the absolute file in provenance
    run_file = run_dir / "run.json"
    data = json.loads(run_file.read_text())
    data["config"]["model"] = "adapter.py:tiny_gru"
    run_file.write_text(json.dumps(data))
    assert invoke(*evaluate).exit_code == 0
    resumed = invoke("train", "--out", run_dir, "--resume", "-q")
    assert resumed.exit_code == 0, resumed.output
    (work / "adapter.py").unlink()
    gone = invoke(*evaluate)
    assert gone.exit_code == 2 and "--model" not in gone.output, gone.output
    assert f"{run_dir}: its model file {work / 'adapter.py'} is gone" in gone.output


def test_a_changed_model_file_is_refused_unless_allowed(curriculum_file, tmp_path, two_spectra):
    model_file, run_dir = tmp_path / "models" / "gru.py", tmp_path / "run"
    model_file.parent.mkdir()
    shutil.copy(CUSTOM, model_file)
    options = ["-c", curriculum_file, "--model", f"{model_file}:tiny_gru", *SHORT]
    assert invoke("train", "--out", run_dir, "--max-steps", "4", *options).exit_code == 0
    model_file.write_text(model_file.read_text() + "\n# edited after training\n")
    commands = {
        "resume": ["train", "--out", run_dir, "--resume", "-q"],
        "fork": ["train", "--out", tmp_path / "fork", "--fork-from", run_dir, *options],
        "evaluate": ["evaluate", run_dir, "--mgf", two_spectra, "--max-length", "8"],
        "predict": ["predict", run_dir, "--mgf", two_spectra, "--mztab", tmp_path / "p.mztab"],
    }
    for name, command in commands.items():
        refused = invoke(*command)
        assert refused.exit_code == 2, (name, refused.output)
        [line] = refused.output.strip().splitlines()
        assert f"the model file {model_file} changed since the run recorded it" in line, name
        assert "--allow-changed-model" in line
    assert not (tmp_path / "fork").exists()  # refused before anything was copied
    with pytest.raises(ModelError, match="changed since the run recorded it"):
        train(None, run_dir, resume=True)  # what ab does with an interrupted run
    for name in ("evaluate", "predict", "fork", "resume"):
        allowed = invoke(*commands[name], "--allow-changed-model")
        assert allowed.exit_code == 0, (name, allowed.output)
    assert read_run(run_dir).status == "finished" and read_run(tmp_path / "fork").last_step == 12

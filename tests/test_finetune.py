"""``train --init-from``: a new run from a trained model's weights, and what it refuses."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.errors import RunError
from curriculum_cli.model.factory import build_model
from curriculum_cli.spectra.vocabulary import Vocabulary
from curriculum_cli.training.checkpoint import load_initial_weights
from curriculum_cli.training.config import read_run_config
from curriculum_cli.training.launch import run_training
from curriculum_cli.training.loop import SilentReporter
from curriculum_cli.training.runlog import METRICS_FILE, TIMING_FIELDS
from curriculum_cli.training.settings import TrainOptions
from tests.helpers import SAMPLE_MGF, TEST_MODEL_FACTORY, two_stage_curriculum

runner = CliRunner()

#: tiny_run_config's settings as ``pepcurr train`` options, without --model (the source's)
OPTIONS = TrainOptions(curriculum=two_stage_curriculum(3, 3), device="cpu", batch_size=8, lr=2e-3,
               val_size=16, decode_size=4, val_every=10, grad_every=10, checkpoint_every=3,
               log_every=3)  # fmt: skip


def _records(run_dir) -> list[dict]:
    lines = (run_dir / METRICS_FILE).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_FIELDS}
            for line in lines if '"resume"' not in line]  # fmt: skip


def test_init_from_starts_from_the_weights_records_them_and_resumes_exactly(ab_runs, tmp_path):
    source = ab_runs["late"][0]  # 40 steps of the test model (a factory)
    result = run_training(tmp_path / "ft", OPTIONS.model_copy(update={"init_from": source}))
    assert result.status == "finished" and result.step == 6  # a fresh schedule: step 0 to 6
    config = read_run_config(tmp_path / "ft")
    checkpoint = (source / "last.pt").resolve()
    assert config.model == TEST_MODEL_FACTORY  # --model left out: the source's model
    assert config.init_from.path == str(checkpoint) and config.init_from.step == 40
    assert config.init_from.checkpoint_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    # the same validation sets: step 0 of the new run scores exactly what the source's end did
    source_end = [r for r in _records(source) if r["event"] == "val" and r["step"] == 40]
    new_start = [r for r in _records(tmp_path / "ft") if r["event"] == "val" and r["step"] == 0]
    assert [{**r, "step": 0} for r in source_end] == new_start
    # stopped and resumed, a fine-tuned run ends as the uninterrupted one did
    run_training(tmp_path / "ft2", OPTIONS.model_copy(update={"init_from": source}), max_steps=3)
    run_training(tmp_path / "ft2", TrainOptions(init_from=source), resume=True)
    assert _records(tmp_path / "ft2") == _records(tmp_path / "ft")


class _Messages(SilentReporter):
    def __init__(self):
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def test_fine_tuning_into_casanovo_keeps_every_shared_token_and_trains(ab_runs, tmp_path):
    source = ab_runs["late"][0]  # the test model, standard vocabulary, 40 steps
    options = OPTIONS.model_copy(update={"init_from": source, "vocab": "casanovo"})
    messages = _Messages()
    result = run_training(tmp_path / "cas", options, reporter=messages)
    assert result.status == "finished" and result.step == 6
    config = read_run_config(tmp_path / "cas")
    casanovo, standard = Vocabulary.named("casanovo"), Vocabulary.default()
    assert config.vocab == casanovo
    change = config.init_from.vocabulary
    assert (change.kept, change.dropped) == (list(standard.residues), [])
    assert change.added == [m.token for m in casanovo.modifications]
    assert [line for line in messages.lines if "vocabulary" in line] == [
        "fine-tuning vocabulary standard into casanovo: 19 tokens kept, 7 added (M[Oxidation], "
        "N[Deamidated], Q[Deamidated], [Acetyl]-, [Carbamyl]-, [Ammonia-loss]-, "
        "[+25.980265]-), 0 dropped"
    ]  # fmt: skip

    # The weights the run started from: every shared token's slices exactly the checkpoint's.
    trained = torch.load(source / "last.pt", weights_only=True)["model"]
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.architecture, casanovo)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    load_initial_weights(model, config)
    start = model.state_dict()
    per_token = model.per_token_parameters()
    for name, tensor in trained.items():
        if name not in per_token:
            assert torch.equal(start[name], tensor), name
    old, new = standard.tokens, casanovo.tokens
    for name, (dim, width) in per_token.items():

        def slice_of(weights, tokens, token, name=name, dim=dim, width=width):
            return weights[name].narrow(dim, tokens.index(token) * width, width)

        for token in new:
            origin = token if token in old else (token[0] if token[0] != "[" else None)
            got = slice_of(start, new, token)
            want = slice_of(trained, old, origin) if origin else slice_of(fresh, new, token)
            assert torch.equal(got, want), (name, token)
    assert set(per_token) == {name for name in trained if trained[name].shape != start[name].shape}


def test_a_model_that_does_not_name_its_per_token_parameters_is_refused():
    from curriculum_cli.model.token_transfer import transfer_token_weights

    plain = torch.nn.Linear(2, 2)
    with pytest.raises(RunError, match="per_token_parameters"):
        transfer_token_weights(plain.state_dict(), plain, Vocabulary.default(),
                               Vocabulary.named("casanovo"), "--init-from x")  # fmt: skip


def test_init_from_refuses_another_model_or_path(ab_runs, tmp_path):
    source = ab_runs["late"][0]
    other_model = ["train", "-c", "revised", "--scale", "0.0001", "--model", "tiny", "--out",
                   str(tmp_path / "b"), "--init-from", str(source)]  # fmt: skip
    cases = [(other_model, "the model differs: the checkpoint lacks parameters")]
    for path, message in [(SAMPLE_MGF, "not a run directory or a checkpoint in one"),
                          (tmp_path / "none", "no such run directory or checkpoint")]:  # fmt: skip
        cases.append((["train", "--out", str(tmp_path / "c"), "--init-from", str(path)], message))
    for arguments, message in cases:
        result = runner.invoke(app, arguments)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output

"""Data-parallel training: 2 gloo ranks on the CPU against one process with the same data shards.

One test, because starting a process group costs seconds: two ranks at batch
8 each must follow the loss curve of one process at batch 16 drawn as 2 data
shards (the same spectra, the loss as the mean over shards), take the same
gated-stage decisions, write nothing but rank 0's files, resume with 2 ranks
and refuse to resume with 1.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.multiprocessing as mp

from curriculum_cli.curriculum.schema import Curriculum, Stage, StartWhen
from curriculum_cli.errors import RunError
from curriculum_cli.training import distributed
from curriculum_cli.training.checkpoint import CHECKPOINT_FILE, load_model
from curriculum_cli.training.config import RunConfig
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlock import LOCK_FILE
from curriculum_cli.training.runlog import TIMING_FIELDS
from tests.helpers import tiny_run_config


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank(rank: int, world_size: int, port: int, config_json: str, run_dir: str) -> None:
    """One torchrun-like rank in its own process: the environment torchrun sets, then train."""
    os.environ.update(_rank_environment(rank, world_size, port))
    torch.set_num_threads(1)
    _train_and_resume(config_json, run_dir)


def _rank_environment(rank: int, world_size: int, port: int) -> dict[str, str]:
    return dict(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip


def _train_and_resume(config_json: str, run_dir: str) -> None:
    """Train to step 6, then resume to the end (every rank's generators saved and restored)."""
    config = RunConfig.model_validate_json(config_json)
    assert train(config, run_dir, max_steps=6).status == "stopped"
    assert train(config, run_dir, resume=True).status == "finished"


def _curve(run_dir) -> dict[tuple, dict]:
    """(event, step, split) -> the record's numbers (timings left out)."""
    curve = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] in ("train", "val", "grad", "stage"):
            key = (record["event"], record["step"], record.get("split"))
            assert key not in curve, f"{key} logged twice"
            skip = (*TIMING_FIELDS, "residue_accuracy", "token_accuracy")  # rank 0's share
            curve[key] = {k: v for k, v in record.items() if isinstance(v, float) and k not in skip}
    return curve


def _gated_curriculum() -> Curriculum:
    """12 steps: CE for 3, then the spectrum loss once a validation sees any token accuracy."""
    gate = StartWhen(metric="token_accuracy_easy", at_least=0.0, latest_step=9)
    data = dict(min_length=6, max_length=8, noise_peaks=1)
    return Curriculum(name="test_gated_short", description="tiny gated test curriculum", stages=[
        Stage(name="foundation", steps=3, **data),
        Stage(name="spectrum", steps=9, start_when=gate, spectrum_loss_weight=0.2,
              precursor_loss_weight=0.02, **data),
    ])  # fmt: skip


def test_two_gloo_ranks_follow_one_process_at_twice_the_batch(tmp_path, monkeypatch):
    # A rank that cannot start fails the test within 2 minutes, not after the 15-minute default.
    monkeypatch.setattr(distributed, "TIMEOUT", timedelta(seconds=120))
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "120")
    settings = dict(batch_size=16, data_shards=2, log_every=1, val_every=4, grad_every=4)
    single = tiny_run_config(_gated_curriculum(), **settings)
    two_ranks = single.model_copy(update={"world_size": 2})
    run_dir, port = tmp_path / "ranks", _free_port()
    # Rank 1 in a fresh process (it imports torch meanwhile), rank 0 in this one.
    other = mp.get_context("spawn").Process(
        target=_rank, args=(1, 2, port, two_ranks.model_dump_json(), str(run_dir))
    )
    other.start()
    train(single, tmp_path / "single")
    with monkeypatch.context() as env:
        for name, value in _rank_environment(0, 2, port).items():
            env.setenv(name, value)
        _train_and_resume(two_ranks.model_dump_json(), str(run_dir))
    other.join(timeout=60)
    assert other.exitcode == 0

    # Same curve: loss terms each step, gradient measurements, validations, the gate opening.
    expected, got = _curve(tmp_path / "single"), _curve(run_dir)
    assert expected.keys() == got.keys()
    assert {key[0] for key in got} == {"train", "val", "grad", "stage"}
    for key, values in expected.items():
        torch.testing.assert_close(got[key], values, rtol=1e-3, atol=1e-5, msg=str(key))
    # Rank 0 alone wrote: its files only, each record once (checked above).
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["run.json", "metrics.jsonl", CHECKPOINT_FILE, LOCK_FILE]
    )
    stored = json.loads((run_dir / "run.json").read_text())["config"]
    assert stored["world_size"] == 2 and stored["batch_size"] == 16
    model, _ = load_model(run_dir)  # loadable on the CPU by one process
    assert next(model.parameters()).device.type == "cpu"
    # A run killed before its end record resumes with 2 ranks, not with 1.
    lines = (run_dir / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "metrics.jsonl").write_text("".join(lines[:-1]))
    with pytest.raises(RunError, match="trained by 2 process"):
        train(two_ranks, run_dir, resume=True)

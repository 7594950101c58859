"""TensorBoard: ``train --tensorboard``, ``export-tensorboard``, read back by EventAccumulator."""

from __future__ import annotations

import json
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlog import METRICS_FILE
from curriculum_cli.training.tensorboard_log import TENSORBOARD_DIR, export_tensorboard
from tests.helpers import tiny_run_config, two_stage_curriculum

runner = CliRunner()


def _events(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def _scalars(events: EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}  # fmt: skip


def test_train_tensorboard_mirrors_the_log_resumes_and_exports_the_same(tmp_path):
    config = tiny_run_config(two_stage_curriculum(3, 3), log_every=2, val_every=3, grad_every=2,
                             checkpoint_every=2, batch_size=4, decode_size=2)  # fmt: skip
    run = tmp_path / "run"
    train(config, run, max_steps=4, tensorboard=True)
    train(config, run, resume=True, tensorboard=True)  # the resumed session purges steps >= 4
    records = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    events = _events(run / TENSORBOARD_DIR)
    scalars = _scalars(events)

    def logged(event, field, split=None):
        return [(r["step"], pytest.approx(r[field], rel=1e-6)) for r in records
                if r["event"] == event and r.get("split", split) == split]  # fmt: skip

    assert scalars["train/ce"] == logged("train", "ce") and len(scalars["train/ce"]) == 3
    assert scalars["val_hard/residue_accuracy"] == logged("val", "residue_accuracy", "val_hard")
    assert scalars["val_easy/ce"] == logged("val", "ce", "val_easy")
    assert scalars["grad/spectrum_cosine"] == logged("grad", "spectrum_cosine")
    assert scalars["train/w_spectrum"] == [
        (2, 0.0),
        (4, pytest.approx(0.2)),
        (6, pytest.approx(0.2)),
    ]
    stages = [(e.step, e.tensor_proto.string_val[0].decode())
              for e in events.Tensors("stage/text_summary")]  # fmt: skip
    assert [step for step, _ in stages] == [0, 3]
    assert "physics" in stages[1][1] and "w_spectrum 0.2" in stages[1][1]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    ).session_start_info.hparams
    assert hparams["batch_size"].number_value == 4 and hparams["seed"].number_value == 0
    assert hparams["curriculum_name"].string_value == "test_two_stage"

    # export-tensorboard writes the same values from metrics.jsonl (one mapping for both)
    exported = export_tensorboard(run, tmp_path / "exported")
    assert _scalars(_events(exported.log_dir)) == scalars
    again = export_tensorboard(run, tmp_path / "exported")  # replaces, never duplicates
    assert again.n_replaced == 1 and _scalars(_events(again.log_dir)) == scalars


def test_without_tensorboard_the_options_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard fails
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    for arguments in (["train", "--out", str(tmp_path / "r"), "--tensorboard"],
                      ["export-tensorboard", str(tmp_path)]):  # fmt: skip
        result = runner.invoke(app, arguments)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert "pip install 'pepcurr[tensorboard]'" in lines[0]
    assert not (tmp_path / "r").exists()

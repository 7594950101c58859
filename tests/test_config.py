"""The typed run configuration: building, run.json round trip, the older format, bad keys."""

from __future__ import annotations

import json
import shutil

import pytest

from curriculum_cli.analysis.compare import compare_runs
from curriculum_cli.analysis.run_values import run_facts
from curriculum_cli.errors import PepcurrError, RunError, validation_problem_lines
from curriculum_cli.model.factory import preset_architectures
from curriculum_cli.model.transformer import MODEL_PRESETS
from curriculum_cli.training.checkpoint import load_model
from curriculum_cli.training.config import (
    RUN_FILE,
    RUN_FORMAT,
    RunConfig,
    read_provenance,
    read_run_config,
    run_json,
)
from curriculum_cli.training.loop import train
from curriculum_cli.training.resolve import build_run_config, resume_conflicts
from curriculum_cli.training.runlog import read_run
from curriculum_cli.training.settings import TrainOptions
from tests.helpers import TEST_DATA

LEGACY_RUN = TEST_DATA / "legacy-run-v0"
#: run.json of each model kind as written before architectures named their kind
RUNS_WITHOUT_KIND = {"tiny": TEST_DATA / "run-v2-tiny", "trm-tiny": TEST_DATA / "run-v2-trm-tiny"}


def test_defaults_are_resolved_once_no_auto_sentinels_left():
    config = build_run_config("revised", scale=0.02)
    assert config.total_steps == 2_000 and config.nominal_total_steps == 100_000
    assert config.val_every == config.grad_every == config.checkpoint_every == 40
    assert config.warmup_steps == 100
    assert config.architecture == MODEL_PRESETS["tiny"]
    assert config.log_every == 10 and config.decode_every == 5


def test_run_json_round_trips_and_keeps_provenance_apart(tmp_path):
    config = build_run_config("current", scale=0.01, seed=3, lr=5e-4)
    (tmp_path / RUN_FILE).write_text(json.dumps(run_json(config, {"torch": "x"})))
    assert read_run_config(tmp_path) == config
    assert read_provenance(tmp_path) == {"torch": "x"}
    data = json.loads((tmp_path / RUN_FILE).read_text())
    assert data["format"] == RUN_FORMAT and "torch" not in data["config"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, r"config: bogus: unknown key"),
        ({"batch_size": "32"}, r"config: batch_size: .*got '32'"),
        ({"lr": -1.0}, r"config: lr: Input should be greater than 0"),
        ({"device": "tpu"}, r"config: device: Input should be 'auto', 'cpu' or 'cuda'"),
        (
            {"architecture": {"d_model": 8, "wings": 2}},
            r"config: architecture.transformer.wings: unknown key",
        ),
    ],
)
def test_unknown_or_mistyped_keys_name_the_key(tmp_path, change, message):
    data = run_json(build_run_config("revised", scale=0.01), {})
    data["config"].update(change)
    (tmp_path / RUN_FILE).write_text(json.dumps(data))
    with pytest.raises(RunError, match=message):
        read_run_config(tmp_path)


def test_another_format_is_refused_with_the_reason(tmp_path):
    (tmp_path / RUN_FILE).write_text(json.dumps({"format": "pepcurr-run/9", "config": {}}))
    with pytest.raises(RunError, match="format 'pepcurr-run/9' is not one this pepcurr reads"):
        read_run_config(tmp_path)


def test_a_run_of_the_older_flat_format_still_loads_compares_and_evaluates(tmp_path):
    run = tmp_path / "legacy"
    shutil.copytree(LEGACY_RUN, run)
    config = read_run_config(run)
    assert config.model == "test" and config.architecture.d_model == 32
    assert config.val_every == 10 and config.warmup_steps == 1  # 0 = auto, resolved as 0.1 did
    model, _ = load_model(run)
    assert not model.training
    comparison = compare_runs([run])
    assert comparison.runs.iloc[0]["step"] == 20
    # 0.1 logged token accuracy only: curves and steps to target read it for residue accuracy
    log = read_run(run)
    assert log.logged_as("residue_accuracy") == "token_accuracy"
    hard = log.events("val")[log.events("val")["split"] == "val_hard"]
    best = hard.loc[hard["token_accuracy"].idxmax()]
    facts = run_facts(log, 20, "residue_accuracy_hard", float(best["token_accuracy"]))
    assert 0 < facts["steps_to_target"] <= best["step"]


@pytest.mark.parametrize(("preset", "kind"), [("tiny", "transformer"), ("trm-tiny", "recursive")])
def test_a_run_json_without_the_architecture_kind_reads_resumes_and_compares(
    tmp_path, preset, kind
):
    old = RUNS_WITHOUT_KIND[preset]
    assert "kind" not in json.loads((old / RUN_FILE).read_text())["config"]["architecture"]
    config = read_run_config(old)
    assert config.architecture == preset_architectures()[preset]
    assert config.architecture.kind == kind
    run = tmp_path / "run"
    train(config, run, max_steps=4)
    written = json.loads((run / RUN_FILE).read_text())["config"]
    assert written["architecture"]["kind"] == kind and read_run_config(run) == config
    shutil.copy(old / RUN_FILE, run / RUN_FILE)  # the old layout, resumed and compared
    assert train(config, run, resume=True).status == "finished"
    assert compare_runs([run]).runs.iloc[0]["step"] == config.total_steps


def test_an_unknown_architecture_kind_is_named(tmp_path):
    data = run_json(build_run_config("revised", scale=0.01), {})
    data["config"]["architecture"]["kind"] = "rnn"
    (tmp_path / RUN_FILE).write_text(json.dumps(data))
    with pytest.raises(RunError, match="architecture: .*'rnn'.*'transformer', 'recursive'"):
        read_run_config(tmp_path)


def test_unknown_model_and_bad_scale_are_clear_errors():
    with pytest.raises(PepcurrError, match="unknown model 'huge'; the presets are: tiny, base"):
        build_run_config("revised", model="huge")
    with pytest.raises(PepcurrError, match="--scale must be a number > 0"):
        build_run_config("revised", scale=0.0)


def test_resume_conflicts_name_each_given_option_that_differs():
    stored = build_run_config("revised", scale=0.01, seed=1)
    warnings = resume_conflicts(stored, TrainOptions(seed=5, curriculum="revised", lr=None))
    assert warnings == [
        "warning: ignoring --seed 5: the run was started with 1, and --resume continues it "
        "with its own settings"
    ]


def test_data_shards_divide_the_batch_and_are_whole_per_rank():
    from pydantic import ValidationError

    assert build_run_config("revised").data_shards == 1
    assert build_run_config("revised", world_size=2, batch_size=16).data_shards == 2
    with pytest.raises(ValidationError, match="batch_size 10 is not a multiple of data_shards 4"):
        build_run_config("revised", batch_size=10, data_shards=4)
    with pytest.raises(ValidationError, match="data_shards 3 is not a multiple of world_size 2"):
        build_run_config("revised", batch_size=12, data_shards=3, world_size=2)
    # the CLI's one line is the validator's own message, without pydantic's decoration
    with pytest.raises(ValidationError) as raised:
        build_run_config("revised", batch_size=32, data_shards=3)
    assert validation_problem_lines(raised.value) == [
        "batch_size 32 is not a multiple of data_shards 3; every shard draws the same number "
        "of spectra"
    ]


def test_decoded_spectra_are_at_most_the_validation_spectra():
    assert build_run_config("revised", val_size=64).decode_size == 64  # default 256, capped
    assert build_run_config("revised", val_size=64, decode_size=8).decode_size == 8
    with pytest.raises(PepcurrError, match="--decode-size 65 is larger than the validation sets"):
        build_run_config("revised", val_size=64, decode_size=65)
    stored = build_run_config("revised").model_dump(mode="json")
    with pytest.raises(ValueError, match="decode_size 512 is larger than val_size 256"):
        RunConfig.model_validate_json(json.dumps({**stored, "decode_size": 512}))


def test_the_residue_distribution_reaches_the_generator():
    """--residues uniform draws K/R inside peptides; the tryptic default never does."""
    import torch

    from curriculum_cli.training.validation import make_validation_sets

    inner_kr = {}
    for residues in ("tryptic", "uniform"):
        config = build_run_config("revised", scale=0.001, val_size=64,
                                  residue_distribution=residues)  # fmt: skip
        tokens = make_validation_sets(config, torch.device("cpu"))["val_easy"].tokens
        kr = [config.vocab.tokens.index(r) for r in ("K", "R")]
        inner = tokens[:, :6]  # every peptide has at least 7 residues: positions 0-5 are inside
        inner_kr[residues] = int(torch.isin(inner, torch.tensor(kr)).sum())
    assert inner_kr["tryptic"] == 0 and inner_kr["uniform"] > 0

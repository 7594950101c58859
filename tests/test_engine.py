"""The training engine, on tiny real CPU runs: learning, stages, resume, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from curriculum_cli.curriculum.presets import preset
from curriculum_cli.errors import RunError, TrainingError
from curriculum_cli.training.checkpoint import (
    CHECKPOINT_FILE,
    CKPT_LOG_BYTES,
    CKPT_MODEL,
    CKPT_STAGE_INDEX,
    CKPT_STAGE_SCHEDULE,
    CKPT_STEP,
    load_checkpoint,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from curriculum_cli.training.config import RUN_FILE, read_run_config
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlog import METRICS_FILE, TIMING_FIELDS, read_run
from tests.helpers import REPO_ROOT, gated_curriculum, tiny_run_config, two_stage_curriculum


def comparable(records: list[dict]) -> list[dict]:
    """Records without timing fields and without the event marking a resume."""
    return [
        {k: v for k, v in r.items() if k not in TIMING_FIELDS}
        for r in records
        if r["event"] != "resume"
    ]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def revised_run(tmp_path_factory):
    """revised scaled to 200 steps, with the test model."""
    run_dir = tmp_path_factory.mktemp("revised") / "run"
    config = tiny_run_config(preset("revised"), scale=0.002, val_every=50, grad_every=25)
    result = train(config, run_dir)
    return config, result, run_dir


def test_run_directory_holds_config_metrics_and_checkpoint(revised_run):
    config, result, run_dir = revised_run
    assert result.status == "finished" and result.step == 200
    stored = json.loads((run_dir / RUN_FILE).read_text())
    assert stored["config"]["curriculum"]["stages"][0]["steps"] == 30
    assert stored["provenance"]["torch"] == torch.__version__
    assert read_run_config(run_dir) == config
    assert config.nominal_total_steps == 100_000
    frame = pd.read_json(run_dir / METRICS_FILE, lines=True)
    assert set(frame["event"]) >= {"train", "val", "grad", "stage", "end"}
    assert frame["step"].dtype.kind == "i"
    val = frame[frame["event"] == "val"]
    assert set(val["split"]) == {"val_easy", "val_hard"}
    assert val["token_accuracy"].between(0, 1).all()
    assert val["residue_accuracy"].between(0, 1).all()
    assert frame[frame["event"] == "train"]["residue_accuracy"].between(0, 1).all()
    assert stored["config"]["residue_distribution"] == "tryptic"
    state = load_checkpoint(run_dir / CHECKPOINT_FILE)
    assert state["step"] == 200


def test_training_loss_falls(revised_run):
    _, _, run_dir = revised_run
    val = read_run(run_dir).events("val")
    easy = val[val["split"] == "val_easy"]
    assert easy["ce"].iloc[-1] < easy["ce"].iloc[0] - 0.2
    assert easy["token_accuracy"].iloc[-1] > easy["token_accuracy"].iloc[0]


def test_stages_change_at_scaled_boundaries(revised_run):
    config, _, run_dir = revised_run
    stages = read_run(run_dir).events("stage")
    assert list(stages["step"]) == config.curriculum.stage_starts()
    assert list(stages["stage"]) == [s.name for s in config.curriculum.stages]
    introductions = config.curriculum.introductions()
    assert introductions == {"spectrum": 30, "precursor": 60}


def test_gradient_measurement_logs_every_loss_even_before_introduction(revised_run):
    _, _, run_dir = revised_run
    grads = read_run(run_dir).events("grad")
    # every 25 steps, and every 25 // 4 = 6 steps within 2% of the run (4 steps) of the
    # introductions at 30 (spectrum) and 60 (precursor)
    assert list(grads["step"]) == [0, 25, 30, 50, 60, 75, 100, 125, 150, 175]
    before = grads[grads["step"] < 30]
    assert (before["spectrum_norm"] > 0).all() and (before["spectrum_ratio_weighted"] == 0).all()
    assert grads["spectrum_cosine"].between(-1, 1).all()
    assert grads["precursor_cosine"].between(-1, 1).all()


def test_load_model_gives_an_eval_model(revised_run):
    config, _, run_dir = revised_run
    model, loaded = load_model(run_dir)
    assert not model.training and loaded == config


def test_steps_per_s_is_training_speed_and_wall_s_the_time_with_validation(tmp_path):
    """A validation of 1,024 spectra every 2 steps costs far more than the 2 steps: it is set
    aside from ``steps_per_s``, and ``wall_s`` (seconds since the run started) counts it."""
    config = tiny_run_config(two_stage_curriculum(4, 4), val_size=1024, val_every=2,
                             log_every=2, grad_every=100, checkpoint_every=100)  # fmt: skip
    train(config, tmp_path / "run")
    logged = read_run(tmp_path / "run").events("train")
    assert list(logged["step"]) == [2, 4, 6, 8] and logged["wall_s"].is_monotonic_increasing
    # each later window: 2 steps, then a validation; wall-clock speed from wall_s
    wall_rate = 2 / logged["wall_s"].diff().iloc[1:]
    assert (logged["steps_per_s"].iloc[1:] > 3 * wall_rate).all(), logged


def test_auxiliary_loss_changes_nothing_before_its_introduction(tmp_path):
    with_aux = tiny_run_config(two_stage_curriculum(5, 5, spectrum=0.5, precursor=0.05))
    without_aux = tiny_run_config(two_stage_curriculum(5, 5, spectrum=0.0, precursor=0.0))

    def params_after(config, steps, name):
        train(config, tmp_path / name, max_steps=steps)
        return load_checkpoint(tmp_path / name / CHECKPOINT_FILE)[CKPT_MODEL]

    before_a, before_b = params_after(with_aux, 5, "a5"), params_after(without_aux, 5, "b5")
    for key in before_a:
        assert torch.equal(before_a[key], before_b[key]), key
    after_a, after_b = params_after(with_aux, 6, "a6"), params_after(without_aux, 6, "b6")
    assert any(not torch.equal(after_a[k], after_b[k]) for k in after_a)


def test_resume_is_bit_identical_on_cpu(tmp_path):
    config = tiny_run_config(val_every=7, grad_every=6, checkpoint_every=5)
    train(config, tmp_path / "straight")
    stopped = train(config, tmp_path / "resumed", max_steps=17)
    assert stopped.status == "stopped" and stopped.step == 17
    # a crash after the checkpoint at 17 leaves a half-written line behind
    with open(tmp_path / "resumed" / METRICS_FILE, "a") as handle:
        handle.write('{"event": "train", "st')
    resumed = train(config, tmp_path / "resumed", resume=True)
    assert resumed.status == "finished" and resumed.step == 40
    straight = comparable(read_jsonl(tmp_path / "straight" / METRICS_FILE))
    again = comparable(read_jsonl(tmp_path / "resumed" / METRICS_FILE))
    assert again == straight
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT_FILE)[CKPT_MODEL]
    b = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_FILE)[CKPT_MODEL]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    config = tiny_run_config(two_stage_curriculum(6, 6))
    train(config, tmp_path / "a")
    train(config, tmp_path / "b")
    train(tiny_run_config(two_stage_curriculum(6, 6), seed=1), tmp_path / "c")
    a, b, c = (comparable(read_jsonl(tmp_path / n / METRICS_FILE)) for n in "abc")
    assert a == b and a != c


def nan_at(steps):
    """A loss hook that makes the loss NaN at the given (0-based) steps."""
    return lambda step, loss: loss * float("nan") if step in steps else loss


def test_injected_nan_is_skipped_counted_and_training_goes_on(tmp_path):
    result = train(tiny_run_config(), tmp_path / "run", loss_hook=nan_at({3, 4}))
    assert result.status == "finished" and result.skipped_steps == 2
    skips = read_run(tmp_path / "run").events("skip")
    assert list(skips["step"]) == [4, 5] and list(skips["consecutive"]) == [1, 2]


def test_too_many_non_finite_steps_stop_with_a_usable_checkpoint(tmp_path):
    # log_every=1: the rule is checked at logging steps (device reads), so here at every step
    config = tiny_run_config(max_consecutive_skips=5, log_every=1)
    with pytest.raises(TrainingError, match="5 non-finite steps in a row"):
        train(config, tmp_path / "run", loss_hook=nan_at(set(range(12, 40))))
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)
    assert state["step"] == 17
    assert read_run(tmp_path / "run").status == "failed"
    assert all(torch.isfinite(v).all() for v in state[CKPT_MODEL].values())


def test_checkpoint_interrupted_mid_write_leaves_previous_loadable(tmp_path):
    path = tmp_path / CHECKPOINT_FILE
    save_checkpoint(path, {"step": 1, "weights": torch.ones(3)})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(1000), "bad": Unpicklable()})
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]


def test_finished_run_is_not_overwritten(tmp_path):
    config = tiny_run_config(two_stage_curriculum(3, 3))
    train(config, tmp_path / "run")
    before = (tmp_path / "run" / METRICS_FILE).read_text()
    with pytest.raises(RunError, match="already holds a run"):
        train(config, tmp_path / "run")
    again = train(config, tmp_path / "run", resume=True)
    assert again.status == "finished"
    assert (tmp_path / "run" / METRICS_FILE).read_text() == before


def test_ctrl_c_saves_checkpoint_and_log_then_resume_finishes(tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "curriculum_cli",
        "train",
        "--scale",
        "0.004",
        "--out",
        str(run_dir),
        "--val-every",
        "100",
        "--grad-every",
        "100",
        "--decode-size",
        "8",
        "--batch-size",
        "8",
        "--val-size",
        "32",
        "--quiet",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    metrics = run_dir / METRICS_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if metrics.exists() and '"event": "train"' in metrics.read_text():
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 130, output
    log = read_run(run_dir)
    assert log.status == "interrupted" and log.warnings == []
    step = load_checkpoint(run_dir / CHECKPOINT_FILE)["step"]
    assert step == log.last_step and 0 < step < 400


def test_train_command_end_to_end_then_resume_with_a_warning(tmp_path):
    from typer.testing import CliRunner

    from curriculum_cli.cli.app import app

    run_dir = tmp_path / "run"
    common = ["train", "--out", str(run_dir), "--val-every", "10", "--grad-every", "10",
              "--val-size", "32", "--decode-size", "8", "--batch-size", "8", "-q"]  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(app, [*common, "--scale", "0.0002", "--max-steps", "12"])
    assert first.exit_code == 0, first.output
    assert "stopped at step 12/20" in first.output
    assert {p.name for p in run_dir.iterdir()} >= {RUN_FILE, METRICS_FILE, CHECKPOINT_FILE}
    again = runner.invoke(app, [*common, "--resume", "--seed", "5"])
    assert again.exit_code == 0, again.output
    assert "warning: ignoring --seed 5" in again.output
    assert "finished at step 20/20" in again.output
    assert read_run(run_dir).status == "finished"
    refused = runner.invoke(app, common)
    assert refused.exit_code == 2 and "already holds a run" in refused.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_fails_before_the_run_directory_exists(tmp_path):
    with pytest.raises(RunError, match="sees no CUDA device"):
        train(tiny_run_config(device="cuda"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_foreign_run_json_is_a_clear_error(tmp_path):
    (tmp_path / RUN_FILE).write_text('{"seed": 1}')
    with pytest.raises(RunError, match="not a pepcurr run"):
        load_model(tmp_path)


# ----------------------------------------------------------------------------
# Gated stages (start_when): tests/helpers.py's gated_curriculum, planned starts 0, 5, 11
# ----------------------------------------------------------------------------


def gated_config(**gates):
    """The gated test curriculum with validations at 0, 7, 14, ..., 35 and 40."""
    return tiny_run_config(gated_curriculum(**gates), val_every=7, grad_every=6)


def val_values(run_dir, split: str, metric: str) -> dict[int, float]:
    """Validation step -> value of ``metric`` on ``split``."""
    val = [r for r in read_jsonl(run_dir / METRICS_FILE) if r["event"] == "val"]
    return {r["step"]: r[metric] for r in val if r["split"] == split}


def stage_records(run_dir) -> list[dict]:
    return [r for r in read_jsonl(run_dir / METRICS_FILE) if r["event"] == "stage"]


@pytest.fixture(scope="module")
def latest_run(tmp_path_factory):
    """The spectrum gate never opens by its metric (1.0): it starts at latest_step 30."""
    run_dir = tmp_path_factory.mktemp("gated") / "latest"
    train(gated_config(spectrum_at_least=1.0, spectrum_latest=30), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def metric_run(tmp_path_factory, latest_run):
    """The spectrum gate opens by its metric, at a validation after the first one it could use.

    Until the gate opens the run trains exactly as ``latest_run`` (same seed,
    same first stage), so that run tells which value a later validation
    reaches: the threshold is the first value at a validation after step 7
    that beats every earlier one from the earliest start (5) on, so the gate
    stays shut at step 7 and opens exactly at (not above) the threshold.
    """
    easy = val_values(latest_run, "val_easy", "token_accuracy")
    candidates = [step for step in sorted(easy) if 7 < step <= 28]
    threshold = next(
        (easy[s] for s in candidates if easy[s] > max(easy[v] for v in easy if 5 <= v < s)),
        easy[7],
    )
    config = gated_config(spectrum_at_least=threshold, spectrum_latest=30)
    run_dir = tmp_path_factory.mktemp("gated") / "metric"
    train(config, run_dir)
    return config, threshold, run_dir


def test_gated_stage_starts_at_the_first_validation_at_or_above_its_threshold(metric_run):
    _, threshold, run_dir = metric_run
    easy = val_values(run_dir, "val_easy", "token_accuracy")
    opened = min(step for step, value in easy.items() if step >= 5 and value >= threshold)
    assert 7 < opened < 30, "the calibration should open the gate after the first validation"
    foundation, spectrum, precursor = stage_records(run_dir)
    assert (foundation["step"], "trigger" not in foundation) == (0, True)
    assert spectrum["step"] == opened and spectrum["stage"] == "spectrum"
    assert spectrum["trigger"] == "metric" and spectrum["metric"] == "token_accuracy_easy"
    assert spectrum["value"] == easy[opened] and spectrum["threshold"] == threshold
    # the spectrum stage's 6 steps count from its actual start; the precursor gate (>= 0)
    # then opens at the first validation at or after that earliest start
    hard = val_values(run_dir, "val_hard", "residue_accuracy")
    then = min(step for step in hard if step >= opened + 6)
    assert precursor["step"] == then and precursor["trigger"] == "metric"
    assert precursor["value"] == hard[then] and precursor["threshold"] == 0.0


def test_gate_that_never_opens_starts_the_stage_at_latest_step(latest_run):
    foundation, spectrum, precursor = stage_records(latest_run)
    assert [r["step"] for r in (foundation, spectrum, precursor)] == [0, 30, 38]
    easy = val_values(latest_run, "val_easy", "token_accuracy")
    assert spectrum["trigger"] == "latest_step" and spectrum["threshold"] == 1.0
    assert spectrum["value"] == easy[28]  # the last value seen
    # the precursor stage may start from 36; no validation between 36 and its latest 38
    hard = val_values(latest_run, "val_hard", "residue_accuracy")
    assert precursor["trigger"] == "latest_step" and precursor["value"] == hard[35]
    # the weights follow the actual stages (a train record at s is the update s-1 -> s)
    for record in read_jsonl(latest_run / METRICS_FILE):
        if record["event"] == "train":
            assert record["w_spectrum"] == (0.2 if record["step"] > 30 else 0.0), record
            assert record["w_precursor"] == (0.02 if record["step"] > 38 else 0.0), record


@pytest.mark.parametrize("where", ["before", "at", "after"])
def test_gated_resume_is_bit_identical_on_cpu(metric_run, tmp_path, where):
    """Stopped before the gate opens, at the validation that opens it, or after it."""
    config, _, straight = metric_run
    opened = stage_records(straight)[1]["step"]
    stop = {"before": opened - 3, "at": opened, "after": opened + 3}[where]
    assert train(config, tmp_path / "run", max_steps=stop).step == stop
    assert train(config, tmp_path / "run", resume=True).status == "finished"
    assert comparable(read_jsonl(tmp_path / "run" / METRICS_FILE)) == comparable(
        read_jsonl(straight / METRICS_FILE)
    )
    a = load_checkpoint(straight / CHECKPOINT_FILE)
    b = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)
    assert all(torch.equal(a[CKPT_MODEL][k], b[CKPT_MODEL][k]) for k in a[CKPT_MODEL])
    assert a[CKPT_STAGE_SCHEDULE] == b[CKPT_STAGE_SCHEDULE]


def test_a_checkpoint_without_a_stage_schedule_still_resumes(tmp_path):
    """Checkpoints written before gated stages: the schedule is rebuilt from stage_index."""
    config = tiny_run_config(two_stage_curriculum(8, 12), val_every=7)
    train(config, tmp_path / "straight")
    train(config, tmp_path / "old", max_steps=8)  # the second stage starts at 8
    state = load_checkpoint(tmp_path / "old" / CHECKPOINT_FILE)
    del state[CKPT_STAGE_SCHEDULE]
    save_checkpoint(tmp_path / "old" / CHECKPOINT_FILE, state)
    train(config, tmp_path / "old", resume=True)
    assert comparable(read_jsonl(tmp_path / "old" / METRICS_FILE)) == comparable(
        read_jsonl(tmp_path / "straight" / METRICS_FILE)
    )


def test_a_checkpoint_from_before_gate_smoothing_reads_as_its_last_values(tmp_path):
    """It kept the last value of each gate metric: that value is the one recent value."""
    from curriculum_cli.curriculum.schedule import StageSchedule

    config = tiny_run_config(gated_curriculum())
    old = {"starts": [0], "last_validation_step": 12, "last_values": {"residue_accuracy_easy": 0.6}}
    save_checkpoint(tmp_path / CHECKPOINT_FILE,
                    {CKPT_STEP: 12, CKPT_STAGE_INDEX: 0, CKPT_STAGE_SCHEDULE: old})  # fmt: skip
    schedule = StageSchedule(config.curriculum)
    schedule.load_state_dict(
        read_checkpoint(tmp_path / CHECKPOINT_FILE, config)[CKPT_STAGE_SCHEDULE]
    )
    assert schedule.recent_values == {"residue_accuracy_easy": [0.6]}
    assert schedule.last_validation_step == 12 and schedule.starts == [0]


def test_a_checkpoint_without_the_log_length_resumes_with_the_log_cut_by_step(tmp_path):
    """pepcurr 0.1 did not record the log's length: records after the checkpoint's step and
    the end record go, and the resumed run logs them again."""
    config = tiny_run_config(val_every=7, grad_every=6, checkpoint_every=5)
    train(config, tmp_path / "straight")
    train(config, tmp_path / "old", max_steps=12)
    state = load_checkpoint(tmp_path / "old" / CHECKPOINT_FILE)
    del state[CKPT_LOG_BYTES]
    save_checkpoint(tmp_path / "old" / CHECKPOINT_FILE, state)
    metrics = tmp_path / "old" / METRICS_FILE
    with metrics.open("a") as handle:  # logged after the checkpoint, before a hard kill
        handle.write(json.dumps({"event": "grad", "step": 13, "stage": "foundation"}) + "\n")
    train(config, tmp_path / "old", resume=True)
    straight = comparable(read_jsonl(tmp_path / "straight" / METRICS_FILE))
    assert comparable(read_jsonl(metrics)) == straight


def test_gradients_are_measured_densely_from_a_gated_introduction_on(latest_run):
    """A gated introduction is known once it happens: the dense window (every step within 2%
    of the run, here 1 step, with grad_every 6) follows it and is not anticipated."""
    records = read_jsonl(latest_run / METRICS_FILE)
    measured = sorted({r["step"] for r in records if r["event"] == "grad"})
    assert measured == sorted({*range(0, 40, 6), 31, 38, 39})  # introductions at 30 and 38


def test_records_written_after_the_checkpoint_are_not_doubled_on_resume(tmp_path):
    config = tiny_run_config(val_every=7, grad_every=6, checkpoint_every=5)
    train(config, tmp_path / "straight")
    train(config, tmp_path / "killed", max_steps=12)
    # a hard kill after the checkpoint at 12, once the next iteration logged its grad record
    metrics = tmp_path / "killed" / METRICS_FILE
    lines = [line for line in metrics.read_text().splitlines() if '"event": "end"' not in line]
    lines.append(json.dumps({"event": "grad", "step": 12, "stage": "foundation", "ce_norm": 1.0}))
    metrics.write_text("\n".join(lines) + "\n")
    train(config, tmp_path / "killed", resume=True)
    straight = comparable(read_jsonl(tmp_path / "straight" / METRICS_FILE))
    assert comparable(read_jsonl(metrics)) == straight


def test_a_skipped_step_leaves_weights_and_optimizer_state_untouched(tmp_path):
    from curriculum_cli.training.checkpoint import CKPT_OPTIMIZER

    config = tiny_run_config()
    train(config, tmp_path / "a", max_steps=3)
    train(config, tmp_path / "b", max_steps=4, loss_hook=nan_at({3}))  # update 3 -> 4 skipped
    a = load_checkpoint(tmp_path / "a" / CHECKPOINT_FILE)
    b = load_checkpoint(tmp_path / "b" / CHECKPOINT_FILE)
    assert all(torch.equal(a[CKPT_MODEL][k], b[CKPT_MODEL][k]) for k in a[CKPT_MODEL])
    state_a, state_b = a[CKPT_OPTIMIZER]["state"], b[CKPT_OPTIMIZER]["state"]
    for index, moments in state_a.items():
        for name, value in moments.items():
            assert torch.equal(value, state_b[index][name]), (index, name)

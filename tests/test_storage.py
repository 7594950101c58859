"""A run's files under failure and damage: a full disk or a file that may not be written is one
line naming the file and the intact checkpoint, and a resumed run repairs its log; either way
the run then finishes with the records of an uninterrupted one.

The failures are the kernel's own: ``ENOSPC`` from ``/dev/full`` (the checkpoint's temporary
file a link to it, or the open log's descriptor moved onto it mid-run), ``EACCES`` from sysfs,
where no file may be created even by root, and ``EPERM`` from an immutable log (``chattr +i``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curriculum_cli.analysis.ab import AbSpec, run_ab
from curriculum_cli.cli.app import app
from curriculum_cli.errors import StorageError
from curriculum_cli.training.checkpoint import CHECKPOINT_FILE
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlog import METRICS_FILE, read_run
from tests.helpers import AB_OPTIONS, one_error_line, tiny_run_config
from tests.test_engine import comparable, read_jsonl

DISK_FULL = Path("/dev/full")  # every write to it fails with ENOSPC
NO_CREATION = Path("/sys/pepcurr-test")  # sysfs: creating it fails with EACCES, even for root


def config():
    """40 steps, a checkpoint every 5: a stop at 5 leaves the checkpoint a failure keeps."""
    return tiny_run_config(val_every=7, grad_every=6, checkpoint_every=5)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> list[dict]:
    """The records of the run trained without interruption."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    train(config(), run_dir)
    return comparable(read_jsonl(run_dir / METRICS_FILE))


def resume_cli(run_dir: Path):
    return CliRunner().invoke(app, ["train", "--out", str(run_dir), "--resume", "--quiet"])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (DISK_FULL, "disk full writing {tmp}; the checkpoint at step 5 is intact: free space, "
                    "then run it again with --resume"),
        (NO_CREATION, "permission denied: {tmp}; the checkpoint at step 5 is intact: make it "
                      "writable, then run it again with --resume"),
    ],
)  # fmt: skip
def test_a_checkpoint_that_cannot_be_written_is_one_line_and_the_run_resumes(
    straight, tmp_path, target, message
):
    run_dir = tmp_path / "run"
    train(config(), run_dir, max_steps=5)
    tmp = run_dir / (CHECKPOINT_FILE + ".tmp")  # the checkpoint at step 10 is written here first
    tmp.symlink_to(target)
    line = one_error_line(resume_cli(run_dir))
    assert line == "error: " + message.format(tmp=tmp)
    assert read_run(run_dir).status == "failed"  # ab resumes it rather than reuse it
    tmp.unlink(missing_ok=True)
    assert resume_cli(run_dir).exit_code == 0
    assert comparable(read_jsonl(run_dir / METRICS_FILE)) == straight


def fill_the_disk_under_the_log(run_dir: Path, at_step: int):
    """A loss hook that, at ``at_step``, moves the open log's descriptor onto ``/dev/full``: its
    next write fails as on a full disk, and what was written stays."""
    log = str((run_dir / METRICS_FILE).resolve())

    def hook(step, loss):
        if step == at_step:
            for fd in os.listdir("/proc/self/fd"):
                if os.path.realpath(f"/proc/self/fd/{fd}") == log:
                    full = os.open(DISK_FULL, os.O_WRONLY)
                    os.dup2(full, int(fd))
                    os.close(full)
        return loss

    return hook


def test_a_full_disk_under_the_log_names_it_and_the_run_resumes_exactly(straight, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(StorageError) as raised:  # the train record of step 10 fails
        train(config(), run_dir, loss_hook=fill_the_disk_under_the_log(run_dir, 7))
    assert str(raised.value) == (
        f"disk full writing {run_dir / METRICS_FILE}; the checkpoint at step 5 is intact: free "
        "space, then run it again with --resume"
    )
    assert train(config(), run_dir, resume=True).status == "finished"
    assert comparable(read_jsonl(run_dir / METRICS_FILE)) == straight


def make_immutable(path: Path):
    """``chattr +i`` (root needs CAP_LINUX_IMMUTABLE), or read-only for a user that is not root;
    returns the undo. Skips where neither makes the file unwritable."""
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", path], capture_output=True).returncode == 0:
        return lambda: subprocess.run([chattr, "-i", path], check=True)
    if os.geteuid() != 0:
        path.chmod(0o444)
        return lambda: path.chmod(0o644)
    pytest.skip("no way to make a file unwritable for root here (no CAP_LINUX_IMMUTABLE)")


def test_an_immutable_log_is_one_line_and_the_run_resumes_once_it_is_writable(straight, tmp_path):
    run_dir = tmp_path / "run"
    train(config(), run_dir, max_steps=5)
    log = run_dir / METRICS_FILE
    undo = make_immutable(log)
    try:
        line = one_error_line(resume_cli(run_dir))
    finally:
        undo()
    assert str(log) in line and "the checkpoint at step 5 is intact: make it writable" in line
    assert resume_cli(run_dir).exit_code == 0
    assert comparable(read_jsonl(log)) == straight


def test_a_worker_that_fills_the_disk_stops_ab_with_one_line(ab_runs, arm_files, tmp_path,
                                                              monkeypatch):  # fmt: skip
    """In ``ab --jobs 2``, the worker of seed 1 cannot write its first checkpoint: the parent
    says so in the worker's one line (no traceback of the worker) and stops the other seed; done
    as the line says, the same command finishes with the records of a clean ``ab``."""
    import curriculum_cli.analysis.plots

    out = tmp_path / "ab"
    (out / "late-s1").mkdir(parents=True)
    (out / "late-s1" / (CHECKPOINT_FILE + ".tmp")).symlink_to(DISK_FULL)
    arguments = ["ab", *map(str, arm_files), "--out", str(out), "--seeds", "2", "--jobs", "2",
                 *AB_OPTIONS.command_words(), "--quiet"]  # fmt: skip
    line = one_error_line(CliRunner().invoke(app, arguments))
    run = out / "late-s1"
    assert line == (
        f"error: disk full writing {run / 'last.pt.tmp'}, before {run}'s first checkpoint: free "
        f"space, delete {run}, then run the same command again"
    )
    shutil.rmtree(run)
    monkeypatch.setattr(curriculum_cli.analysis.plots, "plot_curves", lambda comparison, p: p)
    result = run_ab(AbSpec(arm_files, out, seeds=2, options=AB_OPTIONS))
    assert not result.interrupted
    for name, runs in ab_runs.items():
        for seed, reference in enumerate(runs):
            resumed = out / f"{name}-s{seed}" / METRICS_FILE
            assert comparable(read_jsonl(resumed)) == comparable(
                read_jsonl(reference / METRICS_FILE)
            ), (name, seed)


@pytest.mark.parametrize("damage", ["a garbage line", "NUL bytes", "a half-written last line"])
def test_a_resumed_run_repairs_its_log_wherever_it_is_damaged(straight, tmp_path, damage):
    """The log is cut back to the checkpoint's records: a line that is no record is dropped
    wherever it lies (before, the whole records after a garbage line were cut instead)."""
    run_dir = tmp_path / "run"
    train(config(), run_dir, max_steps=12)  # checkpoints at 5, 10 and 12
    log = run_dir / METRICS_FILE
    lines = log.read_bytes().splitlines(keepends=True)
    if damage == "a garbage line":
        lines.insert(3, b'{"event": "train", "st\n')
    elif damage == "NUL bytes":  # a crash on a file system that allocated and did not write
        lines.insert(3, b"\0" * 64)
    else:
        lines.append(b'{"event": "train", "step": 13, "lo')
    log.write_bytes(b"".join(lines))
    assert train(config(), run_dir, resume=True).status == "finished"
    assert comparable(read_jsonl(log)) == straight
    assert read_run(run_dir).warnings == []  # compare reads it as any other run


def test_an_out_directory_that_may_not_be_written_is_one_line_before_anything_trains(arm_files):
    out = NO_CREATION / "ab"  # sysfs refuses the directory, even for root
    arguments = ["ab", *map(str, arm_files), "--out", str(out), *AB_OPTIONS.command_words()]
    line = one_error_line(CliRunner().invoke(app, arguments))
    assert str(NO_CREATION) in line and "nothing was trained yet" in line

"""Directory locks: a second process on a run directory, or a second ``ab`` on an ``--out``, is
refused with the holder's pid before it writes anything; a killed holder leaves no stale lock."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from curriculum_cli.analysis.ab import AB_LOCK_FILE
from curriculum_cli.cli.app import app
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlock import LOCK_FILE
from tests.helpers import (
    AB_OPTIONS,
    REPO_ROOT,
    TEST_MODEL_FACTORY,
    one_error_line,
    tiny_run_config,
    two_stage_curriculum,
)

#: A process that takes a directory's lock (``train.lock``, or the file named) as ``train`` and
#: ``ab`` do, then waits (no torch to load).
HOLDER = (
    "import sys; from curriculum_cli.training.runlock import RunLock; "
    "lock = RunLock(*sys.argv[1:]); lock.acquire(); print('held', flush=True); sys.stdin.read()"
)


@contextmanager
def holding(directory: Path, *name: str):
    """A live process holding ``directory``'s lock while the block runs; yields it."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), *name], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout.readline() == b"held\n"
        yield holder
    finally:
        holder.kill()  # SIGKILL: no clean-up; the kernel drops the lock
        holder.wait()


def test_a_locked_run_directory_is_refused_until_its_holder_dies(tmp_path):
    run_dir = tmp_path / "run"
    with holding(run_dir) as holder:
        arguments = ["train", "--out", run_dir, "--model", TEST_MODEL_FACTORY, "--device", "cpu"]
        refused = CliRunner().invoke(app, [str(a) for a in arguments])
        assert refused.exit_code == 2, refused.output
        assert f"locked by a running process (pid {holder.pid})" in refused.stderr
        assert [p.name for p in run_dir.iterdir()] == [LOCK_FILE]  # nothing written
    config = tiny_run_config(two_stage_curriculum(2, 2), val_every=4, checkpoint_every=4)
    assert train(config, run_dir).status == "finished"


def test_a_second_ab_on_one_out_is_refused_as_a_whole_before_anything_is_written(
    arm_files, tmp_path
):
    out = tmp_path / "ab"
    arguments = ["ab", *map(str, arm_files), "--out", str(out), *AB_OPTIONS.command_words()]
    with holding(out, AB_LOCK_FILE) as other:
        line = one_error_line(CliRunner().invoke(app, arguments))
        assert line == (
            f"error: another pepcurr ab (pid {other.pid}) is training in {out}; wait for it to "
            "finish or stop it, or use another --out"
        )
        assert [p.name for p in out.iterdir()] == [AB_LOCK_FILE]
        planned = CliRunner().invoke(app, [*arguments, "--plan"])  # --plan waits for it too
        assert "another pepcurr ab" in one_error_line(planned)


def test_ab_refuses_a_run_another_process_trains_before_it_trains_anything(arm_files, tmp_path):
    out = tmp_path / "ab"
    arguments = ["ab", *map(str, arm_files), "--out", str(out), *AB_OPTIONS.command_words()]
    with holding(out / "early-s1") as other:  # a scheduler's pepcurr train, say
        line = one_error_line(CliRunner().invoke(app, arguments))
        assert line == (
            f"error: {out / 'early-s1'} is being trained by another process (pid {other.pid}); "
            "wait for it to finish or stop it, or use another --out"
        )
        assert sorted(p.name for p in out.iterdir()) == [AB_LOCK_FILE, "early-s1"]  # no ab.json

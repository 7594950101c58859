"""The run-directory lock: a second process is refused, a killed one leaves no stale lock."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlock import LOCK_FILE
from tests.helpers import REPO_ROOT, TEST_MODEL_FACTORY, tiny_run_config, two_stage_curriculum

#: A process that takes a run directory's lock as ``train`` does, then waits (no torch to load).
HOLDER = (
    "import sys; from curriculum_cli.training.runlock import RunLock; lock = RunLock(sys.argv[1]); "
    "lock.acquire(); print('held', flush=True); sys.stdin.read()"
)


def test_a_locked_run_directory_is_refused_until_its_holder_dies(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout.readline() == b"held\n"
        arguments = ["train", "--out", run_dir, "--model", TEST_MODEL_FACTORY, "--device", "cpu"]
        refused = CliRunner().invoke(app, [str(a) for a in arguments])
        assert refused.exit_code == 2, refused.output
        assert f"locked by a running process (pid {holder.pid})" in refused.stderr
        assert [p.name for p in run_dir.iterdir()] == [LOCK_FILE]  # nothing written
    finally:
        holder.kill()  # SIGKILL: no clean-up; the kernel drops the lock
        holder.wait()
    config = tiny_run_config(two_stage_curriculum(2, 2), val_every=4, checkpoint_every=4)
    assert train(config, run_dir).status == "finished"

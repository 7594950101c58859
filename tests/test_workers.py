"""Processes ``ab`` starts end with it: SIGTERM, Ctrl-C and the death of the main process stop
every worker after its step in flight, with a checkpoint; nothing is left running (the process
table is read), and the same command then finishes with the records of a clean ``ab``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curriculum_cli.analysis.ab import AbSpec, run_ab
from curriculum_cli.cli.app import app
from curriculum_cli.training.runlog import METRICS_FILE
from curriculum_cli.training.workers import StopRequest
from tests.helpers import AB_OPTIONS, REPO_ROOT, one_error_line
from tests.test_engine import comparable, read_jsonl


def start_ab(arm_files: list[Path], out: Path) -> subprocess.Popen:
    """``pepcurr ab --jobs 2`` over the ``ab_runs`` arms and settings, seeds 0 and 1, in a
    session of its own (the test finds every process it starts by the session)."""
    command = [sys.executable, "-m", "curriculum_cli", "ab", *map(str, arm_files), "--out",
               str(out), "--seeds", "2", "--jobs", "2", *AB_OPTIONS.command_words()]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def wait_until_both_seeds_train(process: subprocess.Popen, out: Path) -> None:
    """Until a train record of each seed's first run is written (both workers are training)."""
    logs = [out / "late-s0" / METRICS_FILE, out / "late-s1" / METRICS_FILE]
    deadline = time.monotonic() + 180
    while not all(log.is_file() and '"train"' in log.read_text() for log in logs):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "ab did not start training"
        time.sleep(0.02)


def session_processes(session: int) -> list[int]:
    """The live processes of a session, from the process table (/proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (command)": state, ppid, pgrp, sid
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry))
    return found


def assert_nothing_left(session: int, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(session) == [], "processes of ab outlived it"


def finish_and_compare(ab_runs, arm_files, out: Path, monkeypatch) -> None:
    """The same A/B again (here, one run at a time) resumes and finishes every run with the
    records of the clean runs of ``ab_runs``."""
    import curriculum_cli.analysis.plots

    monkeypatch.setattr(curriculum_cli.analysis.plots, "plot_curves", lambda comparison, p: p)
    result = run_ab(AbSpec(arm_files, out, seeds=2, options=AB_OPTIONS))
    assert not result.interrupted and "resumed" in result.actions.values()
    for name, runs in ab_runs.items():
        for seed, clean in enumerate(runs):
            records = comparable(read_jsonl(out / f"{name}-s{seed}" / METRICS_FILE))
            assert records == comparable(read_jsonl(clean / METRICS_FILE)), (name, seed)


@pytest.mark.parametrize(
    ("stop", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM to the main process", "Ctrl-C to the process group"],
)
def test_a_stopped_ab_stops_its_workers_says_where_and_resumes(
    ab_runs, arm_files, tmp_path, monkeypatch, stop, to_group
):
    """SIGTERM reaches the workers through the main process alone; Ctrl-C reaches them twice
    (from the terminal, and forwarded), which is one stop request too. (The same resume
    follows either: it is checked once, after SIGTERM.)"""
    out = tmp_path / "ab"
    process = start_ab(arm_files, out)
    try:
        wait_until_both_seeds_train(process, out)
        second = CliRunner().invoke(app, ["ab", *map(str, arm_files), "--out", str(out),
                                          *AB_OPTIONS.command_words()])  # fmt: skip
        assert f"another pepcurr ab (pid {process.pid}) is training in" in one_error_line(second)
        if to_group:  # a terminal sends Ctrl-C to every process of the foreground group
            os.killpg(process.pid, stop)
        else:  # what systemd (KillMode=mixed) and kill PID send
            os.kill(process.pid, stop)
        output = process.communicate(timeout=120)[0].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + stop, output
    assert "late-s1: interrupted at step" in output and "Traceback" not in output
    assert output.rstrip().endswith(
        f"interrupted by {signal.Signals(stop).name}; run the same command to resume"
    )
    assert_nothing_left(process.pid)
    if stop == signal.SIGTERM:
        finish_and_compare(ab_runs, arm_files, out, monkeypatch)


def test_workers_of_a_killed_ab_checkpoint_and_exit_then_ab_resumes(
    ab_runs, arm_files, tmp_path, monkeypatch
):
    """``kill -9`` of the main process alone: the workers notice within a second, stop after
    their step with a checkpoint, and exit (with them, multiprocessing's resource tracker)."""
    out = tmp_path / "ab"
    process = start_ab(arm_files, out)
    try:
        wait_until_both_seeds_train(process, out)
        process.kill()
        process.wait()
        assert_nothing_left(process.pid, within_s=15)
    finally:
        if session_processes(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
    ends = [r for r in read_jsonl(out / "late-s1" / METRICS_FILE) if r["event"] == "end"]
    assert ends and ends[-1]["status"] in ("interrupted", "stopped")  # it wrote its end
    finish_and_compare(ab_runs, arm_files, out, monkeypatch)


def test_a_stop_request_outlives_one_run_and_a_second_sigterm_changes_nothing():
    """Nested as in a worker (around its tasks) and the loop (around one run): a request made
    inside reaches the outer one, a request made between runs reaches the next; only a second
    Ctrl-C interrupts at once."""
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest(escalate=False) as worker:
        with StopRequest() as run:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the handler runs in this thread, between bytecodes
        assert run.signal == worker.signal == signal.SIGTERM
        with StopRequest() as next_run:
            assert next_run.requested  # so ab trains nothing more in this worker
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)
    assert signal.getsignal(signal.SIGTERM) is before

"""Training speed alone and beside a busy neighbour, for several CPU thread settings.

A shared workstation or cluster node often has another job on it. When a
torch job uses as many OpenMP threads as there are cores and a neighbour
takes one of them, every parallel region waits for a descheduled thread and
the run slows several-fold. This benchmark measures it: for each setting it
trains the ``tiny`` model on the last stage of ``revised`` (batch 32) in a
fresh process, once alone and once beside a neighbour (a process doing
1024x1024 float32 matmuls with torch on 2 threads), and prints steps/s
(median of timing windows, the first window dropped) and the busy/quiet ratio.

Settings: ``threads=N`` sets ``--threads N``; ``+passive`` also sets
``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep instead of spinning).

    python bench/bench_threads.py            # a few minutes on 2 cores

Run it with nothing else busy on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

NEIGHBOUR = (
    "import torch\ntorch.set_num_threads(2)\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"
)

# One training run in a fresh process: prints the median steps/s of its train records.
RUN = """
import json, statistics, sys, tempfile
from pathlib import Path
from curriculum_cli.training.resolve import build_run_config
from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.devices import set_threads
from curriculum_cli.training.loop import train
from curriculum_cli.curriculum.presets import preset
from curriculum_cli.training.runlog import read_run

threads, steps, window = (int(x) for x in sys.argv[1:4])
set_threads(threads)
stage = preset("revised").stages[-1].model_copy(update={"steps": steps, "name": "last"})
config = build_run_config(Curriculum(name="bench", stages=[stage]), device="cpu", val_size=32,
                          decode_size=4, val_every=10**9, grad_every=10**9,
                          checkpoint_every=10**9, log_every=window)
run_dir = Path(tempfile.mkdtemp()) / "run"
train(config, run_dir)
rates = read_run(run_dir).events("train")["steps_per_s"].tolist()[1:]
print(json.dumps({"steps_per_s": statistics.median(rates), "threads": threads}))
"""

SETTINGS = {
    "threads=2 (torch's default on 2 cores)": (2, False),
    "threads=1 (pepcurr's default)": (1, False),
}
PASSIVE = {"threads=2 +passive": (2, True)}


def run_once(threads: int, passive: bool, steps: int, window: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("OMP_NUM_THREADS", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    output = subprocess.run(
        [sys.executable, "-c", RUN, str(threads), str(steps), str(window)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    ).stdout
    return json.loads(output.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="training steps per measurement")
    parser.add_argument("--window", type=int, default=10, help="steps per timing window")
    parser.add_argument("--passive", action="store_true", help="also OMP_WAIT_POLICY=PASSIVE")
    args = parser.parse_args()

    results = {}
    settings = {**SETTINGS, **(PASSIVE if args.passive else {})}
    for name, (threads, passive) in settings.items():
        quiet = run_once(threads, passive, args.steps, args.window)
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
        try:
            time.sleep(2.0)  # let the neighbour start
            busy = run_once(threads, passive, args.steps, args.window)
        finally:
            neighbour.kill()
            neighbour.wait()
        results[name] = (quiet, busy)

    fastest_quiet = max(quiet for quiet, _ in results.values())
    print(f"cores {os.cpu_count()}; tiny model, batch 32, last stage of revised")
    print(f"{'setting':40s} {'quiet':>8s} {'busy':>8s} {'busy/quiet':>10s} {'vs best quiet':>13s}")
    for name, (quiet, busy) in results.items():
        print(
            f"{name:40s} {quiet:8.2f} {busy:8.2f} {busy / quiet:10.2f} {busy / fastest_quiet:13.2f}"
        )
    print("steps/s: median over timing windows; busy: beside a 2-thread torch matmul process")


if __name__ == "__main__":
    main()

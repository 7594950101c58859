"""Step cost of model presets side by side: each preset's real training step against the first's.

Times pepcurr's real loop (``engine.train``, all three losses on at the last
stage, none at the first) of every preset named in ``--models`` on the first
(clean, lengths 7-10) and the last stage of ``revised`` (lengths 7-18, 10 noise
peaks), no validation or gradient measurement inside the timed windows. The
measurement is paired: each round times every preset back to back, so they
see the same machine load, and the ratio to the first preset is taken per
round; its median and range over rounds are printed (the range is the
machine's noise). Usage::

    OMP_NUM_THREADS=1 python bench/bench_models.py [--models tiny,casanovo-tiny,trm-tiny]
        [--rounds 3] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from timing import loop_steps_per_second, stage_config

from curriculum_cli.model.factory import preset_architectures

STAGES = {"first": 0, "last": -1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,casanovo-tiny,trm-tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40, help="steps per measurement")
    parser.add_argument("--window", type=int, default=10, help="steps per timing window")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds")
    args = parser.parse_args()
    models = args.models.split(",")
    presets = preset_architectures()
    unknown = [m for m in models if m not in presets]
    if unknown:
        parser.error(f"unknown preset(s) {unknown}; choose from {', '.join(presets)}")

    print(f"batch {args.batch_size}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"{args.rounds} paired rounds of {args.steps} steps, medians over rounds")  # fmt: skip
    for stage_name, stage in STAGES.items():
        options = dict(stage=stage, device="cpu", batch_size=args.batch_size)
        configs = {m: stage_config(args.steps, args.window, model=m, **options) for m in models}
        ms = {model: [] for model in models}  # per round: median ms/step of its windows
        for _ in range(args.rounds):
            for model, config in configs.items():
                ms[model].append(1000 / statistics.median(loop_steps_per_second(config)))
        print(f"\n{stage_name} stage of revised")
        for model in models:
            ratios = [a / b for a, b in zip(ms[model], ms[models[0]], strict=True)]
            print(f"  {model:<15}{statistics.median(ms[model]):8.1f} ms/step   x "
                  f"{statistics.median(ratios):.2f} of {models[0]} "
                  f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()

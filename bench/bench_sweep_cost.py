"""What a sweep trains against independent runs: the steps its fork trees save.

Plans (trains nothing) the sweeps of docs/sweep.md, each arm x seed x scale, and
prints per sweep and scale the steps independent runs would train, the steps the
sweep trains (shared prefixes once) and the share saved. Planning only: the counts
are exact, not timed. Usage::

    python bench/bench_sweep_cost.py [--seeds 6]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from curriculum_cli.analysis.sweep import SweepSpec, plan_sweep
from curriculum_cli.curriculum.factors import parse_vary
from curriculum_cli.training.settings import TrainOptions

SWEEPS = {
    "spectrum_start": ("spectrum_start=0,5000,10000,15000,20000,30000,never",
                       (0.0025, 0.005, 0.01)),
    "precursor_start": ("precursor_start=0,10000,20000,30000,never", (0.005,)),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--base", default="realistic-current")
    args = parser.parse_args()
    options = TrainOptions(vocab="casanovo", val_every=25)
    print(f"{'sweep':16} {'scale':>7} {'runs':>5} {'independent':>12} {'sweep trains':>13} "
          f"{'saved':>6}")  # fmt: skip
    for name, (vary, scales) in SWEEPS.items():
        for scale in scales:
            with tempfile.TemporaryDirectory() as out:
                spec = SweepSpec(base=args.base, varied=(parse_vary(vary),), out_dir=Path(out),
                                 scales=(scale,), seeds=args.seeds, options=options)  # fmt: skip
                plan = plan_sweep(spec)
            runs = sum(len(p.run_dirs) for p in plan.plans.values())
            total, trained = plan.steps_total, plan.steps_to_train
            print(f"{name:16} {scale:7g} {runs:5d} {total:12,} {trained:13,} "
                  f"{(total - trained) / total:6.1%}")  # fmt: skip


if __name__ == "__main__":
    main()

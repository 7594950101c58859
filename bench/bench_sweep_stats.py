"""How far the sweep's statistics hold when seed-to-seed noise is not normal.

Simulates sweeps of ``k`` levels over ``n`` seeds (a seed effect shared by its levels,
plus independent errors per run) and prints, per error distribution (normal, centred
exponential, centred lognormal; all of sd 1 in units of the error):

- the omnibus test's size: P(p < 0.05) when every level is equal (nominal 0.05);
- the best set's miss rate: P(the true best level is left out) when one level is
  better than the rest by ``delta`` error sds, and when all are equal (nominal at most
  0.05: Hsu's guarantee under normal errors);
- the best set's power: P(a level worse than the best by 3 error sds is left out).

Usage::

    python bench/bench_sweep_stats.py [--draws 2000] [--levels 7] [--seeds 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from curriculum_cli.analysis.sweep_stats import best_set, blocked, omnibus


def _errors(kind: str, rng, shape) -> np.ndarray:
    if kind == "normal":
        return rng.normal(size=shape)
    if kind == "exponential":
        return rng.exponential(size=shape) - 1.0
    sigma = 0.8  # lognormal of skewness ~3.7, centred and scaled to sd 1
    raw = rng.lognormal(0.0, sigma, size=shape)
    mean, var = np.exp(sigma**2 / 2), (np.exp(sigma**2) - 1) * np.exp(sigma**2)
    return (raw - mean) / np.sqrt(var)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000, help="Simulated sweeps per cell.")
    parser.add_argument("--levels", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--permutations", type=int, default=2000)
    args = parser.parse_args()
    k, n = args.levels, args.seeds
    rng = np.random.default_rng(0)
    print(f"{k} levels x {n} seeds, {args.draws} simulated sweeps per cell, omnibus with "
          f"{args.permutations} permutations")  # fmt: skip
    print(f"{'errors':12} {'omnibus size':>13} {'miss, equal':>12} {'miss, best +1':>14} "
          f"{'power, -3':>10}")  # fmt: skip
    started = time.perf_counter()
    for kind in ("normal", "exponential", "lognormal"):
        size = miss_equal = miss_best = power = 0
        for _ in range(args.draws):
            seeds = rng.normal(0, 2.0, (n, 1))
            equal = blocked(seeds + _errors(kind, rng, (n, k)), list(range(n)))
            draw_seed = int(rng.integers(1 << 30))
            size += omnibus(equal, draws=args.permutations, seed=draw_seed).p < 0.05
            miss_equal += not best_set(equal).in_best[0]
            effects = np.zeros(k)
            effects[0], effects[-1] = 1.0, -3.0
            planted = blocked(seeds + effects + _errors(kind, rng, (n, k)), list(range(n)))
            found = best_set(planted)
            miss_best += not found.in_best[0]
            power += not found.in_best[-1]
        d = args.draws
        print(f"{kind:12} {size / d:13.3f} {miss_equal / d:12.3f} {miss_best / d:14.3f} "
              f"{power / d:10.3f}")  # fmt: skip
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

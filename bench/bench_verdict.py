"""How often ``decide``'s verdicts are wrong when the per-seed differences are skewed.

Simulates paired A/Bs of ``n`` seeds (3-12) whose per-seed differences are a true
difference plus noise of sd ``--sd`` from one of these shapes (mean 0, sd 1 before
scaling): normal, centred exponential (skewness 2) and centred lognormal of sigma 1
(skewness 6.2), each skewed towards +M (right) or towards -M (left), and one shape beyond
the guard (lognormal of sigma 1.5, skewness 33). It prints:

1. P(``equivalent``) at a true difference of exactly +M and of exactly -M (``equivalent``
   is then wrong; nominal at most 0.05), at the issue's margin (``--margin`` 0.01 with sd
   0.004: M = 2.5 sd) and at M = 0.5 sd, where the difference rule cannot step in. Beside
   the rule, the rule before it (Student's 90% t interval inside +-M alone, no minimum
   of pairs), for comparison.
2. P(``difference``) at a true difference of 0 (wrong unless the arms differ in shape):
   the full rule and the sign-flip test alone, for normal and for mean-zero skewed
   differences (the sign-flip test is exact for symmetric differences only).
3. What the guard costs: P(``equivalent``) at no difference with normal differences, M =
   2.5 sd.

The rules are applied by ``power.rules_on_samples`` (vectorized; tests check it against
``decide`` row by row), and ``decide`` itself is run on the first ``--check`` samples of
every cell: the bench stops if any verdict disagrees. Each share is over ``--draws``
samples (``numpy.random.default_rng(--seed)``); ``+-`` is its 95% half-width.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_verdict.py [--draws 20000] [--check 40]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from curriculum_cli.analysis.power import rules_on_samples
from curriculum_cli.analysis.stats import ALPHA, student_t_quantile
from curriculum_cli.analysis.verdict import decide

SHAPES = ("normal", "exponential", "lognormal", "lognormal 1.5")
"""Noise shapes; every one but normal is skewed right, and mirrored for left."""


def _noise(shape: str, rng, size) -> np.ndarray:
    """Mean 0, sd 1, skewed right (normal: symmetric)."""
    if shape == "normal":
        return rng.standard_normal(size)
    if shape == "exponential":
        return rng.standard_exponential(size) - 1.0
    sigma = 1.5 if shape.endswith("1.5") else 1.0
    mean, var = math.exp(sigma**2 / 2), (math.exp(sigma**2) - 1) * math.exp(sigma**2)
    return (np.exp(sigma * rng.standard_normal(size)) - mean) / math.sqrt(var)


def _student_equivalent(d: np.ndarray, margin: float, difference: np.ndarray) -> np.ndarray:
    """The rule before: Student's 90% interval inside +-margin, unless a difference."""
    n = d.shape[1]
    half = student_t_quantile(1 - ALPHA, n - 1) * d.std(axis=1, ddof=1) / math.sqrt(n)
    return (np.abs(d.mean(axis=1)) + half < margin) & ~difference


def _check_with_decide(d: np.ndarray, margin: float | None, kinds: np.ndarray) -> None:
    """``decide`` on each row must give the kind the vectorized rules gave."""
    for row, kind in zip(d, kinds, strict=True):
        n = len(row)
        arms = {"A": dict.fromkeys(range(n), 0.5),
                "B": {i: 0.5 + float(v) for i, v in enumerate(row)}}  # fmt: skip
        found = decide(arms, "higher", margin=margin)[0].kind
        if found != kind:
            raise SystemExit(f"decide says {found}, the vectorized rules {kind}: {list(row)}")


def _kinds(difference: np.ndarray, critical: np.ndarray, margin: float | None) -> np.ndarray:
    equivalent = np.zeros_like(difference) if margin is None else critical < margin
    return np.where(difference, "difference", np.where(equivalent, "equivalent", "undecided"))


def _share(hits: np.ndarray) -> str:
    p = hits.mean()
    return f"{p:.3f}±{1.96 * math.sqrt(max(p * (1 - p), 1e-12) / len(hits)):.3f}"


def _cells() -> list[tuple[str, str, float]]:
    """(column name, shape, skew: +1 towards +M, -1 towards -M)."""
    cells = [("normal", "normal", 1.0)]
    for shape in SHAPES[1:]:
        cells += [(f"{shape} ->", shape, 1.0), (f"{shape} <-", shape, -1.0)]
    return cells


def _equivalence_table(args, rng, margin_in_sd: float) -> None:
    sd = args.sd
    margin = margin_in_sd * sd
    print(f"\n1. P(equivalent) at a true difference of exactly +M and -M, M = {margin:g} = "
          f"{margin_in_sd:g} sd (sd {sd:g}); '->': skewed towards +M, '<-': towards -M; "
          f"[before]: Student's t interval alone, skewed towards the true difference")  # fmt: skip
    for truth in (1.0, -1.0):
        print(f"   true difference {'+' if truth > 0 else '-'}M")
        cells = _cells()
        towards = "->" if truth > 0 else "<-"
        compared = ("normal", f"exponential {towards}", f"lognormal {towards}")
        names = " ".join(f"{name:>19}" for name, *_ in cells)
        befores = " ".join(f"{name.split()[0][:4] + ' [before]':>16}" for name in compared)
        print(f"   {'n':>2} {names} {befores}")
        for n in range(3, 13):
            row, before = [], {}
            for name, shape, skew in cells:
                d = truth * margin + skew * sd * _noise(shape, rng, (args.draws, n))
                difference, critical = rules_on_samples(d, ALPHA)
                kinds = _kinds(difference, critical, margin)
                _check_with_decide(d[: args.check], margin, kinds[: args.check])
                row.append(_share(kinds == "equivalent"))
                if name in compared:
                    before[name] = _share(_student_equivalent(d, margin, difference))
            cells_text = " ".join(f"{cell:>19}" for cell in row)
            before_text = " ".join(f"{cell:>16}" for cell in before.values())
            print(f"   {n:>2} {cells_text} {before_text}", flush=True)


def _difference_table(args, rng) -> None:
    print("\n2. P(difference) at a true difference of 0 (nominal 0.05 for symmetric "
          "differences): the rule / the sign-flip test alone")  # fmt: skip
    shapes = ("normal", "exponential", "lognormal")
    print("   " + f"{'n':>2} " + " ".join(f"{shape:>27}" for shape in shapes))
    for n in range(6, 13):
        row = []
        for shape in shapes:
            d = args.sd * _noise(shape, rng, (args.draws, n))
            difference, critical = rules_on_samples(d, ALPHA)
            kinds = _kinds(difference, critical, None)
            _check_with_decide(d[: args.check], None, kinds[: args.check])
            row.append(f"{_share(difference)} / {_share(_flip_only(d))}")
        print("   " + f"{n:>2} " + " ".join(f"{cell:>27}" for cell in row), flush=True)


def _flip_only(d: np.ndarray) -> np.ndarray:
    """The two-sided sign-flip test alone at alpha (by enumeration)."""
    n = d.shape[1]
    signs = np.array([[1.0 if (k >> j) & 1 else -1.0 for j in range(n)] for k in range(2**n)])
    out = np.empty(len(d), bool)
    for start in range(0, len(d), 2000):
        part = d[start : start + 2000]
        sums = np.abs(part) @ signs.T  # |d| with every sign pattern
        observed = np.abs(part.sum(axis=1, keepdims=True))
        tolerance = 1e-9 * np.abs(part).sum(axis=1, keepdims=True)
        out[start : start + 2000] = (np.abs(sums) >= observed - tolerance).mean(axis=1) < ALPHA
    return out


def _power_table(args, rng) -> None:
    margin = 2.5 * args.sd
    print("\n3. P(equivalent) at no difference, normal differences, M = 2.5 sd: the rule / "
          "Student's t interval alone (the rule before)")  # fmt: skip
    for n in range(3, 13):
        d = args.sd * rng.standard_normal((args.draws, n))
        difference, critical = rules_on_samples(d, ALPHA)
        print(f"   {n:>2} {_share(critical < margin)} / "
              f"{_share(_student_equivalent(d, margin, difference))}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20_000, help="Simulated A/Bs per cell.")
    parser.add_argument("--check", type=int, default=40, help="Samples per cell run by decide.")
    parser.add_argument("--sd", type=float, default=0.004)
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    print(f"{args.draws:,} simulated A/Bs per cell, seed {args.seed}; decide checked on "
          f"{args.check} per cell")  # fmt: skip
    _equivalence_table(args, rng, args.margin / args.sd)
    _equivalence_table(args, rng, 0.5)
    _difference_table(args, rng)
    _power_table(args, rng)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

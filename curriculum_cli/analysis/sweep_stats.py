"""The statistics of a sweep: does a factor matter, which levels are best, does the answer
move with the scale. Blocked by seed, with numpy (and scipy for one quantile).

Every seed of a sweep trains every level from the same initial weights and is
validated on the same spectra, so a seed is a *block*: differences between levels
are read within seeds, never across them. Three questions:

- ``omnibus``: "the factor does not matter" (every level has the same distribution
  within a seed). Statistic: the blocked F of a randomized complete block design
  (levels x seeds). p from every arrangement of the labels within seeds when there
  are at most ``MAX_EXACT_ARRANGEMENTS`` of them (the first seed held fixed: the
  statistic does not change when every seed is relabelled alike), else from
  ``PERMUTATIONS`` random ones (seeded), counted as ``(1 + hits) / (1 + draws)``.
- ``best_set``: Hsu's constrained multiple comparisons with the best (Hsu 1996, ch. 4)
  for a randomized complete block design: ``c = d * s * sqrt(2 / n)``, ``s`` the residual
  standard deviation of the levels x seeds table (seed and level effects removed, on
  ``(k - 1)(n - 1)`` df) and ``d`` the one-sided Dunnett quantile for ``k - 1``
  comparisons. A level is in the set for the best unless another level's mean is more
  than ``c`` better; the interval of ``mu_i - max_{j != i} mu_j`` is
  ``[min(0, d_i - c), max(0, d_i + c)]`` with ``d_i = mean_i - max_{j != i} mean_j``.
  The set holds the best level with probability at least ``1 - alpha`` under normal,
  equal-variance errors within seeds (``bench/bench_sweep_stats.py`` prints how far
  that holds for skewed errors). With a margin ``M``, the levels whose interval's lower
  end lies above ``-M`` are *within the margin of the best*. (A permutation critical
  value was tried and left: real differences between levels widen it, so a large
  planted effect hid a small one.)
- ``scale_interaction``: "the level effects are the same at every scale". Each run's
  value minus its seed's mean over levels at that scale (the *profile*); statistic:
  the scale x level sum of squares of the mean profiles; p from shuffling the scales'
  profiles within each seed (exact: ``(C!)^(n - 1)`` arrangements for C scales and n
  seeds, else Monte Carlo). It assumes a seed's deviations from the level effects are
  exchangeable across scales (so a scale whose runs scatter much less than another's
  makes it approximate).

Values are floats with NaN for a missing run; a seed with any NaN is left out (and
counted). "Better" is ``higher`` or ``lower``; every function works on values
oriented so that higher is better.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from curriculum_cli.analysis.stats import ALPHA, TIE_TOLERANCE

PERMUTATIONS = 20_000
"""Random arrangements drawn when there are too many to enumerate."""

MAX_EXACT_ARRANGEMENTS = 50_000
"""Enumerate every arrangement of the labels within seeds up to this many."""

PERMUTATION_SEED = 0
"""Seed of the random arrangements (the same numbers on every run)."""

_CHUNK = 2_000
"""Arrangements evaluated at once (bounds memory: chunk x seeds x levels floats)."""


@dataclass(frozen=True)
class Blocked:
    """Values of one question as seeds x levels, higher is better, complete seeds only."""

    values: np.ndarray  # (n_seeds, n_levels)
    seeds: list
    dropped_seeds: list

    @property
    def n(self) -> int:
        return self.values.shape[0]

    @property
    def k(self) -> int:
        return self.values.shape[1]


def blocked(values, seeds, better: str = "higher") -> Blocked:
    """``values`` (seeds x levels, NaN: missing) as a ``Blocked``: seeds with a missing
    level dropped, the sign turned so that higher is better."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise ValueError("values must be seeds x levels")
    complete = np.isfinite(array).all(axis=1)
    kept = [seed for seed, ok in zip(seeds, complete, strict=True) if ok]
    dropped = [seed for seed, ok in zip(seeds, complete, strict=True) if not ok]
    oriented = array[complete] if better == "higher" else -array[complete]
    return Blocked(oriented, kept, dropped)


def _arrangements(n_blocks: int, k: int, draws: int, seed: int) -> tuple[np.ndarray, bool]:
    """Label arrangements within blocks, as index arrays (m, n_blocks, k); exact when few.

    Exact: every permutation of every block but the first (which stays as it is).
    Otherwise ``draws`` random arrangements, the observed one not among them.
    """
    per_block = math.factorial(k)
    if n_blocks <= 1 or per_block ** (n_blocks - 1) <= MAX_EXACT_ARRANGEMENTS:
        perms = np.array(list(itertools.permutations(range(k))), dtype=np.int64)
        if n_blocks <= 1:
            return perms[:1].reshape(1, max(n_blocks, 1), k), True
        grid = itertools.product(range(per_block), repeat=n_blocks - 1)
        index = np.array(list(grid), dtype=np.int64).reshape(-1, n_blocks - 1)
        first = np.zeros((len(index), 1, k), dtype=np.int64) + np.arange(k)
        return np.concatenate([first, perms[index]], axis=1), True
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((draws, n_blocks, k)), axis=2), False


def _shuffled(values: np.ndarray, arrangement: np.ndarray) -> np.ndarray:
    """``values`` (blocks x k) under each arrangement: (m, blocks, k)."""
    blocks = np.arange(values.shape[0])[None, :, None]
    return values[blocks, arrangement]


def _level_ss(values: np.ndarray) -> np.ndarray:
    """Between-level sum of squares of (..., blocks, k) values: n * sum (mean_l - mean)^2."""
    means = values.mean(axis=-2)
    return values.shape[-2] * ((means - means.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)


@dataclass(frozen=True)
class Omnibus:
    """The test of "all levels equal" (within-seed permutation of the blocked F).

    ``f``: the blocked F statistic (inf when every seed's levels differ by the same
    amounts: no residual); ``p``; ``arrangements``: how many were counted;
    ``exact``: every arrangement (else Monte Carlo, ``seed``); ``test``: in words.
    """

    f: float
    p: float
    df_levels: int
    df_error: int
    arrangements: int
    exact: bool
    n_seeds: int
    n_levels: int
    test: str


def omnibus(data: Blocked, draws: int = PERMUTATIONS, seed: int = PERMUTATION_SEED) -> Omnibus:
    """Within-seed permutation test of the blocked F statistic (see the module docstring)."""
    n, k = data.n, data.k
    if n < 2 or k < 2:
        raise ValueError(f"the omnibus test needs >= 2 seeds and >= 2 levels, got {n} x {k}")
    values = data.values
    centred = values - values.mean(axis=1, keepdims=True)  # the seeds' blocks removed
    total = float((centred**2).sum())
    observed = float(_level_ss(values))
    df_levels, df_error = k - 1, (k - 1) * (n - 1)
    error = max(total - observed, 0.0)
    scale = max(float(np.abs(values).max()), 1e-300)
    if total <= (TIE_TOLERANCE * scale) ** 2 * n * k:
        f = math.nan  # every level equal in every seed: nothing to test
    elif error <= TIE_TOLERANCE**2 * total:
        f = math.inf
    else:
        f = (observed / df_levels) / (error / df_error)
    arrangement, exact = _arrangements(n, k, draws, seed)
    hits, tolerance = 0, TIE_TOLERANCE * max(observed, 1e-300)
    for start in range(0, len(arrangement), _CHUNK):
        ss = _level_ss(_shuffled(values, arrangement[start : start + _CHUNK]))
        hits += int((ss >= observed - tolerance).sum())
    count = len(arrangement)
    if math.isnan(f):
        p = 1.0
    elif exact:
        p = hits / count
    else:
        p = (1 + hits) / (1 + count)
    how = (
        f"every one of the {count:,} arrangements of the level labels within seeds"
        if exact
        else f"{count:,} random arrangements of the level labels within seeds (seed {seed})"
    )
    test = (
        f"within-seed permutation test of the blocked F statistic ({k} levels x {n} seeds; {how})"
    )
    return Omnibus(f, p, df_levels, df_error, count, exact, n, k, test)


@dataclass(frozen=True)
class BestSet:
    """Hsu's constrained multiple comparisons with the best (MCB) in a blocked design.

    ``critical``: ``c = d * s * sqrt(2 / n)`` in the metric's unit (``d``: the one-sided
    Dunnett quantile for ``k - 1`` comparisons on ``df`` degrees of freedom; ``s``: the
    residual standard deviation of the levels x seeds table); ``lower``/``upper``: per
    level, the interval of (its mean - the best other level's mean), oriented so that
    higher is better; ``in_best``: the level may be the best (``upper`` > 0);
    ``within_margin``: its lower bound lies above -margin (None without a margin).
    """

    critical: float
    dunnett: float
    residual_sd: float
    df: int
    lower: list[float]
    upper: list[float]
    in_best: list[bool]
    within_margin: list[bool] | None
    margin: float | None
    confidence: float
    test: str


@functools.lru_cache(maxsize=64)
def dunnett_one_sided(comparisons: int, df: float, alpha: float = ALPHA) -> float:
    """The one-sided Dunnett quantile: ``d`` with P(max_i T_i <= d) = 1 - alpha, the T_i
    ``comparisons`` t statistics of differences against one common level (correlation 1/2,
    ``df`` degrees of freedom; ``inf``: normal).

    P = E_S[ integral phi(x) Phi(x + sqrt(2) d S)^m dx ] with S^2 ~ chi2(df) / df; the inner
    integral by Gauss-Hermite quadrature, the outer by adaptive quadrature (scipy).
    """
    from scipy import integrate, optimize, special, stats

    if comparisons < 1:
        raise ValueError(f"need >= 1 comparison, got {comparisons}")
    nodes, weights = np.polynomial.hermite_e.hermegauss(96)
    weights = weights / math.sqrt(2.0 * math.pi)

    def given_s(d: float, s: float) -> float:
        return float((weights * special.ndtr(nodes + math.sqrt(2.0) * d * s) ** comparisons).sum())

    def coverage(d: float) -> float:
        if math.isinf(df):
            return given_s(d, 1.0)
        chi = stats.chi(df, scale=1.0 / math.sqrt(df))
        low, high = chi.ppf(1e-10), chi.ppf(1.0 - 1e-10)
        return integrate.quad(lambda s: chi.pdf(s) * given_s(d, s), low, high, limit=200,
                              epsabs=1e-11)[0]  # fmt: skip

    return float(optimize.brentq(lambda d: coverage(d) - (1.0 - alpha), -5.0, 50.0, xtol=1e-10))


def best_set(data: Blocked, margin: float | None = None, alpha: float = ALPHA) -> BestSet:
    """The levels that cannot be told from the best (see the module docstring)."""
    n, k = data.n, data.k
    if n < 2 or k < 2:
        raise ValueError(f"the best set needs >= 2 seeds and >= 2 levels, got {n} x {k}")
    values = data.values
    grand = values.mean()
    residual = values - values.mean(axis=1, keepdims=True) - values.mean(axis=0) + grand
    df = (k - 1) * (n - 1)
    sd = math.sqrt(float((residual**2).sum()) / df)
    scale = max(float(np.abs(values).max()), 1e-300)
    if sd <= TIE_TOLERANCE * scale:
        sd = 0.0
    d = dunnett_one_sided(k - 1, df, alpha)
    critical = d * sd * math.sqrt(2.0 / n)
    gap = _gap_to_best_other(values.mean(axis=0)[None, :])[0]  # max_j mean_j - mean_i
    tolerance = TIE_TOLERANCE * scale
    lower = [min(0.0, float(-g - critical)) for g in gap]
    upper = [max(0.0, float(-g + critical)) for g in gap]
    in_best = [bool(g < critical + tolerance) if critical > 0 else bool(g <= tolerance)
               for g in gap]  # fmt: skip
    within = None if margin is None else [bool(low > -margin) for low in lower]
    test = (
        f"Hsu's multiple comparisons with the best ({(1 - alpha) * 100:g}%, constrained "
        f"intervals): critical difference {critical:.4g} = Dunnett's one-sided {d:.4g} x "
        f"residual sd {sd:.4g} x sqrt(2/{n}), residual of the {k} levels x {n} seeds table "
        f"on {df} df (assumes normal, equal-variance errors within seeds)"
    )
    return BestSet(critical, d, sd, df, lower, upper, in_best, within, margin, 1.0 - alpha,
                   test)  # fmt: skip


def _gap_to_best_other(means: np.ndarray) -> np.ndarray:
    """(m, k) means -> (m, k): for each level, the largest other level's mean minus its own."""
    k = means.shape[1]
    order = np.sort(means, axis=1)
    top, second = order[:, -1:], order[:, -2:-1] if k > 1 else order[:, -1:]
    is_top = means >= top
    # The best other level is the top one, except for the top level itself (then the second;
    # with a tie at the top, the other top level: the same value).
    n_top = is_top.sum(axis=1, keepdims=True)
    best_other = np.where(is_top & (n_top == 1), second, top)
    return best_other - means


@dataclass(frozen=True)
class Interaction:
    """The test of "the level effects are the same at every scale"."""

    statistic: float
    p: float
    arrangements: int
    exact: bool
    n_seeds: int
    n_scales: int
    n_levels: int
    test: str


def scale_interaction(
    values, draws: int = PERMUTATIONS, seed: int = PERMUTATION_SEED
) -> Interaction:
    """``values``: scales x seeds x levels (higher is better, complete seeds only)."""
    array = np.asarray(values, dtype=float)
    c, n, k = array.shape
    if c < 2 or n < 2 or k < 2:
        raise ValueError(f"the interaction test needs >= 2 scales, seeds and levels: {array.shape}")
    profiles = array - array.mean(axis=2, keepdims=True)  # (scales, seeds, levels)
    by_seed = np.transpose(profiles, (1, 0, 2))  # (seeds, scales, levels)

    def statistic(p: np.ndarray) -> np.ndarray:  # (..., seeds, scales, levels)
        means = p.mean(axis=-3)  # (..., scales, levels)
        return ((means - means.mean(axis=-2, keepdims=True)) ** 2).sum(axis=(-2, -1)) * n

    observed = float(statistic(by_seed))
    arrangement, exact = _arrangements(n, c, draws, seed)  # scales shuffled within seeds
    hits, tolerance = 0, TIE_TOLERANCE * max(observed, 1e-300)
    seeds = np.arange(n)[None, :, None]
    for start in range(0, len(arrangement), _CHUNK):
        shuffled = by_seed[seeds, arrangement[start : start + _CHUNK]]  # (m, seeds, scales, k)
        hits += int((statistic(shuffled) >= observed - tolerance).sum())
    count = len(arrangement)
    p = hits / count if exact else (1 + hits) / (1 + count)
    how = (
        f"every one of the {count:,} arrangements" if exact
        else f"{count:,} random arrangements (seed {seed})"
    )  # fmt: skip
    test = (
        f"scale x level interaction: sum of squares of the seeds' mean level profiles "
        f"(each run minus its seed's mean at that scale) across {c} scales, p from {how} of "
        f"the scales' profiles within each of {n} seeds"
    )
    return Interaction(observed, p, count, exact, n, c, k, test)

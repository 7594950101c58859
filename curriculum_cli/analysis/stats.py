"""Statistics for A/B tests of training curricula, in pure Python (``math`` and ``random``;
numpy only to simulate the skew guard's critical values).

``compare`` asks: does arm B beat the baseline A on a metric, by more than seed noise,
and how sure can we be? This module holds the numbers (``verdict`` turns them into a
verdict); it reads no files and prints nothing.

- Student's t distribution: ``student_t_cdf``, ``student_t_quantile`` (through the
  regularized incomplete beta function; no SciPy).
- Unpaired arms (no shared seeds): ``welch_interval``, ``welch_test``.
- Arms paired by seed: ``paired_differences`` (ties snapped to 0), ``paired_t`` (interval
  of the mean paired difference), ``sign_flip_p_value`` (two-sided sign-flip permutation
  test, exact when the differences are symmetric about 0) and ``sign_flip_lower_p_value``
  (one-sided: a mean below 0; the equivalence tests against +-M use it).
- Skewed differences: ``guarded_t_quantile``, a t critical value that holds its level for
  skewed per-seed differences as well as for normal ones (``GUARD_SHAPES``).
- Several arms against one baseline: ``holm`` (step-down adjusted p-values).
- Validation-set noise: ``binomial_standard_error``.
- Steps to a target: ``first_crossing``, ``censored_summary`` for seeds that never
  reach it, and ``restricted_steps`` (never reached = the horizon) for testing them.

Conventions: a difference is *arm minus baseline*, in the metric's own unit (a fraction
for accuracies and recalls, ppm, loss, steps). p-values, ``alpha`` and confidences are
probabilities in [0, 1]. Steps are whatever the caller passes (compare uses nominal
curriculum steps).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95
ALPHA = 0.05
MAX_EXACT = 16
"""``sign_flip_p_value`` enumerates all sign patterns up to this many non-zero differences."""
MONTE_CARLO_SAMPLES = 100_000
TIE_TOLERANCE = 1e-9
"""The one tolerance for "equal": two numbers that should be equal in exact arithmetic count
as equal when they differ by at most this fraction of the magnitude ``S`` they are judged
against. For a paired difference (a tie), for "zero spread" and for "identical results"
``S`` is the largest |value| of the metric among the runs compared (1e-9 of an accuracy is
far below one residue in a billion, and far above float rounding, ~1e-16); for the sums of
the sign-flip test it is the sum of |differences|. Float rounding must never turn equal
results into a tiny non-zero difference (a "tie" of 5.6e-17 once changed a verdict)."""


# ----------------------------------------------------------------------------
# Student's t distribution
# ----------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _check_df(df: float) -> None:
    if not df > 0:  # also rejects NaN
        raise ValueError(f"need df > 0, got df={df}")


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` > 0 degrees of freedom (``math.inf``: normal).

    ``1 - I_{df/(df+t^2)}(df/2, 1/2) / 2`` for t >= 0, by symmetry below 0; accurate to
    about 1e-12. NaN for a NaN ``t``.
    """
    _check_df(df)
    if math.isnan(t):
        return math.nan
    if math.isinf(df):
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * _regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def _two_sided_t_p(t: float, df: float) -> float:
    """P(|T| >= |t|), computed without the cancellation of ``2 * (1 - cdf)``."""
    _check_df(df)
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    return min(1.0, _regularized_beta(df / 2.0, 0.5, df / (df + t * t)))


@functools.lru_cache(maxsize=1024)
def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0 < p < 1) of Student's t with ``df`` degrees of freedom.

    Bisection on ``student_t_cdf``; exact to about 1e-10, enough for a confidence
    interval (no SciPy dependency). E.g. ``student_t_quantile(0.975, 4)`` = 2.7764.
    Cached: verdicts and power figures ask for the same few quantiles again and again.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p}, df={df}")
    _check_df(df)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


# ----------------------------------------------------------------------------
# t intervals and tests
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TResult:
    """A t interval and two-sided t test of a difference (H0: the true difference is 0).

    ``estimate``: the mean difference in the metric's unit (paired: the mean of the
    per-seed differences; Welch: mean of ``first`` minus mean of ``second``).
    ``ci_low``/``ci_high``: its ``confidence`` interval; ``df``: degrees of freedom;
    ``statistic``: t; ``p_value``: two-sided. All but ``estimate`` are NaN when they
    cannot be estimated: fewer than 2 values (a side), or zero spread (then t is x/0).
    """

    estimate: float
    ci_low: float
    ci_high: float
    df: float
    statistic: float
    p_value: float
    confidence: float
    method: str


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"need 0 < confidence < 1, got {confidence}")


def _sample_variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def spread_is_zero(values: Sequence[float], scale: float | None = None) -> bool:
    """True when all values are equal up to ``TIE_TOLERANCE`` of ``scale`` (default: the
    largest |value|)."""
    if scale is None:
        scale = max(abs(v) for v in values)
    return max(values) - min(values) <= TIE_TOLERANCE * scale


def paired_differences(
    arm: Sequence[float], baseline: Sequence[float], scale: float | None = None
) -> list[float]:
    """Per-seed differences arm - baseline, a tie (``TIE_TOLERANCE`` of ``scale``) set to 0.0.

    ``scale`` (default: the largest |value| of both) is the magnitude ties are judged
    against: two runs that scored the same up to float rounding differ by exactly 0, so
    every test counts the pair as tied.
    """
    if len(arm) != len(baseline):
        raise ValueError(f"{len(arm)} arm values but {len(baseline)} baseline values")
    if scale is None:
        scale = max((abs(float(v)) for v in (*arm, *baseline)), default=0.0)
    out = []
    for a, b in zip(arm, baseline, strict=True):
        d = float(a) - float(b)
        out.append(0.0 if abs(d) <= TIE_TOLERANCE * scale else d)
    return out


def welch_interval(
    first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float, float]:
    """Difference of means (first - second) and its Welch t interval: ``(diff, low, high, df)``.

    Unequal variances; degrees of freedom by Welch-Satterthwaite. Needs at
    least 2 values on each side, else the interval is NaN. With no spread on
    either side the interval is the difference itself (``welch_test`` says NaN
    instead: there is nothing to test with).
    """
    diff = sum(first) / len(first) - sum(second) / len(second)
    if len(first) < 2 or len(second) < 2:
        return diff, math.nan, math.nan, math.nan
    v1 = _sample_variance(first) / len(first)
    v2 = _sample_variance(second) / len(second)
    if v1 + v2 == 0:
        return diff, diff, diff, float(len(first) + len(second) - 2)
    df = (v1 + v2) ** 2 / (v1**2 / (len(first) - 1) + v2**2 / (len(second) - 1))
    half = student_t_quantile(0.5 + confidence / 2.0, df) * math.sqrt(v1 + v2)
    return diff, diff - half, diff + half, df


def welch_test(
    first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE
) -> TResult:
    """Welch's unpaired t test of mean(first) - mean(second), with its interval.

    For groups without shared seeds (independent runs). Unequal variances,
    Welch-Satterthwaite degrees of freedom; the p-value is two-sided and, like every
    t test, approximate unless the values are roughly normal. NaN interval, t and p
    with fewer than 2 values on a side or with zero spread on both sides.
    """
    _check_confidence(confidence)
    if not first or not second:
        raise ValueError("welch_test needs at least one value on each side")
    first, second = [float(v) for v in first], [float(v) for v in second]
    method = f"Welch t test over {len(first)} and {len(second)} values"
    diff = sum(first) / len(first) - sum(second) / len(second)
    nan = math.nan
    if len(first) < 2 or len(second) < 2:
        return TResult(diff, nan, nan, nan, nan, nan, confidence, method)
    scale = max(abs(v) for v in first + second)
    if spread_is_zero(first, scale) and spread_is_zero(second, scale):
        return TResult(diff, nan, nan, nan, nan, nan, confidence, method)
    v1 = _sample_variance(first) / len(first)
    v2 = _sample_variance(second) / len(second)
    df = (v1 + v2) ** 2 / (v1**2 / (len(first) - 1) + v2**2 / (len(second) - 1))
    se = math.sqrt(v1 + v2)
    half = student_t_quantile(0.5 + confidence / 2.0, df) * se
    t = diff / se
    return TResult(diff, diff - half, diff + half, df, t, _two_sided_t_p(t, df), confidence, method)


def paired_t(
    differences: Sequence[float],
    confidence: float = CONFIDENCE,
    scale: float | None = None,
    *,
    skew_guarded: bool = False,
) -> TResult:
    """Paired t interval and two-sided test of the mean of per-seed differences.

    ``differences``: one value per seed, arm minus baseline. Interval
    ``mean +- t_{(1+confidence)/2, n-1} * sd / sqrt(n)``; p from t = mean / (sd / sqrt(n))
    with n - 1 degrees of freedom. ``skew_guarded``: the interval's half-width takes
    ``guarded_t_quantile((1 + confidence) / 2, n)`` standard errors instead of Student's
    quantile (t and p stay Student's). NaN interval, t and p with fewer than 2
    differences or when they are all equal (zero spread, judged against ``scale``:
    ``spread_is_zero``).
    """
    _check_confidence(confidence)
    d = [float(v) for v in differences]
    if not d:
        raise ValueError("paired_t needs at least one difference")
    n = len(d)
    mean = sum(d) / n
    method = f"paired t over {n} differences"
    nan = math.nan
    if n < 2 or spread_is_zero(d, scale):
        return TResult(mean, nan, nan, nan, nan, nan, confidence, method)
    se = math.sqrt(_sample_variance(d) / n)
    df = n - 1.0
    if skew_guarded:
        half = guarded_t_quantile(0.5 + confidence / 2.0, n) * se
        method = f"paired t over {n} differences, interval guarded against skew"
    else:
        half = student_t_quantile(0.5 + confidence / 2.0, df) * se
    t = mean / se
    return TResult(mean, mean - half, mean + half, df, t, _two_sided_t_p(t, df), confidence, method)


# ----------------------------------------------------------------------------
# Skewed differences: the guarded critical value
# ----------------------------------------------------------------------------


GUARD_SHAPES = ("normal", "exponential", "lognormal")
"""The shapes of per-seed differences whose skew ``guarded_t_quantile`` holds its level
against: normal (Student's t exactly), a centred exponential (skewness 2) and a centred
lognormal of sigma 1 (skewness 6.2), each in either direction (mirrored)."""

GUARD_DRAWS = 100_000
"""Simulated samples per shape and number of differences."""

GUARD_SEED = 0
"""``numpy.random.default_rng([GUARD_SEED, n])`` draws the samples of ``n`` differences."""

GUARD_CONFIDENCE = 0.99
"""The simulated quantile is an upper confidence bound at this level (an order statistic
above the plain estimate), so the simulation error errs on the safe side."""

GUARD_SIMULATED_UP_TO = 32
"""Numbers of differences simulated; above, the excess over Student's t at this many is
carried on shrinking as 1 / sqrt(n) (``guarded_t_quantile``)."""


def _standard_shape(name: str, rng, size):
    """Samples of one of ``GUARD_SHAPES`` (not normal), scaled to mean 0 and sd 1, skewed right."""
    import numpy as np

    if name == "exponential":
        return rng.standard_exponential(size) - 1.0
    spread = math.e - 1.0  # lognormal, sigma 1: mean e^(1/2), variance (e - 1) e
    return (np.exp(rng.standard_normal(size)) - math.exp(0.5)) / math.sqrt(spread * math.e)


@functools.lru_cache(maxsize=256)
def guarded_t_quantile(p: float, n: int) -> float:
    """The ``p`` quantile (0.5 < p < 1) of the studentized mean of ``n`` differences, taken
    as the largest over ``GUARD_SHAPES``: a critical value that keeps a one-sided t test
    at level ``1 - p`` for skewed differences too.

    For differences with mean mu and statistic ``T = (mean - mu) / (sd / sqrt(n))``,
    Student's quantile gives ``P(T <= -t) = 1 - p`` for normal differences only. When the
    differences are skewed right, a sample that misses the long right tail has a mean
    below mu *and* a small sd, so ``-T`` is large far more often (a centred lognormal,
    n = 6: ``P(-T >= t(0.95, 5)) = 0.22``, not 0.05): a test of "the mean is at least mu"
    rejects too often. This returns the largest of Student's quantile and, for each
    skewed shape, the ``p`` quantile of ``-T`` over ``GUARD_DRAWS`` simulated samples
    (``GUARD_SEED``; an upper ``GUARD_CONFIDENCE`` bound). A shape skewed left is the
    mirror image, whose ``T`` has the same upper tail, so one value serves both one-sided
    tests of an equivalence. E.g. n = 6, p = 0.95: 5.7 (Student: 2.015). Beyond
    ``GUARD_SIMULATED_UP_TO`` differences: Student's quantile plus the excess simulated
    there times ``sqrt(GUARD_SIMULATED_UP_TO / n)`` (simulated up to 50 differences the
    excess shrinks faster than that, so the extension errs on the safe side). No
    critical value can hold for every shape with few differences (Bahadur and Savage,
    1956): more skewed differences than these can still exceed the level.
    """
    import numpy as np

    if not 0.5 < p < 1.0:
        raise ValueError(f"need 0.5 < p < 1, got {p}")
    if n < 2:
        raise ValueError(f"need n >= 2 differences, got {n}")
    student = student_t_quantile(p, n - 1)
    if n > GUARD_SIMULATED_UP_TO:
        at = GUARD_SIMULATED_UP_TO
        excess = guarded_t_quantile(p, at) - student_t_quantile(p, at - 1)
        return student + excess * math.sqrt(at / n)
    rng = np.random.default_rng([GUARD_SEED, n])
    z = NormalDist().inv_cdf(GUARD_CONFIDENCE)
    rank = math.ceil(GUARD_DRAWS * p + z * math.sqrt(GUARD_DRAWS * p * (1.0 - p)))
    rank = min(rank, GUARD_DRAWS)
    largest = student
    for name in GUARD_SHAPES[1:]:
        sample = _standard_shape(name, rng, (GUARD_DRAWS, n))
        total, squares = sample.sum(axis=1), np.einsum("ij,ij->i", sample, sample)
        sd = np.sqrt(np.maximum(squares - total**2 / n, 0.0) / (n - 1))
        upper = -total / math.sqrt(n) / sd
        largest = max(largest, float(np.partition(upper, rank - 1)[rank - 1]))
    return largest


# ----------------------------------------------------------------------------
# Sign-flip permutation test
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignFlipResult:
    """The sign-flip permutation test of a mean paired difference.

    ``p_value``: two-sided (``sign_flip_p_value``), the share of sign patterns whose |sum|
    is at least the observed |sum| (the observed pattern included), or one-sided
    (``sign_flip_lower_p_value``), the share whose sum is at most the observed sum.
    ``n``: differences given; ``n_nonzero``: those not tied (a zero difference's sign
    changes nothing, so only these are flipped). ``exact``: all 2^n_nonzero patterns
    enumerated, else a seeded Monte Carlo over ``patterns`` random ones (``method`` says
    which, with the seed).
    ``smallest_p``: the smallest p-value these differences could give:
    2 / 2^n_nonzero when exact (the observed pattern and its mirror always count; one-sided:
    1 / 2^n_nonzero), at least 1 / (patterns + 1) for Monte Carlo.
    """

    p_value: float
    n: int
    n_nonzero: int
    exact: bool
    patterns: int
    smallest_p: float
    method: str


def _signed_sums(values: Sequence[float]) -> list[float]:
    """All 2^len sums of +-values; bit j of the index set means +values[j]."""
    sums = [0.0]
    for value in values:
        sums = [s - value for s in sums] + [s + value for s in sums]
    return sums


def _random_sign_sums(values: Sequence[float], samples: int, seed: int):
    """``samples`` sums of +-values under random sign patterns from ``random.Random(seed)``."""
    rng = random.Random(seed)
    m = len(values)
    chunks = []  # (shift, mask, table of signed sums of up to 12 values)
    for start in range(0, m, 12):
        part = values[start : start + 12]
        chunks.append((start, (1 << len(part)) - 1, _signed_sums(part)))
    for _ in range(samples):
        bits = rng.getrandbits(m)
        total = 0.0
        for shift, mask, table in chunks:
            total += table[(bits >> shift) & mask]
        yield total


def _untied(values: Sequence[float], scale: float | None) -> list[float]:
    d = [float(v) for v in values]
    if any(not math.isfinite(v) for v in d):
        raise ValueError("a sign-flip test needs finite values")
    if scale is None:
        scale = max((abs(v) for v in d), default=0.0)
    return [v for v in d if abs(v) > TIE_TOLERANCE * scale]


def sign_flip_p_value(
    differences: Sequence[float],
    *,
    scale: float | None = None,
    max_exact: int = MAX_EXACT,
    samples: int = MONTE_CARLO_SAMPLES,
    seed: int = 0,
) -> SignFlipResult:
    """Two-sided sign-flip permutation test of H0 "the paired differences are symmetric about 0".

    Under H0 (e.g. two arms that are the same curriculum) each seed's difference is as
    likely to be +d as -d, so the observed |sum| is compared with that of every sign
    pattern. The test is exact under that H0, and only under it: differences with mean
    0 but a skewed distribution (two arms whose seed-to-seed noise differs in shape) are
    not symmetric, and the test then rejects more often than its level
    (``docs/ab-testing.md`` gives figures). A difference within ``TIE_TOLERANCE`` of
    ``scale`` (default: the largest |difference|; ``decide`` passes the values'
    magnitude) is a tie and is not flipped.
    Exact up to ``max_exact`` untied differences (2^n patterns); above, ``samples``
    random patterns from ``random.Random(seed)``, p = (hits + 1) / (samples + 1). Sums
    within ``TIE_TOLERANCE`` of sum(|d|) of the observed one count as "at least as
    extreme" (conservative).

    The test is discrete: with n untied differences the smallest attainable p-value
    is 2 / 2^n (n = 3: 0.25, n = 5: 0.0625, n = 6: 0.03125). **With fewer than 6 pairs it
    can never reach p < 0.05**, however large the difference; ``decide`` says so
    instead of reporting "no difference". No differences, or all tied: p = 1.
    """
    nonzero = _untied(differences, scale)
    n, m = len(differences), len(nonzero)
    observed = abs(sum(nonzero))
    threshold = observed - TIE_TOLERANCE * sum(abs(v) for v in nonzero)
    if m == 0:
        return SignFlipResult(1.0, n, 0, True, 1, 1.0, "exact sign-flip test (all differences 0)")
    if m <= max_exact:
        # Fix the first sign: the pattern set is symmetric, so half of it gives the same share.
        rest = _signed_sums(nonzero[1:])
        first = nonzero[0]
        hits = sum(1 for s in rest if abs(first + s) >= threshold)
        p = hits / len(rest)
        return SignFlipResult(
            p, n, m, True, 2**m, 2.0 / 2**m, f"exact sign-flip test over {2**m:,} patterns"
        )
    if samples < 1:
        raise ValueError(f"need samples >= 1, got {samples}")
    hits = sum(1 for total in _random_sign_sums(nonzero, samples, seed) if abs(total) >= threshold)
    p = (hits + 1) / (samples + 1)
    smallest = max(2.0 / 2**m, 1.0 / (samples + 1))
    method = f"Monte Carlo sign-flip test over {samples:,} random sign patterns (seed {seed})"
    return SignFlipResult(p, n, m, False, samples, smallest, method)


def sign_flip_lower_p_value(
    values: Sequence[float],
    *,
    scale: float | None = None,
    max_exact: int = MAX_EXACT,
    samples: int = MONTE_CARLO_SAMPLES,
    seed: int = 0,
) -> SignFlipResult:
    """One-sided sign-flip test of H0 "the values are symmetric about 0" against "their mean
    is below 0".

    p: the share of sign patterns whose sum is at most the observed sum (the observed
    pattern included), so small when the observed sum is among the most negative. The
    equivalence tests of ``decide`` use it on ``d - M`` (small p: the mean difference is
    below +M) and on ``-d - M`` (above -M); like the two-sided test it is exact for
    values symmetric about 0, i.e. for differences symmetric about the margin tested.
    Ties (within ``TIE_TOLERANCE`` of ``scale``, default the largest |value|) are not
    flipped. Exact up to ``max_exact`` untied values; above, a seeded Monte Carlo as in
    ``sign_flip_p_value``. With n untied values the smallest attainable p is 1 / 2^n
    (n = 4: 0.0625, n = 5: 0.03125): **fewer than 5 can never reach p < 0.05**. No
    untied values: p = 1.
    """
    nonzero = _untied(values, scale)
    n, m = len(values), len(nonzero)
    threshold = sum(nonzero) + TIE_TOLERANCE * sum(abs(v) for v in nonzero)
    if m == 0:
        return SignFlipResult(1.0, n, 0, True, 1, 1.0, "exact one-sided sign-flip test (all 0)")
    if m <= max_exact:
        hits = sum(1 for total in _signed_sums(nonzero) if total <= threshold)
        return SignFlipResult(
            hits / 2**m, n, m, True, 2**m, 1.0 / 2**m,
            f"exact one-sided sign-flip test over {2**m:,} patterns",
        )  # fmt: skip
    if samples < 1:
        raise ValueError(f"need samples >= 1, got {samples}")
    hits = sum(1 for total in _random_sign_sums(nonzero, samples, seed) if total <= threshold)
    method = (
        f"Monte Carlo one-sided sign-flip test over {samples:,} random sign patterns (seed {seed})"
    )
    smallest = max(1.0 / 2**m, 1.0 / (samples + 1))
    return SignFlipResult((hits + 1) / (samples + 1), n, m, False, samples, smallest, method)


# ----------------------------------------------------------------------------
# Multiple comparisons
# ----------------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    Sorted ascending, the i-th smallest (i = 0..m-1) becomes ``(m - i) * p``, made
    monotone (never below the previous adjusted value) and capped at 1. Rejecting where
    the adjusted p < alpha controls the family-wise error rate at alpha under any
    dependence between the tests. With one p-value it is returned unchanged.
    """
    ps = [float(p) for p in p_values]
    for p in ps:
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise ValueError(f"p-values must be in [0, 1], got {p}")
    m = len(ps)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: ps[i])):
        running = max(running, min(1.0, (m - rank) * ps[index]))
        adjusted[index] = running
    return adjusted


# ----------------------------------------------------------------------------
# Validation-set noise
# ----------------------------------------------------------------------------


def binomial_standard_error(p: float, n: int) -> float:
    """Standard error ``sqrt(p (1 - p) / n)`` of a proportion ``p`` measured on ``n`` items.

    The validation-set noise of an accuracy or recall: how much the metric would move
    on another validation set of the same size, with the model fixed (seed noise is
    separate and usually larger). Assumes independent items. Residues within one
    spectrum are not independent (one wrong mass shifts the rest), so for residue-level
    accuracy use ``n`` = the number of *spectra*, not residues. That is usually
    conservative, but not always: a pooled residue accuracy weighs each spectrum by its
    length, which adds variance that ``p (1 - p) / n`` misses, the more so when longer
    spectra are also harder (256 spectra of 7-20 residues, each all right or all wrong:
    5% too small at one accuracy for every length, 9% when it falls from 0.99 to 0.6
    with length). The bootstrap over spectra of ``compare --rescore`` measures the set's
    noise instead.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"need 0 <= p <= 1, got {p}")
    if not n > 0:
        raise ValueError(f"need n > 0 items, got {n}")
    return math.sqrt(p * (1.0 - p) / n)


# ----------------------------------------------------------------------------
# Steps to target, with censoring
# ----------------------------------------------------------------------------


def _smoothed(values: list[float], k: int) -> list[float]:
    """Trailing moving average over the last ``k`` values (fewer at the start)."""
    out = []
    for i in range(len(values)):
        window = values[max(0, i - k + 1) : i + 1]
        out.append(sum(window) / len(window))
    return out


def first_crossing(
    steps: Sequence[float],
    values: Sequence[float],
    target: float,
    method: str = "interpolated",
    smooth: int | None = None,
    better: str = "higher",
) -> float | None:
    """The step at which a validation curve first reaches ``target``, or None if never.

    ``steps``: validation steps, strictly increasing; ``values``: the metric there
    (non-finite values are skipped). Reached means ``value >= target`` (``better =
    "lower"``: ``<=``, for losses). ``method``:

    - ``"interpolated"`` (default): linear interpolation between the last validation
      short of the target and the first that reaches it, i.e. the curve is taken as a
      straight line between validations. If the first validation already reaches the
      target, its step is returned (the true crossing is at or before it).
    - ``"first"``: the step of the first validation that reaches it (an upper bound,
      resolution = the validation interval).

    ``smooth=k``: the curve is first a trailing moving average over the last k
    validations (fewer at the start), so one lucky validation does not count; default
    off. Returns a float step in the units of ``steps``.
    """
    if method not in ("interpolated", "first"):
        raise ValueError(f"method must be 'interpolated' or 'first', got {method!r}")
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps but {len(values)} values")
    if smooth is not None and smooth < 1:
        raise ValueError(f"smooth must be >= 1 validations, got {smooth}")
    points = [
        (float(s), float(v))
        for s, v in zip(steps, values, strict=True)
        if v is not None and math.isfinite(float(v))
    ]
    xs = [s for s, _ in points]
    if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
        raise ValueError("steps must be strictly increasing")
    ys = [v for _, v in points]
    if smooth is not None and smooth > 1:
        ys = _smoothed(ys, smooth)
    sign = 1.0 if better == "higher" else -1.0
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if sign * (y - target) >= 0:
            if method == "first" or i == 0:
                return x
            x0, y0 = xs[i - 1], ys[i - 1]
            return x0 + (target - y0) / (y - y0) * (x - x0)
    return None


def censored_summary(crossings: Sequence[float | None], horizon: float | None = None) -> dict:
    """Steps to target over seeds, counting seeds that never reached it as censored.

    ``crossings``: one per seed, a step or None/NaN (never reached by the end of its
    run, or by ``horizon``: a crossing after ``horizon`` counts as never). Returns ``n``,
    ``n_reached``, ``median``, ``mean_of_reached``, ``horizon`` and ``text``:

    - ``median``: over *all* seeds, a never-reached seed counting as +infinity
      (censored after every observed crossing: a Kaplan-Meier-style median for runs
      of equal length). With an even n it is the mean of the two middle values; when
      exactly half reached, the step at which half had (the last of them). None when
      fewer than half reached.
    - ``mean_of_reached``: the mean over the seeds that reached (biased low: the slow
      seeds are missing from it); None if none did.
    - ``text``: e.g. ``"3 of 5 reached (2 censored at 100,000); median 1,240"`` or ``"1 of 3
      reached; median not reached"`` (without a horizon).
    """
    limit = math.inf if horizon is None else horizon
    steps = [float(c) if _reached_by(c, limit) else math.inf for c in crossings]
    n = len(steps)
    reached = sorted(s for s in steps if math.isfinite(s))
    ordered = sorted(steps)
    median: float | None = None
    if n and 2 * len(reached) >= n:
        low, high = ordered[(n - 1) // 2], ordered[n // 2]
        median = (low + high) / 2.0 if math.isfinite(high) else low
    mean = sum(reached) / len(reached) if reached else None
    if n == 0:
        text = "no runs"
    else:
        shown = f"median {median:,.0f}" if median is not None else "median not reached"
        censored = n - len(reached)
        where = f" ({censored} censored at {horizon:,.0f})" if censored and horizon else ""
        text = f"{len(reached)} of {n} reached{where}; {shown}"
    return {
        "n": n,
        "n_reached": len(reached),
        "median": median,
        "mean_of_reached": mean,
        "horizon": horizon,
        "text": text,
    }


def _reached_by(crossing: float | None, horizon: float) -> bool:
    """A crossing at or before ``horizon`` (a finite step)."""
    return crossing is not None and math.isfinite(float(crossing)) and float(crossing) <= horizon


def restricted_steps(crossings: Sequence[float | None], horizon: float) -> list[float]:
    """Steps to target restricted to ``horizon``: ``min(crossing, horizon)``, never = horizon.

    The per-seed value whose mean is the restricted mean steps to target (RMST-style:
    the area under the "not reached yet" curve up to the horizon). Censoring is at the
    horizon for every seed, so the value is known for every seed, and applying the same
    truncation to both arms keeps their values exchangeable under H0: the paired
    sign-flip test on these values stays exact. ``horizon``: a step every compared run
    was observed up to.
    """
    out = []
    for crossing in crossings:
        value = math.nan if crossing is None else float(crossing)
        out.append(horizon if not math.isfinite(value) else min(value, horizon))
    return out

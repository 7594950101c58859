"""What an A/B could have seen: its minimal detectable difference, and the seeds a margin needs.

Beside every verdict ``compare`` states, for the observed spread between seeds:

- the **minimal detectable difference** (MDD): the smallest true mean difference that
  ``verdict.decide``'s rules call a ``difference`` with probability ``POWER`` (80%);
- the **equivalence reach**: the narrowest margin M within which the rules call the arms
  ``equivalent`` with probability ``POWER`` when they do not differ at all;
- with a declared margin M, the **seeds needed**: the fewest seeds with which both hold
  for M, i.e. a difference of M would likely be found and, if there is none,
  equivalence within +-M would likely be shown: the A/B would likely be settled.

How (``docs/ab-testing.md``, "What it could have seen"): A/Bs are simulated and the
rules applied to each, in their order, as ``decide`` applies them: a sample whose
differences are all ties is ``identical``, one the difference rule calls a difference is
never ``equivalent``. The per-seed differences are modelled as normal with the observed
sd taken as the true one (a plug-in: with few seeds the sd itself is uncertain, so these
are estimates, not guarantees). ``DRAWS`` samples from
``numpy.random.default_rng(POWER_SEED)``; each figure is a ``POWER`` quantile of a
per-sample threshold, computed exactly for the sample.

- Paired by seed: each pair is a tie (difference exactly 0) with the share of tied pairs
  observed, else normal; the shift of a true difference moves the untied pairs, and the
  MDD is given as the mean difference it makes. Everything is in units of the untied
  pairs' sd, so it is found once per number of pairs (and alpha, k, tie share).

  *Difference* (``significant_difference``): the sign-flip test over the untied pairs
  rejects at alpha / k (Holm over k comparisons: its first, Bonferroni step, a lower
  bound on Holm's power) *and* the ``1 - alpha`` t interval over all pairs excludes 0.
  The sign-flip test rejects from a sample's *critical shift* on: with differences
  ``shift + z`` its p-value is ``C / 2^(u-1)`` with ``C`` the subsets F (the empty one
  included) of the u untied pairs with ``sum over F <= 0``, which holds exactly while the
  shift is at most the mean of ``-z`` over F; so it rejects beyond the ``L+1``-th largest
  subset mean of ``-z`` (``L = ceil(alpha 2^(u-1)) - 2``; ``_flip_shifts``). The MDD is
  the smallest shift at which ``POWER`` of the samples pass both conditions (bisection;
  the t condition is evaluated at each shift, ties included).

  *Equivalence* (``inside_the_margin``), with no true difference: the skew-guarded
  ``1 - 2 alpha / k`` interval (``stats.guarded_t_quantile``) lies inside +-M, i.e.
  ``M > |mean| + c sd / sqrt(n)``, *and* both one-sided sign-flip tests against +-M
  reject at alpha / k: the test of ``d - M`` rejects once at most ``L`` non-empty subsets
  have a mean of d at least M (``L = ceil(alpha 2^n) - 2``), i.e. beyond the ``L+1``-th
  largest subset mean of d, and likewise for -d. A sample the difference rule calls a
  difference (either sign) or whose pairs are all tied never shows equivalence. The
  reach is the ``POWER`` quantile of each sample's smallest such M.

  Above ``FLIP_SIMULATED_UP_TO`` pairs the sign-flip conditions are left out
  (enumerating 2^n subsets per sample gets slow), and each sample's mean and sd are
  drawn from their exact distributions for normal data: the tests agree
  asymptotically, for 13-16 pairs the full rule's MDD was within 1% of the t
  condition's alone, and for equivalence the guarded interval is the stricter
  condition there (``docs/ab-testing.md``).
- Unpaired (Welch): runs normal with the observed sds; a sample's mean difference,
  sample variances and Welch degrees of freedom are drawn from their exact
  distributions. Difference: Welch's test rejects at alpha / k (the ``1 - alpha``
  interval then excludes 0); equivalence: not a difference, and the ``1 - 2 alpha / k``
  Welch interval inside +-M.

numpy (and scipy's t quantile for Welch) only, no torch.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from curriculum_cli.analysis.stats import guarded_t_quantile, student_t_quantile

POWER = 0.8
"""The probability of finding a difference (or showing equivalence) that the figures assume."""

DRAWS = 4_000
"""Simulated samples per number of pairs (the figures' simulation error is about 1-2%)."""

POWER_SEED = 0
"""Seed of ``numpy.random.default_rng`` for the simulation: the figures are reproducible."""

FLIP_SIMULATED_UP_TO = 12
"""Pairs up to which the sign-flip tests' conditions are simulated exactly (module docstring)."""

MAX_SEEDS = 10_000
"""Seeds-needed searches stop here ("more than 10,000")."""

_CHUNK_ENTRIES = 1 << 22
"""Subset sums held at once while simulating the sign-flip test (32 MiB of float64)."""

_LARGEST_SHIFT = 1e4
"""In units of the sd: a shift the rule still misses this often counts as never found."""


@dataclass(frozen=True)
class Sensitivity:
    """What one comparison could have seen, in the metric's unit.

    ``paired``: by seed (else Welch); ``n``: seed pairs (Welch: runs per arm, the
    smaller); ``n_tied``: tied pairs among them (the simulation ties pairs in that
    share); ``sd``: the sd of one seed's difference (paired: of the untied paired
    differences; Welch: sqrt(sd_arm^2 + sd_baseline^2), the sd of one run's
    difference); ``mdd``: the minimal detectable (mean) difference at ``power`` (inf:
    the rules cannot find any with these seeds); ``equivalence_reach``: the narrowest
    margin they show equivalence within, at ``power``, when the arms are equal (inf:
    none); ``margin``: the declared one (None: none); ``seeds_for_margin``: seeds per
    arm with which both the MDD and the reach are within the margin (None: no margin;
    ``MAX_SEEDS + 1``: more than ``MAX_SEEDS``); ``method``: how these were obtained.
    """

    paired: bool
    n: int
    n_tied: int
    sd: float
    mdd: float
    equivalence_reach: float
    margin: float | None
    seeds_for_margin: int | None
    power: float
    method: str

    def text(self) -> str:
        """One sentence: what a difference would have had to be, what the margin needs."""
        if math.isfinite(self.mdd):
            mdd = f"the smallest difference it finds with {self.power:.0%} power is {self.mdd:.2g}"
        else:
            mdd = (
                "it cannot find a difference of any size (too few untied pairs for the exact test)"
            )
        if math.isfinite(self.equivalence_reach):
            reach = (
                f", the narrowest margin it shows equivalence within is "
                f"{self.equivalence_reach:.2g}"
            )
        else:
            lead = ", but it cannot" if math.isfinite(self.mdd) else ", nor"
            reach = (
                f"{lead} show equivalence within any margin (too few pairs for the one-sided "
                "sign-flip tests)"
            )
        if self.paired:
            tied = f" ({self.n_tied} tied)" if self.n_tied else ""
            among = " among the untied pairs" if self.n_tied else ""
            spread = f"{self.n} seed pairs{tied} and a paired sd of {self.sd:.2g}{among}"
        else:
            spread = f"{self.n} runs per arm and an sd of {self.sd:.2g} per run difference"
        words = f"What it could have seen: with {spread}, {mdd}{reach}"
        if self.margin is not None:
            seeds = (
                f"more than {MAX_SEEDS:,}"
                if self.seeds_for_margin > MAX_SEEDS
                else f"about {self.seeds_for_margin:,}"
            )
            words += f"; a margin of {self.margin:.2g} needs {seeds} seeds to be settled"
        return f"{words} ({self.method})."


def _at_power(values) -> float:
    """The smallest threshold that ``POWER`` of the samples' thresholds are below (inf stays)."""
    import numpy as np

    rank = math.ceil(POWER * len(values))
    return float(np.partition(values, rank - 1)[rank - 1])


# ----------------------------------------------------------------------------
# Paired by seed: the rules of ``decide``, simulated
# ----------------------------------------------------------------------------


def _flip_rank(n: int, alpha: float) -> int:
    """``L + 1``: the rank of the subset mean that is the two-sided sign-flip test's
    critical shift.

    With differences ``d = e + z``, the test's p-value is ``C / 2^(n-1)`` with ``C`` the
    number of subsets F (the empty one included) with ``sum_F d <= 0``, and
    ``sum_F d <= 0`` exactly when ``e <= mean_F(-z)``. It rejects when ``C < alpha
    2^(n-1)``, i.e. when at most ``L = ceil(alpha 2^(n-1)) - 2`` non-empty subsets have
    ``mean_F(-z) >= e``. Returns 0 when no shift can make it reject (L < 0).
    """
    return max(0, math.ceil(alpha * 2 ** (n - 1)) - 1)


def _one_sided_rank(n: int, alpha: float) -> int:
    """``L + 1`` for the one-sided sign-flip test of ``d - M`` (``stats.sign_flip_lower_p_value``).

    Its p-value is ``C / 2^n`` with ``C`` the subsets F (the empty one included) with
    ``sum_F (d - M) >= 0``, i.e. ``mean_F d >= M``; it rejects when at most
    ``L = ceil(alpha 2^n) - 2`` non-empty subsets have ``mean_F d >= M``: for every M beyond
    the ``L+1``-th largest subset mean of d. 0 when no M can make it reject.
    """
    return max(0, math.ceil(alpha * 2**n) - 1)


def _flip_shifts(z, rank: int):
    """Per sample (row of ``z``), the ``rank``-th largest mean of ``-z`` over non-empty subsets."""
    import numpy as np

    m, n = z.shape
    width = 2**n
    sizes = np.zeros(width)
    for j in range(n):
        sizes[2**j : 2 ** (j + 1)] = sizes[: 2**j] + 1
    sizes[0] = 1.0  # the empty subset: its sum 0 is overwritten below, never ranked
    rows = max(1, _CHUNK_ENTRIES // width)
    out = np.empty(m)
    sums = np.empty((min(rows, m), width))
    for start in range(0, m, rows):
        part = z[start : start + rows]
        block = sums[: len(part)]
        block[:, 0] = 0.0
        for j in range(n):  # subsets with element j: those without it, minus z_j
            np.subtract(block[:, : 2**j], part[:, j : j + 1], out=block[:, 2**j : 2 ** (j + 1)])
        block /= sizes
        block[:, 0] = -np.inf  # the empty subset does not count
        out[start : start + len(part)] = np.partition(block, width - rank, axis=1)[:, width - rank]
    return out


def _untied_flip_shifts(z, untied, alpha: float):
    """Per sample, the two-sided sign-flip test's critical shift over its untied pairs
    (inf where no shift can make it reject: too few untied pairs)."""
    import numpy as np

    counts = untied.sum(axis=1)
    out = np.full(len(z), np.inf)
    for u in np.unique(counts):
        rank = _flip_rank(int(u), alpha)
        if u == 0 or rank == 0:
            continue
        rows = counts == u
        out[rows] = _flip_shifts(z[rows][untied[rows]].reshape(-1, int(u)), rank)
    return out


@dataclass
class _PairedSample:
    """Simulated A/Bs of ``n`` pairs, in units of the untied pairs' sd, with no true
    difference: per sample the untied pairs ``untied`` (their number), the mean ``zbar``
    and the sum of squared deviations ``ss`` of their values; for up to
    ``FLIP_SIMULATED_UP_TO`` pairs the values themselves (``z``, tied pairs 0) and which
    pairs are untied (``untied_mask``), else None."""

    n: int
    untied: object
    zbar: object
    ss: object
    z: object = None
    untied_mask: object = None

    def mean_and_se(self, shift: float):
        """Mean and standard error over all n pairs when the untied pairs move by ``shift``."""
        import numpy as np

        moved = shift + self.zbar
        ss_all = self.ss + self.untied * (1.0 - self.untied / self.n) * moved**2
        return self.untied * moved / self.n, np.sqrt(ss_all / (self.n * (self.n - 1)))


def _paired_sample(n: int, tie_share: float, flip_up_to: int, draws: int) -> _PairedSample:
    import numpy as np

    rng = np.random.default_rng(POWER_SEED)
    if n <= flip_up_to:
        z = rng.standard_normal((draws, n))
        mask = (rng.random((draws, n)) >= tie_share) if tie_share > 0 else np.ones(z.shape, bool)
        z = np.where(mask, z, 0.0)
        untied = mask.sum(axis=1)
        total = z.sum(axis=1)
        safe = np.maximum(untied, 1)
        ss = np.maximum((z**2).sum(axis=1) - total**2 / safe, 0.0)
        return _PairedSample(n, untied, total / safe, ss, z, mask)
    zbar = rng.standard_normal(draws)
    untied = rng.binomial(n, 1.0 - tie_share, draws) if tie_share > 0 else np.full(draws, n)
    safe = np.maximum(untied, 1)
    ss = rng.chisquare(np.maximum(untied - 1, 1)) * (untied >= 2)
    return _PairedSample(n, untied, zbar / np.sqrt(safe), ss)


def _paired_mdd(sample: _PairedSample, alpha: float, flip) -> float:
    """The smallest shift of the untied pairs found as a difference in ``POWER`` of samples."""
    t = student_t_quantile(1.0 - alpha / 2.0, sample.n - 1)
    has_untied = sample.untied > 0

    def found(shift: float) -> float:
        mean, se = sample.mean_and_se(shift)
        hits = has_untied & (mean - t * se > 0)
        if flip is not None:
            hits &= shift > flip
        return hits.mean()

    high = 1.0
    while found(high) < POWER:
        if high > _LARGEST_SHIFT:
            return math.inf
        high *= 2.0
    low = 0.0
    for _ in range(60):
        middle = (low + high) / 2.0
        low, high = (low, middle) if found(middle) >= POWER else (middle, high)
    return high


def _rules(sample: _PairedSample, alpha: float, comparisons: int, flip):
    """The rules on each sample as drawn (no shift): ``(difference, critical_margin)``,
    whether the difference rule holds (either sign), and the margin beyond which the
    sample would be ``equivalent`` (inf: at no margin: a difference, all pairs tied, or
    too few pairs for the one-sided sign-flip tests)."""
    import numpy as np

    n = sample.n
    one_sided = alpha / comparisons
    mean, se = sample.mean_and_se(0.0)
    t = student_t_quantile(1.0 - alpha / 2.0, n - 1)
    difference = np.zeros(len(mean), bool)
    for sign in (1.0, -1.0):  # the difference rule, either way; sign-flip conditions below
        excludes = sign * mean - t * se > 0
        if flip is not None and excludes.any():
            rows = np.flatnonzero(excludes)
            shifts = flip[rows] if sign > 0 else _untied_flip_shifts(
                -sample.z[rows], sample.untied_mask[rows], one_sided)  # fmt: skip
            excludes[rows] = shifts < 0
        difference |= excludes
    rank = _one_sided_rank(n, one_sided) if sample.z is not None else 1
    if rank == 0:
        return difference, np.full(len(mean), np.inf)
    critical = np.abs(mean) + guarded_t_quantile(1.0 - one_sided, n) * se
    if sample.z is not None:  # the one-sided sign-flip tests; they bind only beyond max |d|
        d = sample.z
        rows = np.flatnonzero(np.abs(d).max(axis=1) > critical)
        if len(rows):
            up, down = _flip_shifts(-d[rows], rank), _flip_shifts(d[rows], rank)
            critical[rows] = np.maximum(critical[rows], np.maximum(up, down))
    critical[difference | (sample.untied == 0)] = np.inf
    return difference, critical


def rules_on_samples(differences, alpha: float, comparisons: int = 1):
    """``decide``'s rules applied to each row of ``differences`` (a 2-d array: samples x
    seed pairs, ties as exact zeros, at most 16 pairs), vectorized: ``(difference,
    critical_margin)``, whether the rules call the row a ``difference``, and the margin
    beyond which they would call it ``equivalent`` (inf: at none). The simulation of the
    figures applies the same function to its samples; ``bench/bench_verdict.py`` uses it to
    measure the rules on skewed differences, and a test checks it against ``decide`` row by
    row. Differences are taken to have a spread (no zero-spread rows)."""
    import numpy as np

    d = np.asarray(differences, dtype=float)
    if d.ndim != 2 or not 2 <= d.shape[1] <= 16:
        raise ValueError(f"need a samples x pairs array of 2-16 pairs, got shape {d.shape}")
    mask = d != 0.0
    untied = mask.sum(axis=1)
    total = d.sum(axis=1)
    safe = np.maximum(untied, 1)
    ss = np.maximum((d**2).sum(axis=1) - total**2 / safe, 0.0)
    sample = _PairedSample(d.shape[1], untied, total / safe, ss, d, mask)
    return _rules(sample, alpha, comparisons, _untied_flip_shifts(d, mask, alpha / comparisons))


@functools.lru_cache(maxsize=512)
def paired_units(
    n: int,
    alpha: float,
    comparisons: int = 1,
    tie_share: float = 0.0,
    min_pairs: int = 2,
    flip_up_to: int = FLIP_SIMULATED_UP_TO,
    draws: int = DRAWS,
) -> tuple[float, float]:
    """``(mdd, reach)`` of ``decide``'s rules over ``n`` seed pairs, in units of the untied
    pairs' sd, by simulation (module docstring).

    ``tie_share``: the probability that a pair is a tie; ``mdd`` is the mean difference
    ``(1 - tie_share) * shift``. ``min_pairs``: ``decide``'s (fewer pairs: no verdict).
    ``mdd`` is inf when the rules cannot find a difference (fewer than 6 untied pairs at
    alpha 0.05), ``reach`` when they cannot show equivalence (fewer than 5 pairs). Up to
    ``flip_up_to`` pairs the sign-flip conditions are simulated. Cached: it depends on
    nothing else.
    """
    if n < max(2, min_pairs):
        return math.inf, math.inf
    sample = _paired_sample(n, tie_share, flip_up_to, draws)
    one_sided = alpha / comparisons
    flip = None
    if sample.z is not None:
        flip = _untied_flip_shifts(sample.z, sample.untied_mask, one_sided)
    mdd = _paired_mdd(sample, alpha, flip) * (1.0 - tie_share)
    return mdd, _at_power(_rules(sample, alpha, comparisons, flip)[1])


def paired_sensitivity(
    n: int,
    sd: float,
    alpha: float,
    comparisons: int = 1,
    margin: float | None = None,
    *,
    n_tied: int = 0,
    min_pairs: int = 2,
) -> Sensitivity:
    """What ``n`` seed pairs, ``n_tied`` of them tied, with sd ``sd`` of the untied paired
    differences could have seen (module docstring); ``min_pairs``: ``decide``'s."""
    tie_share = n_tied / n

    def units(k: int) -> tuple[float, float]:
        return paired_units(k, alpha, comparisons, tie_share, min_pairs)

    mdd, reach = units(n)
    seeds = None
    if margin is not None:
        seeds = _fewest(lambda k: max(units(k)) <= margin / sd)
    ties = f", pairs tied in the share observed ({n_tied} of {n})" if n_tied else ""
    method = (
        f"{POWER:.0%} power, by simulating the rules in their order for normal differences "
        f"of this sd{ties}: {DRAWS:,} samples, seed {POWER_SEED}"
    )
    return Sensitivity(True, n, n_tied, sd, mdd * sd, reach * sd, margin, seeds, POWER, method)


def _fewest(enough) -> int:
    """The smallest k >= 2 with ``enough(k)``, assuming it stays true (MAX_SEEDS + 1: none)."""
    low, high = 1, 2  # enough(low) is False (one seed settles nothing)
    while not enough(high):
        if high > MAX_SEEDS:
            return MAX_SEEDS + 1
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


# ----------------------------------------------------------------------------
# Unpaired (Welch): the rules simulated for normal runs
# ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def welch_units(
    n_arm: int,
    n_base: int,
    arm_share: float,
    alpha: float,
    comparisons: int = 1,
    min_pairs: int = 2,
    draws: int = DRAWS,
) -> tuple[float, float]:
    """``(mdd, reach)`` of the Welch rules in units of ``sqrt(var_arm + var_base)``, by
    simulation (module docstring). ``arm_share``: ``var_arm / (var_arm + var_base)``."""
    import numpy as np
    from scipy.special import stdtrit

    if min(n_arm, n_base) < max(2, min_pairs):
        return math.inf, math.inf
    rng = np.random.default_rng(POWER_SEED)
    var_arm, var_base = arm_share, 1.0 - arm_share
    mean = rng.standard_normal(draws) * math.sqrt(var_arm / n_arm + var_base / n_base)
    a = var_arm * rng.chisquare(n_arm - 1, draws) / (n_arm - 1) / n_arm
    b = var_base * rng.chisquare(n_base - 1, draws) / (n_base - 1) / n_base
    se = np.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / (n_arm - 1) + b**2 / (n_base - 1))
    t_difference = stdtrit(df, 1.0 - alpha / (2.0 * comparisons))
    t_equivalence = stdtrit(df, 1.0 - alpha / comparisons)
    mdd = _at_power(t_difference * se - mean)
    critical = np.where(np.abs(mean) > t_difference * se, np.inf,
                        np.abs(mean) + t_equivalence * se)  # fmt: skip
    return mdd, _at_power(critical)


def welch_sensitivity(
    n_arm: int,
    n_base: int,
    sd_arm: float,
    sd_base: float,
    alpha: float,
    comparisons: int = 1,
    margin: float | None = None,
    *,
    min_pairs: int = 2,
) -> Sensitivity:
    """What unpaired arms of ``n_arm`` and ``n_base`` runs could have seen (module docstring)."""
    var_arm, var_base = sd_arm**2, sd_base**2
    sd = math.sqrt(var_arm + var_base)
    share = var_arm / (var_arm + var_base)

    def units(k_arm: int, k_base: int) -> tuple[float, float]:
        return welch_units(k_arm, k_base, share, alpha, comparisons, min_pairs)

    mdd, reach = units(n_arm, n_base)
    seeds = None
    if margin is not None:
        seeds = _fewest(lambda k: max(units(k, k)) <= margin / sd)
    method = (
        f"{POWER:.0%} power, by simulating Welch's rules for normal runs of these sds: "
        f"{DRAWS:,} samples, seed {POWER_SEED}"
    )
    return Sensitivity(False, min(n_arm, n_base), 0, sd, mdd * sd, reach * sd, margin, seeds,
                       POWER, method)  # fmt: skip

"""What an A/B could have seen: its minimal detectable difference, and the seeds a margin needs.

Beside every verdict ``compare`` states, for the observed spread between seeds:

- the **minimal detectable difference** (MDD): the smallest true difference that
  ``verdict.decide``'s rule calls a ``difference`` with probability ``POWER`` (80%);
- the **equivalence reach**: the narrowest margin M within which the rule shows
  equivalence (its ``1 - 2 alpha`` interval inside +-M) with probability ``POWER`` when
  the arms do not differ at all;
- with a declared margin M, the **seeds needed**: the fewest seeds with which both hold
  for M, i.e. a difference of M would likely be found and, if there is none,
  equivalence within +-M would likely be shown: the A/B would likely be settled.

How (``docs/ab-testing.md``, "What it could have seen"): the per-seed differences are
modelled as normal with the observed paired sd taken as the true one (a plug-in: with
few seeds the sd itself is uncertain, so these are estimates, not guarantees).

- Paired by seed: the rule is simulated exactly. It calls a difference when the exact
  sign-flip test's p < alpha (Holm over k comparisons: its first, Bonferroni step
  alpha / k, a lower bound on Holm's power) *and* the ``1 - alpha`` t interval excludes 0.
  Both are invariant to the scale of the data, so the MDD is the paired sd times a
  number that depends only on n, alpha and k, found once by simulating ``DRAWS``
  standard normal samples from ``numpy.random.default_rng(POWER_SEED)``. Each sample's
  *critical shift* (the smallest true difference at which the rule rejects it) is
  computed exactly: the t interval excludes 0 from shift ``t sd / sqrt(n) - mean`` on, and
  the sign-flip test rejects once fewer than ``alpha 2^(n-1) - 1`` non-empty subsets F
  have ``sum over F of the differences <= 0``, i.e. from the ``L+1``-th largest of the
  subset means of ``-z`` on (``L = ceil(alpha 2^(n-1)) - 2``; see ``_flip_shifts``). The
  MDD is the ``POWER`` quantile of the critical shifts. Above ``FLIP_SIMULATED_UP_TO``
  pairs the sign-flip condition is left out (enumerating 2^n subsets per sample gets
  slow) and only the t condition is simulated: the two tests agree asymptotically, and
  for 13-16 pairs the full rule's MDD was within 1% of the t condition's alone
  (``docs/ab-testing.md``).
- Equivalence (paired): the ``1 - 2 alpha / k`` interval lies inside +-M when
  ``|mean| + t_{1 - alpha/k, n-1} sd / sqrt(n) < M``; its ``POWER`` quantile under no
  difference is the reach, by the same simulation.
- Unpaired (Welch): the normal approximation with t quantiles at the Welch degrees of
  freedom: MDD = ``(t_{1 - alpha/(2k)} + t_{POWER}) se``, reach =
  ``(t_{1 - alpha/k} + t_{(1 + POWER)/2}) se``.

No torch: numpy only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from curriculum_cli.analysis.stats import student_t_quantile

POWER = 0.8
"""The probability of finding a difference (or showing equivalence) that the figures assume."""

DRAWS = 4_000
"""Simulated samples per number of pairs (the MDD's simulation error is about 1-2%)."""

POWER_SEED = 0
"""Seed of ``numpy.random.default_rng`` for the simulation: the figures are reproducible."""

FLIP_SIMULATED_UP_TO = 12
"""Pairs up to which the sign-flip test's condition is simulated exactly (module docstring)."""

MAX_SEEDS = 10_000
"""Seeds-needed searches stop here ("more than 10,000")."""

_CHUNK_ENTRIES = 1 << 22
"""Subset sums held at once while simulating the sign-flip test (32 MiB of float64)."""


@dataclass(frozen=True)
class Sensitivity:
    """What one comparison could have seen, in the metric's unit.

    ``paired``: by seed (else Welch); ``n``: seed pairs (Welch: runs per arm, the
    smaller); ``sd``: the sd of one seed's
    difference (paired: the sd of the paired differences; Welch: sqrt(sd_arm^2 +
    sd_baseline^2), the sd of one run's difference); ``mdd``: the minimal detectable
    difference at ``power`` (inf: the rule cannot find any with these seeds);
    ``equivalence_reach``: the narrowest margin it shows equivalence within, at
    ``power``, when the arms are equal; ``margin``: the declared one (None: none);
    ``seeds_for_margin``: seeds per arm with which both the MDD and the reach are within
    the margin (None: no margin; ``MAX_SEEDS + 1``: more than ``MAX_SEEDS``);
    ``method``: how these were obtained, in words.
    """

    paired: bool
    n: int
    sd: float
    mdd: float
    equivalence_reach: float
    margin: float | None
    seeds_for_margin: int | None
    power: float
    method: str

    def text(self) -> str:
        """One sentence: what a difference would have had to be, what the margin needs."""
        mdd = (
            f"the smallest difference it finds with {self.power:.0%} power is {self.mdd:.2g}, "
            f"the narrowest margin it shows equivalence within is {self.equivalence_reach:.2g}"
            if math.isfinite(self.mdd)
            else "it cannot find a difference of any size (too few pairs for the exact test); "
            f"the narrowest margin it shows equivalence within is {self.equivalence_reach:.2g}"
        )
        spread = (
            f"{self.n} seed pairs and a paired sd of {self.sd:.2g}"
            if self.paired
            else f"{self.n} runs per arm and an sd of {self.sd:.2g} per run difference"
        )
        words = f"What it could have seen: with {spread}, {mdd}"
        if self.margin is not None:
            seeds = (
                f"more than {MAX_SEEDS:,}"
                if self.seeds_for_margin > MAX_SEEDS
                else f"about {self.seeds_for_margin:,}"
            )
            words += f"; a margin of {self.margin:.2g} needs {seeds} seeds to be settled"
        return f"{words} ({self.method})."


# ----------------------------------------------------------------------------
# Paired by seed: the rule of ``decide``, simulated
# ----------------------------------------------------------------------------


def _flip_rank(n: int, alpha: float) -> int:
    """``L + 1``: the rank of the subset mean that is the sign-flip test's critical shift.

    With differences ``d = e + z``, the test's p-value is ``C / 2^(n-1)`` with ``C`` the
    number of subsets F (the empty one included) with ``sum_F d <= 0``, and
    ``sum_F d <= 0`` exactly when ``e <= mean_F(-z)``. It rejects when ``C < alpha
    2^(n-1)``, i.e. when at most ``L = ceil(alpha 2^(n-1)) - 2`` non-empty subsets have
    ``mean_F(-z) >= e``. Returns 0 when no shift can make it reject (L < 0).
    """
    return max(0, math.ceil(alpha * 2 ** (n - 1)) - 1)


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


@functools.lru_cache(maxsize=256)
def paired_units(n: int, alpha: float, comparisons: int = 1, flip_up_to=FLIP_SIMULATED_UP_TO):
    """``(mdd, reach)`` of the paired rule in units of the paired sd, by simulation.

    See the module docstring. ``mdd`` is inf when the sign-flip test cannot reject with
    ``n`` pairs (fewer than 6 at alpha 0.05). Up to ``flip_up_to`` pairs every sample's
    differences are drawn (the subsets need them); above, only what the t condition
    reads, each sample's mean and sd, from their exact distributions for normal data
    (N(0, 1/n) and sqrt(chi2(n-1) / (n-1))). Cached: it depends on nothing else.
    """
    import numpy as np

    if n < 2:
        return math.inf, math.inf
    rng = np.random.default_rng(POWER_SEED)
    if n <= flip_up_to:
        z = rng.standard_normal((DRAWS, n))
        mean, sd = z.mean(axis=1), z.std(axis=1, ddof=1)
    else:
        mean = rng.standard_normal(DRAWS) / math.sqrt(n)
        sd = np.sqrt(rng.chisquare(n - 1, DRAWS) / (n - 1))
    se = sd / math.sqrt(n)
    reach = float(np.quantile(np.abs(mean) + student_t_quantile(1 - alpha / comparisons, n - 1)
                              * se, POWER))  # fmt: skip
    critical = student_t_quantile(1.0 - alpha / 2.0, n - 1) * se - mean
    if n <= flip_up_to:
        rank = _flip_rank(n, alpha / comparisons)
        if rank == 0:
            return math.inf, reach
        critical = np.maximum(critical, _flip_shifts(z, rank))
    return float(np.quantile(critical, POWER)), reach


def paired_sensitivity(
    n: int, sd: float, alpha: float, comparisons: int = 1, margin: float | None = None
) -> Sensitivity:
    """What ``n`` seed pairs with paired sd ``sd`` could have seen (module docstring)."""
    mdd, reach = paired_units(n, alpha, comparisons)
    seeds = None
    if margin is not None:
        seeds = _fewest(lambda k: max(paired_units(k, alpha, comparisons)) <= margin / sd)
    method = (
        f"{POWER:.0%} power, by simulating the rule for normal differences of this sd: "
        f"{DRAWS:,} samples, seed {POWER_SEED}"
    )
    return Sensitivity(True, n, sd, mdd * sd, reach * sd, margin, seeds, POWER, method)


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
# Unpaired (Welch): normal approximation with t quantiles
# ----------------------------------------------------------------------------


def _welch_df(var_arm: float, var_base: float, n_arm: int, n_base: int) -> float:
    a, b = var_arm / n_arm, var_base / n_base
    return (a + b) ** 2 / (a**2 / (n_arm - 1) + b**2 / (n_base - 1))


def _welch_units(var_arm, var_base, n_arm, n_base, alpha, comparisons) -> tuple[float, float]:
    df = _welch_df(var_arm, var_base, n_arm, n_base)
    se = math.sqrt(var_arm / n_arm + var_base / n_base)
    mdd = student_t_quantile(1 - alpha / (2 * comparisons), df) + student_t_quantile(POWER, df)
    reach = student_t_quantile(1 - alpha / comparisons, df) + student_t_quantile(
        (1 + POWER) / 2, df
    )
    return mdd * se, reach * se


def welch_sensitivity(
    n_arm: int,
    n_base: int,
    sd_arm: float,
    sd_base: float,
    alpha: float,
    comparisons: int = 1,
    margin: float | None = None,
) -> Sensitivity:
    """What unpaired arms of ``n_arm`` and ``n_base`` runs could have seen (module docstring)."""
    var_arm, var_base = sd_arm**2, sd_base**2
    mdd, reach = _welch_units(var_arm, var_base, n_arm, n_base, alpha, comparisons)
    seeds = None
    if margin is not None:
        seeds = _fewest(
            lambda k: max(_welch_units(var_arm, var_base, k, k, alpha, comparisons)) <= margin
        )
    method = f"{POWER:.0%} power, normal approximation with t quantiles at Welch's df"
    return Sensitivity(
        False, min(n_arm, n_base), math.sqrt(var_arm + var_base), mdd, reach, margin, seeds,
        POWER, method,
    )  # fmt: skip

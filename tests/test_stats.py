"""``stats``: t distribution, Welch, paired t, sign-flip tests, the skew guard, ties, Holm,
censoring.

Reference values marked "scipy 1.17.1" were computed once with SciPy in a throwaway
environment (``scipy.stats.t``, ``ttest_ind(equal_var=False)``, ``ttest_rel``,
``permutation_test(..., permutation_type="samples")``); the tests do not need SciPy.
"""

from __future__ import annotations

import math

import pytest

from curriculum_cli.analysis.stats import (
    GUARD_SIMULATED_UP_TO,
    binomial_standard_error,
    censored_summary,
    first_crossing,
    guarded_t_quantile,
    holm,
    paired_differences,
    paired_t,
    restricted_steps,
    sign_flip_lower_p_value,
    sign_flip_p_value,
    student_t_cdf,
    student_t_quantile,
    welch_interval,
    welch_test,
)

# ----------------------------------------------------------------------------
# t distribution
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (4, 2.7764), (30, 2.0423)],  # printed t tables, 0.975
)
def test_t_quantiles_match_the_table(df, expected):
    assert student_t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_below_one_half_is_symmetric():
    assert student_t_quantile(0.025, 4) == pytest.approx(-2.7764451051977943, abs=1e-9)  # scipy
    assert student_t_quantile(0.9, 7) == pytest.approx(1.4149239276505086, abs=1e-9)  # scipy
    assert student_t_quantile(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        student_t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        student_t_quantile(0.9, 0)


@pytest.mark.parametrize(
    ("t", "df", "expected"),
    [  # scipy 1.17.1 stats.t.cdf
        (2.0, 5, 0.9490302605850708),
        (-1.5, 3, 0.11529193262241147),
        (0.5, 1, 0.6475836176504333),  # Cauchy: 1/2 + atan(0.5)/pi
        (3.0, 30, 0.9973050179671741),
    ],
)
def test_t_cdf(t, df, expected):
    assert student_t_cdf(t, df) == pytest.approx(expected, abs=1e-12)


def test_t_cdf_edges_and_inverse():
    assert student_t_cdf(0.0, 7) == 0.5
    assert student_t_cdf(math.inf, 3) == 1.0 and student_t_cdf(-math.inf, 3) == 0.0
    assert student_t_cdf(1.959963984540054, math.inf) == pytest.approx(0.975, abs=1e-12)
    assert student_t_cdf(student_t_quantile(0.99, 6), 6) == pytest.approx(0.99, abs=1e-10)


# ----------------------------------------------------------------------------
# Welch and paired t
# ----------------------------------------------------------------------------


def test_welch_test_matches_scipy_and_the_interval():
    result = welch_test([1, 2, 3], [2, 4, 9])
    # scipy 1.17.1 ttest_ind(equal_var=False): t, p, df and the 95% interval
    assert result.estimate == -3
    assert result.statistic == pytest.approx(-1.3887301496588274, abs=1e-9)
    assert result.p_value == pytest.approx(0.2838344049617087, abs=1e-9)
    assert result.df == pytest.approx(2.3058823529411763, abs=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx((-11.20770157910286, 5.20770157910286))
    # by hand: variances 1 and 13 over 3 values, df = (14/3)^2 / ((1/3)^2/2 + (13/3)^2/2)
    assert result.df == pytest.approx((14 / 3) ** 2 / ((1 / 9) / 2 + (169 / 9) / 2))
    assert welch_interval([1, 2, 3], [2, 4, 9]) == pytest.approx(
        (result.estimate, result.ci_low, result.ci_high, result.df)
    )


def test_welch_test_without_spread_or_values_is_nan():
    assert math.isnan(welch_test([1.0, 1.0], [2.0, 2.0]).p_value)
    one = welch_test([1.0], [2.0, 3.0])
    assert one.estimate == -1.5 and math.isnan(one.ci_low) and math.isnan(one.p_value)


ARM = [0.71, 0.74, 0.69, 0.77, 0.73, 0.75]
BASE = [0.70, 0.71, 0.70, 0.72, 0.70, 0.71]
DIFFS = [a - b for a, b in zip(ARM, BASE, strict=True)]  # +.01 +.03 -.01 +.05 +.03 +.04


def test_paired_t_matches_scipy():
    result = paired_t(DIFFS)
    # scipy 1.17.1 ttest_rel(ARM, BASE)
    assert result.estimate == pytest.approx(0.025)
    assert result.statistic == pytest.approx(2.8246634143301605, abs=1e-9)
    assert result.p_value == pytest.approx(0.036905575431518185, abs=1e-9)
    assert result.df == 5
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (0.002248777477387505, 0.04775122252261254), abs=1e-12
    )


def test_paired_t_needs_two_differences_and_spread():
    assert math.isnan(paired_t([0.1]).ci_low)
    flat = paired_t([0.02, 0.02, 0.02])
    assert flat.estimate == pytest.approx(0.02) and math.isnan(flat.p_value)


# ----------------------------------------------------------------------------
# Sign-flip permutation test
# ----------------------------------------------------------------------------


def test_sign_flip_small_cases_by_hand():
    # +-1 +-2 +-3: sums 6 4 2 0 0 -2 -4 -6; |sum| >= 6 in 2 of 8 patterns
    result = sign_flip_p_value([1, 2, 3])
    assert result.p_value == 0.25 and result.exact and result.smallest_p == 0.25
    # all six positive: only the observed pattern and its mirror -> 2/64
    assert sign_flip_p_value([1, 2, 3, 4, 5, 6]).p_value == 0.03125
    assert sign_flip_p_value([1, 1, 1, 1, 1]).smallest_p == 0.0625
    # ties count as extreme: +-1 +-1 -> |sum| in {2, 0, 0, 2}
    assert sign_flip_p_value([1, 1]).p_value == 0.5


def test_sign_flip_matches_scipy_and_ignores_zeros():
    # scipy 1.17.1 permutation_test((d,), np.mean, permutation_type="samples", exact)
    assert sign_flip_p_value([0.5, -0.2, 0.3, 0.4, -0.1, 0.6, 0.2]).p_value == 0.109375
    assert sign_flip_p_value(DIFFS).p_value == pytest.approx(0.09375)
    with_zero = sign_flip_p_value([1, 2, 3, 0.0])
    assert with_zero.p_value == 0.25 and with_zero.n == 4 and with_zero.n_nonzero == 3
    assert sign_flip_p_value([0.0, 0.0, 0.0]).p_value == 1.0


def test_sign_flip_monte_carlo_above_max_exact_is_seeded_and_says_so():
    values = [0.5, -0.2, 0.3, 0.4, -0.1, 0.6, 0.2]
    first = sign_flip_p_value(values, max_exact=3, samples=20_000, seed=7)
    again = sign_flip_p_value(values, max_exact=3, samples=20_000, seed=7)
    assert not first.exact and first.patterns == 20_000
    assert "Monte Carlo" in first.method and "seed 7" in first.method
    assert first.p_value == again.p_value
    assert first.p_value == pytest.approx(0.109375, abs=0.01)  # exact value, 4 sd margin


def test_one_sided_sign_flip_by_brute_force():
    import itertools

    values = [-0.3, 0.1, -0.2, -0.4, 0.05]
    observed = sum(values)
    patterns = list(itertools.product((1, -1), repeat=len(values)))
    by_hand = sum(sum(s * v for s, v in zip(signs, values, strict=True)) <= observed + 1e-12
                  for signs in patterns) / len(patterns)  # fmt: skip
    found = sign_flip_lower_p_value(values)
    assert found.p_value == by_hand and found.exact and found.smallest_p == 1 / 32
    assert sign_flip_lower_p_value([-1.0] * 5).p_value == 1 / 32  # all below 0: the floor
    assert sign_flip_lower_p_value([-1.0] * 4).p_value == 1 / 16  # 4 can never reach 0.05
    assert sign_flip_lower_p_value([1.0, 2.0]).p_value == 1.0
    assert sign_flip_lower_p_value([0.0, 0.0]).p_value == 1.0  # all tied
    ties = sign_flip_lower_p_value([-1.0, 0.0, -2.0, -0.5])  # the tie is not flipped
    assert ties.n_nonzero == 3 and ties.p_value == 1 / 8
    mc = sign_flip_lower_p_value([-1.0 - 0.01 * i for i in range(20)], max_exact=16,
                                 samples=2000, seed=3)  # fmt: skip
    assert not mc.exact and mc.p_value == 1 / 2001 and "seed 3" in mc.method


def _upper_tail_of_the_studentized_mean(n: int, draws: int, seed: int):
    """-T = -mean sqrt(n) / sd for centred lognormal (sigma 1) samples: large when a sample
    misses the long right tail (independent of the guard's own draws)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.exp(rng.standard_normal((draws, n))) - math.exp(0.5)
    return -x.mean(axis=1) * math.sqrt(n) / x.std(axis=1, ddof=1)


@pytest.mark.parametrize("n", [4, 6, 10, 20])
def test_the_guarded_quantile_holds_its_level_for_lognormal_differences(n):
    """Student's t(0.95) is exceeded by -T for 20% of lognormal samples; the guarded value by
    at most 5% (an independent simulation, 200,000 samples: sd of the share 0.0005)."""
    tail = _upper_tail_of_the_studentized_mean(n, 200_000, seed=99)
    assert (tail >= student_t_quantile(0.95, n - 1)).mean() > 0.15
    assert (tail >= guarded_t_quantile(0.95, n)).mean() <= 0.05 + 0.0015
    assert guarded_t_quantile(0.95, n) > student_t_quantile(0.95, n - 1)


def test_the_guarded_quantile_beyond_the_simulated_sizes_errs_on_the_safe_side():
    n = 2 * GUARD_SIMULATED_UP_TO
    tail = _upper_tail_of_the_studentized_mean(n, 100_000, seed=5)
    assert (tail >= guarded_t_quantile(0.95, n)).mean() <= 0.05
    # it shrinks towards Student's t as n grows
    assert guarded_t_quantile(0.95, 1000) == pytest.approx(student_t_quantile(0.95, 999), abs=0.3)
    first = guarded_t_quantile(0.95, 6)
    guarded_t_quantile.cache_clear()
    assert guarded_t_quantile(0.95, 6) == first  # seeded: the same value in every process
    with pytest.raises(ValueError):
        guarded_t_quantile(0.4, 6)


def test_a_rounding_difference_is_a_tie_everywhere():
    # 0.1 + 0.2 - 0.3 = 5.6e-17: equal results up to float rounding
    diffs = paired_differences([0.1 + 0.2, 0.5, 0.7], [0.3, 0.4, 0.6])
    assert diffs[0] == 0.0 and diffs[1:] == pytest.approx([0.1, 0.1])
    assert paired_differences([1.0 + 5e-10], [1.0]) == [0.0]  # within 1e-9 of |value| 1
    assert paired_differences([1.0 + 2e-9], [1.0]) != [0.0]
    # the sign-flip test treats a rounding difference as the tie it is, given the scale
    flip = sign_flip_p_value([5.6e-17, 0.1, 0.2, 0.3, 0.1, 0.2], scale=0.7)
    assert flip.n_nonzero == 5 and flip.smallest_p == 2 / 2**5


# ----------------------------------------------------------------------------
# Holm
# ----------------------------------------------------------------------------


def test_holm_step_down_monotone_and_capped():
    # sorted: .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> raised to .06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([0.02]) == [0.02]
    with pytest.raises(ValueError):
        holm([math.nan])


# ----------------------------------------------------------------------------
# Validation noise and steps to target
# ----------------------------------------------------------------------------


def test_binomial_standard_error():
    assert binomial_standard_error(0.9, 100) == pytest.approx(0.03)
    assert binomial_standard_error(0.0, 10) == 0.0
    with pytest.raises(ValueError):
        binomial_standard_error(1.2, 10)
    with pytest.raises(ValueError):
        binomial_standard_error(0.5, 0)


def test_first_crossing_interpolates_between_validations():
    steps, values = [0, 100, 200], [0.5, 0.8, 0.95]
    # 0.8 at 100, 0.95 at 200: 0.9 is 2/3 of the way
    assert first_crossing(steps, values, 0.9) == pytest.approx(100 + 100 * 0.1 / 0.15)
    assert first_crossing(steps, values, 0.9, method="first") == 200
    assert first_crossing(steps, values, 0.95) == 200  # reached exactly
    assert first_crossing(steps, values, 0.4) == 0  # already there at the first validation
    assert first_crossing(steps, values, 0.99) is None


def test_first_crossing_smoothing_lower_and_gaps():
    steps = [0, 100, 200, 300, 400]
    values = [0.5, 0.95, 0.7, 0.95, 0.95]
    assert first_crossing(steps, values, 0.9) == pytest.approx(400 / 4.5)  # the lucky spike
    # trailing mean over 2: 0.5 0.725 0.825 0.825 0.95 -> between 300 and 400
    assert first_crossing(steps, values, 0.9, smooth=2) == pytest.approx(360)
    assert first_crossing([0, 10, 20], [3.0, 2.0, 1.0], 1.5, better="lower") == pytest.approx(15)
    assert first_crossing([0, 10, 20], [0.5, math.nan, 1.0], 0.75) == pytest.approx(10)
    with pytest.raises(ValueError):
        first_crossing([0, 10, 10], [0.1, 0.2, 0.3], 0.5)


def test_censored_summary_texts_and_median():
    summary = censored_summary([900, 1240, None, 1100, 1500])
    assert summary["n"] == 5 and summary["n_reached"] == 4
    assert summary["median"] == 1240  # sorted 900 1100 1240 1500 inf
    assert summary["mean_of_reached"] == pytest.approx(1185)
    assert summary["text"] == "4 of 5 reached; median 1,240"

    few = censored_summary([100.0, None, math.nan])
    assert few["median"] is None and few["mean_of_reached"] == 100
    assert few["text"] == "1 of 3 reached; median not reached"

    assert censored_summary([100, 200, None, None])["median"] == 200  # exactly half reached
    assert censored_summary([100, 200, 300, 400])["median"] == 250
    assert censored_summary([None, None])["text"] == "0 of 2 reached; median not reached"
    assert censored_summary([])["text"] == "no runs"


def test_censoring_at_a_horizon_counts_later_crossings_as_never():
    summary = censored_summary([900, 1240, None, 1100, 1500], horizon=1200)
    assert summary["n_reached"] == 2 and summary["horizon"] == 1200
    assert summary["text"] == "2 of 5 reached (3 censored at 1,200); median not reached"
    # restricted at the horizon: min(step, horizon), never reached = the horizon
    assert restricted_steps([900, 1240, None, math.nan, 1200], 1200) == [900, 1200, 1200, 1200,
                                                                         1200]  # fmt: skip

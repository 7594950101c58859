"""``stats``: t distribution, Welch, paired t, sign-flip test, Holm, verdicts, censoring.

Reference values marked "scipy 1.17.1" were computed once with SciPy in a throwaway
environment (``scipy.stats.t``, ``ttest_ind(equal_var=False)``, ``ttest_rel``,
``permutation_test(..., permutation_type="samples")``); the tests do not need SciPy.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from curriculum_cli.analysis.stats import (
    binomial_standard_error,
    censored_summary,
    first_crossing,
    holm,
    paired_t,
    sign_flip_p_value,
    student_t_cdf,
    student_t_quantile,
    welch_interval,
    welch_test,
)
from curriculum_cli.analysis.verdict import decide

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
# decide
# ----------------------------------------------------------------------------


def _arm(values, seeds=None) -> dict:
    return dict(zip(seeds or range(len(values)), values, strict=True))


def test_two_pairs_are_undecided_and_say_how_many_are_needed():
    (verdict,) = decide({"A": _arm([0.7, 0.8]), "B": _arm([0.9, 0.95])}, "higher")
    assert verdict.kind == "undecided" and verdict.winner is None
    assert "only 2 seed pairs" in verdict.reason and "at least 3" in verdict.reason
    assert verdict.n_pairs == 2 and math.isnan(verdict.p_value)


def test_zero_spread_with_a_nonzero_mean_is_undecided():
    (verdict,) = decide(
        {"A": _arm([0.5, 0.6, 0.7, 0.8]), "B": _arm([1.5, 1.6, 1.7, 1.8])}, "higher"
    )
    assert verdict.kind == "undecided"
    assert "zero spread" in verdict.reason and "cannot be estimated" in verdict.reason
    assert "zero spread" in verdict.sentence


def test_identical_arms_are_no_difference():
    values = _arm([0.71, 0.74, 0.69, 0.77])
    (verdict,) = decide({"A": values, "B": dict(values)}, "higher", metric="val accuracy")
    assert verdict.kind == "no_difference" and verdict.winner is None
    assert "identical" in verdict.reason and "identical" in verdict.sentence
    assert verdict.p_value == 1.0 and verdict.mean_difference == 0


@pytest.mark.parametrize(("better", "winner"), [("higher", "B"), ("lower", "A")])
def test_a_clear_six_seed_difference_names_the_winner(better, winner):
    base = [0.70, 0.71, 0.70, 0.72, 0.70, 0.71]
    arm = [b + d for b, d in zip(base, [0.01, 0.03, 0.02, 0.05, 0.03, 0.04], strict=True)]
    (verdict,) = decide(
        {"A": _arm(base), "B": _arm(arm)}, better, metric="val token accuracy", step=5000
    )
    assert verdict.kind == "difference" and verdict.winner == winner
    assert verdict.p_value == verdict.p_adjusted == 0.03125  # all 6 positive: 2/2^6
    assert verdict.ci_low > 0 and verdict.mean_difference == pytest.approx(0.03)
    assert verdict.paired and verdict.n_pairs == 6
    assert "exact sign-flip" in verdict.test and "6 seed pairs" in verdict.test
    assert verdict.sentence.startswith("At step 5,000, ")
    assert f"{winner} is better" in verdict.sentence and "val token accuracy" in verdict.sentence


def test_five_pairs_cannot_reach_five_percent_so_undecided():
    base = [0.70, 0.71, 0.70, 0.72, 0.70]
    arm = [b + 0.1 + 0.01 * i for i, b in enumerate(base)]
    (verdict,) = decide({"A": _arm(base), "B": _arm(arm)}, "higher")
    assert verdict.kind == "undecided"
    assert "with 5 seed pairs the smallest possible p-value is 0.0625" in verdict.reason
    assert "run at least 6 seeds" in verdict.reason
    assert verdict.p_value == 0.0625 and verdict.ci_low > 0  # measured, and shown


def test_a_tied_pair_raises_the_seeds_needed():
    base = [0.70, 0.71, 0.70, 0.72, 0.70, 0.71]
    arm = [0.70] + [b + 0.1 + 0.01 * i for i, b in enumerate(base[1:])]  # seed 0 tied
    (verdict,) = decide({"A": _arm(base), "B": _arm(arm)}, "higher")
    assert verdict.kind == "undecided"
    assert "with 6 seed pairs, 1 of them tied, the smallest possible p-value is 0.0625" in (
        verdict.reason
    )
    assert "needs 6 untied pairs: run at least 7 seeds" in verdict.reason


def test_significant_t_but_not_sign_flip_is_no_difference():
    # paired t p = 0.037 (scipy) but the exact sign-flip p = 0.094: no difference claimed
    (verdict,) = decide({"A": _arm(BASE), "B": _arm(ARM)}, "higher")
    assert verdict.kind == "no_difference" and verdict.winner is None
    assert verdict.p_value == pytest.approx(0.09375) and verdict.ci_low > 0
    assert "No difference" in verdict.sentence and "5% level" in verdict.sentence


BASE8 = [0.70, 0.71, 0.70, 0.72, 0.70, 0.71, 0.69, 0.70]
# exact sign-flip p = 10/256 = 0.0390625 (scipy 1.17.1 permutation_test agrees); t CI > 0
NEAR = [0.03, 0.04, 0.05, 0.035, 0.045, 0.06, 0.055, -0.04]
NULL = [0.01, -0.01, 0.02, -0.02, 0.005, -0.004, 0.003, -0.006]  # sign-flip p = 0.96875


def test_three_arms_get_holm_against_the_baseline():
    near = [b + d for b, d in zip(BASE8, NEAR, strict=True)]
    null = [b + d for b, d in zip(BASE8, NULL, strict=True)]
    (alone,) = decide({"A": _arm(BASE8), "B": _arm(near)}, "higher")
    assert alone.kind == "difference" and alone.p_value == alone.p_adjusted == 0.0390625

    verdicts = decide({"A": _arm(BASE8), "B": _arm(near), "C": _arm(null)}, "higher", step=100)
    assert [v.arm for v in verdicts] == ["B", "C"] and {v.baseline for v in verdicts} == {"A"}
    b, c = verdicts
    assert (b.p_value, c.p_value) == pytest.approx((0.0390625, 0.96875))
    assert [b.p_adjusted, c.p_adjusted] == pytest.approx(holm([b.p_value, c.p_value]))
    assert b.p_adjusted == pytest.approx(2 * 0.0390625)  # smallest of 2: times 2
    assert b.kind == "no_difference" and b.winner is None  # significant alone, not after Holm
    assert c.kind == "no_difference"
    assert all("Holm-corrected over 2 comparisons" in v.test for v in verdicts)
    assert "Holm-adjusted 0.0781" in b.sentence


def test_holm_raises_the_seeds_needed():
    base = [0.70, 0.71, 0.70, 0.72, 0.70, 0.71]
    arm = [b + 0.05 + 0.001 * i for i, b in enumerate(base)]
    verdicts = decide({"A": _arm(base), "B": _arm(arm), "C": _arm(arm)}, "higher")
    # 2/64 is below 5%, but Holm over 2 comparisons makes the smallest 2 * 2/64
    for verdict in verdicts:
        assert verdict.kind == "undecided" and verdict.p_value == 0.03125
        assert "smallest possible p-value after Holm" in verdict.reason
        assert "0.0625" in verdict.reason and "run at least 7 seeds" in verdict.reason


def test_unpaired_seeds_use_welch_and_say_so():
    verdicts = decide(
        {"A": _arm([0.70, 0.72, 0.71], [0, 1, 2]), "B": _arm([0.80, 0.82, 0.83], [10, 11, 12])},
        "higher",
    )
    (verdict,) = verdicts
    assert not verdict.paired and verdict.n_pairs is None
    assert "Welch" in verdict.test and "unpaired" in verdict.test
    expected = welch_test([0.80, 0.82, 0.83], [0.70, 0.72, 0.71])
    assert verdict.p_value == pytest.approx(expected.p_value)
    assert (verdict.ci_low, verdict.ci_high) == pytest.approx((expected.ci_low, expected.ci_high))
    assert verdict.kind == "difference" and verdict.winner == "B"


def test_welch_needs_min_pairs_runs_per_arm():
    (verdict,) = decide(
        {"A": _arm([0.7, 0.8], [0, 1]), "B": _arm([0.9, 0.8, 0.85], [5, 6, 7])}, "higher"
    )
    assert verdict.kind == "undecided" and "Welch" in verdict.reason and "A has 2" in verdict.reason


def test_partial_overlap_pairs_shared_seeds_and_counts_the_dropped():
    base = {0: 0.70, 1: 0.71, 2: 0.70, 9: 0.2}
    arm = {0: 0.80, 1: 0.81, 2: 0.82, 4: 0.1, 5: math.nan}
    (verdict,) = decide({"A": base, "B": arm}, "higher")
    assert verdict.paired and verdict.n_pairs == 3 and verdict.dropped == 3
    assert "2 runs without a shared seed dropped" in verdict.test
    assert "1 run without a finite value" in verdict.test
    assert verdict.mean_arm == pytest.approx(0.81)  # over the paired seeds only


def test_verdict_to_dict_is_plain_json():
    (verdict,) = decide({"A": _arm([0.7, 0.8]), "B": _arm([0.9, 0.95])}, "higher")
    data = verdict.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["kind"] == "undecided" and data["p_value"] is None and data["ci_low"] is None


def test_decide_arguments():
    assert decide({"A": _arm([1.0, 2.0, 3.0])}, "higher") == []
    with pytest.raises(ValueError):
        decide({"A": {}, "B": {}}, "up")
    with pytest.raises(ValueError):
        decide({"A": {}, "B": {}}, "higher", min_pairs=1)


def test_same_curriculum_is_rarely_called_different():
    """Under H0 (two names, one curriculum: only seed noise) a difference is reported <= 5%."""
    rng = random.Random(11)
    trials, differences = 400, 0
    for _ in range(trials):
        a = [0.8 + rng.gauss(0, 0.02) for _ in range(8)]
        b = [0.8 + rng.gauss(0, 0.02) for _ in range(8)]
        (verdict,) = decide({"A": _arm(a), "B": _arm(b)}, "higher")
        assert verdict.kind in ("difference", "no_difference")
        differences += verdict.kind == "difference"
    assert differences / trials <= 0.075  # nominal 0.05, ~2 binomial sd margin


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

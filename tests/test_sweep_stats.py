"""The sweep's statistics (``analysis/sweep_stats.py``) against independent computations:
the blocked F against statsmodels' two-way ANOVA, exact permutation p-values and the
best set against plain enumeration written here, planted effects found and all-equal
groups not."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from curriculum_cli.analysis.stats import holm
from curriculum_cli.analysis.sweep_stats import (
    best_set,
    blocked,
    omnibus,
    scale_interaction,
)


def _group(effects, n=6, sd=0.003, seed=1, seed_sd=0.01):
    rng = np.random.default_rng(seed)
    return (
        0.75
        + rng.normal(0, seed_sd, (n, 1))
        + np.asarray(effects)[None, :]
        + rng.normal(0, sd, (n, len(effects)))
    )


def test_the_blocked_f_is_the_two_way_anova_f():
    sm = pytest.importorskip("statsmodels.formula.api")
    anova_lm = pytest.importorskip("statsmodels.stats.anova").anova_lm
    import pandas as pd

    values = _group([0, 0.002, -0.004, 0.001, 0])
    rows = [
        {"y": values[s, l], "seed": s, "level": l}
        for s in range(values.shape[0])
        for l in range(values.shape[1])  # noqa: E741
    ]
    table = anova_lm(sm.ols("y ~ C(level) + C(seed)", data=pd.DataFrame(rows)).fit())
    result = omnibus(blocked(values, list(range(6))))
    assert result.f == pytest.approx(table.loc["C(level)", "F"], rel=1e-9)
    assert (result.df_levels, result.df_error) == (4, 20)


def _level_ss(values):
    means = values.mean(axis=0)
    return values.shape[0] * ((means - means.mean()) ** 2).sum()


def test_an_exact_omnibus_p_is_the_share_of_all_arrangements():
    values = _group([0, 0.004, -0.003], n=4)
    observed = _level_ss(values)
    perms = list(itertools.permutations(range(3)))
    hits = total = 0
    for choice in itertools.product(perms, repeat=4):  # every block permuted, none held
        shuffled = np.array([values[s, list(p)] for s, p in enumerate(choice)])
        hits += _level_ss(shuffled) >= observed - 1e-12
        total += 1
    result = omnibus(blocked(values, list(range(4))))
    assert result.exact and result.arrangements == 6**3
    assert result.p == pytest.approx(hits / total, abs=1e-12)


def test_a_planted_effect_is_found_and_left_out_of_the_best_set():
    values = _group([0, 0, 0, 0, 0, 0, -0.012])  # the last level is worse by 4 sd
    data = blocked(values, list(range(6)))
    assert omnibus(data).p < 0.01
    found = best_set(data, margin=0.01)
    assert found.in_best == [True] * 6 + [False]
    assert found.upper[-1] == 0.0 and found.lower[-1] < -0.005


def test_an_all_equal_group_is_not_found():
    ps = [omnibus(blocked(_group([0] * 5, seed=s), list(range(6))), draws=2_000).p
          for s in range(20)]  # fmt: skip
    assert sum(p < 0.05 for p in ps) <= 3  # 1 expected (binomial 20 x 0.05)
    assert min(ps) > 0.0 and max(ps) <= 1.0


def test_lower_is_better_turns_the_sign():
    values = _group([0, 0, 0.02])  # the last level has the highest loss
    low = best_set(blocked(values, list(range(6)), better="lower"))
    high = best_set(blocked(values, list(range(6)), better="higher"))
    assert low.in_best == [True, True, False]
    assert high.in_best == [False, False, True]


def _best_set_by_hand(values, alpha=0.05):
    """Hsu's MCB written out: Dunnett's quantile by simulation, the residual sd by loops."""
    n, k = values.shape
    grand = values.mean()
    seed_means = [values[s].mean() for s in range(n)]
    level_means = [values[:, l].mean() for l in range(k)]  # noqa: E741
    ss = sum((values[s, l] - seed_means[s] - level_means[l] + grand) ** 2
             for s in range(n) for l in range(k))  # noqa: E741  # fmt: skip
    df = (k - 1) * (n - 1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400_000, k))
    chi = np.sqrt(rng.chisquare(df, 400_000) / df)
    d = np.quantile(((x[:, 1:] - x[:, :1]) / np.sqrt(2)).max(axis=1) / chi, 1 - alpha)
    critical = d * math.sqrt(ss / df) * math.sqrt(2 / n)
    gaps = [max(level_means[j] for j in range(k) if j != i) - level_means[i] for i in range(k)]
    return critical, gaps


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_best_set_matches_a_computation_by_hand(seed):
    values = _group([0, 0.003, -0.002, -0.006], n=4, seed=seed)
    found = best_set(blocked(values, list(range(4))))
    critical, gaps = _best_set_by_hand(values)
    assert found.critical == pytest.approx(critical, rel=0.01)  # simulation: ~0.3%
    assert found.df == 9
    clear = [abs(g - critical) > 0.02 * critical for g in gaps]  # not within the MC error
    assert [b for b, ok in zip(found.in_best, clear, strict=True) if ok] == [
        g < critical for g, ok in zip(gaps, clear, strict=True) if ok
    ]


def test_dunnett_with_one_comparison_is_the_one_sided_t_quantile():
    from scipy import stats

    from curriculum_cli.analysis.sweep_stats import dunnett_one_sided

    assert dunnett_one_sided(1, 10) == pytest.approx(stats.t.ppf(0.95, 10), abs=1e-6)
    assert dunnett_one_sided(1, math.inf) == pytest.approx(stats.norm.ppf(0.95), abs=1e-6)


def test_within_margin_needs_the_whole_interval_above_minus_margin():
    values = _group([0, -0.001, -0.03], sd=0.001)
    found = best_set(blocked(values, list(range(6))), margin=0.01)
    assert found.in_best[:2] == [True, True] and not found.in_best[2]
    assert found.within_margin == [True, True, False]
    narrow = best_set(blocked(values, list(range(6))), margin=found.critical / 2)
    assert narrow.within_margin[1:] == [False, False]  # no closer than the critical value


def test_seeds_with_a_missing_level_are_dropped():
    values = _group([0, 0, 0])
    values[2, 1] = np.nan
    data = blocked(values, list(range(6)))
    assert data.n == 5 and data.dropped_seeds == [2]


def test_holm_matches_statsmodels():
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    p = [0.01, 0.04, 0.03, 0.2, 0.005, 0.5]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)


def test_a_scale_interaction_is_found_and_its_absence_is_not():
    same = np.stack([_group([0, 0.004, -0.004], seed=s) for s in range(3)])
    moved = np.stack([_group(e, seed=s) for s, e in
                      enumerate([[0, 0.006, -0.006], [0, 0, 0], [0, -0.006, 0.006]])])  # fmt: skip
    found, absent = scale_interaction(moved), scale_interaction(same)
    assert found.exact and found.arrangements == 6**5
    assert found.p < 0.01
    assert absent.p > 0.05


def test_the_interaction_p_matches_an_enumeration_by_hand():
    values = np.stack([_group(e, n=3, seed=s) for s, e in
                       enumerate([[0, 0.002, -0.001], [0, 0, 0.001]])])  # fmt: skip
    profiles = values - values.mean(axis=2, keepdims=True)

    def statistic(p):
        means = p.mean(axis=1)
        return ((means - means.mean(axis=0)) ** 2).sum() * p.shape[1]

    observed = statistic(profiles)
    hits = total = 0
    for flips in itertools.product([False, True], repeat=3):
        shuffled = profiles.copy()
        for s, flip in enumerate(flips):
            if flip:
                shuffled[:, s] = shuffled[::-1, s]
        hits += statistic(shuffled) >= observed - 1e-15
        total += 1
    assert scale_interaction(values).p == pytest.approx(hits / total)

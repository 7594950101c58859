"""The verdict of an A/B: each arm against the baseline, as data and as a plain sentence.

``decide`` applies the rules (``docs/ab-testing.md``): paired by seed when the
arms share seeds (paired t interval, exact sign-flip test), Welch's unpaired
test otherwise, Holm over several arms. A ``difference`` needs the test to
reject and the interval to exclude 0; ``equivalent`` needs a declared margin
and the ``1 - 2 alpha`` interval inside it (two one-sided tests); otherwise the
verdict is ``undecided`` and says why and what would settle it. Beside each,
what the comparison could have seen (``power``). The distribution maths are in
``stats``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass

from curriculum_cli.analysis.power import (
    MAX_SEEDS,
    Sensitivity,
    paired_sensitivity,
    welch_sensitivity,
)
from curriculum_cli.analysis.stats import (
    ALPHA,
    MAX_EXACT,
    MONTE_CARLO_SAMPLES,
    SignFlipResult,
    TResult,
    holm,
    paired_differences,
    paired_t,
    sign_flip_p_value,
    spread_is_zero,
    welch_test,
)

MIN_PAIRS = 3

VERDICT_KINDS = ("difference", "equivalent", "identical", "undecided")


@dataclass(frozen=True)
class Verdict:
    """One arm against the baseline on one metric, as data and as a sentence.

    - ``kind``: ``difference`` (the test rejects and the interval excludes 0),
      ``equivalent`` (the ``equivalence_confidence`` interval lies inside +-``margin``),
      ``identical`` (every paired difference is a tie: the same values) or
      ``undecided``; ``winner``: the better arm's name for a difference, else None
    - ``test``: the test used, in words (paired or Welch, how many seeds, dropped runs,
      Holm); ``paired``: True when runs were paired by seed
    - ``n_pairs``: seed pairs used (None for Welch); ``n_tied``: pairs whose difference is
      a tie (0 within ``stats.TIE_TOLERANCE``); ``n_arm``/``n_baseline``: runs used per
      arm; ``dropped``: runs left out (seeds not shared, or no finite value)
    - ``mean_arm``/``mean_baseline``: means over the runs used; ``mean_difference``:
      arm - baseline in the metric's unit, ``ci_low``/``ci_high`` its ``confidence``
      (1 - alpha) interval (paired t or Welch, not adjusted for multiplicity)
    - ``margin``: the declared margin (None: none); ``equivalence_low``/``_high``: the
      ``equivalence_confidence`` = 1 - 2 alpha / k interval (k comparisons; Bonferroni)
      whose lying inside +-margin is equivalence (two one-sided tests at alpha);
      ``inside_margin``: whether it does (None without a margin or an interval)
    - ``p_value``: exact sign-flip (paired) or Welch (unpaired), two-sided;
      ``p_adjusted``: Holm over all comparisons against the baseline (= p_value with one)
    - ``smallest_p``: a lower bound on the Holm-adjusted p this comparison could reach
      with its seed counts, whatever the values (0 for Welch; NaN when no test was run)
    - ``sensitivity``: what it could have seen (``power.Sensitivity``; None without an
      estimate of the spread)
    - ``reason``: why this kind (for ``undecided``: what is missing and what would settle
      it); ``sentence``: the plain-English verdict, naming ``metric`` and ``step``

    NaN where a number could not be estimated; ``to_dict`` turns it into None.
    """

    arm: str
    baseline: str
    kind: str
    winner: str | None
    test: str
    paired: bool
    n_pairs: int | None
    n_tied: int
    n_arm: int
    n_baseline: int
    dropped: int
    mean_arm: float
    mean_baseline: float
    mean_difference: float
    ci_low: float
    ci_high: float
    confidence: float
    margin: float | None
    equivalence_low: float
    equivalence_high: float
    equivalence_confidence: float
    inside_margin: bool | None
    p_value: float
    p_adjusted: float
    smallest_p: float
    alpha: float
    better: str
    metric: str
    step: int | None
    sensitivity: Sensitivity | None
    reason: str
    sentence: str

    def to_dict(self) -> dict:
        """Plain JSON-able data: NaN and infinities become None."""
        return _plain(asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class _Comparison:
    """Working state of one arm against the baseline, before the verdict."""

    arm: str
    paired: bool
    arm_values: list[float]
    base_values: list[float]
    dropped: int
    dropped_text: str
    t: TResult | None = None  # the 1 - alpha interval and test
    t_equivalence: TResult | None = None  # the 1 - 2 alpha / k interval
    flip: SignFlipResult | None = None
    differences: list[float] | None = None  # paired, ties snapped to 0
    zero_spread: bool = False
    p_value: float = math.nan
    smallest_p: float = 1.0  # raw (unadjusted) floor; 1 when no test is run
    kind: str | None = None  # decided before the test (too few runs, identical)
    reason: str = ""


def _finite(values: Mapping[Hashable, float]) -> dict[Hashable, float]:
    out = {}
    for seed, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[seed] = number
    return out


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _seed_list(seeds) -> str:
    return ", ".join(str(seed) for seed in sorted(seeds, key=str))


def _prepare(
    arm: str, baseline: str, arm_raw: Mapping, base_raw: Mapping, min_pairs: int
) -> _Comparison:
    arm_values, base_values = _finite(arm_raw), _finite(base_raw)
    missing = (len(arm_raw) - len(arm_values)) + (len(base_raw) - len(base_values))
    notes = []
    if missing:
        notes.append(f"{_plural(missing, 'run')} without a finite value left out")
    shared = [seed for seed in base_values if seed in arm_values]
    if shared:
        only_arm = [s for s in arm_values if s not in base_values]
        only_base = [s for s in base_values if s not in arm_values]
        unshared = len(only_arm) + len(only_base)
        if unshared:
            where = "; ".join(
                f"seed{'s' if len(seeds) > 1 else ''} {_seed_list(seeds)} only in {name}"
                for seeds, name in ((only_arm, arm), (only_base, baseline))
                if seeds
            )
            notes.insert(0, f"{_plural(unshared, 'run')} without a shared seed dropped ({where})")
        c = _Comparison(
            arm, True, [arm_values[s] for s in shared], [base_values[s] for s in shared],
            missing + unshared, "; ".join(notes),
        )  # fmt: skip
        if len(shared) < min_pairs:
            c.kind = "undecided"
            c.reason = (
                f"only {_plural(len(shared), 'seed pair')} ({arm} and {baseline} share "
                f"seed{'s' if len(shared) > 1 else ''} {_seed_list(shared)}); at least "
                f"{min_pairs} are needed for a verdict"
            )
        return c
    c = _Comparison(
        arm, False, list(arm_values.values()), list(base_values.values()), missing,
        "; ".join(notes),
    )  # fmt: skip
    short = [(name, len(v)) for name, v in ((arm, arm_values), (baseline, base_values))]
    if any(count < min_pairs for _, count in short):
        c.kind = "undecided"
        c.reason = (
            f"the arms share no seeds, and the unpaired (Welch) test needs at least "
            f"{min_pairs} runs per arm; " + ", ".join(f"{n} has {k}" for n, k in short)
        )
    return c


def _test(c: _Comparison, alpha: float, k: int, max_exact: int, samples: int, seed: int) -> None:
    """Run the comparison's tests and intervals, or settle it early (identical results)."""
    if c.kind is not None:
        return
    values = c.arm_values + c.base_values
    scale = max(abs(v) for v in values)
    confidence, equivalence = 1.0 - alpha, 1.0 - 2.0 * alpha / k
    if c.paired:
        c.differences = paired_differences(c.arm_values, c.base_values, scale)
        if not any(c.differences):
            c.kind = "identical"
            c.reason = (
                f"every paired difference is 0 (a tie: equal within the tie tolerance): the "
                f"same value in each of the {len(c.differences)} seed pairs"
            )
            c.p_value, c.smallest_p = 1.0, 1.0
            return
        c.zero_spread = spread_is_zero(c.differences, scale)
        c.t = paired_t(c.differences, confidence, scale)
        c.t_equivalence = paired_t(c.differences, equivalence, scale)
        c.flip = sign_flip_p_value(
            c.differences, scale=scale, max_exact=max_exact, samples=samples, seed=seed
        )
        c.p_value, c.smallest_p = c.flip.p_value, c.flip.smallest_p
        return
    if spread_is_zero(values, scale):
        c.kind = "identical"
        c.reason = f"the same value in all {len(values)} runs of both arms"
        c.p_value, c.smallest_p = 1.0, 1.0
        return
    c.zero_spread = spread_is_zero(c.arm_values, scale) and spread_is_zero(c.base_values, scale)
    c.t = welch_test(c.arm_values, c.base_values, confidence)
    c.t_equivalence = welch_test(c.arm_values, c.base_values, equivalence)
    c.p_value, c.smallest_p = c.t.p_value, 0.0


def _untied_needed(comparisons: int, alpha: float, min_pairs: int) -> int:
    """Fewest untied pairs with which the exact test can reach alpha after Holm."""
    n = 1
    while comparisons * 2.0 / 2**n >= alpha:
        n += 1
    return max(n, min_pairs)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def _format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3g}"


def decide(
    arms: Mapping[str, Mapping[Hashable, float]],
    better: str,
    alpha: float = ALPHA,
    min_pairs: int = MIN_PAIRS,
    *,
    margin: float | None = None,
    metric: str = "metric",
    step: int | None = None,
    values_note: str = "",
    max_exact: int = MAX_EXACT,
    samples: int = MONTE_CARLO_SAMPLES,
    seed: int = 0,
) -> list[Verdict]:
    """Each arm against the first (the baseline) on one metric: a ``Verdict`` per arm.

    ``arms``: arm name -> {seed: value of the metric}, baseline first; seeds match by
    equality (``0`` and ``"0"`` differ); NaN/None values are left out (and counted in
    ``dropped``). ``better``: ``"higher"`` or ``"lower"``. ``margin``: the smallest
    difference that matters, in the metric's unit (> 0; None: no equivalence verdict).
    ``metric``/``step`` only name things in the sentence; ``values_note`` (e.g. how
    censored values were treated) is added to the test's description.

    Test: arms sharing seeds are paired by seed (seeds in only one arm are dropped and
    the verdict says how many): the interval is the paired t interval of the mean
    difference at confidence 1 - alpha, the p-value the exact sign-flip permutation test
    (Monte Carlo above ``max_exact`` pairs, seeded). Arms sharing no seed: Welch's
    unpaired t interval and test, and the verdict says so. The comparisons against the
    baseline form one family: their p-values get Holm's correction (a comparison
    without a p-value counts as p = 1), so ``p_adjusted`` = ``p_value`` with two arms.
    A paired difference within ``stats.TIE_TOLERANCE`` of the values' magnitude is a tie
    (exactly 0) everywhere.

    Rule, in order:

    1. fewer than ``min_pairs`` seed pairs (Welch: runs in either arm) -> ``undecided``,
       saying how many there are and how many are needed;
    2. every paired difference a tie (every run equal, for Welch) -> ``identical``;
    3. Holm-adjusted p < alpha *and* the 1 - alpha interval excludes 0 -> ``difference``;
       the winner is the arm with the better mean by ``better``. With zero spread (every
       pair differs by the same non-zero amount) there is no t interval, but every
       difference has the same sign, and the exact test alone decides: with 6 such
       pairs p = 2/64;
    4. a margin M, and the 1 - 2 alpha / k interval inside (-M, +M) -> ``equivalent``:
       Schuirmann's two one-sided tests at level alpha (each one-sided t test of
       "the difference is at least +M" / "at most -M" rejects at alpha exactly when that
       interval's bound lies inside; k > 1 comparisons: Bonferroni);
    5. otherwise ``undecided``, with each reason that holds: too few untied pairs for
       the exact test ever to reach alpha (2 / 2^n for n untied pairs, after Holm k times
       the smallest such floor), or a p-value not below alpha (said when the t interval
       excludes 0 all the same), or an interval that includes 0 despite p < alpha; and
       no margin declared, or an equivalence interval too wide for it; then how many
       seeds would likely settle it (``power.Sensitivity.seeds_for_margin``).

    A difference can also lie inside the margin (significant but smaller than what
    matters): the verdict is ``difference`` and ``inside_margin`` says so. The
    sign-flip test is exact under H0 as long as, within a seed, the two arms' values
    are exchangeable (true for the same curriculum under two names); requiring the t
    interval too only makes step 3 more conservative. With fewer than 2 arms, returns [].
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"need 0 < alpha < 0.5, got {alpha}")
    if min_pairs < 2:
        raise ValueError(f"need min_pairs >= 2 (an interval needs 2 values), got {min_pairs}")
    if margin is not None and not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a number > 0, got {margin}")
    names = list(arms)
    if len(names) < 2:
        return []
    baseline = names[0]
    k = len(names) - 1
    comparisons = [
        _prepare(arm, baseline, arms[arm], arms[baseline], min_pairs) for arm in names[1:]
    ]
    for c in comparisons:
        _test(c, alpha, k, max_exact, samples, seed)
    raw = [c.p_value if math.isfinite(c.p_value) else 1.0 for c in comparisons]
    adjusted = holm(raw)
    floor_all = min(c.smallest_p for c in comparisons)
    settings = _Settings(baseline, k, alpha, min_pairs, margin, better, metric, step,
                         values_note, max_exact, samples, seed)  # fmt: skip
    return [
        _verdict(c, p_adj, max(c.smallest_p, k * floor_all), settings)
        for c, p_adj in zip(comparisons, adjusted, strict=True)
    ]


@dataclass(frozen=True)
class _Settings:
    """What every comparison of one ``decide`` call shares."""

    baseline: str
    k: int
    alpha: float
    min_pairs: int
    margin: float | None
    better: str
    metric: str
    step: int | None
    values_note: str
    max_exact: int
    samples: int
    seed: int


def _test_text(c: _Comparison, s: _Settings) -> str:
    if c.paired:
        n_pairs = len(c.arm_values)
        exact = c.flip.exact if c.flip else n_pairs <= s.max_exact
        flip = (
            "exact sign-flip permutation test"
            if exact
            else f"Monte Carlo sign-flip permutation test ({s.samples:,} random sign patterns, "
            f"seed {s.seed})"
        )
        test = f"paired t interval + {flip} over {_plural(n_pairs, 'seed pair')}"
    else:
        test = (
            f"Welch t test (unpaired: the arms share no seeds) over {len(c.arm_values)} "
            f"and {len(c.base_values)} runs"
        )
    if s.values_note:
        test += f"; {s.values_note}"
    if c.dropped_text:
        test += f"; {c.dropped_text}"
    if s.k > 1:
        test += f"; Holm-corrected over {s.k} comparisons against {s.baseline}"
    return test


def _sensitivity(c: _Comparison, s: _Settings) -> Sensitivity | None:
    """What the comparison could have seen; None without a spread to base it on."""
    if c.t is None or c.zero_spread:
        return None
    if c.paired:
        n = len(c.differences)
        mean = sum(c.differences) / n
        sd = math.sqrt(sum((d - mean) ** 2 for d in c.differences) / (n - 1))
        return paired_sensitivity(n, sd, s.alpha, s.k, s.margin)
    sds = [
        math.sqrt(sum((v - sum(vs) / len(vs)) ** 2 for v in vs) / (len(vs) - 1))
        for vs in (c.arm_values, c.base_values)
    ]
    return welch_sensitivity(len(c.arm_values), len(c.base_values), *sds, s.alpha, s.k,
                             s.margin)  # fmt: skip


def _undecided_reasons(
    c: _Comparison, s: _Settings, p_adjusted: float, smallest_p: float, excludes_zero: bool,
    sensitivity: Sensitivity | None,
) -> str:  # fmt: skip
    """Why neither a difference nor equivalence, and what would settle it."""
    reasons = []
    ties = c.flip.n - c.flip.n_nonzero if c.flip else 0
    p_text = f"{'Holm-adjusted ' if s.k > 1 else ''}p = {_format_p(p_adjusted)}"
    interval = f"the {_percent(1 - s.alpha)} t interval"
    if c.paired and smallest_p >= s.alpha:
        n_pairs = len(c.arm_values)
        tied = f", {ties} of them tied," if ties else ""
        holm_note = f" after Holm's correction over {s.k} comparisons" if s.k > 1 else ""
        needed = _untied_needed(s.k, s.alpha, s.min_pairs)
        reasons.append(
            f"too few untied pairs: with {_plural(n_pairs, 'seed pair')}{tied} the smallest "
            f"possible p-value{holm_note} is {smallest_p:.4g}, not below {s.alpha:g}, whatever "
            f"the difference; the exact test needs {needed} untied pairs (at least "
            f"{needed + ties} seeds{' with ties like these' if ties else ''})"
        )
    elif c.zero_spread and not c.paired:
        reasons.append(
            "zero spread: every run within each arm has the same value, so no interval can "
            "be estimated"
        )
    elif p_adjusted >= s.alpha:
        also = f", though {interval} excludes 0" if excludes_zero else ""
        reasons.append(f"{p_text}, not below {s.alpha:g}{also}")
    elif not excludes_zero:
        reasons.append(f"{p_text} but {interval} includes 0")
    if s.margin is None:
        reasons.append(
            "no margin declared, so equivalence cannot be concluded (--margin: the smallest "
            "difference that matters; with it pepcurr says how many seeds would settle this)"
        )
    elif not math.isfinite(c.t_equivalence.ci_low if c.t_equivalence else math.nan):
        reasons.append(f"no interval to hold against the margin ±{s.margin:.4g} (zero spread)")
    else:
        eq = c.t_equivalence
        reasons.append(
            f"CI too wide for the margin: the {_percent(eq.confidence)} interval "
            f"{eq.ci_low:+.4g} to {eq.ci_high:+.4g} reaches beyond ±{s.margin:.4g}"
        )
    if sensitivity is not None and s.margin is not None:
        needed = sensitivity.seeds_for_margin
        n = sensitivity.n
        if needed > n:
            reasons.append(
                f"about {needed:,} seeds would likely settle it for this margin"
                if needed <= MAX_SEEDS
                else f"more than {MAX_SEEDS:,} seeds would be needed for this margin"
            )
        else:
            reasons.append(
                f"{n} seeds would usually settle this margin (about {needed} suffice), but the "
                "measured difference lies near its edge"
            )
    return "; ".join(reasons)


def _verdict(c: _Comparison, p_adjusted: float, smallest_p: float, s: _Settings) -> Verdict:
    nan = math.nan
    confidence = 1.0 - s.alpha
    mean_arm = sum(c.arm_values) / len(c.arm_values) if c.arm_values else nan
    mean_base = sum(c.base_values) / len(c.base_values) if c.base_values else nan
    if c.differences is not None:
        difference = sum(c.differences) / len(c.differences)
    else:
        difference = mean_arm - mean_base
    low = c.t.ci_low if c.t else nan
    high = c.t.ci_high if c.t else nan
    eq = c.t_equivalence
    eq_low, eq_high = (eq.ci_low, eq.ci_high) if eq else (nan, nan)
    tested = c.t is not None
    n_pairs = len(c.arm_values) if c.paired else None
    n_tied = c.flip.n - c.flip.n_nonzero if c.flip else 0
    test = _test_text(c, s)
    inside = None
    if s.margin is not None and math.isfinite(eq_low):
        inside = -s.margin < eq_low and eq_high < s.margin
    excludes_zero = (math.isfinite(low) and (low > 0 or high < 0)) or (
        c.paired and c.zero_spread and difference != 0
    )
    sensitivity = _sensitivity(c, s) if tested else None

    kind, reason, winner = c.kind, c.reason, None
    p_text = f"{'Holm-adjusted ' if s.k > 1 else ''}p = {_format_p(p_adjusted)}"
    if kind is None and p_adjusted < s.alpha and excludes_zero:
        kind = "difference"
        winner = c.arm if (difference > 0) == (s.better == "higher") else s.baseline
        where = "every pair differs by the same amount" if c.zero_spread else (
            "the interval excludes 0")  # fmt: skip
        reason = f"{p_text} < {s.alpha:g} and {where}"
    elif kind is None and inside:
        kind = "equivalent"
        reason = (
            f"the {_percent(eq.confidence)} interval {eq_low:+.4g} to {eq_high:+.4g} lies "
            f"inside it (two one-sided tests at the {_percent(s.alpha)} level)"
        )
    elif kind is None:
        kind = "undecided"
        reason = _undecided_reasons(c, s, p_adjusted, smallest_p, excludes_zero, sensitivity)

    sentence = _sentence(c, s, kind, winner, reason, test, (mean_arm, mean_base, difference),
                         (low, high, eq_low, eq_high), p_adjusted, inside)  # fmt: skip
    if sensitivity is not None:
        sentence += " " + sensitivity.text()
    shows_p = tested or kind == "identical"
    return Verdict(
        arm=c.arm, baseline=s.baseline, kind=kind, winner=winner, test=test, paired=c.paired,
        n_pairs=n_pairs, n_tied=n_tied, n_arm=len(c.arm_values), n_baseline=len(c.base_values),
        dropped=c.dropped, mean_arm=mean_arm, mean_baseline=mean_base,
        mean_difference=difference, ci_low=low, ci_high=high, confidence=confidence,
        margin=s.margin, equivalence_low=eq_low, equivalence_high=eq_high,
        equivalence_confidence=1.0 - 2.0 * s.alpha / s.k, inside_margin=inside,
        p_value=c.p_value if shows_p else nan, p_adjusted=p_adjusted if shows_p else nan,
        smallest_p=smallest_p if tested else nan, alpha=s.alpha, better=s.better,
        metric=s.metric, step=s.step, sensitivity=sensitivity, reason=reason,
        sentence=sentence,
    )  # fmt: skip


def _sentence(c, s: _Settings, kind, winner, reason, test, means, intervals, p_adjusted,
              inside) -> str:  # fmt: skip
    """The plain-English verdict."""
    mean_arm, mean_base, difference = means
    low, high, eq_low, eq_high = intervals
    at = f"At step {s.step:,}, " if s.step is not None else ""
    no = "no" if at else "No"  # the sentence's first word, when it is not an arm's name
    detail = ""
    if c.t is not None:
        p_text = f"p = {_format_p(c.p_value)}" if math.isfinite(c.p_value) else "no p-value"
        if s.k > 1:
            p_text += f", Holm-adjusted {_format_p(p_adjusted)}"
        if math.isfinite(low):
            ci = f"{_percent(1 - s.alpha)} CI {low:+.4g} to {high:+.4g}"
        else:
            ci = "zero spread, no interval"
        if s.margin is not None and math.isfinite(eq_low):
            ci += f", {_percent(1 - 2 * s.alpha / s.k)} CI {eq_low:+.4g} to {eq_high:+.4g}"
        detail = (
            f"{c.arm} {mean_arm:.4g} vs {s.baseline} {mean_base:.4g} ({c.arm} - {s.baseline} = "
            f"{difference:+.4g}, {ci}; {p_text}; {test})"
        )
    if kind == "difference":
        loser = s.baseline if winner == c.arm else c.arm
        small = (
            f", though by less than the margin ±{s.margin:.4g} (the "
            f"{_percent(1 - 2 * s.alpha / s.k)} interval lies inside it)"
            if inside
            else ""
        )
        return (
            f"{at}{winner} has a {s.better} {s.metric} than {loser}: {detail}. "
            f"A difference at the {_percent(s.alpha)} level; {winner} is better{small}."
        )
    if kind == "equivalent":
        return (
            f"{at}{c.arm} and {s.baseline} are equivalent in {s.metric} within "
            f"±{s.margin:.4g}: {reason}; {detail}."
        )
    if kind == "identical":
        return (
            f"{at}{c.arm} and {s.baseline} gave identical {s.metric}: {reason} "
            f"(mean {mean_arm:.4g}; {test})."
        )
    measured = f"; measured {detail}" if detail else ""
    return f"{at}{no} verdict on {s.metric} for {c.arm} against {s.baseline}: {reason}{measured}."

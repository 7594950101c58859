"""The verdict of an A/B: each arm against the baseline, as data and as a plain sentence.

``decide`` applies the rules (``docs/ab-testing.md``): paired by seed when the
arms share seeds (paired t interval, exact sign-flip test), Welch's unpaired
test otherwise, Holm over several arms, and never a difference without enough
pairs and non-zero spread; the distribution maths are in ``stats``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass

from curriculum_cli.analysis.stats import (
    ALPHA,
    MAX_EXACT,
    MONTE_CARLO_SAMPLES,
    RELATIVE_TOLERANCE,
    SignFlipResult,
    TResult,
    holm,
    paired_t,
    sign_flip_p_value,
    spread_is_zero,
    welch_test,
)

MIN_PAIRS = 3

VERDICT_KINDS = ("difference", "no_difference", "undecided")


@dataclass(frozen=True)
class Verdict:
    """One arm against the baseline on one metric, as data and as a sentence.

    - ``kind``: ``difference``, ``no_difference`` or ``undecided``; ``winner``: the
      better arm's name for a difference, else None
    - ``test``: the test used, in words (paired or Welch, how many seeds, dropped runs,
      Holm); ``paired``: True when runs were paired by seed
    - ``n_pairs``: seed pairs used (None for Welch); ``n_arm``/``n_baseline``: runs used
      per arm; ``dropped``: runs left out (seeds not shared, or no finite value)
    - ``mean_arm``/``mean_baseline``: means over the runs used; ``mean_difference``:
      arm - baseline in the metric's unit, ``ci_low``/``ci_high`` its ``confidence``
      interval (paired t or Welch, not adjusted for multiplicity)
    - ``p_value``: exact sign-flip (paired) or Welch (unpaired), two-sided;
      ``p_adjusted``: Holm over all comparisons against the baseline (= p_value with one)
    - ``smallest_p``: a lower bound on the Holm-adjusted p this comparison could reach
      with its seed counts, whatever the values (0 for Welch; NaN when no test was run)
    - ``reason``: why this kind (for ``undecided``: what is missing); ``sentence``: the
      plain-English verdict, naming ``metric`` and ``step``

    NaN where a number could not be estimated; ``to_dict`` turns it into None.
    """

    arm: str
    baseline: str
    kind: str
    winner: str | None
    test: str
    paired: bool
    n_pairs: int | None
    n_arm: int
    n_baseline: int
    dropped: int
    mean_arm: float
    mean_baseline: float
    mean_difference: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    p_adjusted: float
    smallest_p: float
    alpha: float
    better: str
    metric: str
    step: int | None
    reason: str
    sentence: str

    def to_dict(self) -> dict:
        """Plain JSON-able data: NaN and infinities become None."""
        return {
            key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in asdict(self).items()
        }


@dataclass
class _Comparison:
    """Working state of one arm against the baseline, before the verdict."""

    arm: str
    paired: bool
    arm_values: list[float]
    base_values: list[float]
    dropped: int
    dropped_text: str
    t: TResult | None = None
    flip: SignFlipResult | None = None
    p_value: float = math.nan
    smallest_p: float = 1.0  # raw (unadjusted) floor; 1 when no test is run
    kind: str | None = None  # decided before the test (too few runs, identical, zero spread)
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


def _test(c: _Comparison, confidence: float, max_exact: int, samples: int, seed: int) -> None:
    """Run the comparison's test, or settle it early (identical results, zero spread)."""
    if c.kind is not None:
        return
    values = c.arm_values + c.base_values
    scale = max(abs(v) for v in values)
    if c.paired:
        diffs = [a - b for a, b in zip(c.arm_values, c.base_values, strict=True)]
        n = len(diffs)
        if max(abs(v) for v in diffs) <= RELATIVE_TOLERANCE * scale:
            c.kind = "no_difference"
            c.reason = f"identical results, the same value in each of the {n} seed pairs"
            c.p_value, c.smallest_p = 1.0, 1.0
            return
        if spread_is_zero(diffs, scale):
            c.kind = "undecided"
            c.reason = (
                f"zero spread: all {n} paired differences are {diffs[0]:+.4g}, so an interval "
                "cannot be estimated; discrete metric or too few distinct values"
            )
            return
        c.t = paired_t(diffs, confidence)
        c.flip = sign_flip_p_value(diffs, max_exact=max_exact, samples=samples, seed=seed)
        c.p_value, c.smallest_p = c.flip.p_value, c.flip.smallest_p
        return
    if spread_is_zero(c.arm_values, scale) and spread_is_zero(c.base_values, scale):
        if spread_is_zero(values, scale):
            c.kind = "no_difference"
            c.reason = f"identical results, the same value in all {len(values)} runs of both arms"
            c.p_value, c.smallest_p = 1.0, 1.0
        else:
            c.kind = "undecided"
            c.reason = (
                "zero spread: every run within each arm has the same value, so an interval "
                "cannot be estimated; discrete metric or too few distinct values"
            )
        return
    c.t = welch_test(c.arm_values, c.base_values, confidence)
    c.p_value, c.smallest_p = c.t.p_value, 0.0


def _seeds_needed(comparisons: int, alpha: float, min_pairs: int) -> int:
    """Fewest pairs with which the exact test can reach alpha after Holm over ``comparisons``."""
    n = 1
    while comparisons * 2.0 / 2**n >= alpha:
        n += 1
    return max(n, min_pairs)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3g}"


def decide(
    arms: Mapping[str, Mapping[Hashable, float]],
    better: str,
    alpha: float = ALPHA,
    min_pairs: int = MIN_PAIRS,
    *,
    metric: str = "metric",
    step: int | None = None,
    max_exact: int = MAX_EXACT,
    samples: int = MONTE_CARLO_SAMPLES,
    seed: int = 0,
) -> list[Verdict]:
    """Each arm against the first (the baseline) on one metric: a ``Verdict`` per arm.

    ``arms``: arm name -> {seed: value of the metric}, baseline first; seeds match by
    equality (``0`` and ``"0"`` differ); NaN/None values are left out (and counted in
    ``dropped``). ``better``: ``"higher"`` or ``"lower"``.
    ``metric``/``step`` only name things in the sentence.

    Test: arms sharing seeds are paired by seed (seeds in only one arm are dropped and
    the verdict says how many): the interval is the paired t interval of the mean
    difference at confidence 1 - alpha, the p-value the exact sign-flip permutation test
    (Monte Carlo above ``max_exact`` pairs, seeded). Arms sharing no seed: Welch's
    unpaired t interval and test, and the verdict says so. The comparisons against the
    baseline form one family: their p-values get Holm's correction (a comparison
    without a p-value counts as p = 1), so ``p_adjusted`` = ``p_value`` with two arms.

    Rule, in order:

    1. fewer than ``min_pairs`` seed pairs (Welch: runs in either arm) -> ``undecided``,
       saying how many there are and how many are needed;
    2. every paired difference 0 (every run equal, for Welch) -> ``no_difference``:
       identical results;
    3. all paired differences equal but not 0 (Welch: no spread in either arm) ->
       ``undecided``: zero spread, no interval can be estimated;
    4. the smallest p-value the exact test could give with these pairs, whatever the
       values (2 / 2^n for n non-zero differences; after Holm over k comparisons at
       least k times the smallest such floor among them), is not below alpha ->
       ``undecided``: "with N pairs the smallest possible p-value is X; run at least M
       seeds" (M = 6 for one comparison at 5%). Calling this "no difference" would
       pass off a test that could not have found one as evidence of none;
    5. Holm-adjusted p < alpha *and* the interval excludes 0 -> ``difference``; the
       winner is the arm with the better mean by ``better`` (the interval's sign);
    6. otherwise ``no_difference``: none detected at the alpha level (absence of
       evidence, not proof of equality: the interval shows how large a difference
       is still compatible with the data).

    The sign-flip test is exact under H0 as long as, within a seed, the two arms'
    values are exchangeable (true for the same curriculum under two names); requiring
    the t interval too only makes step 5 more conservative, so under H0 a difference
    is reported at most alpha of the time (about 3.7% at 6-8 seeds in simulation).
    Values within ``RELATIVE_TOLERANCE`` of the values' magnitude count as equal in
    steps 2-3. With fewer than 2 arms, returns [].
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"need 0 < alpha < 1, got {alpha}")
    if min_pairs < 2:
        raise ValueError(f"need min_pairs >= 2 (an interval needs 2 values), got {min_pairs}")
    names = list(arms)
    if len(names) < 2:
        return []
    baseline = names[0]
    confidence = 1.0 - alpha
    k = len(names) - 1
    comparisons = [
        _prepare(arm, baseline, arms[arm], arms[baseline], min_pairs) for arm in names[1:]
    ]
    for c in comparisons:
        _test(c, confidence, max_exact, samples, seed)
    raw = [c.p_value if math.isfinite(c.p_value) else 1.0 for c in comparisons]
    adjusted = holm(raw)
    floor_all = min(c.smallest_p for c in comparisons)
    return [
        _verdict(c, baseline, p_adj, max(c.smallest_p, k * floor_all), k, alpha, min_pairs,
                 better, metric, step, max_exact, samples, seed)
        for c, p_adj in zip(comparisons, adjusted, strict=True)
    ]  # fmt: skip


def _verdict(
    c: _Comparison,
    baseline: str,
    p_adjusted: float,
    smallest_p: float,
    k: int,
    alpha: float,
    min_pairs: int,
    better: str,
    metric: str,
    step: int | None,
    max_exact: int,
    samples: int,
    seed: int,
) -> Verdict:
    confidence = 1.0 - alpha
    nan = math.nan
    mean_arm = sum(c.arm_values) / len(c.arm_values) if c.arm_values else nan
    mean_base = sum(c.base_values) / len(c.base_values) if c.base_values else nan
    difference = mean_arm - mean_base
    low = c.t.ci_low if c.t else nan
    high = c.t.ci_high if c.t else nan
    tested = c.t is not None
    n_pairs = len(c.arm_values) if c.paired else None

    if c.paired:
        exact = c.flip.exact if c.flip else n_pairs <= max_exact
        flip = (
            "exact sign-flip permutation test"
            if exact
            else f"Monte Carlo sign-flip permutation test ({samples:,} random sign patterns, "
            f"seed {seed})"
        )
        test = f"paired t interval + {flip} over {_plural(n_pairs, 'seed pair')}"
    else:
        test = (
            f"Welch t test (unpaired: the arms share no seeds) over {len(c.arm_values)} "
            f"and {len(c.base_values)} runs"
        )
    if c.dropped_text:
        test += f"; {c.dropped_text}"
    if k > 1:
        test += f"; Holm-corrected over {k} comparisons against {baseline}"

    kind, reason, winner = c.kind, c.reason, None
    if kind is None and c.paired and smallest_p >= alpha:
        kind = "undecided"
        ties = n_pairs - c.flip.n_nonzero
        tied = f", {ties} of them tied," if ties else ""
        holm_note = f" after Holm's correction over {k} comparisons" if k > 1 else ""
        needed = _seeds_needed(k, alpha, min_pairs)
        advice = (
            f"run at least {needed} seeds"
            if not ties
            else f"a tied pair adds nothing to the exact test, which needs {needed} untied "
            f"pairs: run at least {needed + ties} seeds"
        )
        reason = (
            f"with {_plural(n_pairs, 'seed pair')}{tied} the smallest possible p-value"
            f"{holm_note} is {smallest_p:.4g}, not below {alpha:g}, whatever the difference; "
            f"{advice}"
        )
    if kind is None:
        excludes_zero = math.isfinite(low) and (low > 0 or high < 0)
        p_text = f"{'Holm-adjusted ' if k > 1 else ''}p = {_format_p(p_adjusted)}"
        if p_adjusted < alpha and excludes_zero:
            kind = "difference"
            arm_better = (difference > 0) == (better == "higher")
            winner = c.arm if arm_better else baseline
            reason = f"{p_text} < {alpha:g} and the interval excludes 0"
        else:
            kind = "no_difference"
            if p_adjusted >= alpha:
                reason = f"{p_text}, not below {alpha:g}"
            else:
                interval = f"the {_percent(confidence)} t interval includes 0"
                reason = f"{p_text} but {interval}"

    at = f"At step {step:,}, " if step is not None else ""
    no = "no" if at else "No"  # the sentence's first word, when it is not an arm's name
    detail = ""
    if tested:
        p_text = f"p = {_format_p(c.p_value)}"
        if k > 1:
            p_text += f", Holm-adjusted {_format_p(p_adjusted)}"
        detail = (
            f"{c.arm} {mean_arm:.4g} vs {baseline} {mean_base:.4g} ({c.arm} - {baseline} = "
            f"{difference:+.4g}, {_percent(confidence)} CI {low:+.4g} to {high:+.4g}; "
            f"{p_text}; {test})"
        )
    if kind == "difference":
        loser = baseline if winner == c.arm else c.arm
        sentence = (
            f"{at}{winner} has a {better} {metric} than {loser}: {detail}. "
            f"A difference at the {_percent(alpha)} level; {winner} is better."
        )
    elif kind == "no_difference" and tested:
        sentence = (
            f"{at}{no} difference in {metric} detected between {c.arm} and {baseline} at the "
            f"{_percent(alpha)} level: {detail}."
        )
    elif kind == "no_difference":
        sentence = (
            f"{at}{no} difference in {metric} between {c.arm} and {baseline}: {reason} "
            f"(mean {mean_arm:.4g}; {test})."
        )
    else:
        measured = f"; measured {detail}" if tested else ""
        sentence = (
            f"{at}{no} verdict on {metric} for {c.arm} against {baseline}: {reason}{measured}."
        )
    return Verdict(
        arm=c.arm, baseline=baseline, kind=kind, winner=winner, test=test, paired=c.paired,
        n_pairs=n_pairs, n_arm=len(c.arm_values), n_baseline=len(c.base_values),
        dropped=c.dropped, mean_arm=mean_arm, mean_baseline=mean_base,
        mean_difference=difference, ci_low=low, ci_high=high, confidence=confidence,
        p_value=c.p_value if tested or kind == "no_difference" else nan,
        p_adjusted=p_adjusted if tested or kind == "no_difference" else nan,
        smallest_p=smallest_p if tested else nan, alpha=alpha, better=better,
        metric=metric, step=step, reason=reason, sentence=sentence,
    )  # fmt: skip

"""The verdict of an A/B: each arm against the baseline, as data and as a plain sentence.

``decide`` measures each arm against the baseline (paired by seed when the arms share
enough seeds: paired t interval, exact sign-flip test; Welch's unpaired test otherwise;
Holm over several arms: ``Evidence``), then applies ``RULES``, an ordered list of small
rules, each a function with its condition and its reason beside the kind it gives: the
first that holds is the verdict, and the sentence is built from it. A ``difference``
needs the test to reject and the interval to exclude 0; ``equivalent`` needs a declared
margin, the ``1 - 2 alpha`` interval inside it (two one-sided tests; paired: with a
critical value guarded against skewed differences) and, paired, both one-sided sign-flip
tests against the margin to reject; otherwise the verdict is ``undecided`` and says why
and what would settle it (``docs/ab-testing.md``).
A new rule is one function and its row in ``RULES``. Beside each verdict, what the
comparison could have seen (``power``); ``overall_kind`` is the kind that heads several.
The distribution maths are in ``stats``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from curriculum_cli.analysis.plain import plain
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
    guarded_t_quantile,
    holm,
    paired_differences,
    paired_t,
    sign_flip_lower_p_value,
    sign_flip_p_value,
    spread_is_zero,
    student_t_quantile,
    welch_test,
)

MIN_PAIRS = 3
"""Fewest seed pairs (Welch: runs in each arm) a verdict needs (``decide``'s ``min_pairs``).
Arms that share fewer seeds than this but have this many runs each are compared unpaired."""

VERDICT_KINDS = ("difference", "undecided", "equivalent", "identical")
"""Every kind of verdict, in the order in which one heads several comparisons
(``overall_kind``): any difference, else any undecided one, else equivalent, else
identical. ``RULES`` give them; ``_SENTENCES`` words each."""


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
      ``equivalence_confidence`` = 1 - 2 alpha / k interval (k comparisons; Bonferroni),
      the mean +- ``equivalence_critical`` standard errors (paired: the skew-guarded
      ``stats.guarded_t_quantile``; Welch: Student's quantile), whose lying inside
      +-margin is one half of equivalence (two one-sided tests at alpha / k each; with
      zero spread, paired, the interval is the common difference itself);
      ``inside_margin``: whether it does (None without a margin or an interval);
      ``equivalence_p_value``: paired, the larger p of the one-sided sign-flip tests
      against +-margin, the other half (NaN without a margin, or Welch)
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
    equivalence_critical: float
    inside_margin: bool | None
    equivalence_p_value: float
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
        return plain(asdict(self))


def overall_kind(verdicts: Sequence[Verdict]) -> str | None:
    """The kind that heads several comparisons: the first of ``VERDICT_KINDS`` any of them
    has (None without a comparison)."""
    kinds = {verdict.kind for verdict in verdicts}
    return next((kind for kind in VERDICT_KINDS if kind in kinds), None)


# ----------------------------------------------------------------------------
# What the comparisons show: values, tests, the family's adjustment
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictSettings:
    """What every comparison of one ``decide`` call shares (``decide``'s arguments)."""

    baseline: str
    k: int  # comparisons against the baseline
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
    censored_at: float | None  # the value that means "not reached by then" (steps to target)


@dataclass
class Evidence:
    """One arm against the baseline: the values compared and what the tests found.

    ``decide`` fills it in three steps: the values compared (``_pair``: paired by seed
    or not, what was left out), the tests (``_test``, only for a comparison that no rule
    settled before them: see ``Rule.reads_tests``), then the family's Holm adjustment
    and the figures the rules read (``_summarize``). The rules read it and change
    nothing. NaN where a number could not be estimated.
    """

    arm: str
    paired: bool
    arm_values: list[float]
    base_values: list[float]  # paired: in the order of shared_seeds
    shared_seeds: list[Hashable]  # the seeds of the pairs ([] for Welch)
    dropped: int
    dropped_text: str
    unpaired_shared: list[Hashable] = field(default_factory=list)  # Welch: too few to pair
    # _test
    all_tied: bool = False  # every paired difference a tie (Welch: every run the same value)
    differences: list[float] | None = None  # paired, ties snapped to 0
    t: TResult | None = None  # the 1 - alpha interval and test
    t_equivalence: TResult | None = None  # the 1 - 2 alpha / k interval (paired: guarded)
    equivalence_critical: float = math.nan  # its half-width in standard errors
    flip: SignFlipResult | None = None
    below_margin: SignFlipResult | None = None  # one-sided sign-flip test of d - M
    above_margin: SignFlipResult | None = None  # ... of -d - M
    zero_spread: bool = False
    p_value: float = math.nan  # raw; 1 when every difference is a tie
    smallest_p: float = 1.0  # the raw p's floor with these seeds; 1 when no test is run
    # _summarize
    p_adjusted: float = math.nan  # Holm over the comparisons against the baseline
    smallest_p_adjusted: float = math.nan  # the floor after Holm
    mean_arm: float = math.nan
    mean_baseline: float = math.nan
    mean_difference: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    equivalence_low: float = math.nan
    equivalence_high: float = math.nan
    inside_margin: bool | None = None  # the equivalence interval inside +-margin
    equivalence_p_value: float = math.nan  # the larger one-sided sign-flip p against +-margin
    equivalence_p_floor: float = math.nan  # the smallest it could be with these pairs
    excludes_zero: bool = False  # the interval, or zero spread of one sign
    sensitivity: Sensitivity | None = None

    @property
    def tested(self) -> bool:
        """Whether the t interval and test were computed."""
        return self.t is not None

    @property
    def n_pairs(self) -> int | None:
        return len(self.arm_values) if self.paired else None

    @property
    def n_tied(self) -> int:
        return self.flip.n - self.flip.n_nonzero if self.flip else 0


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


def _pair(arm: str, baseline: str, arm_raw: Mapping, base_raw: Mapping, min_pairs: int) -> Evidence:
    """The values compared: paired by the seeds both arms have, else unpaired (Welch).

    Arms that share fewer than ``min_pairs`` seeds but have ``min_pairs`` runs each are
    compared unpaired over all their runs: a shared seed or two must not take away the
    test the runs allow. (Runs of one seed start alike, so they are, if anything,
    positively correlated, which makes Welch's interval wider than it need be, not
    narrower.)
    """
    arm_values, base_values = _finite(arm_raw), _finite(base_raw)
    missing = (len(arm_raw) - len(arm_values)) + (len(base_raw) - len(base_values))
    notes = []
    if missing:
        notes.append(f"{_plural(missing, 'run')} without a finite value left out")
    shared = [seed for seed in base_values if seed in arm_values]
    enough_runs = min(len(arm_values), len(base_values)) >= min_pairs
    if not shared or (len(shared) < min_pairs and enough_runs):
        return Evidence(arm, False, list(arm_values.values()), list(base_values.values()), [],
                        missing, "; ".join(notes), unpaired_shared=shared)  # fmt: skip
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
    return Evidence(
        arm, True, [arm_values[s] for s in shared], [base_values[s] for s in shared], shared,
        missing + unshared, "; ".join(notes),
    )  # fmt: skip


def _test(e: Evidence, s: VerdictSettings) -> None:
    """The comparison's tests and intervals. None when every paired difference is a tie
    (Welch: every run the same value): with nothing to flip the p-value is 1."""
    values = e.arm_values + e.base_values
    scale = max(abs(v) for v in values)
    confidence, equivalence = 1.0 - s.alpha, 1.0 - 2.0 * s.alpha / s.k
    if e.paired:
        e.differences = paired_differences(e.arm_values, e.base_values, scale)
        if not any(e.differences):
            e.all_tied, e.p_value = True, 1.0
            return
        e.zero_spread = spread_is_zero(e.differences, scale)
        e.t = paired_t(e.differences, confidence, scale)
        e.t_equivalence = paired_t(e.differences, equivalence, scale, skew_guarded=True)
        e.equivalence_critical = guarded_t_quantile(0.5 + equivalence / 2.0, len(e.differences))
        flips = {"scale": scale, "max_exact": s.max_exact, "samples": s.samples, "seed": s.seed}
        e.flip = sign_flip_p_value(e.differences, **flips)
        e.p_value, e.smallest_p = e.flip.p_value, e.flip.smallest_p
        if s.margin is not None:
            e.below_margin = sign_flip_lower_p_value([d - s.margin for d in e.differences],
                                                     **flips)  # fmt: skip
            e.above_margin = sign_flip_lower_p_value([-d - s.margin for d in e.differences],
                                                     **flips)  # fmt: skip
            tests = (e.below_margin, e.above_margin)
            e.equivalence_p_value = max(test.p_value for test in tests)
            e.equivalence_p_floor = max(test.smallest_p for test in tests)
        return
    if spread_is_zero(values, scale):
        e.all_tied, e.p_value = True, 1.0
        return
    e.zero_spread = spread_is_zero(e.arm_values, scale) and spread_is_zero(e.base_values, scale)
    e.t = welch_test(e.arm_values, e.base_values, confidence)
    e.t_equivalence = welch_test(e.arm_values, e.base_values, equivalence)
    if math.isfinite(e.t.df):
        e.equivalence_critical = student_t_quantile(0.5 + equivalence / 2.0, e.t.df)
    e.p_value, e.smallest_p = e.t.p_value, 0.0


def _summarize(evidence: list[Evidence], s: VerdictSettings) -> None:
    """Holm over the comparisons against the baseline (one without a p-value counts as
    p = 1), then each one's means, intervals and what it could have seen."""
    adjusted = holm([e.p_value if math.isfinite(e.p_value) else 1.0 for e in evidence])
    floor = min(e.smallest_p for e in evidence)
    for e, p_adjusted in zip(evidence, adjusted, strict=True):
        e.p_adjusted = p_adjusted
        e.smallest_p_adjusted = max(e.smallest_p, s.k * floor)
        e.mean_arm = sum(e.arm_values) / len(e.arm_values) if e.arm_values else math.nan
        e.mean_baseline = sum(e.base_values) / len(e.base_values) if e.base_values else math.nan
        if e.differences is not None:
            e.mean_difference = sum(e.differences) / len(e.differences)
        else:
            e.mean_difference = e.mean_arm - e.mean_baseline
        if e.t is not None:
            e.ci_low, e.ci_high = e.t.ci_low, e.t.ci_high
        if e.t_equivalence is not None:
            e.equivalence_low, e.equivalence_high = e.t_equivalence.ci_low, e.t_equivalence.ci_high
        if e.paired and e.zero_spread:  # every pair differs by the same amount: that amount
            e.equivalence_low = e.equivalence_high = e.mean_difference
        if s.margin is not None and math.isfinite(e.equivalence_low):
            e.inside_margin = -s.margin < e.equivalence_low and e.equivalence_high < s.margin
        e.excludes_zero = (math.isfinite(e.ci_low) and (e.ci_low > 0 or e.ci_high < 0)) or (
            e.paired and e.zero_spread and e.mean_difference != 0
        )
        e.sensitivity = _sensitivity(e, s) if e.tested else None


def _sd(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _sensitivity(e: Evidence, s: VerdictSettings) -> Sensitivity | None:
    """What the comparison could have seen; None without a spread to base it on (paired:
    fewer than 2 untied pairs, or no spread among them)."""
    if e.t is None or e.zero_spread:
        return None
    if e.paired:
        untied = [d for d in e.differences if d != 0.0]
        if len(untied) < 2 or _sd(untied) == 0.0:
            return None
        return paired_sensitivity(len(e.differences), _sd(untied), s.alpha, s.k, s.margin,
                                  n_tied=e.n_tied, min_pairs=s.min_pairs)  # fmt: skip
    sds = [_sd(e.arm_values), _sd(e.base_values)]
    return welch_sensitivity(len(e.arm_values), len(e.base_values), *sds, s.alpha, s.k,
                             s.margin, min_pairs=s.min_pairs)  # fmt: skip


# ----------------------------------------------------------------------------
# The rules, in order
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ruling:
    """What a rule says when it holds: why (``reason``), and the better arm of a difference."""

    reason: str
    winner: str | None = None


@dataclass(frozen=True)
class Rule:
    """One rule of the verdict: when ``holds`` returns a ``Ruling`` (its condition holds),
    the verdict is ``kind`` with that ruling's reason.

    ``reads_tests``: whether the condition reads the tests (``Evidence`` after
    ``_test``). A rule that does not can settle a comparison before any test is run;
    such a comparison counts as p = 1 in Holm's family.
    """

    kind: str
    holds: Callable[[Evidence, VerdictSettings], Ruling | None]
    reads_tests: bool = True


def too_few_pairs(e: Evidence, s: VerdictSettings) -> Ruling | None:
    """1. Fewer than ``min_pairs`` seed pairs and fewer runs than that in an arm (Welch:
    runs in either arm): ``undecided``, saying how many there are and how many are
    needed. (Arms with too few shared seeds but enough runs are compared unpaired:
    ``_pair``.)"""
    if e.paired:
        n = len(e.shared_seeds)
        if n >= s.min_pairs:
            return None
        return Ruling(
            f"only {_plural(n, 'seed pair')} ({e.arm} and {s.baseline} share "
            f"seed{'s' if n > 1 else ''} {_seed_list(e.shared_seeds)}); at least "
            f"{s.min_pairs} are needed for a verdict (or, unpaired, {s.min_pairs} runs in each "
            "arm)"
        )
    counts = [(e.arm, len(e.arm_values)), (s.baseline, len(e.base_values))]
    if all(count >= s.min_pairs for _, count in counts):
        return None
    return Ruling(
        f"the arms share no seeds, and the unpaired (Welch) test needs at least "
        f"{s.min_pairs} runs per arm; " + ", ".join(f"{n} has {k}" for n, k in counts)
    )


def identical_results(e: Evidence, s: VerdictSettings) -> Ruling | None:
    """2. Every paired difference a tie (Welch: every run the same value): ``identical``
    (e.g. the same curriculum under two names). When every value is ``censored_at``
    (steps to target: no seed reached it by the horizon), the reason says so."""
    if not e.all_tied:
        return None
    if _all_censored(e, s):
        return Ruling(
            f"no seed of either arm reached the target before nominal step "
            f"{s.censored_at:,.0f}, where every run is censored"
        )
    if e.paired:
        return Ruling(
            f"every paired difference is 0 (a tie: equal within the tie tolerance): the "
            f"same value in each of the {len(e.differences)} seed pairs"
        )
    runs = len(e.arm_values) + len(e.base_values)
    return Ruling(f"the same value in all {runs} runs of both arms")


def significant_difference(e: Evidence, s: VerdictSettings) -> Ruling | None:
    """3. Holm-adjusted p < alpha *and* the 1 - alpha interval excludes 0: ``difference``,
    won by the arm with the better mean by ``better``.

    With zero spread (every pair differs by the same non-zero amount) there is no t
    interval, but every difference has the same sign, and the exact test alone decides:
    with 6 such pairs p = 2/64. The sign-flip test is exact under H0 as long as each
    seed's difference is symmetric about 0, e.g. when, within a seed, the two arms'
    values are exchangeable (true for the same curriculum under two names). It tests
    that, not equal means alone: two arms with equal means whose seed-to-seed noise
    differs in shape give skewed differences, and then this rule says ``difference``
    more often than alpha (6-9% for differences skewed like an exponential at 6-12
    pairs; the t interval hardly limits it: ``bench/bench_verdict.py``). A difference
    can also lie inside the margin (significant but smaller than what matters): the
    sentence says so.
    """
    if not (e.p_adjusted < s.alpha and e.excludes_zero):
        return None
    higher = e.mean_difference > 0
    winner = e.arm if higher == (s.better == "higher") else s.baseline
    where = "every pair differs by the same amount" if e.zero_spread else (
        "the interval excludes 0")  # fmt: skip
    return Ruling(f"{_adjusted_p(e, s)} < {s.alpha:g} and {where}", winner)


def inside_the_margin(e: Evidence, s: VerdictSettings) -> Ruling | None:
    """4. A margin M, the 1 - 2 alpha / k interval inside (-M, +M) and, paired, both
    one-sided sign-flip tests against +-M rejecting at alpha / k: ``equivalent``.

    Schuirmann's two one-sided tests at level alpha: each one-sided t test of "the
    difference is at least +M" / "at most -M" rejects at alpha / k exactly when that
    interval's bound lies inside; k > 1 comparisons: Bonferroni. Paired, the interval
    is the mean +- ``stats.guarded_t_quantile`` standard errors, not Student's t: with
    skewed differences Student's t says "equivalent" at a true difference of M up to
    5 times as often as alpha, and the guarded value keeps it at most alpha for
    differences as skewed as ``stats.GUARD_SHAPES``, whatever M / sd. The sign-flip
    tests of ``d - M`` and ``-d - M`` add a test that does not lean on normality (exact
    for differences symmetric about the margin tested, however heavy their tails); they
    need at least 5 pairs at 5% (1 / 2^n < alpha / k), and with zero spread they decide
    alone. ``bench/bench_verdict.py`` measures the rule.
    """
    if not e.inside_margin:
        return None
    if not e.paired:
        return Ruling(
            f"the {_percent(e.t_equivalence.confidence)} interval {e.equivalence_low:+.4g} "
            f"to {e.equivalence_high:+.4g} lies inside it (two one-sided tests at the "
            f"{_percent(s.alpha)} level)"
        )
    if not e.equivalence_p_value < s.alpha / s.k:
        return None
    flips = (
        f"both one-sided sign-flip tests against ±{s.margin:.4g} reject (p = "
        f"{_format_p(e.equivalence_p_value)}): two one-sided tests at the {_percent(s.alpha)} "
        "level"
    )
    if e.zero_spread:
        return Ruling(f"every pair differs by the same {e.mean_difference:+.4g}, and {flips}")
    student = student_t_quantile(1.0 - s.alpha / s.k, len(e.differences) - 1)
    return Ruling(
        f"the {_percent(e.t_equivalence.confidence)} interval {e.equivalence_low:+.4g} to "
        f"{e.equivalence_high:+.4g} lies inside it (the mean ± {e.equivalence_critical:.3g} "
        f"standard errors: Student's {student:.3g}, widened so that skewed differences keep "
        f"the level), and {flips}"
    )


def nothing_settles_it(e: Evidence, s: VerdictSettings) -> Ruling:
    """5. Otherwise ``undecided``, with each reason that holds, and what would settle it.

    Too few untied pairs for the exact test ever to reach alpha (2 / 2^n for n untied
    pairs, after Holm k times the smallest such floor), or a p-value not below alpha
    (said when the t interval excludes 0 all the same), or an interval that includes 0
    despite p < alpha; and no margin declared, or too few pairs for the one-sided
    sign-flip tests against it, or an equivalence interval too wide for it, or those
    tests not rejecting; then how many seeds would likely settle it
    (``power.Sensitivity.seeds_for_margin``).
    """
    reasons = []
    ties = e.n_tied
    interval = f"the {_percent(1 - s.alpha)} t interval"
    if e.paired and e.smallest_p_adjusted >= s.alpha:
        tied = f", {ties} of them tied," if ties else ""
        holm_note = f" after Holm's correction over {s.k} comparisons" if s.k > 1 else ""
        needed = _untied_needed(s.k, s.alpha, s.min_pairs)
        reasons.append(
            f"too few untied pairs: with {_plural(e.n_pairs, 'seed pair')}{tied} the smallest "
            f"possible p-value{holm_note} is {e.smallest_p_adjusted:.4g}, not below "
            f"{s.alpha:g}, whatever the difference; the exact test needs {needed} untied "
            f"pairs (at least {needed + ties} seeds{' with ties like these' if ties else ''})"
        )
    elif e.zero_spread and not e.paired:
        reasons.append(
            "zero spread: every run within each arm has the same value, so no interval can "
            "be estimated"
        )
    elif e.p_adjusted >= s.alpha:
        also = f", though {interval} excludes 0" if e.excludes_zero else ""
        reasons.append(f"{_adjusted_p(e, s)}, not below {s.alpha:g}{also}")
    elif not e.excludes_zero:
        reasons.append(f"{_adjusted_p(e, s)} but {interval} includes 0")
    level = s.alpha / s.k
    if s.margin is None:
        reasons.append(
            "no margin declared, so equivalence cannot be concluded (--margin: the smallest "
            "difference that matters; with it pepcurr says how many seeds would settle this)"
        )
    elif e.paired and e.zero_spread and not e.inside_margin:
        reasons.append(
            f"every pair differs by the same {e.mean_difference:+.4g}, not inside the margin "
            f"±{s.margin:.4g} (zero spread)"
        )
    elif e.paired and e.equivalence_p_floor >= level:
        reasons.append(
            f"too few pairs for equivalence: with {_plural(e.n_pairs, 'seed pair')} the "
            f"one-sided sign-flip tests against ±{s.margin:.4g} cannot give a p-value below "
            f"{e.equivalence_p_floor:.4g}, not below {level:g}; they need "
            f"{_pairs_for_equivalence(s.k, s.alpha, s.min_pairs)} pairs"
        )
    elif not math.isfinite(e.equivalence_low):
        reasons.append(f"no interval to hold against the margin ±{s.margin:.4g} (zero spread)")
    elif not e.inside_margin:
        guarded = (
            f" (the mean ± {e.equivalence_critical:.3g} standard errors, guarded against skew)"
            if e.paired and not e.zero_spread
            else ""
        )
        reasons.append(
            f"CI too wide for the margin: the {_percent(e.t_equivalence.confidence)} interval "
            f"{e.equivalence_low:+.4g} to {e.equivalence_high:+.4g}{guarded} reaches beyond "
            f"±{s.margin:.4g}"
        )
    else:
        reasons.append(
            f"the one-sided sign-flip tests against ±{s.margin:.4g} give p = "
            f"{_format_p(e.equivalence_p_value)}, not below {level:g}, though the "
            f"{_percent(e.t_equivalence.confidence)} interval lies inside it"
        )
    if e.sensitivity is not None and s.margin is not None:
        needed, n = e.sensitivity.seeds_for_margin, e.sensitivity.n
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
    return Ruling("; ".join(reasons))


RULES = (
    Rule("undecided", too_few_pairs, reads_tests=False),
    Rule("identical", identical_results),
    Rule("difference", significant_difference),
    Rule("equivalent", inside_the_margin),
    Rule("undecided", nothing_settles_it),
)
"""The verdict's rules, in order (``docs/ab-testing.md``): the first that holds gives the
verdict's kind and reason, and the sentence is built from it; the last always holds. A new
rule is one function and its row here."""


def _first_rule(e: Evidence, s: VerdictSettings, *, tested: bool) -> tuple[Rule, Ruling] | None:
    """The first of ``RULES`` that holds for ``e``, with its ruling. Before the tests
    (``tested`` False) only the rules ahead of the first that reads them are tried, and
    None means none of those holds."""
    for rule in RULES:
        if rule.reads_tests and not tested:
            return None
        ruling = rule.holds(e, s)
        if ruling is not None:
            return rule, ruling
    raise ValueError("no verdict rule holds: the last of RULES must hold always")


def _untied_needed(comparisons: int, alpha: float, min_pairs: int) -> int:
    """Fewest untied pairs with which the exact test can reach alpha after Holm."""
    n = 1
    while comparisons * 2.0 / 2**n >= alpha:
        n += 1
    return max(n, min_pairs)


def _pairs_for_equivalence(comparisons: int, alpha: float, min_pairs: int) -> int:
    """Fewest pairs with which the one-sided sign-flip tests can reach alpha / k."""
    n = 1
    while 1.0 / 2**n >= alpha / comparisons:
        n += 1
    return max(n, min_pairs)


def _all_censored(e: Evidence, s: VerdictSettings) -> bool:
    """Every value compared is ``censored_at``: no run reached the target by then."""
    return s.censored_at is not None and all(
        v == s.censored_at for v in e.arm_values + e.base_values
    )


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def _format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3g}"


def _adjusted_p(e: Evidence, s: VerdictSettings) -> str:
    return f"{'Holm-adjusted ' if s.k > 1 else ''}p = {_format_p(e.p_adjusted)}"


# ----------------------------------------------------------------------------
# decide: the comparisons, the rules, the verdicts
# ----------------------------------------------------------------------------


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
    censored_at: float | None = None,
) -> list[Verdict]:
    """Each arm against the first (the baseline) on one metric: a ``Verdict`` per arm.

    ``arms``: arm name -> {seed: value of the metric}, baseline first; seeds match by
    equality (``0`` and ``"0"`` differ); NaN/None values are left out (and counted in
    ``dropped``). ``better``: ``"higher"`` or ``"lower"``. ``margin``: the smallest
    difference that matters, in the metric's unit (> 0; None: no equivalence verdict).
    ``metric``/``step`` only name things in the sentence; ``values_note`` (e.g. how
    censored values were treated) is added to the test's description; ``censored_at``:
    the value that stands for "not reached by then" (steps to target restricted to a
    horizon), so that arms whose every value it is read "neither reached it".

    Test: arms sharing at least ``min_pairs`` seeds are paired by seed (seeds in only one
    arm are dropped and the verdict says how many): the interval is the paired t
    interval of the mean difference at confidence 1 - alpha, the p-value the exact
    sign-flip permutation test (exact for differences symmetric about 0; Monte Carlo
    above ``max_exact`` pairs, seeded). Arms sharing fewer seeds (none, or too few to
    pair while each has ``min_pairs`` runs): Welch's unpaired t interval and test over
    all runs, and the verdict says so. The comparisons against the
    baseline form one family: their p-values get Holm's correction (a comparison
    without a p-value counts as p = 1), so ``p_adjusted`` = ``p_value`` with two arms.
    A paired difference within ``stats.TIE_TOLERANCE`` of the values' magnitude is a tie
    (exactly 0) everywhere.

    The verdict is the first of ``RULES`` that holds (each rule's docstring states its
    condition): too few pairs, identical, difference, equivalent, else undecided. With
    fewer than 2 arms, returns [].
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
    s = VerdictSettings(names[0], len(names) - 1, alpha, min_pairs, margin, better, metric,
                        step, values_note, max_exact, samples, seed, censored_at)  # fmt: skip
    evidence = [_pair(arm, s.baseline, arms[arm], arms[s.baseline], min_pairs)
                for arm in names[1:]]  # fmt: skip
    settled = [_first_rule(e, s, tested=False) for e in evidence]
    for e, before_tests in zip(evidence, settled, strict=True):
        if before_tests is None:
            _test(e, s)
    _summarize(evidence, s)
    return [
        _verdict(e, *(before_tests or _first_rule(e, s, tested=True)), s)
        for e, before_tests in zip(evidence, settled, strict=True)
    ]


def _verdict(e: Evidence, rule: Rule, ruling: Ruling, s: VerdictSettings) -> Verdict:
    """The verdict of ``rule`` on ``e``, with its sentence."""
    nan = math.nan
    test = _test_text(e, s)
    sentence = _SENTENCES[rule.kind](e, s, ruling, test)
    if e.sensitivity is not None:
        sentence += " " + e.sensitivity.text()
    shows_p = e.tested or e.all_tied  # every difference a tie: p = 1 without a test
    return Verdict(
        arm=e.arm, baseline=s.baseline, kind=rule.kind, winner=ruling.winner, test=test,
        paired=e.paired, n_pairs=e.n_pairs, n_tied=e.n_tied, n_arm=len(e.arm_values),
        n_baseline=len(e.base_values), dropped=e.dropped, mean_arm=e.mean_arm,
        mean_baseline=e.mean_baseline, mean_difference=e.mean_difference, ci_low=e.ci_low,
        ci_high=e.ci_high, confidence=1.0 - s.alpha, margin=s.margin,
        equivalence_low=e.equivalence_low, equivalence_high=e.equivalence_high,
        equivalence_confidence=1.0 - 2.0 * s.alpha / s.k,
        equivalence_critical=e.equivalence_critical, inside_margin=e.inside_margin,
        equivalence_p_value=e.equivalence_p_value, p_value=e.p_value if shows_p else nan,
        p_adjusted=e.p_adjusted if shows_p else nan,
        smallest_p=e.smallest_p_adjusted if e.tested else nan, alpha=s.alpha,
        better=s.better, metric=s.metric, step=s.step, sensitivity=e.sensitivity,
        reason=ruling.reason, sentence=sentence,
    )  # fmt: skip


# ----------------------------------------------------------------------------
# The sentence of each kind
# ----------------------------------------------------------------------------


def _test_text(e: Evidence, s: VerdictSettings) -> str:
    """The test used, in words: paired or Welch, how many seeds, what was dropped, Holm."""
    if e.paired:
        exact = e.flip.exact if e.flip else e.n_pairs <= s.max_exact
        flip = (
            "exact sign-flip permutation test (assumes differences symmetric about 0)"
            if exact
            else f"Monte Carlo sign-flip permutation test ({s.samples:,} random sign patterns, "
            f"seed {s.seed}; assumes differences symmetric about 0)"
        )
        test = f"paired t interval + {flip} over {_plural(e.n_pairs, 'seed pair')}"
        if s.margin is not None:
            test += (
                f"; equivalence: skew-guarded t interval + one-sided sign-flip tests against "
                f"±{s.margin:.4g}"
            )
    else:
        shared = e.unpaired_shared
        why = (
            f"the arms share only {_plural(len(shared), 'seed')} ({_seed_list(shared)}), too "
            "few to pair"
            if shared
            else "the arms share no seeds"
        )
        test = (
            f"Welch t test (unpaired: {why}) over {len(e.arm_values)} and {len(e.base_values)} runs"
        )
    if s.values_note:
        test += f"; {s.values_note}"
    if e.dropped_text:
        test += f"; {e.dropped_text}"
    if s.k > 1:
        test += f"; Holm-corrected over {s.k} comparisons against {s.baseline}"
    return test


def _at(s: VerdictSettings) -> str:
    return f"At step {s.step:,}, " if s.step is not None else ""


def _measured(e: Evidence, s: VerdictSettings, test: str) -> str:
    """The figures behind the verdict: means, difference, intervals, p ('' without a test)."""
    if not e.tested:
        return ""
    p_text = f"p = {_format_p(e.p_value)}" if math.isfinite(e.p_value) else "no p-value"
    if s.k > 1:
        p_text += f", Holm-adjusted {_format_p(e.p_adjusted)}"
    if math.isfinite(e.ci_low):
        ci = f"{_percent(1 - s.alpha)} CI {e.ci_low:+.4g} to {e.ci_high:+.4g}"
    else:
        ci = "zero spread, no interval"
    if s.margin is not None and math.isfinite(e.equivalence_low) and not e.zero_spread:
        equivalence = _percent(1 - 2 * s.alpha / s.k)
        ci += (
            f", {equivalence} equivalence interval {e.equivalence_low:+.4g} to "
            f"{e.equivalence_high:+.4g}"
        )
    if s.margin is not None and math.isfinite(e.equivalence_p_value):
        ci += f", sign-flip tests against ±{s.margin:.4g} p = {_format_p(e.equivalence_p_value)}"
    return (
        f"{e.arm} {e.mean_arm:.4g} vs {s.baseline} {e.mean_baseline:.4g} ({e.arm} - "
        f"{s.baseline} = {e.mean_difference:+.4g}, {ci}; {p_text}; {test})"
    )


def _difference_sentence(e: Evidence, s: VerdictSettings, ruling: Ruling, test: str) -> str:
    winner = ruling.winner
    loser = s.baseline if winner == e.arm else e.arm
    if e.inside_margin and e.zero_spread:
        small = f", though by less than the margin ±{s.margin:.4g} (every pair by the same amount)"
    elif e.inside_margin:
        small = (
            f", though by less than the margin ±{s.margin:.4g} (the "
            f"{_percent(1 - 2 * s.alpha / s.k)} equivalence interval lies inside it)"
        )
    else:
        small = ""
    return (
        f"{_at(s)}{winner} has a {s.better} {s.metric} than {loser}: "
        f"{_measured(e, s, test)}. A difference at the {_percent(s.alpha)} level; {winner} is "
        f"better{small}."
    )


def _equivalent_sentence(e: Evidence, s: VerdictSettings, ruling: Ruling, test: str) -> str:
    return (
        f"{_at(s)}{e.arm} and {s.baseline} are equivalent in {s.metric} within "
        f"±{s.margin:.4g}: {ruling.reason}; {_measured(e, s, test)}."
    )


def _identical_sentence(e: Evidence, s: VerdictSettings, ruling: Ruling, test: str) -> str:
    if _all_censored(e, s):
        neither = "neither" if s.step is not None else "Neither"
        return (
            f"{_at(s)}{neither} {e.arm} nor {s.baseline} reached the target in any seed: "
            f"{ruling.reason} ({s.metric}; {test})."
        )
    return (
        f"{_at(s)}{e.arm} and {s.baseline} gave identical {s.metric}: {ruling.reason} "
        f"(mean {e.mean_arm:.4g}; {test})."
    )


def _undecided_sentence(e: Evidence, s: VerdictSettings, ruling: Ruling, test: str) -> str:
    no = "no" if s.step is not None else "No"  # the first word, when it is not an arm's name
    measured = _measured(e, s, test)
    measured = f"; measured {measured}" if measured else ""
    return (
        f"{_at(s)}{no} verdict on {s.metric} for {e.arm} against {s.baseline}: "
        f"{ruling.reason}{measured}."
    )


_SENTENCES: dict[str, Callable[[Evidence, VerdictSettings, Ruling, str], str]] = {
    "difference": _difference_sentence,
    "undecided": _undecided_sentence,
    "equivalent": _equivalent_sentence,
    "identical": _identical_sentence,
}
"""The plain-English verdict of each of ``VERDICT_KINDS``, from the chosen rule's ruling."""

"""``pepcurr sweep``: the dose-response answer to "when, and how strongly", across scales.

A sweep is one ``SweepSpec``: a base curriculum, the factors it varies
(``curriculum.factors``: when each auxiliary loss comes on, how much it weighs),
their levels (a full factorial), the control cell (the baseline of every contrast),
and how its runs train (seeds, one or more scales, ``TrainOptions``). It becomes:

1. the arms: one ordinary curriculum file per cell, ``OUT/arms/<name>.json``
   (``validate``, ``plot-schedule``, ``train`` and ``compare`` take them);
2. the question, ``OUT/sweep.json``, written before anything trains and fixed
   (the factors and levels, the control, the metric, the margin, the step, the
   target and the scales): a later sweep on the same ``OUT`` that asks another one
   is refused, as ``ab.json`` is;
3. one A/B per scale (``ab.AbSpec``, in ``OUT/scale-<s>``): the control first, so
   that every contrast is against it, the fork tree training shared prefixes once;
   the chains of every scale trained together (``ab.train_locally``);
4. the analysis of each scale (``analyse_scale``), blocked by seed: per level the
   mean and sd, the paired difference from the control with its interval, the
   Holm-adjusted p and what the contrast could have seen (all from ``compare`` and
   ``verdict``, as ``ab`` reports them); the omnibus test of "the factor does not
   matter"; the levels that cannot be told from the best (``sweep_stats``); and
   across scales, per factor, whether the level effects differ
   (``sweep_stats.scale_interaction``).

Re-running the same command reuses finished runs and only analyses.
"""

from __future__ import annotations

import json
import math
import signal
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curriculum_cli.analysis.ab import (
    AB_LOCK_FILE,
    AbPlan,
    AbResult,
    AbSpec,
    plan_ab,
    segment_command,
    tell,
    train_locally,
)
from curriculum_cli.analysis.compare import DEFAULT_TARGET, Comparison, compare_runs
from curriculum_cli.analysis.run_values import DEFAULT_METRIC
from curriculum_cli.analysis.sweep_stats import (
    BestSet,
    Blocked,
    Interaction,
    Omnibus,
    best_set,
    blocked,
    omnibus,
    scale_interaction,
)
from curriculum_cli.analysis.verdict import Verdict
from curriculum_cli.curriculum.factors import (
    NEVER,
    Arm,
    Factor,
    FactorLevels,
    Level,
    level_text,
    sweep_arms,
)
from curriculum_cli.curriculum.files import curriculum_json, load_curriculum
from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.errors import PepcurrError, RunError
from curriculum_cli.training.runlock import RunLock
from curriculum_cli.training.runlog import write_json_atomic
from curriculum_cli.training.settings import DEFAULTS, TrainOptions

SWEEP_FILE = "sweep.json"
"""The sweep's question, written before any run trains."""

ARMS_DIR = "arms"
"""Where the sweep writes its arms' curriculum files."""

FIXED_KEYS = ("base", "factors", "control", "metric", "margin", "at_nominal_step", "target",
              "scales")  # fmt: skip
"""What a later sweep on the same ``OUT`` may not change (its seeds may grow)."""


def scale_dir_name(scale: float) -> str:
    """``scale-0.005``: a scale's folder of runs."""
    return f"scale-{scale:g}"


@dataclass(frozen=True)
class SweepSpec:
    """One sweep: what it varies and asks, and how its runs train.

    ``base``: a preset name, a curriculum file or a ``Curriculum``; ``varied``: one
    ``FactorLevels`` per ``--vary``; ``control``: factor -> level of the control cell
    (a factor left out: the base's own level); ``scales``: one A/B per scale (None in
    the tuple: the curriculum as written). The rest as in ``ab.AbSpec``.
    """

    base: str | Curriculum
    varied: tuple[FactorLevels, ...]
    out_dir: Path
    control: tuple[tuple[Factor, Level], ...] = ()
    scales: tuple[float | None, ...] = (None,)
    seeds: int = 2
    base_seed: int = 0
    options: TrainOptions = field(default_factory=TrainOptions)
    at: int | None = None
    metric: str = DEFAULT_METRIC
    target: float = DEFAULT_TARGET
    margin: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "varied", tuple(self.varied))
        object.__setattr__(self, "control", tuple(self.control))
        scales = tuple(self.scales) or (None,)
        for scale in scales:
            if scale is not None and not (math.isfinite(scale) and scale > 0):
                raise PepcurrError(f"--scale: every scale must be a number > 0, got {scale}")
        if len(set(scales)) < len(scales):
            raise PepcurrError("--scale: a scale is listed twice")
        object.__setattr__(self, "scales", scales)

    def base_curriculum(self) -> Curriculum:
        return self.base if isinstance(self.base, Curriculum) else load_curriculum(self.base)

    def arms(self) -> list[Arm]:
        """Every cell of the factorial, the control first (``factors.sweep_arms``)."""
        return sweep_arms(self.base_curriculum(), list(self.varied), dict(self.control))

    def factors(self) -> list[Factor]:
        return [varied.factor for varied in self.varied]


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep trains: its arms' files and one ``AbPlan`` per scale."""

    spec: SweepSpec
    arms: list[Arm]
    arm_files: list[Path]
    plans: dict[float | None, AbPlan]

    @property
    def steps_total(self) -> int:
        return sum(plan.steps_total for plan in self.plans.values())

    @property
    def steps_saved(self) -> int:
        return sum(plan.steps_saved for plan in self.plans.values())

    @property
    def steps_to_train(self) -> int:
        """Steps the chains still train: every segment's length (resumed runs: what is left
        is not known before reading their checkpoints, so their whole length)."""
        steps = 0
        for plan in self.plans.values():
            for chain in plan.chains:
                for segment in chain:
                    end = segment.stop or segment.config.total_steps
                    steps += end - max(segment.start, 0)
        return steps


def plan_sweep(spec: SweepSpec, message=None, locks: list[RunLock] | None = None) -> SweepPlan:
    """The arms written, the question recorded, every scale's A/B planned; nothing trained.

    A ``PepcurrError`` for anything wrong with the question or the arms, before a run
    starts; ``message(text)`` hears the data files indexed. ``locks``: each scale's
    ``ab.lock`` is taken as its A/B is planned and appended here (the caller releases
    them): another ``sweep`` or ``ab`` on those runs is refused as a whole.
    """
    arms = spec.arms()
    if len(arms) < 2:
        raise PepcurrError("a sweep needs at least two levels (the control and another)")
    out_dir = spec.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise PepcurrError(f"{out_dir}: exists and is not a directory")
    _write_question(spec, arms)
    arm_files = _write_arms(out_dir / ARMS_DIR, arms)
    plans = {}
    for scale in spec.scales:
        ab = AbSpec(arms=tuple(str(path) for path in arm_files), out_dir=_scale_dir(spec, scale),
                    seeds=spec.seeds, base_seed=spec.base_seed, scale=scale,
                    options=spec.options, at=spec.at, metric=spec.metric, target=spec.target,
                    margin=spec.margin)  # fmt: skip
        lock = RunLock(ab.out_dir, AB_LOCK_FILE)
        if locks is not None:
            locks.append(lock)
        try:
            plans[scale] = plan_ab(ab, message, lock)
        finally:
            if locks is None:
                lock.release()
    return SweepPlan(spec, arms, arm_files, plans)


def _scale_dir(spec: SweepSpec, scale: float | None) -> Path:
    return spec.out_dir / scale_dir_name(1.0 if scale is None else scale)


def _question(spec: SweepSpec, arms: list[Arm]) -> dict:
    base = spec.base_curriculum()
    control = next(arm for arm in arms if arm.control)
    return {
        "base": base.name,
        "base_source": spec.base if isinstance(spec.base, str) else base.name,
        "factors": {
            str(varied.factor): [level_text(level) for level in _levels_of(arms, varied.factor)]
            for varied in spec.varied
        },
        "control": {str(f): level_text(level) for f, level in control.levels.items()},
        "arms": [arm.name for arm in arms],
        "scales": [1.0 if scale is None else scale for scale in spec.scales],
        "seeds": list(range(spec.base_seed, spec.base_seed + spec.seeds)),
        "metric": spec.metric,
        "margin": spec.margin,
        "at_nominal_step": spec.at,
        "target": spec.target,
    }


def _levels_of(arms: list[Arm], factor: Factor) -> list[Level]:
    """A factor's levels in the order the arms hold them (the control's first)."""
    return list(dict.fromkeys(arm.levels[factor] for arm in arms))


def _write_question(spec: SweepSpec, arms: list[Arm]) -> None:
    """``OUT/sweep.json``; a ``PepcurrError`` when it holds another question."""
    question = _question(spec, arms)
    path = spec.out_dir / SWEEP_FILE
    if path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunError(f"{path}: corrupt; delete it to plan the sweep again") from None
        changed = [key for key in FIXED_KEYS if before.get(key) != question[key]]
        if changed:
            was = "; ".join(f"{key} {json.dumps(before.get(key))}" for key in changed)
            raise PepcurrError(
                f"{spec.out_dir} was planned with {was}: the question of a sweep is fixed before "
                "its runs are seen. Ask it again with those values, explore with pepcurr "
                "compare, or use another --out"
            )
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, question)


def _write_arms(folder: Path, arms: list[Arm]) -> list[Path]:
    """Each arm as ``folder/<name>.json``; an existing file must hold the same curriculum."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for arm in arms:
        path = folder / f"{arm.name}.json"
        text = curriculum_json(arm.curriculum)
        if path.is_file() and path.read_text(encoding="utf-8") != text:
            raise PepcurrError(
                f"{path}: holds another curriculum than this sweep's arm {arm.name}; delete it or "
                "use another --out"
            )
        if not path.is_file():
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def plan_sweep_commands(spec: SweepSpec) -> list[str]:
    """``pepcurr sweep --plan``: every segment's ``pepcurr train`` command, scale by scale."""
    plan = plan_sweep(spec)
    commands = []
    for scale, ab_plan in plan.plans.items():
        for arm in ab_plan.spec.arms:  # an option the command line cannot give fails here
            ab_plan.spec.run_options(arm, spec.base_seed).command_words()
        commands.append(f"# scale {1.0 if scale is None else scale:g}: {ab_plan.spec.out_dir}")
        commands += [segment_command(segment, ab_plan.run_options[segment.run_dir])
                     for chain in ab_plan.chains for segment in chain]  # fmt: skip
    return commands


# ----------------------------------------------------------------------------
# The analysis
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelResult:
    """One cell of a sweep at one scale, against the control.

    ``levels``: factor -> level (as text); ``mean``/``sd``/``n``: over seeds;
    ``verdict``: the arm against the control (None for the control itself: its
    ``diff`` is 0); ``in_best``/``within_margin``/``mcb_low``/``mcb_high``: Hsu's
    comparison with the best (``sweep_stats.best_set``).
    """

    name: str
    levels: dict[str, str]
    control: bool
    mean: float
    sd: float
    n: int
    verdict: Verdict | None
    in_best: bool
    within_margin: bool | None
    mcb_low: float
    mcb_high: float

    @property
    def diff(self) -> float:
        return 0.0 if self.verdict is None else self.verdict.mean_difference

    @property
    def mdd(self) -> float:
        sensitivity = None if self.verdict is None else self.verdict.sensitivity
        return math.nan if sensitivity is None else sensitivity.mdd


@dataclass(frozen=True)
class FactorProfile:
    """One factor's dose-response at one scale: per level (averaged over the other factors'
    levels, seed by seed), the mean with its t interval over seeds and the paired
    difference from the control level with its paired t interval (95%).

    ``levels``: as text; ``x``: where a level sits on a plot's axis (a start: its nominal
    step, ``never`` past the last step; a weight: its multiplier); ``control``: the
    control level's index; ``in_best``: whether the level's cell is in the best set
    (one factor only; None with several).
    """

    factor: str
    levels: list[str]
    x: list[float]
    control: int
    mean: list[float]
    mean_low: list[float]
    mean_high: list[float]
    diff: list[float]
    diff_low: list[float]
    diff_high: list[float]
    n: int
    in_best: list[bool] | None


@dataclass(frozen=True)
class ScaleAnalysis:
    """A sweep's analysis at one scale (``analyse_scale``)."""

    scale: float
    comparison: Comparison
    levels: list[LevelResult]
    omnibus: Omnibus | None
    factor_omnibus: dict[str, Omnibus]
    best: BestSet | None
    profiles: dict[str, FactorProfile]
    seeds: list
    dropped_seeds: list
    notes: list[str]

    @property
    def best_names(self) -> list[str]:
        return [level.name for level in self.levels if level.in_best]


@dataclass(frozen=True)
class SweepAnalysis:
    """Every scale's analysis and, per factor, the scale x level interaction."""

    question: dict
    scales: list[ScaleAnalysis]
    interactions: dict[str, Interaction | None]
    interaction_notes: dict[str, str]


def analyse_scale(spec: SweepSpec, arms: list[Arm], scale: float | None,
                  comparison: Comparison) -> ScaleAnalysis:  # fmt: skip
    """The blocked analysis of one scale's runs (``comparison`` of its arms, control first)."""
    runs = comparison.runs
    better = comparison.row(spec.metric).better
    seeds = sorted(set(runs["seed"]))
    names = [arm.name for arm in arms]
    table = _seed_table(comparison, names, seeds)
    notes = []
    data = blocked(table, seeds, better)
    if data.dropped_seeds:
        notes.append(f"seeds {', '.join(map(str, data.dropped_seeds))} lack a finite "
                     f"{spec.metric} in some arm: left out of the omnibus test and the best "
                     "set")  # fmt: skip
    whole, best = None, None
    if data.n >= 2:
        whole = omnibus(data)
        best = best_set(data, margin=spec.margin)
    else:
        notes.append(f"{data.n} complete seed(s): the omnibus test and the best set need 2")
    factor_tests = {}
    if len(spec.varied) > 1 and data.n >= 2:
        for factor in spec.factors():
            factor_tests[str(factor)] = omnibus(_factor_blocks(data, arms, factor))
    verdicts = {v.arm: v for v in comparison.verdicts}
    results = []
    for index, arm in enumerate(arms):
        values = table[:, index]
        finite = values[np.isfinite(values)]
        lower = best.lower[index] if best else math.nan
        upper = best.upper[index] if best else math.nan
        if best is not None and better == "lower":  # intervals back in the metric's own sign
            lower, upper = -upper, -lower
        results.append(LevelResult(
            name=arm.name, levels={str(f): level_text(v) for f, v in arm.levels.items()},
            control=arm.control, mean=float(finite.mean()) if len(finite) else math.nan,
            sd=float(finite.std(ddof=1)) if len(finite) > 1 else math.nan, n=len(finite),
            verdict=verdicts.get(arm.name),
            in_best=bool(best.in_best[index]) if best else False,
            within_margin=None if best is None or best.within_margin is None
            else best.within_margin[index], mcb_low=lower, mcb_high=upper,
        ))  # fmt: skip
    complete = table[np.isfinite(table).all(axis=1)]
    profiles = {str(f): _profile(complete, arms, f, results, len(spec.varied) == 1)
                for f in spec.factors()}  # fmt: skip
    return ScaleAnalysis(1.0 if scale is None else scale, comparison, results, whole,
                         factor_tests, best, profiles, data.seeds, data.dropped_seeds,
                         notes)  # fmt: skip


def _profile(table: np.ndarray, arms: list[Arm], factor: Factor, results: list[LevelResult],
             alone: bool) -> FactorProfile:  # fmt: skip
    """``factor``'s dose-response from complete seeds x arms ``table`` (metric's own sign)."""
    from curriculum_cli.analysis.stats import paired_t, student_t_quantile

    levels = list(dict.fromkeys(arm.levels[factor] for arm in arms))  # the control's first
    columns = [[j for j, arm in enumerate(arms) if arm.levels[factor] == level]
               for level in levels]  # fmt: skip
    per_seed = np.stack([table[:, c].mean(axis=1) for c in columns], axis=1) if len(table) else \
        np.empty((0, len(levels)))  # fmt: skip
    n = per_seed.shape[0]
    half = student_t_quantile(0.975, n - 1) if n > 1 else math.nan
    mean, low, high, diff, diff_low, diff_high = [], [], [], [], [], []
    for k in range(len(levels)):
        values = per_seed[:, k]
        centre = float(values.mean()) if n else math.nan
        se = float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
        mean.append(centre)
        low.append(centre - half * se)
        high.append(centre + half * se)
        if k == 0 or n == 0:
            diff.append(0.0 if k == 0 else math.nan)
            diff_low.append(math.nan)
            diff_high.append(math.nan)
            continue
        t = paired_t(list(values - per_seed[:, 0]), 0.95, float(np.abs(per_seed).max()))
        diff.append(t.estimate)
        diff_low.append(t.ci_low)
        diff_high.append(t.ci_high)
    in_best = [results[c[0]].in_best for c in columns] if alone else None
    return FactorProfile(str(factor), [level_text(v) for v in levels], _axis(factor, levels), 0,
                         mean, low, high, diff, diff_low, diff_high, n, in_best)  # fmt: skip


def _axis(factor: Factor, levels: list[Level]) -> list[float]:
    """Plot positions of levels: numbers as they are; ``never`` past the largest step."""
    numbers = [float(v) for v in levels if v != NEVER]
    top = max(numbers, default=0.0)
    gap = max((top - min(numbers, default=0.0)) * 0.2, top * 0.1, 1.0)
    return [top + gap if v == NEVER else float(v) for v in levels]


def _seed_table(comparison: Comparison, names: list[str], seeds: list) -> np.ndarray:
    """The metric as seeds x arms (NaN: no run or no finite value)."""
    runs = comparison.runs
    table = np.full((len(seeds), len(names)), np.nan)
    for j, name in enumerate(names):  # an arm's group is its (unique) name
        for i, seed in enumerate(seeds):
            found = runs[(runs["group"] == name) & (runs["seed"] == seed)][comparison.metric]
            if len(found):
                try:
                    table[i, j] = float(found.iloc[0])
                except (TypeError, ValueError):
                    pass
    return table


def _factor_blocks(data, arms: list[Arm], factor: Factor):
    """``data`` (seeds x cells) as blocks of one factor's levels: one block per seed and cell
    of the other factors, so that a permutation test of it asks whether ``factor`` matters
    at any level of the others."""
    levels = list(dict.fromkeys(arm.levels[factor] for arm in arms))
    others = list(dict.fromkeys(
        tuple((f, v) for f, v in arm.levels.items() if f != factor) for arm in arms))  # fmt: skip
    index = {(tuple((f, v) for f, v in arm.levels.items() if f != factor), arm.levels[factor]): j
             for j, arm in enumerate(arms)}  # fmt: skip
    rows = []
    for seed_row in data.values:
        for other in others:
            rows.append([seed_row[index[(other, level)]] for level in levels])
    return Blocked(np.array(rows), data.seeds, data.dropped_seeds)


def analyse_across_scales(spec: SweepSpec, arms: list[Arm],
                          scales: list[ScaleAnalysis]) -> tuple[dict, dict]:  # fmt: skip
    """Per factor, the scale x level interaction test (None with one scale, or seeds that
    are not shared by every scale), and a note of what it used."""
    interactions: dict[str, Interaction | None] = {}
    notes: dict[str, str] = {}
    if len(scales) < 2:
        return {str(f): None for f in spec.factors()}, {
            str(f): "one scale: no interaction to test" for f in spec.factors()
        }
    shared = sorted(set.intersection(*(set(s.seeds) for s in scales)), key=str)
    for factor in spec.factors():
        levels = list(dict.fromkeys(arm.levels[factor] for arm in arms))
        if len(shared) < 2:
            interactions[str(factor)] = None
            notes[str(factor)] = f"{len(shared)} seed(s) complete at every scale: need 2"
            continue
        cube = np.stack([_factor_profile(s, arms, factor, levels, shared) for s in scales])
        interactions[str(factor)] = scale_interaction(cube)
        notes[str(factor)] = f"seeds {', '.join(map(str, shared))}; levels averaged over the " \
            "other factors' levels" if len(spec.varied) > 1 else \
            f"seeds {', '.join(map(str, shared))}"  # fmt: skip
    return interactions, notes


def _factor_profile(scale: ScaleAnalysis, arms, factor, levels, seeds) -> np.ndarray:
    """seeds x levels of one factor at one scale: the metric (higher is better), averaged over
    the other factors' levels."""
    better = scale.comparison.row(scale.comparison.metric).better
    table = _seed_table(scale.comparison, [arm.name for arm in arms], seeds)
    if better == "lower":
        table = -table
    return np.stack([table[:, [j for j, arm in enumerate(arms) if arm.levels[factor] == level]]
                     .mean(axis=1) for level in levels], axis=1)  # fmt: skip


# ----------------------------------------------------------------------------
# Running a sweep here
# ----------------------------------------------------------------------------


@dataclass
class SweepResult:
    """A sweep's runs (``ab.AbResult`` of all its scales together) and its analysis."""

    plan: SweepPlan
    training: AbResult
    analysis: SweepAnalysis | None = None
    plots: list[Path] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return self.training.interrupted


def run_sweep(spec: SweepSpec, jobs: int = 1, reporter=None) -> SweepResult:
    """Plan the sweep, train every scale's chains together here, then analyse and plot."""
    locks: list[RunLock] = []
    try:
        plan = plan_sweep(spec, reporter.message if reporter else None, locks)
        run_dirs = [d for ab_plan in plan.plans.values() for d in ab_plan.run_dirs]
        training = AbResult(run_dirs=run_dirs, actions={}, steps_saved=plan.steps_saved,
                            steps_total=plan.steps_total)  # fmt: skip
        for ab_plan in plan.plans.values():
            for run_dir in ab_plan.reused:
                training.actions[str(run_dir)] = "reused"
        tell(reporter, training, _cost_line(plan, len(training.actions)))
        chains = [chain for ab_plan in plan.plans.values() for chain in ab_plan.chains]
        device = spec.options.device or DEFAULTS["device"]
        train_locally(chains, jobs, training, reporter, device)
    finally:
        for lock in locks:
            lock.release()
    result = SweepResult(plan, training)
    if training.interrupted:
        by = f" by {signal.Signals(training.stop_signal).name}" if training.stop_signal else ""
        tell(reporter, training, f"interrupted{by}; run the same command to resume")
        return result
    result.analysis = analyse(plan)
    result.plots = _plot(spec, result.analysis)
    return result


def analyse(plan: SweepPlan) -> SweepAnalysis:
    """Compare each scale's runs and analyse them (the runs must exist)."""
    spec = plan.spec
    scales = []
    for scale, ab_plan in plan.plans.items():
        comparison = compare_runs(list(ab_plan.run_dirs), at=spec.at, metric=spec.metric,
                                  target=spec.target, margin=spec.margin)  # fmt: skip
        scales.append(analyse_scale(spec, plan.arms, scale, comparison))
    interactions, notes = analyse_across_scales(spec, plan.arms, scales)
    return SweepAnalysis(_question(spec, plan.arms), scales, interactions, notes)


def _cost_line(plan: SweepPlan, reused: int) -> str:
    runs = sum(len(p.run_dirs) for p in plan.plans.values())
    saved = (f"; shared prefixes train {plan.steps_saved:,} of them once for several arms"
             if plan.steps_saved else "")  # fmt: skip
    reuse = f", {reused} finished already" if reused else ""
    return (
        f"sweep: {len(plan.arms)} arms x {plan.spec.seeds} seeds x {len(plan.plans)} scale(s) = "
        f"{runs} runs{reuse}; {plan.steps_total:,} steps as independent runs{saved}; "
        f"{plan.steps_to_train:,} steps to train"
    )


def _plot(spec: SweepSpec, analysis: SweepAnalysis) -> list[Path]:
    from curriculum_cli.analysis.plots import plot_curves, plot_dose_response

    paths = [plot_dose_response(analysis, spec.out_dir / "dose-response.png")]
    for scale in analysis.scales:
        folder = spec.out_dir / scale_dir_name(scale.scale)
        paths.append(plot_curves(scale.comparison, folder / "curves.png"))
    return paths

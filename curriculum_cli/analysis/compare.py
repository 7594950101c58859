"""Compare training runs at one nominal step: facts per run, per seed group, and a verdict.

``compare_runs`` reads run directories (``run.json`` and ``metrics.jsonl``
through ``runlog.read_run``), never the training loop; each run's values at
the nominal step ``--at`` are its ``run_values``. Runs of the same
curriculum (the same stages after scaling) with different seeds form a group
(an *arm*); each row gets the arm's mean and standard deviation over seeds.

The verdict (``verdict.decide``) compares each arm with the first one given
(the baseline) on the primary metric: paired by seed when the arms share
seeds (paired t interval and exact sign-flip permutation test), Welch's
unpaired test otherwise, Holm-corrected over several arms; ``difference``,
``equivalent`` within a declared ``margin``, or ``undecided`` with the reason,
and what the comparison could have seen (``power``). Steps to target are
tested with never-reached seeds censored at a common horizon
(``stats.restricted_steps``). Next to it: what else differs between the arms
(``confounds``), the accuracy actually reached at each arm's introductions,
and with ``rescore`` the final checkpoints re-scored on a larger fixed set
with the validation set's share of the noise (``rescore``).

Presentation (rich table, JSON, CSV, Markdown, plot) is in ``cli.render.comparison``
and ``plots``; ``docs/ab-testing.md`` explains each row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.analysis.confounds import confounds, setting_warnings
from curriculum_cli.analysis.rescore import Rescore, check_rescore, rescore_runs
from curriculum_cli.analysis.run_values import (
    DEFAULT_METRIC,
    SERIES_METRICS,
    SPLITS,
    actual_to_nominal,
    as_float,
    has_real_validation,
    nominal_to_actual,
    per_step_facts,
    refinement_steps_logged,
    run_facts,
    split_of,
)
from curriculum_cli.analysis.stats import censored_summary, restricted_steps
from curriculum_cli.analysis.verdict import Verdict, decide, overall_kind
from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES
from curriculum_cli.errors import PepcurrError
from curriculum_cli.training.runlog import RunLog, read_run

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_TARGET = 0.9


@dataclass(frozen=True)
class Row:
    """One row of the comparison: a key (also the ``--metric`` name), a label, a direction.

    ``better``: ``"higher"``, ``"lower"`` or None (a fact, not a score).
    ``kind``: how to show it: ``text``, ``fraction``, ``loss``, ``ppm``, ``count``,
    ``step``, ``ratio`` or ``cosine``.
    """

    key: str
    label: str
    better: str | None
    kind: str


def _rows(target_metric: str, target: float, metric: str) -> list[Row]:
    rows = [
        Row("curriculum", "curriculum", None, "text"),
        Row("seeds", "seeds", None, "text"),
        Row("step", "step read (actual)", None, "step"),
        Row("residue_accuracy_easy", "val residue accuracy, easy", "higher", "fraction"),
        Row("residue_accuracy_hard", "val residue accuracy, hard", "higher", "fraction"),
        Row("token_accuracy_easy", "val token accuracy (with <eos>), easy", "higher", "fraction"),
        Row("token_accuracy_hard", "val token accuracy (with <eos>), hard", "higher", "fraction"),
        Row("residue_accuracy_real", "val residue accuracy, real", "higher", "fraction"),
        Row("token_accuracy_real", "val token accuracy (with <eos>), real", "higher", "fraction"),
        Row("decoded_step", "decoded metrics from step", None, "step"),
    ]
    for name, label in (
        ("peptide_recall", "peptide recall"),
        ("aa_precision", "AA precision"),
        ("aa_recall", "AA recall"),
    ):
        for suffix in SPLITS:
            rows.append(Row(f"{name}_{suffix}", f"{label}, {suffix}", "higher", "fraction"))
    rows += [
        Row("precursor_error_ppm_hard", "median precursor error ppm, hard", "lower", "ppm"),
        Row("skipped_steps", "skipped non-finite steps", "lower", "count"),
        Row("loss_spikes", "loss spikes", "lower", "count"),
        Row("train_ce", "train CE (smoothed)", "lower", "loss"),
        Row("train_spectrum", "train spectrum loss (smoothed)", "lower", "loss"),
        Row("train_precursor", "train precursor loss (smoothed)", "lower", "loss"),
        Row("val_ce_hard", "val CE, hard", "lower", "loss"),
        Row("val_spectrum_hard", "val spectrum loss, hard", "lower", "loss"),
        Row("val_precursor_hard", "val precursor loss, hard", "lower", "loss"),
        Row("val_ce_real", "val CE, real", "lower", "loss"),
        Row("steps_to_target", f"steps to {target_metric} >= {target:g} (nominal)", "lower",
            "censored"),
        Row("metric_se", f"binomial SE of one run's {metric}", None, "fraction"),
    ]  # fmt: skip
    accuracy = f"{split_of(target_metric)} accuracy"
    for loss in AUXILIARY_LOSSES:
        rows += [
            Row(f"{loss}_introduced", f"{loss} loss on at (nominal)", None, "step"),
            Row(f"{loss}_accuracy_then", f"  val {accuracy} then", None, "fraction"),
            Row(f"{loss}_grad_n", "  gradient measurements around it", None, "count"),
            Row(f"{loss}_ratio_then", f"  grad ratio {loss}/CE, window mean", None, "ratio"),
            Row(f"{loss}_ratio_sd_then", "  grad ratio, sd within window", None, "ratio"),
            Row(f"{loss}_cosine_then", f"  grad cosine {loss}·CE, window mean", None, "cosine"),
            Row(f"{loss}_cosine_sd_then", "  grad cosine, sd within window", None, "ratio"),
        ]
    return rows


def _per_step_rows(steps: int) -> list[Row]:
    """``compare --per-step``: each refinement step's own values (``run_values.per_step_facts``),
    step after step."""
    rows = []
    for k in range(1, steps + 1):
        step = f"refinement step {k}"
        rows += [
            Row(f"residue_accuracy_hard_step{k}", f"val residue accuracy, hard, {step}", "higher",
                "fraction"),
            Row(f"val_ce_hard_step{k}", f"val CE, hard, {step}", "lower", "loss"),
            Row(f"val_spectrum_hard_step{k}", f"val spectrum loss, hard, {step}", "lower", "loss"),
            Row(f"val_precursor_hard_step{k}", f"val precursor loss, hard, {step}", "lower",
                "loss"),
            Row(f"train_ce_step{k}", f"train CE (smoothed), {step}", "lower", "loss"),
        ]  # fmt: skip
    return rows


@dataclass
class Comparison:
    """Everything ``compare`` found, as data; ``render`` and ``plots`` present it.

    - ``runs``: one row per run (``label``, ``group``, ``seed``, ``scale``,
      ``run_dir`` and a column per ``rows`` key), in the order given; ``logs``
      the runs as read
    - ``mean``/``std``/``count``: index = row keys, one column per group
      (``std`` is the sample standard deviation, NaN for a single run)
    - ``columns``: what a table shows: the groups when any group has several
      runs, else the runs themselves
    - ``verdicts``: each arm against the first (``verdict.Verdict``); ``verdict``
      their sentences
    - ``margin``: the smallest difference that matters (None: none declared)
    - ``censored``: per group, the steps-to-target summary with seeds that
      never reached the target by ``horizon`` counted (``stats.censored_summary``);
      ``horizon``: the nominal step every run was observed up to
    - ``confounds``: what else differs between the arms, one line each
    - ``rescore``: the final checkpoints re-scored (``rescore.Rescore``), and
      ``rescore_verdicts`` on the fixed set; None and [] without ``--rescore``
    """

    at_nominal: int
    metric: str
    target: float
    rows: list[Row]
    runs: pd.DataFrame
    groups: list[str]
    mean: pd.DataFrame
    std: pd.DataFrame
    count: pd.DataFrame
    verdicts: list[Verdict]
    verdict: str
    margin: float | None = None
    horizon: float | None = None
    censored: dict[str, dict] = field(default_factory=dict)
    confounds: list[str] = field(default_factory=list)
    rescore: Rescore | None = None
    rescore_verdicts: list[Verdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    logs: list[RunLog] = field(default_factory=list)

    @property
    def grouped(self) -> bool:
        return bool((self.runs.groupby("group").size() > 1).any())

    @property
    def columns(self) -> list[str]:
        return self.groups if self.grouped else list(self.runs["label"])

    @property
    def overall_kind(self) -> str | None:
        """The kind that heads the verdicts (``verdict.overall_kind``; None: one arm only)."""
        return overall_kind(self.verdicts)

    @property
    def rescore_overall_kind(self) -> str | None:
        """The kind that heads the re-scored verdicts (None without ``--rescore``)."""
        return overall_kind(self.rescore_verdicts)

    @property
    def runs_per_group(self) -> dict[str, int]:
        """How many runs each group holds, in the groups' order."""
        sizes = self.runs.groupby("group", sort=False).size()
        return {group: int(sizes[group]) for group in self.groups}

    def row(self, key: str) -> Row:
        return next(row for row in self.rows if row.key == key)

    def value(self, key: str, column: str):
        """The value a table shows in a cell: a group mean, or a run's own value."""
        if self.grouped:
            if key in ("curriculum", "seeds"):
                return self.runs.loc[self.runs["group"] == column, key].iloc[0]
            return self.mean.loc[key, column]
        return self.runs.loc[self.runs["label"] == column, key].iloc[0]

    def spread(self, key: str, column: str) -> float:
        """The standard deviation shown next to a grouped value (NaN otherwise)."""
        if not self.grouped or key in ("curriculum", "seeds"):
            return math.nan
        return self.std.loc[key, column]

    def best_columns(self, key: str) -> list[str]:
        """Columns holding the better value of a scored row (none if all equal or unscored)."""
        row = self.row(key)
        if row.better is None or len(self.columns) < 2:
            return []
        values = {c: as_float(self.value(key, c)) for c in self.columns}
        finite = {c: v for c, v in values.items() if math.isfinite(v)}
        if len(set(finite.values())) < 2 and len(finite) == len(values):
            return []
        if not finite:
            return []
        best = max(finite.values()) if row.better == "higher" else min(finite.values())
        return [c for c, v in finite.items() if v == best]


def _group_labels(runs: list[RunLog]) -> list[str]:
    """A label per run: its curriculum's name; different curricula sharing a name get a suffix."""
    keys = [run.config.curriculum.model_dump_json() for run in runs]
    names: dict[str, str] = {}
    used: dict[str, int] = {}
    for run, key in zip(runs, keys, strict=True):
        if key not in names:
            name = run.config.curriculum.name
            used[name] = used.get(name, 0) + 1
            names[key] = name if used[name] == 1 else f"{name} ({used[name]})"
    return [names[key] for key in keys]


def compare_runs(
    run_dirs: list[Path | str],
    at: int | None = None,
    metric: str = DEFAULT_METRIC,
    target: float = DEFAULT_TARGET,
    margin: float | None = None,
    rescore: int | None = None,
    per_step: bool = False,
) -> Comparison:
    """Read runs and compare them at nominal step ``at`` (default: the end of the longest run).

    ``metric``: the primary metric, a row key (``residue_accuracy_hard``,
    ``peptide_recall_easy``, ``val_ce_hard``, ``steps_to_target``, ...); it decides the
    verdict, and "steps to target" uses it when it is a validation accuracy or recall
    (else ``residue_accuracy_hard``). The first arm given is the baseline. ``margin``:
    the smallest difference that matters, in the metric's unit (for an ``equivalent``
    verdict). ``rescore``: re-score the final checkpoints on this many fixed spectra
    (``rescore.rescore_runs``; refused with an ``at`` before the runs' end). ``per_step``:
    also each refinement step's own values of models with several (``_per_step_rows``).
    Raises ``RunError`` for a missing or corrupt run and ``PepcurrError`` for
    a bad option; softer problems (a truncated last log line, a run shorter
    than ``at``, runs of one arm that differ in a setting) are in
    ``Comparison.warnings``.
    """
    if not run_dirs:
        raise PepcurrError("give at least one run directory")
    target_metric = metric if metric in SERIES_METRICS else DEFAULT_METRIC
    rows = _checked_rows(target_metric, target, metric, at, margin, rescore)
    logs, warnings = _read_runs(run_dirs)
    at = _nominal_step(logs, at, rescore)
    rows = _rows_with_data(rows, any(has_real_validation(run) for run in logs), metric)
    steps = max((refinement_steps_logged(run) for run in logs), default=0) if per_step else 0
    if per_step and not steps:
        warnings.append("--per-step: no run given logged values per refinement step (a model "
                        "of one step, or a log from before they were logged)")  # fmt: skip
    rows += _per_step_rows(steps)
    groups = _group_labels(logs)
    found = rescore_runs(logs, groups, metric, rescore) if rescore is not None else None
    if found is not None:
        rows.append(Row("rescored", f"{metric} re-scored, {rescore:,} spectra", "higher",
                        "fraction"))  # fmt: skip
    runs, run_warnings = _facts_of_runs(logs, groups, at, target_metric, target, metric, found,
                                        steps)  # fmt: skip
    warnings += run_warnings + setting_warnings(logs, groups) + _shared_seed_warnings(runs)
    group_order = list(dict.fromkeys(groups))
    mean, std, count = _group_statistics(runs, rows, group_order)
    horizon, censored = _steps_to_target(runs, group_order)
    better = next(row for row in rows if row.key == metric).better
    verdicts = _decide(runs, metric, better, margin, at, horizon)
    rescore_verdicts = []
    if found is not None:
        rescore_verdicts = _decide(runs, "rescored", better, margin, None, None,
                                   f"{metric} of the final checkpoints on {rescore:,} fixed "
                                   "spectra")  # fmt: skip
        warnings += _rescore_step_warnings(found, runs)
    verdict = _sentences(verdicts, metric, at)
    return Comparison(
        at_nominal=at, metric=metric, target=target, rows=rows, runs=runs, groups=group_order,
        mean=mean, std=std, count=count, verdicts=verdicts, verdict=verdict, margin=margin,
        horizon=horizon, censored=censored, confounds=confounds(logs, groups, at),
        rescore=found, rescore_verdicts=rescore_verdicts, warnings=warnings, logs=logs,
    )  # fmt: skip


def check_question(
    metric: str, target: float, at: int | None, margin: float | None, real_validation: bool
) -> None:
    """The checks ``compare_runs`` makes of its options, before any run exists: ``ab`` asks
    them before it records its question or trains. ``real_validation``: whether the runs
    will log a val_real set (``--val-data``), without which the ``_real`` rows are empty."""
    target_metric = metric if metric in SERIES_METRICS else DEFAULT_METRIC
    _rows_with_data(_checked_rows(target_metric, target, metric, at, margin, None),
                    real_validation, metric)  # fmt: skip


def _checked_rows(
    target_metric: str, target: float, metric: str, at: int | None, margin: float | None,
    rescore: int | None,
) -> list[Row]:  # fmt: skip
    """The comparison's rows, once the options are known to be valid (else ``PepcurrError``)."""
    rows = _rows(target_metric, target, metric)
    scored = [row.key for row in rows if row.better is not None]
    if metric not in scored:
        raise PepcurrError(f"unknown --metric {metric!r}; choose one of: {', '.join(scored)}")
    if not 0.0 <= target <= 1.0:  # every series metric is a fraction (nan fails too)
        raise PepcurrError(f"--target is the fraction {target_metric} must reach (0.9: 90%), "
                           f"from 0 to 1; got {target}")  # fmt: skip
    if at is not None and at < 0:
        raise PepcurrError(f"--at must be a step >= 0, got {at}")
    check_margin(margin, metric)
    if rescore is not None:
        check_rescore(metric, rescore)
    return rows


def _nominal_step(logs: list[RunLog], at: int | None, rescore: int | None) -> int:
    """The nominal step compared: ``at``, or the end of the longest run."""
    if rescore is not None and at is not None:
        _check_rescore_step(logs, at)
    if at is None:
        at = max(run.config.nominal_total_steps for run in logs)
    return at


def _rows_with_data(rows: list[Row], real_validation: bool, metric: str) -> list[Row]:
    """The rows without the ``_real`` ones when no run has a val_real set."""
    if real_validation:
        return rows
    if metric.endswith("_real"):
        raise PepcurrError(
            f"--metric {metric}: no run has a val_real set (train them with --val-data)"
        )
    return [row for row in rows if not row.key.endswith("_real")]


def _facts_of_runs(
    logs: list[RunLog], groups: list[str], at: int, target_metric: str, target: float,
    metric: str, found: Rescore | None, steps: int = 0,
) -> tuple[pd.DataFrame, list[str]]:  # fmt: skip
    """One row per run: its facts at nominal step ``at``, its group and seed (and with
    ``steps`` > 0 its values per refinement step, NaN where it has none); and a warning
    for each run that did not finish or ends before ``at``."""
    import pandas as pd

    records, warnings = [], []
    for run, group in zip(logs, groups, strict=True):
        scale = run.config.scale
        at_step = nominal_to_actual(at, scale)
        if run.status != "finished":
            warnings.append(f"{run.run_dir}: the run is {run.status} at step {run.last_step:,}")
        if run.last_step < at_step:
            warnings.append(
                f"{run.run_dir}: ends at step {run.last_step:,} (nominal "
                f"{actual_to_nominal(run.last_step, scale):,}), before --at {at:,} "
                f"(step {at_step:,} at scale {scale:g}); its values are from its last records"
            )
        facts = run_facts(run, at_step, target_metric, target, metric)
        if steps:
            own = per_step_facts(run, at_step)
            facts.update({row.key: own.get(row.key, math.nan) for row in _per_step_rows(steps)})
        if found is not None:
            facts["rescored"] = found.values[str(run.run_dir)]["fixed"]
        seed = run.config.seed
        records.append(
            {"label": f"{group} s{seed}", "group": group, "seed": seed, "scale": scale,
             "run_dir": str(run.run_dir), **facts}
        )  # fmt: skip
    runs = pd.DataFrame.from_records(records)
    runs["label"] = _unique(list(runs["label"]))
    return runs, warnings


def _shared_seed_warnings(runs: pd.DataFrame) -> list[str]:
    """A warning for each group in which several runs share a seed."""
    return [
        f"{group}: several runs share a seed; they are not independent"
        for group, members in runs.groupby("group", sort=False)
        if members["seed"].duplicated().any()
    ]


def _group_statistics(
    runs: pd.DataFrame, rows: list[Row], group_order: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Mean, sample sd and count of each numeric row per group; each run's ``seeds`` becomes
    its group's seeds."""
    numeric = [row.key for row in rows if row.kind != "text"]
    by_group = runs.groupby("group", sort=False)[numeric]
    mean = by_group.mean().T[group_order]
    std = by_group.std(ddof=1).T[group_order]
    count = by_group.count().T[group_order]
    for group in group_order:
        members = runs[runs["group"] == group]
        runs.loc[runs["group"] == group, "seeds"] = ", ".join(str(s) for s in members["seed"])
    return mean, std, count


def _steps_to_target(runs: pd.DataFrame, group_order: list[str]) -> tuple[float, dict[str, dict]]:
    """The horizon (nominal) and, per group, steps to target with never-reached seeds
    censored there.

    Every run was validated up to the horizon, so a seed that had not reached the target
    by then is censored there, the same for every run.
    """
    horizon = float(min(runs["step"] / runs["scale"]))
    censored = {
        group: censored_summary(
            [None if math.isnan(v) else float(v)
             for v in runs.loc[runs["group"] == group, "steps_to_target"]], horizon
        )
        for group in group_order
    }  # fmt: skip
    return horizon, censored


def _sentences(verdicts: list[Verdict], metric: str, at: int) -> str:
    """The verdicts' sentences, or why there is none."""
    if verdicts:
        return " ".join(v.sentence for v in verdicts)
    return f"One arm only: nothing to compare {metric} against at nominal step {at:,}."


def check_margin(margin: float | None, metric: str) -> None:
    """A ``PepcurrError`` unless ``margin`` is None or a finite number > 0."""
    if margin is not None and not (math.isfinite(margin) and margin > 0):
        raise PepcurrError(f"--margin must be a number > 0 (in {metric}'s unit), got {margin}")


def _read_runs(run_dirs) -> tuple[list[RunLog], list[str]]:
    """Each run directory read once (a directory given twice is counted once, with a warning)."""
    seen: set[Path] = set()
    logs: list[RunLog] = []
    warnings: list[str] = []
    for run_dir in run_dirs:
        path = Path(run_dir).resolve()
        if path in seen:
            warnings.append(f"{run_dir}: given twice; counted once")
            continue
        seen.add(path)
        run = read_run(Path(run_dir))
        warnings += run.warnings
        logs.append(run)
    return logs, warnings


def _decide(runs, key: str, better: str, margin, at, horizon, label: str | None = None):
    """The verdicts on one column of ``runs`` (steps to target: restricted to ``horizon``)."""
    note = ""
    arms = {}
    for group, members in runs.groupby("group", sort=False):
        values = list(members[key].astype(float))
        if key == "steps_to_target":
            values = restricted_steps([None if math.isnan(v) else v for v in values], horizon)
        arms[group] = dict(zip(members["seed"], values, strict=True))
    if key == "steps_to_target":
        note = (
            f"never-reached seeds censored at nominal step {horizon:,.0f} (every run was "
            f"observed up to it): each seed's value is min(steps, {horizon:,.0f}), the "
            "restricted mean steps to target"
        )
    if len(arms) < 2:
        return []
    censored_at = horizon if key == "steps_to_target" else None
    return decide(arms, better, margin=margin, metric=label or key, step=at, values_note=note,
                  censored_at=censored_at)  # fmt: skip


def _check_rescore_step(logs: list[RunLog], at: int) -> None:
    """``--rescore`` scores the final checkpoint: refuse an ``--at`` before a run's end."""
    for run in logs:
        at_step = nominal_to_actual(at, run.config.scale)
        if at_step < run.last_step:
            raise PepcurrError(
                f"--rescore scores each run's final checkpoint (last.pt, the only one kept), "
                f"but --at {at:,} reads {run.run_dir} at step {at_step:,}, before its end "
                f"(step {run.last_step:,}); drop --at to re-score the end"
            )


def _rescore_step_warnings(found: Rescore, runs) -> list[str]:
    """A checkpoint at another step than the validation the table shows (a stopped run)."""
    warnings = []
    for run_dir, step in zip(runs["run_dir"], runs["step"], strict=True):
        if found.steps[run_dir] != int(step):
            warnings.append(
                f"{run_dir}: re-scored at its checkpoint's step {found.steps[run_dir]:,}; the "
                f"table's values are from step {int(step):,}"
            )
    return warnings


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out

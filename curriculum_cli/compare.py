"""Compare training runs at one nominal step: facts per run, per seed group, and a verdict.

``compare_runs`` reads run directories (``run.json`` and ``metrics.jsonl``
through ``runlog.read_run``), never the engine. ``--at STEP`` is in *nominal*
curriculum steps: a run trained with ``--scale 0.02`` is read at
``round(0.02 * STEP)``; every value is that of the last record at or before
that step (validation values: the last validation). Runs of the same
curriculum (the same stages after scaling) with different seeds form a group;
each row gets the group's mean and standard deviation, and for the best two
groups the difference of the primary metric gets a 95% confidence interval
(Welch's t interval over seeds: unequal variances, Welch-Satterthwaite
degrees of freedom, from ``stats``) and a plain sentence saying whether it
exceeds seed noise.

Presentation (rich table, JSON, CSV, Markdown, plot) is in ``render`` and
``plots``; ``docs/ab-testing.md`` explains each row.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.curriculum import AUXILIARY_LOSSES, DATA_FIELDS
from curriculum_cli.errors import PepcurrError, RunError
from curriculum_cli.runlog import RunLog, read_run
from curriculum_cli.stats import welch_interval

if TYPE_CHECKING:
    import pandas as pd

SPLITS = {"easy": "val_easy", "hard": "val_hard"}
"""Row suffix -> validation split (see docs/run-directory.md)."""


SMOOTHING_FRACTION = 0.02
"""Training losses are averaged over the last 2% of a run's steps up to STEP."""

CONFIDENCE = 0.95
DEFAULT_METRIC = "token_accuracy_hard"
DEFAULT_TARGET = 0.9

# Settings that must agree for a fair comparison (besides the curriculum and the seed).
_SETTINGS_CHECKED = ("model", "batch_size", "scale", "lr", "device")
_VALIDATION_SETTINGS = ("val_seed", "val_size", "decode_size")


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


def _rows(target_metric: str, target: float) -> list[Row]:
    rows = [
        Row("curriculum", "curriculum", None, "text"),
        Row("seeds", "seeds", None, "text"),
        Row("step", "step read (actual)", None, "step"),
        Row("token_accuracy_easy", "val token accuracy, easy", "higher", "fraction"),
        Row("token_accuracy_hard", "val token accuracy, hard", "higher", "fraction"),
        Row("decoded_step", "decoded metrics from step", None, "step"),
    ]
    for metric, label in (
        ("peptide_recall", "peptide recall"),
        ("aa_precision", "AA precision"),
        ("aa_recall", "AA recall"),
    ):
        for suffix in SPLITS:
            rows.append(Row(f"{metric}_{suffix}", f"{label}, {suffix}", "higher", "fraction"))
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
        Row("steps_to_target", f"steps to {target_metric} >= {target:g}", "lower", "step"),
    ]
    for loss in AUXILIARY_LOSSES:
        rows += [
            Row(f"{loss}_introduced", f"{loss} loss on at (nominal)", None, "step"),
            Row(f"{loss}_accuracy_then", f"  val token accuracy then, {_split_of(target_metric)}",
                None, "fraction"),
            Row(f"{loss}_grad_step", "  gradient measured at (nominal)", None, "step"),
            Row(f"{loss}_ratio_then", f"  grad ratio {loss}/CE then", None, "ratio"),
            Row(f"{loss}_cosine_then", f"  grad cosine {loss}·CE then", None, "cosine"),
        ]  # fmt: skip
    return rows


def _split_of(metric: str) -> str:
    return "easy" if metric.endswith("_easy") else "hard"


# Metrics that are a validation time series, usable for "steps to target".
_SERIES_METRICS = {
    f"{metric}_{suffix}": (split, metric)
    for suffix, split in SPLITS.items()
    for metric in ("token_accuracy", "peptide_recall", "aa_precision", "aa_recall")
}


@dataclass(frozen=True)
class Difference:
    """The primary metric's difference between two groups (``first`` - ``second``).

    ``ci_low``/``ci_high``: the 95% Welch interval (NaN with fewer than 2 runs
    in a group); ``df``: its Welch-Satterthwaite degrees of freedom.
    """

    first: str
    second: str
    mean_first: float
    mean_second: float
    difference: float
    ci_low: float
    ci_high: float
    df: float
    n_first: int
    n_second: int
    method: str = "Welch t interval over seeds"

    @property
    def exceeds_noise(self) -> bool:
        """True when the interval excludes 0 (the difference is larger than seed noise)."""
        return math.isfinite(self.ci_low) and (self.ci_low > 0 or self.ci_high < 0)


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
    difference: Difference | None
    verdict: str
    warnings: list[str] = field(default_factory=list)
    logs: list[RunLog] = field(default_factory=list)

    @property
    def grouped(self) -> bool:
        return bool((self.runs.groupby("group").size() > 1).any())

    @property
    def columns(self) -> list[str]:
        return self.groups if self.grouped else list(self.runs["label"])

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
        values = {c: _as_float(self.value(key, c)) for c in self.columns}
        finite = {c: v for c, v in values.items() if math.isfinite(v)}
        if len(set(finite.values())) < 2 and len(finite) == len(values):
            return []
        if not finite:
            return []
        best = max(finite.values()) if row.better == "higher" else min(finite.values())
        return [c for c, v in finite.items() if v == best]


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ----------------------------------------------------------------------------
# Reading one run
# ----------------------------------------------------------------------------


def nominal_to_actual(nominal_step: int, scale: float) -> int:
    """The step of a run trained at ``--scale scale`` that a nominal curriculum step maps to."""
    return round(nominal_step * scale)


def actual_to_nominal(step: int, scale: float) -> int:
    """The nominal curriculum step of an actual step of a scaled run."""
    return round(step / scale)


def _last_at_or_before(frame: pd.DataFrame, step: int, column: str | None = None):
    """The last record of ``frame`` with ``step <= step`` (and ``column`` present), or None."""
    if frame.empty or "step" not in frame:
        return None
    rows = frame[frame["step"] <= step]
    if column is not None:
        if column not in rows:
            return None
        rows = rows[rows[column].notna()]
    return None if rows.empty else rows.iloc[-1]


def _float(record, column: str) -> float:
    if record is None or column not in record.index:
        return math.nan
    return _as_float(record[column])


def _introductions(run: RunLog) -> dict[str, int | None]:
    """Actual step at which each auxiliary loss came on in this run (None: not, or not yet).

    For an ungated curriculum the planned step. A loss introduced by a gated
    stage came on when that stage's ``stage`` record says it started (its gate
    opened), which differs from run to run.
    """
    curriculum = run.config.curriculum
    if not curriculum.gated:
        return curriculum.introductions()
    stages = run.events("stage")
    found: dict[str, int | None] = {}
    for loss, index in curriculum.introducing_stages().items():
        rows = stages[stages["stage_index"] == index] if index is not None and len(stages) else []
        found[loss] = int(rows["step"].iloc[0]) if len(rows) else None
    return found


def run_facts(run: RunLog, at_step: int, target_metric: str, target: float) -> dict:
    """One run's facts at actual step ``at_step`` (validation values: last validation <= it)."""
    scale = run.config.scale
    curriculum = run.config.curriculum
    val = run.events("val")
    if val.empty or "split" not in val:
        raise RunError(f"{run.run_dir}: no validation records in {run.run_dir / 'metrics.jsonl'}")
    per_split = {suffix: val[val["split"] == split] for suffix, split in SPLITS.items()}
    facts: dict = {"curriculum": curriculum.name, "seeds": str(run.config.seed)}

    last = {suffix: _last_at_or_before(frame, at_step) for suffix, frame in per_split.items()}
    if last["hard"] is None and last["easy"] is None:
        raise RunError(f"{run.run_dir}: no validation at or before step {at_step}")
    facts["step"] = int(max(r["step"] for r in last.values() if r is not None))
    for suffix in SPLITS:
        facts[f"token_accuracy_{suffix}"] = _float(last[suffix], "token_accuracy")
    facts["val_ce_hard"] = _float(last["hard"], "ce")
    facts["val_spectrum_hard"] = _float(last["hard"], "spectrum")
    facts["val_precursor_hard"] = _float(last["hard"], "precursor")

    decoded_steps = []
    for suffix, frame in per_split.items():
        decoded = _last_at_or_before(frame, at_step, "peptide_recall")
        for metric in ("peptide_recall", "aa_precision", "aa_recall"):
            facts[f"{metric}_{suffix}"] = _float(decoded, metric)
        if suffix == "hard":
            facts["precursor_error_ppm_hard"] = _float(decoded, "precursor_error_ppm_median")
        if decoded is not None:
            decoded_steps.append(int(decoded["step"]))
    facts["decoded_step"] = max(decoded_steps) if decoded_steps else math.nan

    for column, event in (("skipped_steps", "skip"), ("loss_spikes", "spike")):
        frame = run.events(event)
        facts[column] = int((frame["step"] <= at_step).sum()) if len(frame) else 0

    train = run.events("train")
    window = max(1, round(SMOOTHING_FRACTION * curriculum.total_steps))
    recent = train
    if len(train):
        recent = train[(train["step"] <= at_step) & (train["step"] > at_step - window)]
        if recent.empty:  # fewer train records than the window: the last one before STEP
            recent = train[train["step"] <= at_step].tail(1)
    for loss in ("ce", *AUXILIARY_LOSSES):
        facts[f"train_{loss}"] = (
            float(recent[loss].mean()) if loss in recent and len(recent) else math.nan
        )

    _, metric = _SERIES_METRICS[target_metric]
    series = per_split[_split_of(target_metric)]
    if metric in series:
        reached = series[(series["step"] <= at_step) & (series[metric] >= target)]
    else:
        reached = series.iloc[0:0]
    facts["steps_to_target"] = (
        actual_to_nominal(int(reached["step"].iloc[0]), scale) if len(reached) else math.nan
    )

    grad = run.events("grad")
    target_split = per_split[_split_of(target_metric)]
    for loss, introduced in _introductions(run).items():
        facts[f"{loss}_introduced"] = (
            math.nan if introduced is None else actual_to_nominal(introduced, scale)
        )
        reached_intro = introduced is not None and run.last_step >= introduced
        then = _last_at_or_before(target_split, introduced) if reached_intro else None
        facts[f"{loss}_accuracy_then"] = _float(then, "token_accuracy")
        measured = _last_at_or_before(grad, introduced, f"{loss}_ratio") if reached_intro else None
        facts[f"{loss}_grad_step"] = (
            math.nan if measured is None else actual_to_nominal(int(measured["step"]), scale)
        )
        facts[f"{loss}_ratio_then"] = _float(measured, f"{loss}_ratio")
        facts[f"{loss}_cosine_then"] = _float(measured, f"{loss}_cosine")
    return facts


# ----------------------------------------------------------------------------
# Comparing runs
# ----------------------------------------------------------------------------


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


def _setting(run: RunLog, key: str):
    """A run's setting as plain JSON data (for comparing and showing)."""
    return run.config.model_dump(mode="json")[key]


def _setting_warnings(runs: list[RunLog]) -> list[str]:
    """Differences between runs that make a comparison unfair (model, batch, scale, validation)."""
    warnings = []
    first = runs[0]
    for key in _SETTINGS_CHECKED + _VALIDATION_SETTINGS:
        values = {json.dumps(_setting(run, key), sort_keys=True) for run in runs}
        if len(values) > 1:
            shown = ", ".join(f"{run.run_dir.name}: {_setting(run, key)}" for run in runs)
            what = "validation sets differ" if key in _VALIDATION_SETTINGS else "unfair comparison"
            warnings.append(f"runs differ in {key} ({shown}); {what}")

    def val_data(run: RunLog) -> str:
        stages = run.config.curriculum.stages
        return json.dumps(
            [{k: getattr(stage, k) for k in DATA_FIELDS} for stage in (stages[0], stages[-1])]
        )

    if len({val_data(run) for run in runs}) > 1:
        warnings.append(
            "the curricula's first or last stages differ in data settings, so val_easy / "
            f"val_hard are different spectra in different runs (e.g. {first.run_dir.name})"
        )
    return warnings


def compare_runs(
    run_dirs: list[Path | str],
    at: int | None = None,
    metric: str = DEFAULT_METRIC,
    target: float = DEFAULT_TARGET,
) -> Comparison:
    """Read runs and compare them at nominal step ``at`` (default: the end of the longest run).

    ``metric``: the primary metric, a row key (``token_accuracy_hard``,
    ``peptide_recall_easy``, ``val_ce_hard``, ...); it decides the verdict,
    and "steps to target" uses it when it is a validation accuracy or recall
    (else ``token_accuracy_hard``). Raises ``RunError`` for a missing or
    corrupt run and ``PepcurrError`` for a bad option; softer problems (a
    truncated last log line, a run shorter than ``at``, runs that differ in
    model, batch size or scale) are in ``Comparison.warnings``.
    """
    import pandas as pd

    if not run_dirs:
        raise PepcurrError("give at least one run directory")
    target_metric = metric if metric in _SERIES_METRICS else DEFAULT_METRIC
    rows = _rows(target_metric, target)
    scored = [row.key for row in rows if row.better is not None]
    if metric not in scored:
        raise PepcurrError(f"unknown --metric {metric!r}; choose one of: {', '.join(scored)}")
    if not math.isfinite(target):
        raise PepcurrError(f"--target must be a number, got {target}")
    if at is not None and at < 0:
        raise PepcurrError(f"--at must be a step >= 0, got {at}")

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

    scales = {str(run.run_dir): run.config.scale for run in logs}
    if at is None:
        at = max(run.config.nominal_total_steps for run in logs)

    groups = _group_labels(logs)
    records = []
    for run, group in zip(logs, groups, strict=True):
        scale = scales[str(run.run_dir)]
        at_step = nominal_to_actual(at, scale)
        if run.status != "finished":
            warnings.append(f"{run.run_dir}: the run is {run.status} at step {run.last_step:,}")
        if run.last_step < at_step:
            warnings.append(
                f"{run.run_dir}: ends at step {run.last_step:,} (nominal "
                f"{actual_to_nominal(run.last_step, scale):,}), before --at {at:,} "
                f"(step {at_step:,} at scale {scale:g}); its values are from its last records"
            )
        facts = run_facts(run, at_step, target_metric, target)
        seed = run.config.seed
        records.append(
            {"label": f"{group} s{seed}", "group": group, "seed": seed, "scale": scale,
             "run_dir": str(run.run_dir), **facts}
        )  # fmt: skip
    runs = pd.DataFrame.from_records(records)
    runs["label"] = _unique(list(runs["label"]))
    warnings += _setting_warnings(logs)
    for group, members in runs.groupby("group", sort=False):
        if members["seed"].duplicated().any():
            warnings.append(f"{group}: several runs share a seed; they are not independent")

    group_order = list(dict.fromkeys(groups))
    numeric = [row.key for row in rows if row.kind != "text"]
    by_group = runs.groupby("group", sort=False)[numeric]
    mean = by_group.mean().T[group_order]
    std = by_group.std(ddof=1).T[group_order]
    count = by_group.count().T[group_order]
    for group in group_order:
        members = runs[runs["group"] == group]
        runs.loc[runs["group"] == group, "seeds"] = ", ".join(str(s) for s in members["seed"])

    difference = _difference(runs, group_order, metric, rows)
    verdict = _verdict(difference, metric, at, rows, runs)
    return Comparison(
        at_nominal=at, metric=metric, target=target, rows=rows, runs=runs, groups=group_order,
        mean=mean, std=std, count=count, difference=difference, verdict=verdict,
        warnings=warnings, logs=logs,
    )  # fmt: skip


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _difference(runs, group_order: list[str], metric: str, rows: list[Row]) -> Difference | None:
    """Best group against the runner-up on the primary metric (None with one group)."""
    if len(group_order) < 2:
        return None
    better = next(row for row in rows if row.key == metric).better
    values = {
        group: [float(v) for v in runs.loc[runs["group"] == group, metric] if math.isfinite(v)]
        for group in group_order
    }
    ranked = [g for g in group_order if values[g]]
    if len(ranked) < 2:
        return None
    ranked.sort(key=lambda g: sum(values[g]) / len(values[g]), reverse=better == "higher")
    first, second = ranked[0], ranked[1]
    diff, low, high, df = welch_interval(values[first], values[second])
    return Difference(
        first=first, second=second, mean_first=sum(values[first]) / len(values[first]),
        mean_second=sum(values[second]) / len(values[second]), difference=diff, ci_low=low,
        ci_high=high, df=df, n_first=len(values[first]), n_second=len(values[second]),
    )  # fmt: skip


def _verdict(difference: Difference | None, metric: str, at: int, rows, runs) -> str:
    """The plain sentence under the table."""
    label = next(row for row in rows if row.key == metric).label
    if difference is None:
        if runs["group"].nunique() < 2:
            return f"One curriculum only: nothing to compare {label} against at step {at:,}."
        return f"{label} is missing in all but one group at step {at:,}; no verdict."
    d = difference
    better = next(row for row in rows if row.key == metric).better
    word = "higher" if better == "higher" else "lower"
    if d.difference == 0:
        head = (
            f"At nominal step {at:,}, {d.first} and {d.second} have the same {label}, "
            f"{d.mean_first:.4g} (difference 0"
        )
    else:
        head = (
            f"At nominal step {at:,}, {d.first} has the {word} {label}: {d.mean_first:.4g} vs "
            f"{d.mean_second:.4g} for {d.second} (difference {d.difference:+.4g}"
        )
    if not math.isfinite(d.ci_low):
        return (
            head + "). With fewer than 2 seeds per arm the difference cannot be told from seed "
            "noise; run more seeds (pepcurr ab --seeds 3)."
        )
    interval = (
        f", 95% CI {d.ci_low:+.4g} to {d.ci_high:+.4g}, {d.method}, "
        f"n = {d.n_first} and {d.n_second})"
    )
    if d.exceeds_noise:
        return head + interval + ". The difference is larger than seed noise."
    return head + interval + ". The difference is within seed noise: no winner at this step."

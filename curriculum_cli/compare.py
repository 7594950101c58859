"""Compare training runs at one nominal step: facts per run, per seed group, and a verdict.

``compare_runs`` reads run directories (``run.json`` and ``metrics.jsonl``
through ``runlog.read_run``), never the engine. ``--at STEP`` is in *nominal*
curriculum steps: a run trained with ``--scale 0.02`` is read at
``round(0.02 * STEP)``; every value is that of the last record at or before
that step (validation values: the last validation). Runs of the same
curriculum (the same stages after scaling) with different seeds form a group
(an *arm*); each row gets the arm's mean and standard deviation over seeds.

The verdict (``stats.decide``) compares each arm with the first one given
(the baseline) on the primary metric: paired by seed when the arms share
seeds (paired t interval and exact sign-flip permutation test), Welch's
unpaired test otherwise, Holm-corrected over several arms, and never a
difference without enough pairs and non-zero spread. Next to it: the
validation-set noise of the metric (binomial standard error over the
validation spectra), what else differs between the arms (``confounds``), and
the accuracy actually reached at each arm's introductions.

Presentation (rich table, JSON, CSV, Markdown, plot) is in ``render`` and
``plots``; ``docs/ab-testing.md`` explains each row.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.config import RunConfig
from curriculum_cli.curriculum import AUXILIARY_LOSSES
from curriculum_cli.errors import PepcurrError, RunError
from curriculum_cli.gradients import WINDOW_FRACTION
from curriculum_cli.runlog import RunLog, read_run
from curriculum_cli.stats import (
    Verdict,
    binomial_standard_error,
    censored_summary,
    decide,
    first_crossing,
)

if TYPE_CHECKING:
    import pandas as pd

SPLITS = {"easy": "val_easy", "hard": "val_hard", "real": "val_real"}
"""Row suffix -> validation split (see docs/run-directory.md); ``val_real`` exists only in
runs trained with ``--val-data``, and its rows are shown only when a compared run has it."""


SMOOTHING_FRACTION = 0.02
"""Training losses are averaged over the last 2% of a run's steps up to STEP."""

DEFAULT_METRIC = "residue_accuracy_hard"
DEFAULT_TARGET = 0.9

ACCURACY_FIELDS = ("residue_accuracy", "token_accuracy")
"""The accuracy of a validation record, in order of preference: runs of pepcurr 0.1 logged
token accuracy (which counts ``<eos>``) only."""


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
        Row("metric_se", f"val-set noise of {metric}: binomial SE", None, "fraction"),
    ]  # fmt: skip
    accuracy = f"{_split_of(target_metric)} accuracy"
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


def _split_of(metric: str) -> str:
    suffix = metric.rsplit("_", 1)[-1]
    return suffix if suffix in SPLITS else "hard"


# Metrics that are a validation time series, usable for "steps to target".
_SERIES_METRICS = {
    f"{metric}_{suffix}": (split, metric)
    for suffix, split in SPLITS.items()
    for metric in (*ACCURACY_FIELDS, "peptide_recall", "aa_precision", "aa_recall")
}

# Metrics decoded on ``decode_size`` spectra (the others on ``val_size``).
_DECODED = ("peptide_recall", "aa_precision", "aa_recall")


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
    - ``verdicts``: each arm against the first (``stats.Verdict``); ``verdict``
      their sentences
    - ``censored``: per group, the steps-to-target summary with seeds that
      never reached the target counted (``stats.censored_summary``)
    - ``confounds``: what else differs between the arms, one line each
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
    censored: dict[str, dict] = field(default_factory=dict)
    confounds: list[str] = field(default_factory=list)
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


def _accuracy_field(frame: pd.DataFrame, name: str) -> str:
    """``residue_accuracy`` -> ``token_accuracy`` for runs that never logged residue accuracy."""
    if name == "residue_accuracy" and (name not in frame or frame[name].isna().all()):
        return "token_accuracy"
    return name


def introductions_logged(run: RunLog) -> dict[str, int | None]:
    """The actual step at which each auxiliary loss first had a weight > 0 (None: never).

    Read from the run's ``stage`` records, so an introduction gated on accuracy
    is where it really happened; runs without them fall back to the curriculum.
    """
    stages = run.events("stage")
    found: dict[str, int | None] = {}
    for loss in AUXILIARY_LOSSES:
        column = f"w_{loss}"
        if stages.empty or column not in stages:
            found[loss] = run.config.curriculum.introductions()[loss]
            continue
        on = stages[stages[column] > 0]
        found[loss] = int(on["step"].iloc[0]) if len(on) else None
    return found


def run_facts(
    run: RunLog, at_step: int, target_metric: str, target: float, metric: str = DEFAULT_METRIC
) -> dict:
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
        for name in ACCURACY_FIELDS:
            facts[f"{name}_{suffix}"] = _float(last[suffix], name)
    facts["val_ce_hard"] = _float(last["hard"], "ce")
    facts["val_spectrum_hard"] = _float(last["hard"], "spectrum")
    facts["val_precursor_hard"] = _float(last["hard"], "precursor")
    facts["val_ce_real"] = _float(last["real"], "ce")

    decoded_steps = []
    for suffix, frame in per_split.items():
        decoded = _last_at_or_before(frame, at_step, "peptide_recall")
        for name in _DECODED:
            facts[f"{name}_{suffix}"] = _float(decoded, name)
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

    # Steps to target: first crossing, interpolated between the two validations around it.
    _, name = _SERIES_METRICS[target_metric]
    series = per_split[_split_of(target_metric)]
    name = _accuracy_field(series, name)
    series = series[series["step"] <= at_step]
    crossing = None
    if name in series:
        series = series[series[name].notna()]
        crossing = first_crossing(list(series["step"]), list(series[name]), target)
    facts["steps_to_target"] = math.nan if crossing is None else crossing / scale

    # Validation-set noise of the primary metric: binomial SE over the spectra scored.
    if metric in _SERIES_METRICS:
        split, name = _SERIES_METRICS[metric]
        n = run.config.decode_size if name in _DECODED else run.config.val_size
        value = facts[metric]
        facts["metric_se"] = binomial_standard_error(value, n) if 0 <= value <= 1 else math.nan
    else:
        facts["metric_se"] = math.nan

    grad = run.events("grad")
    target_split = per_split[_split_of(target_metric)]
    accuracy_name = _accuracy_field(target_split, _SERIES_METRICS[target_metric][1])
    half_window = max(1, round(WINDOW_FRACTION * curriculum.total_steps))
    for loss, introduced in introductions_logged(run).items():
        facts[f"{loss}_introduced"] = math.nan if introduced is None else introduced / scale
        reached_intro = introduced is not None and run.last_step >= introduced
        then = _last_at_or_before(target_split, introduced) if reached_intro else None
        facts[f"{loss}_accuracy_then"] = _float(then, accuracy_name)
        around = grad.iloc[0:0]
        if reached_intro and f"{loss}_ratio" in grad:
            near = (grad["step"] - introduced).abs() <= half_window
            around = grad[near & grad[f"{loss}_ratio"].notna()]
        facts[f"{loss}_grad_n"] = len(around)
        for figure in ("ratio", "cosine"):
            values = around[f"{loss}_{figure}"] if len(around) else None
            facts[f"{loss}_{figure}_then"] = float(values.mean()) if len(around) else math.nan
            facts[f"{loss}_{figure}_sd_then"] = (
                float(values.std(ddof=1)) if len(around) > 1 else math.nan
            )
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


# Settings that are not confounds: what an arm is (its curriculum) and the seed it pairs on.
_NOT_CONFOUNDS = {"curriculum", "curriculum_source", "seed"}
_VALIDATION_SETTINGS = {"val_seed", "val_size", "decode_size"}


def _data_text(stage) -> str:
    return (
        f"lengths {stage.min_length}-{stage.max_length}, {stage.noise_peaks} noise peaks, "
        f"dropout {stage.peak_dropout:g}, {stage.mass_error_ppm:g} ppm, "
        f"intensity variation {stage.intensity_variation:g}"
    )


def _setting_warnings(logs: list[RunLog], groups: list[str]) -> list[str]:
    """Settings that differ between runs of the same arm (their seeds are not comparable)."""
    warnings = []
    for group in dict.fromkeys(groups):
        members = [run for run, g in zip(logs, groups, strict=True) if g == group]
        for key in RunConfig.model_fields:
            if key in _NOT_CONFOUNDS:
                continue
            values = {json.dumps(_setting(run, key), sort_keys=True) for run in members}
            if len(values) > 1:
                shown = ", ".join(f"{run.run_dir.name}: {_setting(run, key)}" for run in members)
                warnings.append(f"{group}: its runs differ in {key} ({shown})")
    return warnings


def confounds(logs: list[RunLog], groups: list[str]) -> list[str]:
    """What differs between the arms besides the auxiliary-loss schedule, one line each.

    Settings (model, batch size, learning rate, ...), validation sets, the data
    schedule by nominal step range (lengths and noise per stage), and the
    auxiliary-loss exposure (the sum of weight x nominal steps, planned). With
    gated stages the data schedule shown is the planned one.
    """
    arms = {group: run for run, group in reversed(list(zip(logs, groups, strict=True)))}
    arms = {group: arms[group] for group in dict.fromkeys(groups)}
    if len(arms) < 2:
        return []
    lines = []
    for key in RunConfig.model_fields:
        if key in _NOT_CONFOUNDS:
            continue
        values = {group: _setting(run, key) for group, run in arms.items()}
        if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
            what = "validation sets differ: " if key in _VALIDATION_SETTINGS else ""
            shown = "; ".join(f"{group} {value}" for group, value in values.items())
            lines.append(f"{what}{key}: {shown}")
    val_data = {
        group: (_data_text(run.config.curriculum.stages[0]),
                _data_text(run.config.curriculum.stages[-1]))
        for group, run in arms.items()
    }  # fmt: skip
    if len(set(val_data.values())) > 1:
        lines.append(
            "validation sets differ: val_easy/val_hard follow each arm's first/last stage ("
            + "; ".join(f"{g}: {easy} / {hard}" for g, (easy, hard) in val_data.items())
            + ")"
        )
    lines += _data_schedule_differences(arms)
    exposure = {
        group: {
            loss: sum(
                stage.loss_weights[loss] * stage.steps for stage in run.config.curriculum.stages
            )
            / run.config.scale
            for loss in AUXILIARY_LOSSES
        }
        for group, run in arms.items()
    }
    baseline = next(iter(arms))
    for loss in AUXILIARY_LOSSES:
        amounts = {group: exposure[group][loss] for group in arms}
        if len({round(v, 6) for v in amounts.values()}) > 1:
            base = amounts[baseline]
            shown = "; ".join(
                f"{group} {value:,.0f}"
                + (f" ({(value / base - 1):+.0%})" if base > 0 and group != baseline else "")
                for group, value in amounts.items()
            )
            lines.append(f"{loss} loss exposure (sum of weight x nominal steps): {shown}")
    return lines


MAX_SCHEDULE_LINES = 4
"""Differing data-schedule ranges listed before the rest is counted."""


def _data_schedule_differences(arms: dict[str, RunLog]) -> list[str]:
    """Nominal step ranges in which the arms train on different data (lengths, noise)."""
    bounds = sorted(
        {round(start / run.config.scale) for run in arms.values()
         for start in run.config.curriculum.stage_starts()}
        | {max(run.config.nominal_total_steps for run in arms.values())}
    )  # fmt: skip
    ranges: list[tuple[int, int, dict[str, str]]] = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        data = {
            group: _data_text(run.config.curriculum.stage_at(round(low * run.config.scale))[1])
            for group, run in arms.items()
        }
        if len(set(data.values())) == 1:
            continue
        if ranges and ranges[-1][1] == low and ranges[-1][2] == data:
            ranges[-1] = (ranges[-1][0], high, data)
        else:
            ranges.append((low, high, data))
    lines = [
        f"data at nominal steps {low:,}-{high - 1:,}: "
        + "; ".join(f"{group} {text}" for group, text in data.items())
        for low, high, data in ranges[:MAX_SCHEDULE_LINES]
    ]
    if len(ranges) > MAX_SCHEDULE_LINES:
        lines.append(
            f"data differs in {len(ranges) - MAX_SCHEDULE_LINES} more step range(s); "
            "pepcurr plot-schedule shows them all"
        )
    return lines


def compare_runs(
    run_dirs: list[Path | str],
    at: int | None = None,
    metric: str = DEFAULT_METRIC,
    target: float = DEFAULT_TARGET,
) -> Comparison:
    """Read runs and compare them at nominal step ``at`` (default: the end of the longest run).

    ``metric``: the primary metric, a row key (``residue_accuracy_hard``,
    ``peptide_recall_easy``, ``val_ce_hard``, ...); it decides the verdict,
    and "steps to target" uses it when it is a validation accuracy or recall
    (else ``residue_accuracy_hard``). The first arm given is the baseline.
    Raises ``RunError`` for a missing or corrupt run and ``PepcurrError`` for
    a bad option; softer problems (a truncated last log line, a run shorter
    than ``at``, runs of one arm that differ in a setting) are in
    ``Comparison.warnings``.
    """
    import pandas as pd

    if not run_dirs:
        raise PepcurrError("give at least one run directory")
    target_metric = metric if metric in _SERIES_METRICS else DEFAULT_METRIC
    rows = _rows(target_metric, target, metric)
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
    if at is None:
        at = max(run.config.nominal_total_steps for run in logs)
    if not any(_has_real_validation(run) for run in logs):
        if metric.endswith("_real"):
            raise PepcurrError(
                f"--metric {metric}: no run given has a val_real set (train with --val-data)"
            )
        rows = [row for row in rows if not row.key.endswith("_real")]

    groups = _group_labels(logs)
    records = []
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
        seed = run.config.seed
        records.append(
            {"label": f"{group} s{seed}", "group": group, "seed": seed, "scale": scale,
             "run_dir": str(run.run_dir), **facts}
        )  # fmt: skip
    runs = pd.DataFrame.from_records(records)
    runs["label"] = _unique(list(runs["label"]))
    warnings += _setting_warnings(logs, groups)
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
    censored = {
        group: censored_summary(
            [None if math.isnan(v) else float(v)
             for v in runs.loc[runs["group"] == group, "steps_to_target"]]
        )
        for group in group_order
    }  # fmt: skip

    row = next(row for row in rows if row.key == metric)
    arms = {
        group: dict(zip(members["seed"], members[metric].astype(float), strict=True))
        for group, members in runs.groupby("group", sort=False)
    }
    verdicts = decide(arms, row.better, metric=metric, step=at) if len(arms) > 1 else []
    if verdicts:
        verdict = " ".join(v.sentence for v in verdicts)
    else:
        verdict = f"One arm only: nothing to compare {metric} against at nominal step {at:,}."
    return Comparison(
        at_nominal=at, metric=metric, target=target, rows=rows, runs=runs, groups=group_order,
        mean=mean, std=std, count=count, verdicts=verdicts, verdict=verdict, censored=censored,
        confounds=confounds(logs, groups), warnings=warnings, logs=logs,
    )  # fmt: skip


def _has_real_validation(run: RunLog) -> bool:
    val = run.events("val")
    return "split" in val and bool((val["split"] == SPLITS["real"]).any())


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out

"""One run's facts at one step, read from its log: validation values, decoded metrics,
smoothed training losses, steps to a target, and what happened at each introduction.

``--at STEP`` is in *nominal* curriculum steps: a run trained with ``--scale 0.02``
is read at ``round(0.02 * STEP)``; every value is that of the last record at or
before that step (validation values: the last validation).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from curriculum_cli.analysis.stats import binomial_standard_error, first_crossing
from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES
from curriculum_cli.errors import RunError
from curriculum_cli.training.gradients import WINDOW_FRACTION
from curriculum_cli.training.runlog import RunLog

if TYPE_CHECKING:
    import pandas as pd

SPLITS = {"easy": "val_easy", "hard": "val_hard", "real": "val_real"}
"""Row suffix -> validation split (see docs/run-directory.md); ``val_real`` exists only in
runs trained with ``--val-data``, and its rows are shown only when a compared run has it."""

SMOOTHING_FRACTION = 0.02
"""Training losses are averaged over the last 2% of a run's steps up to STEP."""

DEFAULT_METRIC = "residue_accuracy_hard"

ACCURACY_FIELDS = ("residue_accuracy", "token_accuracy")
"""The two accuracies of a validation record: over residues, and over tokens (``<eos>``
counted); docs/metrics.md."""


def split_of(metric: str) -> str:
    """The row suffix (``easy``, ``hard``, ``real``) of a metric; ``hard`` for the others."""
    suffix = metric.rsplit("_", 1)[-1]
    return suffix if suffix in SPLITS else "hard"


SERIES_METRICS = {
    f"{metric}_{suffix}": (split, metric)
    for suffix, split in SPLITS.items()
    for metric in (*ACCURACY_FIELDS, "peptide_recall", "aa_precision", "aa_recall")
}
"""Metric -> (split, field of its ``val`` records): the validation time series, usable for
"steps to target"."""

DECODED_METRICS = ("peptide_recall", "aa_precision", "aa_recall")
"""Metrics decoded on ``decode_size`` spectra (the others on ``val_size``)."""


def as_float(value) -> float:
    """A table value as a float (NaN for text or a missing value)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


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
    return as_float(record[column])


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


def stage_starts_logged(run: RunLog) -> list[int]:
    """The actual first step of each stage that started, in order, from the ``stage`` records
    (gates resolved as they happened); the planned starts for logs without them."""
    stages = run.events("stage")
    if stages.empty or "stage_index" not in stages:
        return run.config.curriculum.stage_starts()
    starts = stages.dropna(subset=["stage_index"]).drop_duplicates("stage_index")
    return [int(step) for step in starts.sort_values("stage_index")["step"]]


def _recent_train(run: RunLog, at_step: int) -> pd.DataFrame:
    """The ``train`` records that smoothed training values average: the last
    ``SMOOTHING_FRACTION`` of the run's steps up to ``at_step`` (at least the last one)."""
    train = run.events("train")
    if not len(train):
        return train
    window = max(1, round(SMOOTHING_FRACTION * run.config.curriculum.total_steps))
    recent = train[(train["step"] <= at_step) & (train["step"] > at_step - window)]
    if recent.empty:  # fewer train records than the window: the last one before STEP
        recent = train[train["step"] <= at_step].tail(1)
    return recent


BY_STEP_FIELDS = ("ce", "spectrum", "precursor", "residue_accuracy")
"""The fields of which the records of a model with several refinement steps hold one value
per step (``<field>_by_step``, docs/run-directory.md)."""


def refinement_steps_logged(run: RunLog) -> int:
    """How many refinement steps a run's ``val`` records give values of (0: none, a model of
    one step)."""
    val = run.events("val")
    lengths = [len(value) for name in BY_STEP_FIELDS if f"{name}_by_step" in val
               for value in val[f"{name}_by_step"] if isinstance(value, list)]  # fmt: skip
    return max(lengths, default=0)


def per_step_facts(run: RunLog, at_step: int) -> dict[str, float]:
    """Each refinement step's own values at actual step ``at_step`` (``compare --per-step``):
    ``val_<term>_hard_step<k>`` and ``residue_accuracy_hard_step<k>`` of the last validation
    of ``val_hard`` at or before it, ``train_ce_step<k>`` smoothed as ``train_ce``; ``k``
    from 1. NaN where a record has none; empty for a model of one step."""
    steps = refinement_steps_logged(run)
    val = run.events("val")
    hard = _last_at_or_before(val[val["split"] == SPLITS["hard"]], at_step) if steps else None
    recent = _recent_train(run, at_step)

    def at(record, field: str, k: int) -> float:
        value = record.get(f"{field}_by_step") if record is not None else None
        return as_float(value[k]) if isinstance(value, list) and k < len(value) else math.nan

    facts = {}
    for k in range(steps):
        for name in ("ce", *AUXILIARY_LOSSES):
            facts[f"val_{name}_hard_step{k + 1}"] = at(hard, name, k)
        facts[f"residue_accuracy_hard_step{k + 1}"] = at(hard, "residue_accuracy", k)
        train_values = [at(row, "ce", k) for _, row in recent.iterrows()]
        finite = [v for v in train_values if math.isfinite(v)]
        facts[f"train_ce_step{k + 1}"] = sum(finite) / len(finite) if finite else math.nan
    return facts


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
        for name in DECODED_METRICS:
            facts[f"{name}_{suffix}"] = _float(decoded, name)
        if suffix == "hard":
            facts["precursor_error_ppm_hard"] = _float(decoded, "precursor_error_ppm_median")
        if decoded is not None:
            decoded_steps.append(int(decoded["step"]))
    facts["decoded_step"] = max(decoded_steps) if decoded_steps else math.nan

    for column, event in (("skipped_steps", "skip"), ("loss_spikes", "spike")):
        frame = run.events(event)
        facts[column] = int((frame["step"] <= at_step).sum()) if len(frame) else 0

    recent = _recent_train(run, at_step)
    for loss in ("ce", *AUXILIARY_LOSSES):
        facts[f"train_{loss}"] = (
            float(recent[loss].mean()) if loss in recent and len(recent) else math.nan
        )

    # Steps to target: first crossing, interpolated between the two validations around it.
    _, name = SERIES_METRICS[target_metric]
    series = per_split[split_of(target_metric)]
    name = run.logged_as(name)
    series = series[series["step"] <= at_step]
    crossing = None
    if name in series:
        series = series[series[name].notna()]
        crossing = first_crossing(list(series["step"]), list(series[name]), target)
    facts["steps_to_target"] = math.nan if crossing is None else crossing / scale

    # Validation-set noise of the primary metric: binomial SE over the spectra scored.
    if metric in SERIES_METRICS:
        split, name = SERIES_METRICS[metric]
        n = run.config.decode_size if name in DECODED_METRICS else run.config.val_size
        value = facts[metric]
        facts["metric_se"] = binomial_standard_error(value, n) if 0 <= value <= 1 else math.nan
    else:
        facts["metric_se"] = math.nan

    grad = run.events("grad")
    target_split = per_split[split_of(target_metric)]
    accuracy_name = run.logged_as(SERIES_METRICS[target_metric][1])
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
def has_real_validation(run: RunLog) -> bool:
    val = run.events("val")
    return "split" in val and bool((val["split"] == SPLITS["real"]).any())

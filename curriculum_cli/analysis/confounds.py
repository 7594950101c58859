"""What differs between the arms of a comparison besides the auxiliary-loss schedule.

Settings of ``run.json`` (model, batch size, learning rate, ...), validation
sets, the data schedule by nominal step range and the auxiliary-loss exposure,
one line each; and settings that differ *within* an arm (its seeds are then not
comparable).
"""

from __future__ import annotations

import json

from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES
from curriculum_cli.training.config import RunConfig
from curriculum_cli.training.runlog import RunLog


def _setting(run: RunLog, key: str):
    """A run's setting as plain JSON data (for comparing and showing)."""
    return run.config.model_dump(mode="json")[key]


# Settings that are not confounds: what an arm is (its curriculum) and the seed it pairs on.
_NOT_CONFOUNDS = {"curriculum", "curriculum_source", "seed"}
_VALIDATION_SETTINGS = {"val_seed", "val_size", "decode_size"}


def data_text(stage) -> str:
    return (
        f"lengths {stage.min_length}-{stage.max_length}, {stage.noise_peaks} noise peaks, "
        f"dropout {stage.peak_dropout:g}, {stage.mass_error_ppm:g} ppm, "
        f"intensity variation {stage.intensity_variation:g}"
    )


def setting_warnings(logs: list[RunLog], groups: list[str]) -> list[str]:
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
        group: (data_text(run.config.curriculum.stages[0]),
                data_text(run.config.curriculum.stages[-1]))
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
            group: data_text(run.config.curriculum.stage_at(round(low * run.config.scale))[1])
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

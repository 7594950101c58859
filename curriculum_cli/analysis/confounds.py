"""What differs between the arms of a comparison besides the auxiliary-loss schedule.

Settings of ``run.json`` (model, vocabulary, batch size, learning rate, ...; a
setting added to ``RunConfig`` is covered without change here), the length of
the runs and the learning rate at the compare step, validation sets (data,
decoding length limit, ``val_real`` lengths), the data schedule by nominal step
range and the auxiliary-loss exposure, one line each; for gated arms the
introductions, data schedule and exposure as they happened (read from the
logs). And settings that differ *within* an arm (its seeds are then not
comparable).
"""

from __future__ import annotations

import bisect
import json
import statistics
from pathlib import Path

from curriculum_cli.analysis.run_values import introductions_logged, stage_starts_logged
from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES
from curriculum_cli.training.config import RunConfig
from curriculum_cli.training.runlog import RunLog
from curriculum_cli.training.validation import (
    VALIDATION_SPLITS,
    decode_max_length,
    real_length_range,
    split_stage,
)


def _setting(run: RunLog, key: str):
    """A run's setting as plain JSON data (for comparing and showing)."""
    return run.config.model_dump(mode="json")[key]


# Settings that are not confounds: what an arm is (its curriculum) and the seed it pairs on.
_NOT_CONFOUNDS = {"curriculum", "curriculum_source", "seed"}
_VALIDATION_SETTINGS = {"val_seed", "val_size", "decode_size"}


def data_text(stage) -> str:
    real = f", real fraction {stage.real_fraction:g}" if stage.real_fraction > 0 else ""
    return (
        f"lengths {stage.min_length}-{stage.max_length}, {stage.noise_peaks} noise peaks, "
        f"dropout {stage.peak_dropout:g}, {stage.mass_error_ppm:g} ppm, "
        f"intensity variation {stage.intensity_variation:g}{real}"
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


def _differ(values: dict) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) > 1


def _shown(values: dict, fmt=str) -> str:
    return "; ".join(f"{group} {fmt(value)}" for group, value in values.items())


def confounds(logs: list[RunLog], groups: list[str], at_nominal: int | None = None) -> list[str]:
    """What differs between the arms besides the auxiliary-loss schedule, one line each.

    ``groups``: each run's arm; ``at_nominal``: the compare step (for the learning rate
    there). Settings, the runs' length and learning rate, validation sets, the data
    schedule by nominal step range (lengths and noise per stage; realized, median over
    seeds, for gated arms), gated arms' realized introductions, and each auxiliary
    loss's exposure as trained (the sum of weight x nominal steps, mean over seeds).
    """
    members: dict[str, list[RunLog]] = {}
    for run, group in zip(logs, groups, strict=True):
        members.setdefault(group, []).append(run)
    if len(members) < 2:
        return []
    arms = {group: runs[0] for group, runs in members.items()}
    lines = []
    for key in RunConfig.model_fields:
        if key in _NOT_CONFOUNDS:
            continue
        values = {group: _setting(run, key) for group, run in arms.items()}
        if _differ(values):
            what = "validation sets differ: " if key in _VALIDATION_SETTINGS else ""
            lines.append(f"{what}{key}: {_shown(values)}")
    lines += _world_differences(arms)
    lines += _length_and_learning_rate(arms, at_nominal)
    lines += _validation_differences(arms)
    starts = {group: _nominal_starts(runs) for group, runs in members.items()}
    lines += _data_schedule_differences(arms, starts)
    lines += _realized_introductions(members)
    lines += _exposure_differences(members)
    return lines


def _world_differences(arms: dict[str, RunLog]) -> list[str]:
    """Arms whose spectra come from different worlds (or the plain generator) train and
    validate on different spectra at every step."""
    worlds = {group: run.config.curriculum.world for group, run in arms.items()}
    if len({world.model_dump_json() if world else "" for world in worlds.values()}) < 2:
        return []
    shown = {
        group: "the plain generator" if world is None else
        f"a world calibrated on {world.source.n_spectra} spectra of "
        f"{', '.join(Path(f).name for f in world.source.files)}"
        for group, world in worlds.items()
    }  # fmt: skip
    return [f"synthetic spectra differ at every step: {_shown(shown)}"]


def _length_and_learning_rate(arms: dict[str, RunLog], at_nominal: int | None) -> list[str]:
    """Runs of different lengths have different learning-rate schedules (warm-up, cosine)."""
    from curriculum_cli.training.loop import learning_rate

    lines = []
    totals = {group: run.config.total_steps for group, run in arms.items()}
    if _differ(totals):
        shown = _shown({g: f"{t:,} (nominal {round(t / arms[g].config.scale):,})"
                        for g, t in totals.items()})  # fmt: skip
        lines.append(f"total steps: {shown}; the learning-rate schedule follows each run's length")
    if at_nominal is not None:
        rates = {}
        for group, run in arms.items():
            step = min(round(at_nominal * run.config.scale), run.config.total_steps - 1)
            rates[group] = learning_rate(step, run.config)
        if _differ({g: f"{r:.6g}" for g, r in rates.items()}):
            shown = _shown({g: f"{r:.3g} ({r / arms[g].config.lr:.3f} of its peak)"
                            for g, r in rates.items()})  # fmt: skip
            lines.append(f"learning rate at nominal step {at_nominal:,}: {shown}")
    return lines


def _validation_differences(arms: dict[str, RunLog]) -> list[str]:
    """The synthetic sets' data, the decoding length limit and ``val_real``'s lengths."""
    lines = []
    data = {
        group: tuple(data_text(split_stage(run.config.curriculum, split))
                     for split in VALIDATION_SPLITS)
        for group, run in arms.items()
    }  # fmt: skip
    if _differ(data):
        lines.append(
            "validation sets differ: val_easy/val_hard follow each arm's first/last stage ("
            + "; ".join(f"{g}: {easy} / {hard}" for g, (easy, hard) in data.items())
            + ")"
        )
    limits = {group: decode_max_length(run.config) for group, run in arms.items()}
    if _differ(limits):
        lines.append(
            "validation differs: decoded peptides have at most the curriculum's longest "
            f"peptide's residues: {_shown(limits)}"
        )
    real = {group: real_length_range(run.config.curriculum) for group, run in arms.items()
            if run.config.val_data}  # fmt: skip
    if len(real) > 1 and _differ(real):
        lines.append(
            "validation sets differ: val_real holds peptides of the curriculum's lengths: "
            + _shown(real, lambda r: f"{r[0]}-{r[1]}")
        )
    return lines


def _nominal_starts(runs: list[RunLog]) -> list[int]:
    """Nominal first step of each stage of an arm: planned, or for a gated curriculum as
    logged (the median over the seeds in which the stage started)."""
    config = runs[0].config
    if not config.curriculum.gated:
        return [round(start / config.scale) for start in config.curriculum.stage_starts()]
    logged = [stage_starts_logged(run) for run in runs]
    starts = []
    for index in range(len(config.curriculum.stages)):
        seen = [s[index] / run.config.scale for s, run in zip(logged, runs, strict=True)
                if index < len(s)]  # fmt: skip
        if not seen:
            break
        starts.append(round(statistics.median(seen)))
    return starts


MAX_SCHEDULE_LINES = 4
"""Differing data-schedule ranges listed before the rest is counted."""


def _data_schedule_differences(arms: dict[str, RunLog], starts: dict[str, list[int]]) -> list[str]:
    """Nominal step ranges in which the arms train on different data (lengths, noise)."""
    end = max(run.config.nominal_total_steps for run in arms.values())
    bounds = sorted({start for s in starts.values() for start in s} | {end})

    def data_at(group: str, step: int) -> str:
        index = bisect.bisect_right(starts[group], step) - 1
        return data_text(arms[group].config.curriculum.stages[index])

    ranges: list[tuple[int, int, dict[str, str]]] = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        data = {group: data_at(group, low) for group in arms}
        if len(set(data.values())) == 1:
            continue
        if ranges and ranges[-1][1] == low and ranges[-1][2] == data:
            ranges[-1] = (ranges[-1][0], high, data)
        else:
            ranges.append((low, high, data))
    gated = [group for group, run in arms.items() if run.config.curriculum.gated]
    realized = f" (as logged for {', '.join(gated)}: median over seeds)" if gated else ""
    lines = [
        f"data at nominal steps {low:,}-{high - 1:,}{realized}: "
        + "; ".join(f"{group} {text}" for group, text in data.items())
        for low, high, data in ranges[:MAX_SCHEDULE_LINES]
    ]
    if len(ranges) > MAX_SCHEDULE_LINES:
        lines.append(
            f"data differs in {len(ranges) - MAX_SCHEDULE_LINES} more step range(s); "
            "pepcurr plot-schedule shows them all"
        )
    return lines


def _realized_introductions(members: dict[str, list[RunLog]]) -> list[str]:
    """Gated arms: when each auxiliary loss came on, per seed, as logged (nominal)."""
    if not any(runs[0].config.curriculum.gated for runs in members.values()):
        return []
    lines = []
    for loss in AUXILIARY_LOSSES:
        shown = {}
        for group, runs in members.items():
            steps = [introductions_logged(run)[loss] for run in runs]
            on = sorted(step / run.config.scale for step, run in zip(steps, runs, strict=True)
                        if step is not None)  # fmt: skip
            text = "never" if not on else f"{statistics.median(on):,.0f}"
            if len(on) > 1 and on[0] != on[-1]:
                text += f" ({on[0]:,.0f}-{on[-1]:,.0f})"
            if on and len(on) < len(runs):
                text += f", never in {len(runs) - len(on)} of {len(runs)} seeds"
            shown[group] = text
        lines.append(
            f"{loss} loss came on at (nominal, as logged; median and range over seeds): "
            + _shown(shown)
        )
    return lines


def _exposure(run: RunLog) -> dict[str, float]:
    """Each auxiliary loss's weight x nominal steps over the steps the run trained."""
    curriculum, scale = run.config.curriculum, run.config.scale
    starts = stage_starts_logged(run)
    end = run.last_step
    total = dict.fromkeys(AUXILIARY_LOSSES, 0.0)
    for index, start in enumerate(starts):
        stop = min(starts[index + 1] if index + 1 < len(starts) else end, end)
        for loss, weight in curriculum.stages[index].loss_weights.items():
            total[loss] += weight * max(0, stop - start) / scale
    return total


def _exposure_differences(members: dict[str, list[RunLog]]) -> list[str]:
    exposure = {
        group: {
            loss: statistics.fmean(_exposure(run)[loss] for run in runs)
            for loss in AUXILIARY_LOSSES
        }
        for group, runs in members.items()
    }
    baseline = next(iter(members))
    lines = []
    for loss in AUXILIARY_LOSSES:
        amounts = {group: exposure[group][loss] for group in members}
        if len({round(v, 6) for v in amounts.values()}) > 1:
            base = amounts[baseline]
            shown = "; ".join(
                f"{group} {value:,.0f}"
                + (f" ({(value / base - 1):+.0%})" if base > 0 and group != baseline else "")
                for group, value in amounts.items()
            )
            lines.append(
                f"{loss} loss exposure (sum of weight x nominal steps as trained, mean over "
                f"seeds): {shown}"
            )
    return lines

"""Sweeps (``pepcurr sweep``): per scale a table of the levels against the control, the
omnibus test, the best set and the confounds; then the scale x level interaction; or
all of it as JSON. Presentation only: ``analysis.sweep`` decided every number."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from curriculum_cli.analysis.plain import plain
from curriculum_cli.cli.render.common import MISSING, print_table, print_warnings

if TYPE_CHECKING:
    from rich.console import Console

    from curriculum_cli.analysis.sweep import LevelResult, ScaleAnalysis, SweepAnalysis


def _number(value: float, digits: int = 4) -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _signed(value: float) -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{value:+.4f}"


def _p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _level_label(level: LevelResult, one_factor: bool) -> str:
    text = (next(iter(level.levels.values())) if one_factor
            else ", ".join(f"{f}={v}" for f, v in level.levels.items()))  # fmt: skip
    return f"{text} (control)" if level.control else text


def _heading(analysis: SweepAnalysis, scale: ScaleAnalysis) -> str:
    question = analysis.question
    factors = ", ".join(question["factors"])
    control = ", ".join(f"{f}={v}" for f, v in question["control"].items())
    better = scale.comparison.row(question["metric"]).better
    seeds = ", ".join(str(s) for s in scale.seeds)
    return (
        f"Sweep of {question['base']} over {factors} at scale {scale.scale:g} (nominal step "
        f"{scale.comparison.at_nominal:,}): {question['metric']} ({better} is better), seeds "
        f"{seeds}; control {control}"
    )


def render_sweep(console: Console, analysis: SweepAnalysis) -> None:
    """Every scale's table, tests and confounds, then the interaction across scales."""
    for scale in analysis.scales:
        _render_scale(console, analysis, scale)
        console.print()
    lines = interaction_lines(analysis)
    if lines:
        console.print(Text(lines[0], style="bold"), soft_wrap=True, highlight=False)
        for line in lines[1:]:
            console.print(Text(f"  - {line}"), soft_wrap=True, highlight=False)


def _render_scale(console: Console, analysis: SweepAnalysis, scale: ScaleAnalysis) -> None:
    one_factor = len(analysis.question["factors"]) == 1
    console.print(Text(_heading(analysis, scale), style="bold"), soft_wrap=True, highlight=False)
    table = Table(box=box.SIMPLE_HEAD)
    header = next(iter(analysis.question["factors"])) if one_factor else "levels"
    for name, justify in ((header, "left"), ("mean ± sd", "right"), ("n", "right"),
                          ("diff vs control", "right"), ("95% CI", "right"),
                          ("Holm p", "right"), ("MDD", "right"), ("verdict", "left"),
                          ("best set", "center")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=name != "verdict")
    margin = analysis.question["margin"]
    texts = [[column.header for column in table.columns]]
    for level in scale.levels:
        verdict = level.verdict
        best = "yes" if level.in_best else "no"
        if level.within_margin:
            best += f", within ±{margin:g}"
        row = [
            _level_label(level, one_factor),
            f"{_number(level.mean)} ± {_number(level.sd, 2)}",
            str(level.n),
        ]
        if verdict is None:
            row += ["", "", "", "", ""]
        else:
            ci = f"{_signed(verdict.ci_low)} to {_signed(verdict.ci_high)}"
            row += [_signed(verdict.mean_difference), ci, _p(verdict.p_adjusted),
                    _number(level.mdd, 2), verdict.kind]  # fmt: skip
        row.append(best)
        table.add_row(*row, style="bold" if level.in_best else None)
        texts.append(row)
    print_table(console, table, texts)
    for line in scale_lines(analysis, scale):
        console.print(Text(line), soft_wrap=True, highlight=False)
    if scale.comparison.confounds:
        console.print(Text("What else differs between the arms:", style="bold"))
        for line in scale.comparison.confounds:
            console.print(Text(f"  - {line}"), soft_wrap=True, highlight=False)
    print_warnings(console, scale.notes + scale.comparison.warnings)


def scale_lines(analysis: SweepAnalysis, scale: ScaleAnalysis) -> list[str]:
    """The methods and results under a scale's table, one sentence each."""
    lines = []
    if scale.omnibus is not None:
        o = scale.omnibus
        lines.append(f"Omnibus, every level equal: F = {_number(o.f, 3)} on {o.df_levels} and "
                     f"{o.df_error} df, p = {_p(o.p)} ({o.test}).")  # fmt: skip
    for factor, o in scale.factor_omnibus.items():
        lines.append(
            f"{factor} does not matter (at any level of the other factors): p = {_p(o.p)} "
            f"({o.test}; blocks: seed x the other factors' cells)."
        )
    if scale.best is not None:
        one_factor = len(analysis.question["factors"]) == 1
        best = ", ".join(_level_label(level, one_factor) for level in scale.levels
                         if level.in_best)  # fmt: skip
        lines.append(f"Best: {best} cannot be told from the best ({scale.best.test}).")
        if scale.best.within_margin is not None:
            within = [_level_label(level, one_factor) for level in scale.levels
                      if level.within_margin]  # fmt: skip
            margin = analysis.question["margin"]
            lines.append(
                f"Within ±{margin:g} of the best (the interval of its distance to the best lies "
                f"above -{margin:g}): {', '.join(within) if within else 'none'}."
            )
    verdicts = [level.verdict for level in scale.levels if level.verdict is not None]
    if verdicts:
        lines.append(
            f"Contrasts against the control: {verdicts[0].test}; MDD: the smallest difference "
            "each finds with 80% power (as pepcurr ab reports it)."
        )
    return lines


def interaction_lines(analysis: SweepAnalysis) -> list[str]:
    """A heading and one line per factor: does its level effect differ between scales."""
    if len(analysis.scales) < 2:
        return []
    lines = ["Across scales: does the level effect differ between scales?"]
    for factor, found in analysis.interactions.items():
        note = analysis.interaction_notes.get(factor, "")
        if found is None:
            lines.append(f"{factor}: not tested ({note})")
        else:
            lines.append(f"{factor}: p = {_p(found.p)} ({found.test}; {note})")
    return lines


def sweep_data(analysis: SweepAnalysis) -> dict:
    """The sweep as plain JSON data: the question, then per scale ``levels``, ``omnibus``
    and ``best``, then ``interaction`` per factor."""
    scales = []
    for scale in analysis.scales:
        levels = []
        for level in scale.levels:
            verdict = level.verdict
            levels.append({
                "name": level.name, **level.levels, "control": level.control,
                "mean": level.mean, "sd": level.sd, "n": level.n,
                "diff": level.diff,
                "ci_low": None if verdict is None else verdict.ci_low,
                "ci_high": None if verdict is None else verdict.ci_high,
                "p": None if verdict is None else verdict.p_value,
                "p_adjusted": None if verdict is None else verdict.p_adjusted,
                "mdd": level.mdd, "verdict": None if verdict is None else verdict.kind,
                "in_best": level.in_best, "within_margin": level.within_margin,
                "mcb_low": level.mcb_low, "mcb_high": level.mcb_high,
            })  # fmt: skip
        omnibus = None
        if scale.omnibus is not None:
            o = scale.omnibus
            omnibus = {"test": o.test, "p": o.p, "f": o.f, "df_levels": o.df_levels,
                       "df_error": o.df_error, "arrangements": o.arrangements,
                       "exact": o.exact}  # fmt: skip
        scales.append({
            "scale": scale.scale, "at_nominal_step": scale.comparison.at_nominal,
            "seeds": scale.seeds, "levels": levels, "omnibus": omnibus,
            "factor_omnibus": {f: {"test": o.test, "p": o.p}
                               for f, o in scale.factor_omnibus.items()},
            "best": scale.best_names,
            "best_set": None if scale.best is None else {
                "test": scale.best.test, "critical": scale.best.critical,
                "confidence": scale.best.confidence},
            "confounds": scale.comparison.confounds,
            "warnings": scale.notes + scale.comparison.warnings,
        })  # fmt: skip
    interaction = {
        factor: None if found is None else {"test": found.test, "p": found.p,
                                            "statistic": found.statistic}
        for factor, found in analysis.interactions.items()
    }  # fmt: skip
    data = {"question": analysis.question, "scales": scales, "interaction": interaction}
    return plain(data)


def sweep_json(analysis: SweepAnalysis) -> str:
    return json.dumps(sweep_data(analysis), indent=2) + "\n"

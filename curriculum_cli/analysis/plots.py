"""Matplotlib figures of pepcurr's data, written as image files (no window, no pyplot).

matplotlib is imported inside each function so that ``pepcurr --help`` stays
instant; figures are drawn on a plain ``Figure`` (Agg canvas), so no global
backend state is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.errors import PepcurrError, check_output_file

if TYPE_CHECKING:
    from curriculum_cli.curriculum.schema import Curriculum

CURRICULUM_LINESTYLES = ("-", "--", ":", "-.")
CURRICULUM_LINEWIDTHS = (3.2, 2.2, 1.8, 1.4)
"""Thick to thin, so that curricula drawn later stay visible where values coincide."""

# (panel y label, [(stage attribute, legend label, colour)]) from top to bottom.
_SCHEDULE_PANELS = (
    (
        "loss weight",
        [
            ("spectrum_loss_weight", "spectrum loss weight", "tab:blue"),
            ("precursor_loss_weight", "precursor loss weight", "tab:orange"),
        ],
    ),
    (
        "peptide length\n(residues)",
        [
            ("max_length", "max length", "tab:green"),
            ("min_length", "min length", "tab:olive"),
        ],
    ),
    ("noise peaks\n(per spectrum)", [("noise_peaks", "noise peaks", "tab:red")]),
    (
        "fraction",
        [
            ("peak_dropout", "peak dropout", "tab:purple"),
            ("intensity_variation", "intensity variation", "tab:brown"),
        ],
    ),
    ("mass error (ppm)", [("mass_error_ppm", "mass error", "tab:gray")]),
)
_LOSS_COLOURS = {"spectrum": "tab:blue", "precursor": "tab:orange"}


def plot_file(path: Path | str) -> Path:
    """The file a plot is written to, checked before any work: ``path``, or ``path.png`` when
    it has no suffix (as matplotlib names it); a directory, a missing directory or a format
    matplotlib cannot write is refused. An existing file is replaced."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    check_output_file(path, overwrite=True)
    if not path.suffix:
        path = path.with_suffix(".png")
    formats = FigureCanvasAgg.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise PepcurrError(f"{path}: cannot write a plot as {path.suffix}; give one of "
                           f"{', '.join('.' + name for name in sorted(formats))}")  # fmt: skip
    return path


def _save(figure, path: Path, dpi: int) -> Path:
    path = plot_file(path)
    try:
        figure.savefig(path, dpi=dpi)
    except (OSError, ValueError) as error:
        raise PepcurrError(f"{path}: cannot write the plot: {error}") from None
    return path


def _thousands(step: float, _position: int) -> str:
    return f"{step / 1000:g}k" if step else "0"


def plot_schedule(curricula: list[Curriculum], path: Path) -> Path:
    """Draw the curricula's stage values on one shared step axis and save them to ``path``.

    Panels, top to bottom: the two auxiliary loss weights, the peptide length
    range, noise peaks, dropout and intensity variation (fractions), and the
    m/z error in ppm. Each curriculum has one line style (and width); vertical
    lines in the loss's colour and the curriculum's style mark where each
    auxiliary loss is introduced. A gated curriculum is drawn with every gate
    open at its earliest step; in the loss-weight panel a band in the loss's
    colour runs from there to the step the loss comes on at the latest, and the
    legend names the gate.
    Returns the file written (``plot_file``).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(11, 13), layout="constrained")
    axes = figure.subplots(len(_SCHEDULE_PANELS), 1, sharex=True)
    curriculum_handles = []
    gate_windows: set[tuple[str, int, int]] = set()  # (loss, earliest, latest introduction)
    for number, curriculum in enumerate(curricula):
        linestyle = CURRICULUM_LINESTYLES[number % len(CURRICULUM_LINESTYLES)]
        linewidth = CURRICULUM_LINEWIDTHS[number % len(CURRICULUM_LINEWIDTHS)]
        steps = [*curriculum.stage_starts(), curriculum.total_steps]
        for ax, (_, quantities) in zip(axes, _SCHEDULE_PANELS, strict=True):
            for field, _, colour in quantities:
                values = [getattr(stage, field) for stage in curriculum.stages]
                ax.plot(
                    steps,
                    [*values, values[-1]],
                    drawstyle="steps-post",
                    color=colour,
                    linestyle=linestyle,
                    linewidth=linewidth,
                )
        introductions = curriculum.introductions()
        gates = curriculum.introduction_gates()
        for loss, step in introductions.items():
            if step is not None:
                for ax in axes:
                    ax.axvline(
                        step,
                        color=_LOSS_COLOURS[loss],
                        linestyle=linestyle,
                        linewidth=1.0,
                        alpha=0.55,
                    )
            if gates[loss] is not None:
                latest = curriculum.latest_starts()[curriculum.introducing_stages()[loss]]
                gate_windows.add((loss, step, latest))
        # a gated curriculum's gates are long: one line each under its name
        joiner, separator = ("\n    ", ":\n    ") if curriculum.gated else (", ", "; ")
        onsets = joiner.join(f"{loss} {curriculum.introduction_text(loss)}" for loss in gates)
        curriculum_handles.append(
            Line2D(
                [],
                [],
                color="black",
                linestyle=linestyle,
                linewidth=linewidth,
                label=f"{curriculum.name} ({curriculum.total_steps:,} steps){separator}{onsets}",
            )
        )
    for loss, earliest, latest in sorted(gate_windows):
        # the steps in which a gate may open: from the earliest to the latest introduction
        axes[0].axvspan(earliest, latest, color=_LOSS_COLOURS[loss], alpha=0.12, linewidth=0)
    for ax, (ylabel, quantities) in zip(axes, _SCHEDULE_PANELS, strict=True):
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(
            handles=[Line2D([], [], color=colour, label=label) for _, label, colour in quantities],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize="small",
        )
    figure.legend(
        handles=curriculum_handles,
        loc="outside lower center",
        ncols=1,
        fontsize="medium",
        title="line style = curriculum",
    )
    axes[-1].set_xlabel("training step (optimizer updates)")
    axes[-1].xaxis.set_major_formatter(FuncFormatter(_thousands))
    axes[-1].set_xlim(0, max(curriculum.total_steps for curriculum in curricula))
    names = " vs ".join(curriculum.name for curriculum in curricula)
    if len(names) > 90:  # long names (a sweep's arms): the legend names them
        names = f"{len(curricula)} curricula (see the legend)"
    figure.suptitle(
        "Curriculum schedules: "
        + names
        + "\n(vertical lines: where each auxiliary loss is introduced, in the loss's colour"
        + (
            ";\ngated curricula are drawn with every gate open at its earliest step, "
            "the band marks where a gate may open)"
            if gate_windows
            else ")"
        )
    )
    return _save(figure, path, dpi=110)


# (panel title, y label, [(event, column, split or None, line style, legend)], log scale)
_CURVE_PANELS = (
    ("validation residue accuracy", "residue accuracy",
     [("val", "residue_accuracy", "val_hard", "-", "hard"),
      ("val", "residue_accuracy", "val_easy", "--", "easy"),
      ("val", "residue_accuracy", "val_real", ":", "real")], False),
    ("training cross-entropy", "CE (nats)", [("train", "ce", None, "-", "CE")], False),
    ("training spectrum loss (unweighted)", "spectrum loss",
     [("train", "spectrum", None, "-", "spectrum")], False),
    ("training precursor loss (unweighted)", "precursor loss",
     [("train", "precursor", None, "-", "precursor")], True),
    ("gradient norm ratio, auxiliary / CE", "ratio (unweighted)",
     [("grad", "spectrum_ratio", None, "-", "spectrum"),
      ("grad", "precursor_ratio", None, "--", "precursor")], True),
    ("gradient cosine, auxiliary · CE", "cosine",
     [("grad", "spectrum_cosine", None, "-", "spectrum"),
      ("grad", "precursor_cosine", None, "--", "precursor")], False),
)  # fmt: skip
_INTRODUCTION_STYLES = {"spectrum": ":", "precursor": "-."}
TRAIN_SMOOTHING_RECORDS = 5
"""Training curves are a rolling mean over this many ``train`` records (they are noisy)."""


def _step_tick(step: float, _position: int) -> str:
    return f"{step / 1000:g}k" if abs(step) >= 1000 else f"{step:g}"


def _curve(log, event: str, column: str, split: str | None, scale: float):
    """One run's values of ``column`` against nominal step (a pandas Series), or None."""
    frame = log.events(event)
    column = log.logged_as(column)
    if frame.empty or column not in frame:
        return None
    if split is not None:
        frame = frame[frame["split"] == split]
    series = frame.set_index("step")[column].astype(float)
    series = series[~series.index.duplicated(keep="last")]
    if event == "train":
        series = series.rolling(TRAIN_SMOOTHING_RECORDS, min_periods=1).mean()
    series.index = series.index / scale
    return series


def plot_curves(comparison, path: Path) -> Path:
    """Training curves of compared runs against nominal step, saved as a PNG at ``path``.

    Six panels: validation residue accuracy (hard solid, easy dashed, real dotted
    where the runs have ``--val-data``), the three training losses (a rolling
    mean of ``TRAIN_SMOOTHING_RECORDS`` records), the measured gradient ratio
    and cosine of each auxiliary loss against CE. One
    colour per group of seeds: its mean line and, with several seeds, a
    min-max band. Vertical lines in the group's colour mark where each
    auxiliary loss is introduced (dotted: spectrum, dash-dot: precursor), at
    the median over the group's seeds, with a light band from the first to the
    last seed's introduction where they differ (gated stages); a grey line
    marks the compared step. ``comparison`` is a ``compare.Comparison``.
    """
    import pandas as pd
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogFormatter

    # Fixed margins: constrained layout took over a third of the time of this figure.
    figure = Figure(figsize=(14, 8.5))
    figure.subplots_adjust(left=0.055, right=0.99, top=0.93, bottom=0.13, wspace=0.22, hspace=0.2)
    axes = figure.subplots(2, 3, sharex=True).ravel()
    colours = [f"C{index}" for index in range(10)]
    runs = comparison.runs
    logs = {str(log.run_dir): log for log in comparison.logs}
    group_handles = []
    drawn = set()  # (panel, legend) of the curves some run has: runs without val_real have none
    for number, group in enumerate(comparison.groups):
        colour = colours[number % len(colours)]
        members = runs[runs["group"] == group]
        for panel, (ax, (_, _, curves, _)) in enumerate(zip(axes, _CURVE_PANELS, strict=True)):
            for event, column, split, linestyle, legend in curves:
                series = [
                    _curve(logs[run_dir], event, column, split, scale)
                    for run_dir, scale in zip(members["run_dir"], members["scale"], strict=True)
                ]
                series = [s for s in series if s is not None and len(s)]
                if not series:
                    continue
                drawn.add((panel, legend))
                table = pd.concat(series, axis=1).sort_index()
                ax.plot(table.index, table.mean(axis=1), color=colour, linestyle=linestyle,
                        linewidth=1.6)  # fmt: skip
                if len(series) > 1:
                    ax.fill_between(table.index, table.min(axis=1), table.max(axis=1),
                                    color=colour, alpha=0.18, linewidth=0)  # fmt: skip
        for loss, linestyle in _INTRODUCTION_STYLES.items():
            steps = members[f"{loss}_introduced"].dropna()  # gated stages: one step per seed
            if steps.empty:
                continue
            for ax in axes:
                ax.axvline(steps.median(), color=colour, linestyle=linestyle, linewidth=1.1,
                           alpha=0.8)  # fmt: skip
                if steps.min() < steps.max():
                    ax.axvspan(steps.min(), steps.max(), color=colour, alpha=0.08, linewidth=0)
        group_handles.append(
            Line2D([], [], color=colour, linewidth=3, label=f"{group} (n={len(members)})")
        )
    for panel, (ax, (title, ylabel, curves, log_scale)) in enumerate(
        zip(axes, _CURVE_PANELS, strict=True)
    ):
        ax.set_title(title, fontsize="medium")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.axvline(comparison.at_nominal, color="grey", linewidth=0.8)
        if log_scale:
            ax.set_yscale("log")
            # plain numbers ("20", not "2 x 10^1"); minor ticks labelled over short ranges only
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
            ax.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(2, 0.5)))
        shown = [(style, label) for _, _, _, style, label in curves if (panel, label) in drawn]
        if len(shown) > 1:
            ax.legend(
                handles=[Line2D([], [], color="black", linestyle=style, label=label)
                         for style, label in shown],
                fontsize="small",
            )  # fmt: skip
    for ax in axes[3:]:
        ax.set_xlabel("nominal curriculum step")
        ax.xaxis.set_major_formatter(FuncFormatter(_step_tick))
    introduction_handles = [
        Line2D([], [], color="black", linestyle=style, linewidth=1.1, label=f"{loss} loss on")
        for loss, style in _INTRODUCTION_STYLES.items()
    ] + [Line2D([], [], color="grey", linewidth=0.8, label=f"--at {comparison.at_nominal:,}")]
    handles = group_handles + introduction_handles
    # As many legend entries per row as fit the figure's width (long arm names: fewer, more rows)
    longest = max(len(handle.get_label()) for handle in handles)
    per_row = max(1, min(len(handles), int(150 / (longest + 6))))
    rows = -(-len(handles) // per_row)
    figure.subplots_adjust(bottom=0.1 + 0.03 * rows)
    figure.legend(handles=handles, loc="lower center", ncols=per_row, fontsize="medium")
    band = " (line: mean, band: min-max over seeds)" if comparison.grouped else ""
    figure.suptitle(f"Training curves{band}")
    return _save(figure, path, dpi=100)


def plot_dose_response(analysis, path: Path) -> Path:
    """A sweep's dose-response figure (``sweep.SweepAnalysis``), saved as a PNG at ``path``.

    One column per factor. Top: the metric against the level (a start factor's nominal
    step, ``never`` at the right; a weight's multiplier), the mean over seeds with its 95%
    t interval, one line per scale; the control level ringed; a filled marker for a level
    in the best set (one factor), hollow otherwise. Bottom: the paired difference from the
    control with its 95% paired t interval (what the contrasts test), 0 dashed.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    factors = list(analysis.scales[0].profiles)
    width = 6.2 * len(factors) + 1.6
    figure = Figure(figsize=(width, 7.8))
    figure.subplots_adjust(left=1.3 / width, right=0.97, top=0.87, bottom=0.16, wspace=0.3,
                           hspace=0.12)  # fmt: skip
    axes = figure.subplots(2, len(factors), sharex="col", squeeze=False)
    metric = analysis.question["metric"]
    handles = []
    for number, scale in enumerate(analysis.scales):
        colour = f"C{number % 10}"
        handles.append(Line2D([], [], color=colour, marker="o", label=f"scale {scale.scale:g} "
                              f"(n={scale.profiles[factors[0]].n} seeds)"))  # fmt: skip
        for column, name in enumerate(factors):
            profile = scale.profiles[name]
            top, bottom = axes[0][column], axes[1][column]
            order = sorted(range(len(profile.x)), key=profile.x.__getitem__)
            x = [profile.x[k] for k in order]
            diff_low = [0.0 if k == profile.control else v for k, v in enumerate(profile.diff_low)]
            diff_high = [0.0 if k == profile.control else v
                         for k, v in enumerate(profile.diff_high)]  # fmt: skip
            for ax, centre, low, high in (
                (top, profile.mean, profile.mean_low, profile.mean_high),
                (bottom, profile.diff, diff_low, diff_high),
            ):
                ax.plot(x, [centre[k] for k in order], color=colour, linewidth=1.4)
                ax.fill_between(x, [low[k] for k in order], [high[k] for k in order],
                                color=colour, alpha=0.15, linewidth=0)  # fmt: skip
                for k, (x_k, y) in enumerate(zip(profile.x, centre, strict=True)):
                    best = profile.in_best is None or profile.in_best[k]
                    ax.plot([x_k], [y], marker="o", markersize=6, color=colour,
                            markerfacecolor=colour if best else "white")  # fmt: skip
                    if k == profile.control:
                        ax.plot([x_k], [y], marker="o", markersize=13, markerfacecolor="none",
                                markeredgecolor="black", markeredgewidth=1.2)  # fmt: skip
    for column, name in enumerate(factors):
        profile = analysis.scales[0].profiles[name]
        top, bottom = axes[0][column], axes[1][column]
        top.set_title(name, fontsize="medium")
        top.set_ylabel(f"{metric}\n(mean, 95% CI)")
        bottom.set_ylabel("difference from control\n(paired, 95% CI)")
        bottom.axhline(0.0, color="grey", linestyle="--", linewidth=0.8)
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        bottom.set_xticks(profile.x)
        if name.endswith("_start"):
            labels = [text if text == "never" else _thousands(float(text), 0)
                      for text in profile.levels]  # fmt: skip
            bottom.set_xlabel("level: nominal step at which the loss comes on")
        else:
            labels = [f"x{text}" for text in profile.levels]
            bottom.set_xlabel("level: multiplier of the base's weights")
        bottom.set_xticklabels(labels)
        bottom.xaxis.set_major_formatter(FuncFormatter(
            lambda value, position, labels=labels: labels[position]
            if position is not None and position < len(labels) else ""))  # fmt: skip
    handles += [
        Line2D([], [], marker="o", color="black", markerfacecolor="none", markersize=13,
               linestyle="none", label="control"),
        Line2D([], [], marker="o", color="grey", markerfacecolor="white", linestyle="none",
               label="outside the best set"),
    ]  # fmt: skip
    figure.legend(handles=handles, loc="lower center", ncols=min(len(handles), 5),
                  fontsize="small")  # fmt: skip
    base = analysis.question["base"]
    figure.suptitle(f"Sweep of {base}\n{metric} at the compared step, by level", fontsize="large")
    return _save(figure, path, dpi=100)

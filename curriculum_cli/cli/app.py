"""The ``pepcurr`` command line: parse options, call one library function, render.

Every command is a skin over a library function that tests call directly.
Errors raised by the library become one line on stderr and exit code 2 at one
boundary (``boundary.ErrorBoundary``); options shared by several commands are
declared once (``typer_options``; a run's and a decoding's from the fields of
``TrainOptions`` and ``DecodeSettings``). Heavy imports (torch, matplotlib, pandas) happen
inside the commands, so ``pepcurr --help`` stays instant.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from curriculum_cli import __version__
from curriculum_cli.analysis.evaluation import DecodeSettings
from curriculum_cli.cli.boundary import (
    ErrorBoundary,
    debug,
    print_error,
    print_note,
    stderr_console,
    stdout_console,
)
from curriculum_cli.cli.typer_options import (
    AllowChangedModelOpt,
    AtOpt,
    CompareFormat,
    CurriculumArgs,
    CurriculumOpt,
    ForceOpt,
    FormatOpt,
    MarginOpt,
    MetricOpt,
    MztabOpt,
    OutFileOpt,
    PlotOpt,
    QuietOpt,
    RealismFormat,
    ResiduesOpt,
    ScaleOpt,
    SeedOpt,
    SourceArg,
    SweepFormat,
    TargetOpt,
    ThreadsOpt,
    VocabOpt,
    options_from,
)
from curriculum_cli.errors import PepcurrError, check_output_file
from curriculum_cli.spectra.split import SplitGroup
from curriculum_cli.spectra.stage_data import MAX_SPECTRA_AT_ONCE
from curriculum_cli.training.settings import MAX_SEED, TrainOptions

app = typer.Typer(
    cls=ErrorBoundary,
    name="pepcurr",
    help="Measure when, and how strongly, to switch on mass-physics losses "
    "while training de novo peptide sequencing transformers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"pepcurr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
    debug_flag: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    debug["on"] = debug_flag


# ----------------------------------------------------------------------------
# Curriculum commands: generate, validate, plot-schedule
# ----------------------------------------------------------------------------


@app.command()
def generate(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Preset (see --list) or 'phased'.",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    list_presets: Annotated[bool, typer.Option("--list", help="List the presets.")] = False,
    spectrum_at: Annotated[
        int | None, typer.Option(help="phased: first spectrum-loss step.")
    ] = None,
    precursor_at: Annotated[
        int | None, typer.Option(help="phased: first precursor-loss step.")
    ] = None,
    spectrum_at_accuracy: Annotated[
        float | None,
        typer.Option(help="phased, gated: spectrum loss once residue_accuracy_easy >= this (0-1)."),
    ] = None,
    precursor_at_accuracy: Annotated[
        float | None,
        typer.Option(help="phased, gated: precursor loss once residue_accuracy_easy >= this."),
    ] = None,
    latest_spectrum: Annotated[
        int | None,
        typer.Option(help="phased, gated: spectrum loss on at this step at the latest (40000)."),
    ] = None,
    latest_precursor: Annotated[
        int | None,
        typer.Option(help="phased, gated: precursor loss on at this step at the latest (60000)."),
    ] = None,
    total: Annotated[int | None, typer.Option(help="phased: total steps (default 100000).")] = None,
    output: OutFileOpt = None,
    force: ForceOpt = False,
) -> None:
    """Write a curriculum JSON (a preset or a phased A/B arm); to stdout without -o.

    phased --spectrum-at S --precursor-at P switches the losses on at fixed steps;
    phased --spectrum-at-accuracy A --precursor-at-accuracy B when the validation
    residue accuracy reaches A and B (docs/curriculum-format.md).
    """
    from curriculum_cli.cli.render.curricula import render_preset_list
    from curriculum_cli.curriculum.files import curriculum_json, save_curriculum
    from curriculum_cli.curriculum.presets import ALL_PRESET_NAMES, from_options, preset

    if list_presets:
        render_preset_list(stdout_console(), [preset(name) for name in ALL_PRESET_NAMES])
        return
    curriculum = from_options(
        name, spectrum_at, precursor_at, total, spectrum_at_accuracy=spectrum_at_accuracy,
        precursor_at_accuracy=precursor_at_accuracy, latest_spectrum=latest_spectrum,
        latest_precursor=latest_precursor,
    )  # fmt: skip
    if output is None:
        typer.echo(curriculum_json(curriculum), nl=False)
        return
    save_curriculum(curriculum, output, overwrite=force)
    stdout_console().print(
        f"wrote {output} ({curriculum.name}, {curriculum.total_steps:,} steps)", highlight=False
    )


@app.command()
def validate(
    sources: CurriculumArgs,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
) -> None:
    """Check curricula: a summary of each valid one, field and reason for each invalid one."""
    from curriculum_cli.cli.render.curricula import render_curriculum_summary
    from curriculum_cli.curriculum.checks import check_curriculum

    console = stdout_console()
    failed = False
    for source in sources:
        check = check_curriculum(source)
        for line in check.errors:
            print_error(line)
        if check.curriculum is not None:
            render_curriculum_summary(console, check.curriculum, source, check.warnings)
        if strict and check.warnings:
            print_error(f"{source}: {len(check.warnings)} warning(s), errors under --strict")
        failed = failed or bool(check.errors) or (strict and bool(check.warnings))
    if failed:
        raise typer.Exit(2)


@app.command("plot-schedule")
def plot_schedule(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Curriculum files or presets (default: the three presets).",
            metavar="FILE|PRESET",
            show_default=False,
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="PNG to write.")] = None,
) -> None:
    """Show curricula on one step axis: when each loss turns on, how length and noise rise."""
    from curriculum_cli.cli.render.curricula import render_schedule
    from curriculum_cli.curriculum.files import load_curriculum
    from curriculum_cli.curriculum.presets import PRESET_NAMES

    curricula = [load_curriculum(source) for source in sources or PRESET_NAMES]
    if output is not None:
        from curriculum_cli.analysis.plots import plot_file

        output = plot_file(output)
    console = stdout_console()
    render_schedule(console, curricula)
    if output is not None:
        from curriculum_cli.analysis.plots import plot_schedule as draw_schedule

        console.print(f"wrote {draw_schedule(curricula, output)}", highlight=False)


# ----------------------------------------------------------------------------
# Spectra commands: spectra, inspect
# ----------------------------------------------------------------------------


@app.command()
def spectra(
    curriculum: CurriculumOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="MGF file to write.")],
    stage: Annotated[str | None, typer.Option(help="Stage name (or --step).")] = None,
    step: Annotated[int | None, typer.Option(min=0, help="0-based step: its stage.")] = None,
    n: Annotated[
        int, typer.Option("--n", "-n", min=1, max=MAX_SPECTRA_AT_ONCE, help="Number of spectra.")
    ] = 1000,
    seed: SeedOpt = 0,
    noise_peaks: Annotated[int | None, typer.Option(min=0, help="Override: noise peaks.")] = None,
    peak_dropout: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Override: peak dropout (0-1).")
    ] = None,
    mass_error_ppm: Annotated[
        float | None, typer.Option(min=0.0, help="Override: m/z error sd (ppm).")
    ] = None,
    intensity_variation: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Override: intensity variation.")
    ] = None,
    residues: ResiduesOpt = None,
    vocab: VocabOpt = "standard",
    force: ForceOpt = False,
) -> None:
    """Write synthetic spectra of one curriculum stage as MGF (TITLE, PEPMASS, CHARGE, SEQ)."""
    from dataclasses import replace

    from curriculum_cli.curriculum.files import load_curriculum
    from curriculum_cli.spectra.mgf import write_mgf
    from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_spectra
    from curriculum_cli.spectra.vocabulary import load_vocabulary

    tokens = load_vocabulary(vocab)
    chosen = load_curriculum(curriculum)
    index, picked = chosen.stage_named_or_at(stage, step)
    overrides = dict(noise_peaks=noise_peaks, peak_dropout=peak_dropout)
    overrides.update(mass_error_ppm=mass_error_ppm, intensity_variation=intensity_variation)
    overrides.update(residue_distribution=residues.value if residues else None)
    settings = SpectrumSettings.from_stage(picked, world=chosen.world, **overrides)
    batch = generate_spectra(settings, n, tokens, seed)
    batch = replace(batch, titles=[f"{chosen.name}:{picked.name}:seed{seed}:{i}" for i in range(n)])
    write_mgf(output, batch, tokens, overwrite=force)
    residues = f"{settings.residue_distribution} residues"
    if chosen.world is not None:
        residues = "the world's peptides"
    stdout_console().print(
        f"wrote {n:,} spectra to {output} ({chosen.name}, stage {picked.name} (index {index}): "
        f"lengths {settings.min_length}-{settings.max_length}, {settings.noise_peaks} noise peaks, "
        f"dropout {settings.peak_dropout:g}, {settings.mass_error_ppm:g} ppm, "
        f"intensity variation {settings.intensity_variation:g}, {residues}; seed {seed})",
        highlight=False,
        soft_wrap=True,
    )


@app.command("inspect")
def inspect_command(
    path: Annotated[Path, typer.Argument(metavar="FILE.mgf", help="MGF file to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip invalid spectra and count them.")
    ] = False,
    tolerance_da: Annotated[
        float,
        typer.Option("--tolerance", min=0.0, max=1.0, help="b/y ion m/z tolerance (Da)."),
    ] = 0.02,
    no_filter: Annotated[
        bool, typer.Option("--no-filter", help="Use the peaks as in the file (no preprocessing).")
    ] = False,
    vocab: VocabOpt = "standard",
) -> None:
    """Check an MGF file: charges, peaks, peptides, modifications, precursor error, b/y ions."""
    import json
    from dataclasses import asdict

    from curriculum_cli.cli.render.spectra import render_inspect_report
    from curriculum_cli.spectra.inspection import inspect_mgf
    from curriculum_cli.spectra.peaks import PeakFilter
    from curriculum_cli.spectra.vocabulary import load_vocabulary

    peak_filter = PeakFilter.keep_all() if no_filter else PeakFilter()
    report = inspect_mgf(path, tolerance_da, load_vocabulary(vocab), peak_filter, skip_invalid)
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2))
    else:
        render_inspect_report(stdout_console(), report)


@app.command()
def calibrate(
    paths: Annotated[
        list[Path], typer.Argument(metavar="REAL.mgf", help="Annotated MGF files (SEQ=...).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Curriculum JSON to write.")],
    name: Annotated[
        str | None, typer.Option(help="Curriculum name (default: calibrated-FIRST_FILE).")
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Fit the realistic simulator to annotated real spectra; write a curriculum of that world."""
    from curriculum_cli.cli.render.realism import render_calibration
    from curriculum_cli.curriculum.files import save_curriculum
    from curriculum_cli.curriculum.presets import calibrated_curriculum
    from curriculum_cli.spectra.calibration import calibrate as fit_world

    check_output_file(output, force)  # before a fit of tens of seconds
    calibration = fit_world(paths)
    curriculum = calibrated_curriculum(calibration, name or f"calibrated-{paths[0].stem}")
    save_curriculum(curriculum, output, overwrite=force)
    render_calibration(stdout_console(), calibration, output)


@app.command()
def realism(
    paths: Annotated[
        list[Path], typer.Argument(metavar="REAL.mgf", help="Annotated MGF files (SEQ=...).")
    ],
    curriculum: CurriculumOpt,
    stage: Annotated[str | None, typer.Option(help="Only this stage (default: all).")] = None,
    n: Annotated[
        int, typer.Option("--n", "-n", min=20, help="Synthetic spectra per stage (at most 20,000).")
    ] = 512,
    seed: SeedOpt = 0,
    vocab: VocabOpt = "standard",
    output_format: Annotated[
        RealismFormat, typer.Option("--format", "-f", help="Output format.")
    ] = RealismFormat.table,
) -> None:
    """Real spectra beside each stage's synthetic ones: medians and a classifier's AUC."""
    import json

    from curriculum_cli.analysis.realism import realism as measure
    from curriculum_cli.cli.render.realism import realism_data, render_realism
    from curriculum_cli.curriculum.files import load_curriculum
    from curriculum_cli.spectra.vocabulary import load_vocabulary

    chosen = load_curriculum(curriculum)
    indices = range(len(chosen.stages))
    if stage is not None:
        indices = [chosen.stage_named_or_at(stage, None)[0]]
    report = measure(paths, chosen, list(indices), load_vocabulary(vocab), n=n, seed=seed)
    if output_format is RealismFormat.json:
        typer.echo(json.dumps(realism_data(report), indent=2))
    else:
        render_realism(stdout_console(), report)


@app.command()
def split(
    paths: Annotated[
        list[Path], typer.Argument(metavar="FILE.mgf", help="Annotated MGF files (SEQ=...).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for train/val/test.mgf.")],
    val: Annotated[
        float, typer.Option(min=0.0, help="Fraction of spectra: val (below 1, with --test).")
    ] = 0.1,
    test: Annotated[
        float, typer.Option(min=0.0, help="Fraction of spectra: test (below 1, with --val).")
    ] = 0.1,
    seed: SeedOpt = 0,
    group: Annotated[
        SplitGroup,
        typer.Option(
            help="Keep together the spectra of one backbone (unmodified sequence, "
            "I = L) or of one peptide (modifications count: pepcurr 0.2's rule)."
        ),
    ] = SplitGroup.backbone,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Split annotated MGF into train/val/test with no backbone (or peptide) in two splits."""
    from curriculum_cli.cli.render.spectra import render_split
    from curriculum_cli.spectra.split import split_mgf

    result = split_mgf(paths, out, val_fraction=val, test_fraction=test, seed=seed,
                       overwrite=force, group=group)  # fmt: skip
    render_split(stdout_console(), result)


@app.command()
def annotate(
    spectra_file: Annotated[
        Path, typer.Argument(metavar="SPECTRA", help="Spectra: .mzML or .mgf (SEQ not needed).")
    ],
    psms: Annotated[
        Path,
        typer.Option(
            help="Search results: Sage, MaxQuant msms.txt, MSFragger/FragPipe, "
            "Percolator, mzIdentML, a ProForma TSV (read with psm_utils)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Annotated MGF to write.")],
    fdr: Annotated[
        float,
        typer.Option(help="Keep target PSMs at or under this q-value: above 0, at most 1."),
    ] = 0.01,
    psm_format: Annotated[
        str,
        typer.Option(
            help="psm_utils reader (sage, msms, fragpipe, percolator, mzid, tsv, "
            "...); default: from the file name."
        ),
    ] = "infer",
    run: Annotated[
        str | None, typer.Option(help="The run whose PSMs to use, when the file has several.")
    ] = None,
    vocab: VocabOpt = "standard",
    force: ForceOpt = False,
) -> None:
    """Write annotated MGF from spectra and a search engine's PSMs (SEQ from the best PSM)."""
    from curriculum_cli.cli.render.spectra import render_annotation
    from curriculum_cli.spectra.annotate import annotate_spectra
    from curriculum_cli.spectra.vocabulary import load_vocabulary

    result = annotate_spectra(spectra_file, psms, output, load_vocabulary(vocab), fdr=fdr,
                              psm_format=psm_format, run=run, overwrite=force)  # fmt: skip
    render_annotation(stdout_console(), result, vocab)


# ----------------------------------------------------------------------------
# Training: train
# ----------------------------------------------------------------------------


RUN_SETTINGS_PANEL = "Run settings"
AB_RUN_SETTINGS_PANEL = "Settings of every run"
AB_PER_RUN = ("curriculum", "seed", "scale")  # ab.PER_RUN_SETTINGS: set from arms, seeds, scale


@app.command()
@options_from(TrainOptions, panel=RUN_SETTINGS_PANEL)
def train(
    options: TrainOptions,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")] = Path(
        "runs/run"
    ),
    threads: ThreadsOpt = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this step with a checkpoint.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    fork_from: Annotated[
        Path | None,
        typer.Option(
            metavar="RUN_DIR",
            help="Start as a copy of this run, stopped within the steps the two share (what "
            "'ab --plan' prints), and train on from its checkpoint.",
        ),
    ] = None,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard",
            help="Also write TensorBoard event files to RUN_DIR/tensorboard "
            "(pip install 'pepcurr\\[tensorboard]').",
        ),
    ] = False,
    allow_changed_model: AllowChangedModelOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a model on synthetic and/or real annotated spectra, following a curriculum.

    Under torchrun (torchrun --nproc-per-node N -m curriculum_cli train ...) the
    N processes train one run data-parallel; --batch-size is then per process.
    """
    from curriculum_cli.cli.render.progress import TrainingProgress, render_train_result
    from curriculum_cli.devices import set_threads
    from curriculum_cli.training.distributed import Distributed
    from curriculum_cli.training.launch import run_training

    console = stdout_console()
    set_threads(threads)
    reporter = TrainingProgress(console, quiet=quiet)
    result = run_training(out, options, resume=resume, max_steps=max_steps, reporter=reporter,
                          tensorboard=tensorboard, fork_from=fork_from,
                          allow_changed_model=allow_changed_model)  # fmt: skip
    if Distributed.from_env().is_main:  # under torchrun: rank 0 reports
        render_train_result(console, result)
    if result.status == "interrupted":
        raise typer.Exit(130)


# ----------------------------------------------------------------------------
# Evaluation: evaluate, compare, ab
# ----------------------------------------------------------------------------


def _print_comparison(comparison, output_format: CompareFormat) -> None:
    """The table on stdout (machine formats: warnings on stderr, stdout stays parseable)."""
    from curriculum_cli.cli.render.comparison import COMPARISON_FORMATS, render_comparison

    if output_format is CompareFormat.table:
        render_comparison(stdout_console(), comparison)
        return
    typer.echo(COMPARISON_FORMATS[output_format.value](comparison), nl=False)
    for warning in comparison.warnings:
        print_note(f"warning: {warning}")


DECODING_PANEL = "Decoding"


@app.command()
@options_from(DecodeSettings, panel=DECODING_PANEL)
def evaluate(
    source: SourceArg,
    mgf: Annotated[Path, typer.Option("--mgf", help="Annotated MGF spectra (SEQ=...).")],
    decoding: DecodeSettings,
    predictions: Annotated[
        Path | None, typer.Option(help="Write per-spectrum predictions to this CSV.")
    ] = None,
    mztab: MztabOpt = None,
    threads: ThreadsOpt = None,
    allow_changed_model: AllowChangedModelOpt = False,
) -> None:
    """Decode annotated MGF spectra with a trained run: AA precision/recall, peptide recall."""
    from curriculum_cli.analysis.evaluation import evaluate_checkpoint
    from curriculum_cli.cli.render.evaluation import render_evaluation
    from curriculum_cli.devices import set_threads

    set_threads(threads)
    result = evaluate_checkpoint(source, mgf, decoding, predictions_csv=predictions, mztab=mztab,
                                 allow_changed_model=allow_changed_model)  # fmt: skip
    console = stdout_console()
    render_evaluation(console, result)
    for path in (predictions, mztab):
        if path is not None:
            console.print(f"wrote {path}", highlight=False)


@app.command()
@options_from(DecodeSettings, panel=DECODING_PANEL)
def predict(
    source: SourceArg,
    mgf: Annotated[Path, typer.Option("--mgf", help="MGF spectra (SEQ not needed).")],
    mztab: Annotated[Path, typer.Option(help="mzTab 1.0 file to write (as Casanovo does).")],
    decoding: DecodeSettings,
    threads: ThreadsOpt = None,
    allow_changed_model: AllowChangedModelOpt = False,
) -> None:
    """Decode MGF spectra (annotated or not) with a trained run and write mzTab."""
    from curriculum_cli.analysis.evaluation import predict_checkpoint
    from curriculum_cli.cli.render.evaluation import render_prediction
    from curriculum_cli.devices import set_threads

    set_threads(threads)
    result = predict_checkpoint(source, mgf, mztab, decoding, allow_changed_model)
    render_prediction(stdout_console(), result)


@app.command()
def compare(
    runs: Annotated[
        list[Path], typer.Argument(metavar="RUN_DIR", help="Run directories to compare.")
    ],
    at: AtOpt = None,
    metric: MetricOpt = "residue_accuracy_hard",
    target: TargetOpt = 0.9,
    margin: MarginOpt = None,
    rescore: Annotated[
        int | None,
        typer.Option(
            "--rescore",
            min=2,
            max=MAX_SPECTRA_AT_ONCE,
            metavar="N",
            help="Also score each run's final checkpoint on N fixed spectra (and its own "
            "validation set, spectrum by spectrum): paired, with the validation set's share "
            "of the noise. Written beside each run; needs --at at the end.",
        ),
    ] = None,
    per_step: Annotated[
        bool,
        typer.Option(
            "--per-step",
            help="Also each refinement step's own values (accuracy, losses) of models with "
            "several steps, such as trm-tiny.",
        ),
    ] = False,
    output_format: FormatOpt = CompareFormat.table,
    plot: PlotOpt = None,
) -> None:
    """Compare runs at one nominal step: seeds grouped, better value per row marked, verdict."""
    from curriculum_cli.analysis.compare import compare_runs

    if plot is not None:
        from curriculum_cli.analysis.plots import plot_file

        plot = plot_file(plot)  # before the runs are read (and re-scored)
    comparison = compare_runs(runs, at=at, metric=metric, target=target, margin=margin,
                              rescore=rescore, per_step=per_step)  # fmt: skip
    _print_comparison(comparison, output_format)
    if plot is not None:
        from curriculum_cli.analysis.plots import plot_curves

        print_note(f"wrote {plot_curves(comparison, plot)}")


@app.command()
@options_from(TrainOptions, panel=AB_RUN_SETTINGS_PANEL, exclude=AB_PER_RUN)
def ab(
    curricula: Annotated[
        list[str],
        typer.Argument(metavar="CURRICULUM", help="Two or more curriculum JSON files or presets."),
    ],
    options: TrainOptions,
    seeds: Annotated[int, typer.Option(min=1, max=1000, help="Seeds per curriculum.")] = 2,
    base_seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="First seed (then +1, +2, ...).")
    ] = 0,
    scale: ScaleOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory of the runs.")] = Path(
        "runs/ab"
    ),
    at: AtOpt = None,
    metric: MetricOpt = "residue_accuracy_hard",
    target: TargetOpt = 0.9,
    margin: MarginOpt = None,
    output_format: FormatOpt = CompareFormat.table,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Curves PNG (default: OUT/curves.png).")
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            min=0, help="Runs trained at once, one thread each (0: one per CPU core; 1 on CUDA)."
        ),
    ] = 0,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Train nothing: print the pepcurr train command of every run (shared prefixes "
            "first), for a scheduler; then run ab again to compare.",
        ),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train each curriculum x seed (reusing finished runs, resuming interrupted ones), compare."""
    from curriculum_cli.analysis.ab import AbSpec, plan_commands, run_ab
    from curriculum_cli.cli.render.progress import TrainingProgress
    from curriculum_cli.devices import set_threads

    spec = AbSpec(arms=tuple(curricula), out_dir=out, seeds=seeds, base_seed=base_seed,
                  scale=scale, options=options, at=at, metric=metric, target=target,
                  margin=margin)  # fmt: skip
    set_threads(None)  # runs trained here (one job) use the default, as the workers do
    if plan:
        typer.echo("\n".join(plan_commands(spec)))
        return
    # Progress goes to stderr when stdout carries JSON, CSV or Markdown.
    progress_console = stdout_console() if output_format is CompareFormat.table else None
    reporter = TrainingProgress(progress_console or stderr_console(), quiet=quiet)
    result = run_ab(spec, plot=plot, jobs=jobs, reporter=reporter)
    if result.interrupted:  # 128 + the signal, as a shell reports it (Ctrl-C: 130)
        raise typer.Exit(128 + (result.stop_signal or signal.SIGINT))
    _print_comparison(result.comparison, output_format)
    print_note(f"wrote {result.plot}")


def _scales(text: str | None) -> tuple[float | None, ...]:
    """``--scale 0.0025,0.005,0.01`` as numbers (None: the curricula as written)."""
    if text is None:
        return (None,)
    scales = []
    for item in text.split(","):
        try:
            scales.append(float(item))
        except ValueError:
            raise PepcurrError(f"--scale {text!r}: {item.strip()!r} is not a number") from None
    return tuple(scales)


@app.command()
@options_from(TrainOptions, panel=AB_RUN_SETTINGS_PANEL, exclude=AB_PER_RUN)
def sweep(
    base: Annotated[
        str, typer.Argument(metavar="BASE", help="The base curriculum: a JSON file or preset.")
    ],
    options: TrainOptions,
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            metavar="FACTOR=LEVELS",
            help="A factor and its levels, e.g. spectrum_start=0,10000,never (factors: "
            "spectrum_start, precursor_start: the nominal step a loss comes on, or never; "
            "spectrum_weight, precursor_weight: a multiplier of the base's weights). Repeat "
            "for a full factorial.",
        ),
    ],
    control: Annotated[
        list[str] | None,
        typer.Option(
            "--control",
            metavar="FACTOR=LEVEL",
            help="The control cell, the baseline of every contrast (default: the base's own "
            "level of each factor, added if not listed).",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per arm (and scale).")] = 2,
    base_seed: Annotated[int, typer.Option(help="First seed (then +1, +2, ...).")] = 0,
    scale: Annotated[
        str | None,
        typer.Option(
            "--scale",
            metavar="S[,S...]",
            help="Multiply every stage's steps; several scales (0.0025,0.005,0.01) run the "
            "same sweep at each, in OUT/scale-S.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory of the sweep.")] = Path(
        "runs/sweep"
    ),
    at: AtOpt = None,
    metric: MetricOpt = "residue_accuracy_hard",
    target: TargetOpt = 0.9,
    margin: MarginOpt = None,
    output_format: Annotated[
        SweepFormat, typer.Option("--format", "-f", help="Output format.")
    ] = SweepFormat.table,
    jobs: Annotated[
        int,
        typer.Option(
            min=0, help="Runs trained at once, one thread each (0: one per CPU core; 1 on CUDA)."
        ),
    ] = 0,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Train nothing: print the pepcurr train command of every run, scale by scale "
            "(shared prefixes first); then run sweep again to analyse.",
        ),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Vary when and how strongly the auxiliary losses come on: every level x seed (x scale),
    trained with shared prefixes once, then the dose-response analysis (docs/sweep.md)."""
    from curriculum_cli.analysis.sweep import SweepSpec, plan_sweep_commands, run_sweep
    from curriculum_cli.cli.render.progress import TrainingProgress
    from curriculum_cli.cli.render.sweep import render_sweep, sweep_json
    from curriculum_cli.curriculum.factors import parse_control, parse_vary
    from curriculum_cli.devices import set_threads

    varied = tuple(parse_vary(text) for text in vary)
    spec = SweepSpec(base=base, varied=varied, out_dir=out,
                     control=tuple(parse_control(control or [], list(varied)).items()),
                     scales=_scales(scale), seeds=seeds, base_seed=base_seed, options=options,
                     at=at, metric=metric, target=target, margin=margin)  # fmt: skip
    set_threads(None)
    if plan:
        typer.echo("\n".join(plan_sweep_commands(spec)))
        return
    table = output_format is SweepFormat.table
    reporter = TrainingProgress(stdout_console() if table else stderr_console(), quiet=quiet)
    result = run_sweep(spec, jobs=jobs, reporter=reporter)
    if result.interrupted:  # 128 + the signal, as a shell reports it (Ctrl-C: 130)
        raise typer.Exit(128 + (result.training.stop_signal or signal.SIGINT))
    if table:
        render_sweep(stdout_console(), result.analysis)
    else:
        typer.echo(sweep_json(result.analysis), nl=False)
    for path in result.plots:
        print_note(f"wrote {path}")


@app.command("export-tensorboard")
def export_tensorboard_command(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR", help="Run directories.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Log directory: each run to OUT/<run name> (default: RUN_DIR/tensorboard).",
        ),
    ] = None,
) -> None:
    """Write TensorBoard event files for existing runs, from their metrics.jsonl."""
    from curriculum_cli.training.tensorboard_log import export_tensorboard, require_tensorboard

    require_tensorboard("export-tensorboard")
    names = [run.resolve().name for run in runs]
    if out is not None and len(set(names)) < len(names):
        raise PepcurrError("two runs share a directory name; export them without --out")
    if out is not None and out.exists() and not out.is_dir():
        raise PepcurrError(f"--out {out}: is a file; give a directory")
    console = stdout_console()
    log_dirs = []
    for run, name in zip(runs, names, strict=True):
        result = export_tensorboard(run, None if out is None else out / name)
        log_dirs.append((name, result.log_dir))
        replaced = f", replacing {result.n_replaced} event file(s)" if result.n_replaced else ""
        console.print(
            f"wrote {result.log_dir}: {result.n_scalars:,} values from {result.n_records:,} "
            f"records{replaced}", highlight=False, soft_wrap=True,
        )  # fmt: skip
    if out is not None or len(log_dirs) == 1:
        view = f"--logdir {out if out is not None else log_dirs[0][1]}"
    else:
        view = "--logdir_spec " + ",".join(f"{name}:{path}" for name, path in log_dirs)
    console.print(f"view with: tensorboard {view}", highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------


def main() -> None:
    """Console-script entry point (also ``python -m curriculum_cli``)."""
    app(prog_name="pepcurr")

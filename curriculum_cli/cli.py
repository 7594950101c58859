"""The ``pepcurr`` command line: parse options, call one library function, render.

Every command is a skin over a library function that tests call directly.
Errors raised by the library (``PepcurrError`` and pydantic's
``ValidationError``) are turned into one or two lines on stderr and exit code
2 by ``main``; ``pepcurr --debug ...`` shows the traceback instead. Heavy
imports (torch, matplotlib, pandas) happen inside the commands, so
``pepcurr --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from curriculum_cli import __version__
from curriculum_cli.errors import PepcurrError

_state = {"debug": False}


def format_validation_error(error, source: str | None = None) -> list[str]:
    """One ``source: loc: msg`` line per problem of a pydantic ``ValidationError``.

    Locations are dotted with list indices in brackets: ``stages[2].max_length``.
    """
    lines = []
    for problem in error.errors():
        loc = ""
        for part in problem.get("loc", ()):
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = problem.get("msg", "invalid")
        prefix = f"{source}: " if source else ""
        lines.append(f"{prefix}{loc or '(top level)'}: {msg}")
    return lines


def print_error(message: str) -> None:
    """One error line on stderr, never re-wrapped and never read as rich markup."""
    from rich.console import Console

    Console(stderr=True).print(
        f"error: {message}", style="bold red", markup=False, highlight=False, soft_wrap=True
    )


class _ErrorBoundary(TyperGroup):
    """Maps library errors to one clear line and exit 2 (``--debug``: traceback)."""

    def invoke(self, ctx):
        from pydantic import ValidationError

        try:
            return super().invoke(ctx)
        except PepcurrError as error:
            if _state["debug"]:
                raise
            print_error(str(error))
            raise typer.Exit(2) from None
        except ValidationError as error:
            if _state["debug"]:
                raise
            for line in format_validation_error(error):
                print_error(line)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_ErrorBoundary,
    name="pepcurr",
    help="Measure when, and how strongly, to switch on mass-physics losses "
    "while training de novo peptide sequencing transformers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# ----------------------------------------------------------------------------
# Shared options, defined once
# ----------------------------------------------------------------------------

CurriculumOpt = Annotated[
    str,
    typer.Option(
        "--curriculum",
        "-c",
        help="Curriculum JSON file or preset name (current, revised, conservative).",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (every draw is seeded from it).")]
OutFileOpt = Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")]


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
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    _state["debug"] = debug


def stdout_console():
    from rich.console import Console

    return Console()


# ----------------------------------------------------------------------------
# Curriculum commands: generate, validate, plot-schedule
# ----------------------------------------------------------------------------

CurriculumArgs = Annotated[
    list[str],
    typer.Argument(
        help="Curriculum JSON files or preset names (current, revised, conservative).",
        metavar="FILE|PRESET",
        show_default=False,
    ),
]


@app.command()
def generate(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Preset (current, revised, conservative) or 'phased'.",
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
    total: Annotated[int | None, typer.Option(help="phased: total steps (default 100000).")] = None,
    output: OutFileOpt = None,
    force: ForceOpt = False,
) -> None:
    """Write a curriculum JSON (a preset or a phased A/B arm); to stdout without -o."""
    from curriculum_cli.curriculum import curriculum_json, save_curriculum
    from curriculum_cli.presets import PRESET_NAMES, from_options, preset
    from curriculum_cli.render import render_preset_list

    if list_presets:
        render_preset_list(stdout_console(), [preset(preset_name) for preset_name in PRESET_NAMES])
        return
    curriculum = from_options(name, spectrum_at, precursor_at, total)
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
    from curriculum_cli.curriculum import check_curriculum
    from curriculum_cli.render import render_curriculum_summary

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
    from curriculum_cli.curriculum import load_curriculum
    from curriculum_cli.presets import PRESET_NAMES
    from curriculum_cli.render import render_schedule

    curricula = [load_curriculum(source) for source in sources or PRESET_NAMES]
    console = stdout_console()
    render_schedule(console, curricula)
    if output is not None:
        from curriculum_cli.plots import plot_schedule as draw_schedule

        draw_schedule(curricula, output)
        console.print(f"wrote {output}", highlight=False)


# ----------------------------------------------------------------------------
# Spectra commands: spectra, inspect
# ----------------------------------------------------------------------------

# ----------------------------------------------------------------------------
# Training: train
# ----------------------------------------------------------------------------

RunDirOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")]


@app.command()
def train(
    curriculum: Annotated[
        str | None,
        typer.Option(
            "--curriculum", "-c", help="Curriculum JSON file or preset (default: revised)."
        ),
    ] = None,
    out: RunDirOpt = Path("runs/run"),
    scale: Annotated[
        float | None, typer.Option(help="Multiply every stage's steps (0.02: 100k -> 2k).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    model: Annotated[str | None, typer.Option(help="Model size: tiny or base.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Spectra per step.")] = None,
    lr: Annotated[float | None, typer.Option(min=0.0, help="Peak learning rate (AdamW).")] = None,
    val_every: Annotated[int | None, typer.Option(min=1, help="Steps between validations.")] = None,
    grad_every: Annotated[
        int | None, typer.Option(min=1, help="Steps between gradient measurements.")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this step with a checkpoint.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a model on synthetic spectra, following a curriculum."""
    from curriculum_cli.engine import run_training
    from curriculum_cli.render import TrainingProgress, render_train_result

    console = stdout_console()
    options = dict(
        curriculum=curriculum,
        scale=scale,
        seed=seed,
        device=device,
        model=model,
        batch_size=batch_size,
        lr=lr,
        val_every=val_every,
        grad_every=grad_every,
    )
    reporter = TrainingProgress(console, quiet=quiet)
    result = run_training(out, options, resume=resume, max_steps=max_steps, reporter=reporter)
    render_train_result(console, result)
    if result.status == "interrupted":
        raise typer.Exit(130)


# ----------------------------------------------------------------------------
# Evaluation: evaluate, compare, ab
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    app()

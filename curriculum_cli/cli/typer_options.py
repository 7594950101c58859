"""The Typer options and arguments that several commands share, each declared once.

A command that takes a settings object (``TrainOptions`` for ``train`` and
``ab``, ``DecodeSettings`` for ``evaluate`` and ``predict``) gets one option per
field from ``options_from``: flag, help, bounds and default come from the field,
so the settings are declared in one place (``training/settings.py``,
``analysis/evaluation.py``) and none can be dropped or renamed on the way to
the object. The other shared options are ``Annotated`` aliases. Choices are
enums, so ``--help`` lists them and a bad value is refused at parse time.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from pydantic import BaseModel, ValidationError

from curriculum_cli.curriculum.presets import ALL_PRESET_NAMES
from curriculum_cli.devices import MAX_THREADS
from curriculum_cli.errors import PepcurrError
from curriculum_cli.spectra.chemistry import ResidueDistribution
from curriculum_cli.training.settings import MAX_SEED, TrainOptions

PRESETS_HELP = ", ".join(ALL_PRESET_NAMES)

CurriculumOpt = Annotated[
    str,
    typer.Option(
        "--curriculum", "-c", help=f"Curriculum JSON file or preset name ({PRESETS_HELP})."
    ),
]
CurriculumArgs = Annotated[
    list[str],
    typer.Argument(
        help=f"Curriculum JSON files or preset names ({PRESETS_HELP}).",
        metavar="FILE|PRESET",
        show_default=False,
    ),
]
SeedOpt = Annotated[
    int,
    typer.Option("--seed", min=0, max=MAX_SEED, help="Random seed (every draw is seeded from it)."),
]
OutFileOpt = Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_THREADS,
        help="torch CPU threads per run (default 1: see docs/performance.md).",
    ),
]
VocabOpt = Annotated[
    str,
    typer.Option(
        "--vocab",
        metavar="standard|casanovo|FILE",
        help="The vocabulary: standard, casanovo (plus M oxidation, N/Q deamidation, "
        "N-terminal modifications) or a YAML/JSON file (docs/vocabulary.md).",
    ),
]


# ----------------------------------------------------------------------------
# Options from the fields of a settings object
# ----------------------------------------------------------------------------


def _model_spec(value: str | None) -> str | None:
    """A ``--model`` value checked at parse time: a preset name or MODULE:FUNCTION."""
    from curriculum_cli.model.factory import is_factory

    if value is None or is_factory(value):
        return value
    from curriculum_cli.model.factory import preset_architectures

    presets = preset_architectures()
    if value not in presets:
        raise typer.BadParameter(
            f"{value!r} is neither a preset ({', '.join(presets)}) nor a factory "
            "(package.module:function or path/to/file.py:function)"
        )
    return value


_PARSERS: dict[str, Callable[[Any], Any]] = {"--model": _model_spec}
"""Flags whose values are checked as they are parsed."""


def _extra(model: type[BaseModel], name: str) -> dict[str, Any]:
    """A field's command-line declaration: ``flag``, and maybe ``short``, ``metavar``,
    ``shown_default`` (how ``--help`` states a default the value does not show)."""
    return model.model_fields[name].json_schema_extra or {}


def field_option(model: type[BaseModel], name: str, panel: str | None = None) -> Any:
    """The ``typer.Option`` of the field ``name`` of ``model``: its flag, help and bounds."""
    field, extra = model.model_fields[name], _extra(model, name)
    bounds = {}
    for bound in field.metadata:  # annotated_types' Ge, Le (Gt, Lt: below)
        for key, option in (("ge", "min"), ("le", "max")):
            if hasattr(bound, key):
                bounds[option] = getattr(bound, key)
    # Typer's ranges are closed: a Gt or Lt bound given as min or max would show "x>=0" in
    # --help for a value the object refuses; the object alone checks it, in one line.
    names = [extra["flag"], *([extra["short"]] if "short" in extra else [])]
    shown = {"show_default": extra["shown_default"]} if "shown_default" in extra else {}
    return typer.Option(*names, help=field.description, metavar=extra.get("metavar"),
                        parser=_PARSERS.get(extra["flag"]), rich_help_panel=panel, **bounds,
                        **shown)  # fmt: skip


def _command_line_type(annotation: Any, default: Any) -> Any:
    """The type Typer parses a field as: ``X | None`` -> ``X``, the first of a union
    (``str | Curriculum`` -> ``str``), ``tuple[X, ...]`` -> ``list[X]``; None allowed when
    it is the default."""
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is tuple:
        annotation = list[get_args(annotation)[0]]
    return annotation | None if default is None else annotation


def _problems(model: type[BaseModel], error: ValidationError) -> str:
    """``--flag: reason`` per problem of the settings object built from options."""
    lines = []
    for problem in error.errors():
        name = problem["loc"][0] if problem["loc"] else ""
        flag = _extra(model, name).get("flag", name) if name in model.model_fields else name
        lines.append(f"{flag}: {problem['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def options_from(
    model: type[BaseModel], panel: str, exclude: tuple[str, ...] = ()
) -> Callable[[Callable], Callable]:
    """A decorator: the command's parameter typed ``model`` becomes one option per field of
    ``model`` with a flag (but ``exclude``), under the ``--help`` heading ``panel``; the
    command is called with them gathered into one ``model`` object.

    The options are made from the fields, so a field cannot miss its option or lose its
    value on the way; a field named like one of the command's own parameters is an error
    here, and a value the object refuses is one ``--flag: reason`` line (exit 2).
    """

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        [target] = [p for p in signature.parameters.values() if p.annotation is model]
        names = [name for name in model.model_fields
                 if "flag" in _extra(model, name) and name not in exclude]  # fmt: skip
        clash = set(names) & set(signature.parameters)
        if clash:
            raise TypeError(f"{command.__name__}: {', '.join(sorted(clash))} is a field of "
                            f"{model.__name__} and a parameter")  # fmt: skip
        keyword = inspect.Parameter.KEYWORD_ONLY
        options = []
        for name in names:
            field = model.model_fields[name]
            default = None if field.default == () else field.default
            kind = _command_line_type(field.annotation, default)
            option = Annotated[kind, field_option(model, name, panel)]
            options.append(inspect.Parameter(name, keyword, default=default, annotation=option))
        parameters = []
        for parameter in signature.parameters.values():
            parameters += options if parameter is target else [parameter.replace(kind=keyword)]

        @functools.wraps(command)
        def with_settings(**values: Any) -> Any:
            given = {name: values.pop(name) for name in names}
            try:
                settings = model(**{k: v for k, v in given.items() if v is not None})
            except ValidationError as error:
                raise PepcurrError(_problems(model, error)) from None
            return command(**values, **{target.name: settings})

        with_settings.__signature__ = signature.replace(parameters=parameters)
        with_settings.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_settings

    return decorate


ScaleOpt = Annotated[float | None, field_option(TrainOptions, "scale")]
ResiduesOpt = Annotated[
    ResidueDistribution | None, field_option(TrainOptions, "residue_distribution")
]


# ----------------------------------------------------------------------------
# Reading runs: evaluate, predict, compare, ab
# ----------------------------------------------------------------------------


class CompareFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class SweepFormat(StrEnum):
    table = "table"
    json = "json"


class RealismFormat(StrEnum):
    table = "table"
    json = "json"


AtOpt = Annotated[
    int | None,
    typer.Option(
        "--at",
        min=0,
        help="Nominal curriculum step to compare at (default: the end).",
        metavar="STEP",
    ),
]
MetricOpt = Annotated[
    str,
    typer.Option(help="Primary metric: decides the verdict (a row key, e.g. val_ce_hard)."),
]
TargetOpt = Annotated[float, typer.Option(help="Accuracy target of the 'steps to target' row.")]
MarginOpt = Annotated[
    float | None,
    typer.Option(
        "--margin",
        help="Smallest difference that matters, in the metric's unit (e.g. 0.005): arms "
        "whose 90% interval lies inside ±MARGIN are equivalent (two one-sided tests); "
        "without it there is no equivalence verdict.",
        metavar="MARGIN",
    ),
]
FormatOpt = Annotated[CompareFormat, typer.Option("--format", "-f", help="Output format.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write training curves to this PNG.")]
SourceArg = Annotated[
    Path, typer.Argument(metavar="RUN_DIR|CHECKPOINT", help="A run directory or its last.pt.")
]
MztabOpt = Annotated[
    Path | None, typer.Option(help="Write the predictions as mzTab 1.0 (as Casanovo does).")
]
AllowChangedModelOpt = Annotated[
    bool,
    typer.Option(
        "--allow-changed-model",
        help="Use a --model factory file even though it changed since the run recorded its "
        "SHA-256 (the checkpoint's weights may no longer fit it).",
    ),
]

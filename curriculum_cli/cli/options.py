"""Options and arguments shared by several commands, each declared once.

The options of a training run are those of ``TrainOptions``: their flags and
help come from its fields (one owner), and ``train_options`` turns a command's
parameters of the same names into one ``TrainOptions``. Choices are enums, so
``--help`` lists them and a bad value is refused at parse time.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from curriculum_cli.devices import Device
from curriculum_cli.spectra.chemistry import ResidueDistribution
from curriculum_cli.training.options import TrainOptions

PRESETS_HELP = "current, revised, conservative, gated-current, gated-revised, gated-conservative"

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
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (every draw is seeded from it).")]
OutFileOpt = Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="torch CPU threads per run (default 1: see docs/performance.md)."),
]


# ----------------------------------------------------------------------------
# A training run's options (train, ab): flags and help from TrainOptions
# ----------------------------------------------------------------------------


def _train(field: str, *short: str, **settings: Any) -> Any:
    """The ``typer.Option`` of a ``TrainOptions`` field: its flag and help."""
    return typer.Option(TrainOptions.flag(field), *short, help=TrainOptions.help(field), **settings)


def _model_spec(value: str | None) -> str | None:
    """A ``--model`` value checked at parse time: a preset name or MODULE:FUNCTION."""
    from curriculum_cli.model.source import is_factory

    if value is None or is_factory(value):
        return value
    from curriculum_cli.model.source import preset_architectures

    presets = preset_architectures()
    if value not in presets:
        raise typer.BadParameter(
            f"{value!r} is neither a preset ({', '.join(presets)}) nor a factory "
            "(package.module:function or path/to/file.py:function)"
        )
    return value


CurriculumTrainOpt = Annotated[str | None, _train("curriculum", "-c")]
TrainSeedOpt = Annotated[int | None, _train("seed", min=0)]
ScaleOpt = Annotated[float | None, _train("scale", min=0.0)]
ModelOpt = Annotated[
    str | None, _train("model", parser=_model_spec, metavar="PRESET|MODULE:FUNCTION")
]
ResiduesOpt = Annotated[ResidueDistribution | None, _train("residue_distribution")]
DeviceOpt = Annotated[Device | None, _train("device")]
BatchSizeOpt = Annotated[int | None, _train("batch_size", min=1)]
DataShardsOpt = Annotated[int | None, _train("data_shards", min=1)]
LrOpt = Annotated[float | None, _train("lr", min=0.0)]
ValEveryOpt = Annotated[int | None, _train("val_every", min=1)]
GradEveryOpt = Annotated[int | None, _train("grad_every", min=1)]
ValSizeOpt = Annotated[int | None, _train("val_size", min=1)]
DecodeSizeOpt = Annotated[int | None, _train("decode_size", min=1)]
DecodeEveryOpt = Annotated[int | None, _train("decode_every", min=1)]
LogEveryOpt = Annotated[int | None, _train("log_every", min=1)]
CheckpointEveryOpt = Annotated[int | None, _train("checkpoint_every", min=1)]
TrainDataOpt = Annotated[list[Path] | None, _train("train_data", metavar="FILE.mgf")]
ValDataOpt = Annotated[list[Path] | None, _train("val_data", metavar="FILE.mgf")]
SkipInvalidDataOpt = Annotated[bool, _train("skip_invalid")]
StoreOpt = Annotated[Path | None, _train("store_dir", metavar="DIR")]
InitFromOpt = Annotated[Path | None, _train("init_from", metavar="RUN_DIR|CHECKPOINT")]
TrainVocabOpt = Annotated[str | None, _train("vocab", metavar="standard|casanovo|FILE")]
VocabOpt = Annotated[
    str,
    typer.Option(
        "--vocab",
        metavar="standard|casanovo|FILE",
        help="The vocabulary: standard, casanovo (plus M oxidation, N/Q deamidation, "
        "N-terminal modifications) or a YAML/JSON file (docs/vocabulary.md).",
    ),
]


def train_options(parameters: dict[str, Any]) -> TrainOptions:
    """The ``TrainOptions`` of a command's parameters named as its fields (None: not given)."""
    fields = TrainOptions.model_fields
    return TrainOptions(**{k: v for k, v in parameters.items() if k in fields and v is not None})


# ----------------------------------------------------------------------------
# Reading runs: evaluate, predict, compare, ab
# ----------------------------------------------------------------------------


class CompareFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


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
BeamSizeOpt = Annotated[int, typer.Option(min=1, help="Beams per spectrum.")]
PrecursorTolOpt = Annotated[
    float, typer.Option(min=0.0, help="Precursor mass tolerance of the beam filter (ppm).")
]
NoFilterOpt = Annotated[
    bool, typer.Option("--no-filter", help="Turn the precursor-mass filter off.")
]
MaxIsotopeOpt = Annotated[int, typer.Option(min=0, help="Accept isotope offsets 0..N (13C peaks).")]
MaxLengthOpt = Annotated[
    int | None, typer.Option(min=1, help="Most residues per peptide (default: model's).")
]
SkipInvalidOpt = Annotated[
    bool, typer.Option("--skip-invalid", help="Skip unreadable spectra instead of stopping.")
]
MztabOpt = Annotated[
    Path | None, typer.Option(help="Write the predictions as mzTab 1.0 (as Casanovo does).")
]

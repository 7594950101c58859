"""The run settings, each declared once: its default, bounds, help and command-line flag.

``RUN_SETTINGS`` is the one declaration of every setting a run takes from its
user or from pepcurr's defaults. The rest is derived from it:

- ``RunConfig`` (``config.py``, what ``run.json`` holds) gives each setting its
  field with ``run_field(name)``: the setting's help and bounds;
- ``TrainOptions``, what a user asked for on the command line (None: the default),
  has one field per setting with a flag;
- the ``train`` and ``ab`` options (``cli/typer_options.py``) come from
  ``TrainOptions``' fields, their defaults shown in ``--help`` from ``default``;
- ``ab --plan`` writes options back as flags (``TrainOptions.command_words``);
- ``DEFAULTS``: the value of every setting that has one, for ``resolve.build_run_config``.

A new setting is one ``Setting`` here, its ``RunConfig`` field and its use.
Torch-free, so that the command line can declare its options cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from curriculum_cli.curriculum.presets import ALL_PRESET_NAMES
from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.devices import DEVICE_HELP, Device
from curriculum_cli.errors import PepcurrError
from curriculum_cli.spectra.chemistry import ResidueDistribution
from curriculum_cli.spectra.stage_data import MAX_SPECTRA_AT_ONCE
from curriculum_cli.spectra.vocabulary import Vocabulary

POINTS_PER_RUN = 50
"""Validations, gradient measurements and checkpoints a run makes by default."""

AUTO_INTERVALS = ("val_every", "grad_every", "checkpoint_every")
"""Step intervals that default to ``POINTS_PER_RUN`` points per run."""

MAX_DEFAULT_WARMUP_STEPS = 1_000
"""The default warm-up is 5% of the run, at most this many steps."""


@dataclass(frozen=True)
class Setting:
    """One run setting.

    ``help``: what it is, with its unit (the ``--help`` text and ``RunConfig``'s
    description). ``default``: what a run gets when nobody asks (``default_note``:
    when it gets another); None when it is resolved per run or there is none, then
    ``default_text`` says what happens.
    ``flag`` (and ``short``, ``metavar``): its ``pepcurr train`` option; None: not on
    the command line. ``type``: the value's type on the command line and in
    ``TrainOptions``, ``accepts``: what a library caller may pass besides
    (``multiple``: a tuple of them, the flag repeated). ``bounds`` (``ge``, ``gt``,
    ``le``, ``min_length``) hold for the option and ``RunConfig`` alike.
    ``measures_only``: it changes what is measured and when, never the trained
    weights. ``in_run_json`` False: only the launch reads it (``run.json`` records
    its result).
    """

    help: str
    default: Any = None
    default_text: str | None = None
    default_note: str | None = None
    flag: str | None = None
    short: str | None = None
    metavar: str | None = None
    type: Any = None
    accepts: Any = None
    multiple: bool = False
    bounds: dict[str, Any] = field(default_factory=dict)
    measures_only: bool = False
    in_run_json: bool = True

    def shown_default(self) -> str | None:
        """The default as ``--help`` shows it, from ``default`` unless ``default_text`` says."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default is False:
            return None
        return f"{self.default}, {self.default_note}" if self.default_note else str(self.default)


def _interval(help: str, flag: str) -> Setting:
    """A step interval of ``AUTO_INTERVALS``: ``POINTS_PER_RUN`` per run unless given."""
    return Setting(help, default_text=f"{POINTS_PER_RUN} per run", flag=flag, type=int,
                   bounds={"ge": 1}, measures_only=True)  # fmt: skip


# In run.json's order. A flag's help is read in `pepcurr train --help`: say what the value
# means and its unit; the default is added from `default`.
# fmt: off
MAX_SEED = 2**31 - 1
"""Largest seed of any command: scikit-learn's seeds stop at 2**32 - 1 and a run's data
seeds (``setup.data_seed``: seed x 1,000,003 + shard) must stay inside torch's 64 bits."""

MAX_BATCH_SIZE = 16_384
"""Most spectra per optimizer step: far above what the presets were tuned for (32), and
below the sizes whose synthetic batches alone fill a machine's memory."""

RUN_SETTINGS: dict[str, Setting] = {
    "curriculum": Setting(
        f"Curriculum: a JSON file or a preset ({', '.join(ALL_PRESET_NAMES)}). run.json holds "
        "it as trained, its stages' steps multiplied by the scale.",
        default="revised", flag="--curriculum", short="-c", metavar="FILE|PRESET", type=str,
        accepts=Curriculum,
    ),
    "scale": Setting(
        "Multiply every stage's steps (0.02: 100k -> 2k).", default=1.0, flag="--scale",
        type=float, bounds={"gt": 0},
    ),
    "model": Setting(
        "Model: a preset (tiny, base: with ion evidence; casanovo-tiny, casanovo-base: plain; "
        "trm-tiny, trm-base: recursive, parallel decoding; see docs/models.md), or your own "
        "model's factory as package.module:function or path/to/file.py:function.",
        default="tiny", default_note="or the --init-from checkpoint's", flag="--model",
        metavar="PRESET|MODULE:FUNCTION", type=str, bounds={"min_length": 1},
    ),
    "vocab": Setting(
        "The model's tokens: standard (19 residues), casanovo (Casanovo 5's: plus M oxidation, "
        "N/Q deamidation, 4 N-terminal modifications) or a YAML/JSON file (docs/vocabulary.md). "
        "With --init-from, a vocabulary other than the checkpoint's is fine-tuned into.",
        default="standard", default_note="or the --init-from checkpoint's", flag="--vocab",
        metavar="standard|casanovo|FILE", type=str, accepts=Vocabulary,
    ),
    "residue_distribution": Setting(
        "Synthetic peptides: tryptic (Swiss-Prot residue frequencies, ending in K or R) or "
        "uniform over the residues.",
        default="tryptic", flag="--residues", type=ResidueDistribution,
    ),
    "seed": Setting(
        "Training seed: model initialisation and data stream.", default=0, flag="--seed",
        type=int, bounds={"ge": 0, "le": MAX_SEED},
    ),
    "val_seed": Setting(
        "Seed of the validation sets (the same for every run).", default=20_240_501, type=int,
        bounds={"ge": 0, "le": MAX_SEED},
    ),
    "device": Setting(DEVICE_HELP, default=Device.auto, flag="--device", type=Device),
    "batch_size": Setting(
        "Spectra per optimizer step (under torchrun the flag is per process; run.json holds "
        "the total over all processes).",
        default=32, flag="--batch-size", type=int, bounds={"ge": 1, "le": MAX_BATCH_SIZE},
    ),
    "data_shards": Setting(
        "Draw each batch as N equal shards, each from its own data stream (shard k seeded by "
        "the seed and k), the loss the mean over shards. One process with --data-shards N "
        "sees the data N torchrun processes see.",
        default_text="1, or one per torchrun process", flag="--data-shards", type=int,
        bounds={"ge": 1},
    ),
    "world_size": Setting(
        "Processes (torchrun ranks) that train the run together.", default=1, type=int,
        bounds={"ge": 1},
    ),
    "lr": Setting(
        "Peak learning rate (AdamW).", default=1e-3, flag="--lr", type=float, bounds={"gt": 0}
    ),
    "weight_decay": Setting("AdamW weight decay.", default=1e-5, type=float, bounds={"ge": 0}),
    "warmup_steps": Setting(
        "Linear warm-up steps.",
        default_text=f"5% of the run, at most {MAX_DEFAULT_WARMUP_STEPS}", type=int,
        bounds={"ge": 1},
    ),
    "min_lr_fraction": Setting(
        "Cosine floor, fraction of lr.", default=0.1, type=float, bounds={"ge": 0, "le": 1}
    ),
    "grad_clip": Setting("Gradient-norm clip.", default=1.0, type=float, bounds={"gt": 0}),
    "spectrum_sigma_da": Setting(
        "Spectrum-loss kernel width (Da).", default=1.0, type=float, bounds={"gt": 0}
    ),
    "val_every": _interval("Steps between validations.", "--val-every"),
    "val_size": Setting(
        "Spectra in each validation set.", default=256, flag="--val-size", type=int,
        bounds={"ge": 1, "le": MAX_SPECTRA_AT_ONCE}, measures_only=True,
    ),
    "decode_every": Setting(
        "Decoded metrics at every N-th validation.", default=5, flag="--decode-every", type=int,
        bounds={"ge": 1}, measures_only=True,
    ),
    "decode_size": Setting(
        "Validation spectra greedy-decoded per set: its first ones.",
        default=256, default_note="at most --val-size", flag="--decode-size", type=int,
        bounds={"ge": 1}, measures_only=True,
    ),
    "grad_every": _interval("Steps between gradient measurements.", "--grad-every"),
    "log_every": Setting(
        "Steps between train records (device reads).", default=10, flag="--log-every",
        type=int, bounds={"ge": 1}, measures_only=True,
    ),
    "checkpoint_every": _interval("Steps between checkpoints.", "--checkpoint-every"),
    "max_consecutive_skips": Setting(
        "Non-finite steps in a row that stop the run.", default=20, type=int, bounds={"ge": 1}
    ),
    "spike_factor": Setting(
        "A loss above this times the recent median is a spike.", default=3.0, type=float,
        bounds={"gt": 1},
    ),
    "spike_window": Setting(
        "Applied steps the spike median looks back.", default=200, type=int, bounds={"ge": 20}
    ),
    "init_from": Setting(
        "Fine-tune: start from the weights of this trained run (its directory or checkpoint), "
        "with a fresh optimizer and schedule at step 0. run.json records the checkpoint's "
        "path, SHA-256 and step.",
        flag="--init-from", metavar="RUN_DIR|CHECKPOINT", type=Path,
    ),
    "train_data": Setting(
        "Annotated MGF to train on (repeat for several files), indexed once into a store "
        "(docs/real-data.md); stages draw real_fraction of each batch from it (default 1). "
        "run.json records each file and its store.",
        flag="--train-data", metavar="FILE.mgf", type=Path, multiple=True,
    ),
    "val_data": Setting(
        "Annotated MGF of the val_real validation set (repeatable).", flag="--val-data",
        metavar="FILE.mgf", type=Path, multiple=True,
    ),
    "store_dir": Setting(
        "Where the stores of --train-data and --val-data go.",
        default_text=".pepcurr-store beside the MGF", flag="--store", metavar="DIR", type=Path,
        in_run_json=False,
    ),
    "skip_invalid": Setting(
        "Skip the invalid spectra of the MGF files, and count them, instead of stopping.",
        default=False, flag="--skip-invalid", type=bool,
    ),
}
# fmt: on

DEFAULTS: dict[str, Any] = {
    name: setting.default
    for name, setting in RUN_SETTINGS.items()
    if setting.default is not None and setting.in_run_json
}
"""The value of every setting that has one; the others are resolved per run."""

MEASUREMENT_FIELDS = tuple(name for name, s in RUN_SETTINGS.items() if s.measures_only)
"""Settings that change what is measured and when, never the trained weights."""


def run_field(name: str, **run_json: Any) -> Any:
    """``RunConfig``'s field of the setting ``name``: its help and bounds, floats finite.

    ``run_json``: more ``Field`` arguments, such as the value a ``run.json`` written
    before the setting existed stands for (``default=1``).
    """
    setting = RUN_SETTINGS[name]
    finite = {"allow_inf_nan": False} if setting.type is float else {}
    return Field(description=setting.help, **setting.bounds, **finite, **run_json)


# ----------------------------------------------------------------------------
# TrainOptions: the settings a command line asks for
# ----------------------------------------------------------------------------


class _TrainOptionsBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line flag of a field, e.g. ``--residues`` for ``residue_distribution``."""
        return RUN_SETTINGS[name].flag

    def given(self) -> dict[str, Any]:
        """The options the user gave (not None, not empty, not False)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return {
            name: value
            for name, value in values.items()
            if not (value is None or value is False or value == ())
        }

    def command_words(self) -> list[str]:
        """The ``pepcurr train`` flags that ask for these options again (``ab --plan``).

        A ``PepcurrError`` for an option the command line cannot give.
        """
        words = []
        for name, value in self.given().items():
            if isinstance(value, Curriculum | Vocabulary):
                raise PepcurrError(f"--plan: pepcurr train has no option for {name}")
            flag = self.flag(name)
            for item in value if isinstance(value, tuple) else [value]:
                if item is True:
                    words.append(flag)
                elif isinstance(item, float):
                    words += [flag, repr(item)]
                else:
                    words += [flag, str(item.value if isinstance(item, StrEnum) else item)]
        return words


def _option_field(setting: Setting) -> tuple[Any, Any]:
    """A ``TrainOptions`` field: the setting's type, or None (the default), flag and help."""
    kind = setting.type if setting.accepts is None else setting.type | setting.accepts
    extra = {"flag": setting.flag, "short": setting.short, "metavar": setting.metavar,
             "shown_default": setting.shown_default()}  # fmt: skip
    extra = {key: value for key, value in extra.items() if value is not None}
    if setting.multiple:
        kind, default = tuple[kind, ...], ()
    elif kind is bool:
        default = False
    else:
        kind, default = kind | None, None
    return kind, Field(default, description=setting.help, json_schema_extra=extra,
                       **setting.bounds)  # fmt: skip


TrainOptions = create_model(
    "TrainOptions",
    __base__=_TrainOptionsBase,
    __module__=__name__,
    __doc__="""What a run is asked for on the command line; None (or empty): the default.

    One field per ``RUN_SETTINGS`` entry with a flag, typed and bounded as it is there.
    On ``--resume`` a run continues with its own settings, and given options that
    disagree are reported (``resolve.resume_conflicts``).
    """,
    **{name: _option_field(s) for name, s in RUN_SETTINGS.items() if s.flag is not None},
)

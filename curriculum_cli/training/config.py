"""The run configuration: everything that determines a training run, typed and resolved once.

``RunConfig`` is built once from the command line (``resolve.resolve_run_config``), with
every default and interval resolved (no "0 means auto" left), then passed to
the training loop and written to ``run.json`` next to a separate provenance block
(versions, device, threads). ``read_run_config`` is the one reader of
``run.json``: ``loop`` (resume), ``checkpoint`` (loading a model),
``compare`` and ``ab`` all go through it, and an unknown or mistyped key is an
error naming the key. It alone knows the older layouts (pepcurr 0.1's flat
format, architectures written before they named their ``kind``) and reads them
as today's (``_current_layout``), so the others see one layout.

The schema is documented for users in ``docs/run-directory.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_serializer,
    model_validator,
)

from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.devices import Device
from curriculum_cli.errors import RunError, validation_problem_lines
from curriculum_cli.model.recursive import RecursiveConfig
from curriculum_cli.model.transformer import ModelConfig
from curriculum_cli.spectra.store import DataFile
from curriculum_cli.spectra.vocabulary import Vocabulary
from curriculum_cli.training.settings import (
    AUTO_INTERVALS,
    MAX_DEFAULT_WARMUP_STEPS,
    POINTS_PER_RUN,
    run_field,
)

RUN_FILE = "run.json"
RUN_FORMAT = "pepcurr-run/2"
"""The ``format`` of ``run.json`` this pepcurr writes. Format 1 (pepcurr 0.1) had no marker."""


Architecture = Annotated[ModelConfig | RecursiveConfig, Field(discriminator="kind")]
"""The dimensions of one of pepcurr's networks, told apart by their ``kind``; an error names
the kind (``architecture.transformer.d_model``)."""


class VocabularyChange(BaseModel):
    """The tokens of a fine-tuned run against its checkpoint's (``--init-from --vocab``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    kept: list[str] = Field(description="Tokens of both: their trained weights, unchanged.")
    added: list[str] = Field(
        description="Tokens only here: initialised from their unmodified residue (I from L); "
        "N-terminal ones freshly (seeded by the run's seed)."
    )
    dropped: list[str] = Field(description="Tokens only in the checkpoint: their weights dropped.")

    @classmethod
    def between(cls, source: Vocabulary, target: Vocabulary) -> VocabularyChange:
        kept, added, dropped = target.difference(source)
        return cls(kept=kept, added=added, dropped=dropped)

    def describe(self, source: str, target: str) -> str:
        """One line for the console."""
        added = f" ({', '.join(self.added)})" if self.added else ""
        dropped = f" ({', '.join(self.dropped)})" if self.dropped else ""
        counts = f"{len(self.kept)} tokens kept, {len(self.added)} added{added}"
        return f"fine-tuning vocabulary {source} into {target}: {counts}, " + (
            f"{len(self.dropped)} dropped{dropped}"
        )


class InitFrom(BaseModel):
    """Where a fine-tuned run's first weights came from (``train --init-from``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    path: str = Field(description="The checkpoint file, as an absolute path.")
    checkpoint_sha256: str = Field(description="SHA-256 of the checkpoint file's bytes.")
    step: int = Field(ge=0, description="The step of the run the checkpoint was taken at.")
    vocabulary: VocabularyChange | None = Field(
        default=None, description="When the run's vocabulary is not the checkpoint's: how."
    )

    @model_serializer(mode="wrap")
    def _without_unchanged_vocabulary(self, handler) -> dict[str, Any]:
        """A fine-tune into the same vocabulary writes ``run.json`` as before."""
        data = handler(self)
        if self.vocabulary is None:
            data.pop("vocabulary", None)
        return data


class RunConfig(BaseModel):
    """Everything that determines a run (``run.json``'s ``config``); frozen and strict.

    ``curriculum`` is the curriculum as trained (already scaled by ``scale``).
    ``model`` names the model: a preset (``tiny``, ``trm-tiny``...), the label of
    an explicit ``architecture``, or a user factory (``model.factory``);
    ``architecture`` holds the dimensions of pepcurr's transformer
    (``ModelConfig``) or recursive model (``RecursiveConfig``), None for a
    factory. Step intervals are resolved numbers of optimizer steps. Each setting's
    help, bounds and default are declared once, in ``settings.RUN_SETTINGS``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    curriculum: Curriculum = run_field("curriculum")
    curriculum_source: str = Field(description="Preset name or JSON path the curriculum came from.")
    scale: float = run_field("scale")
    model: str = run_field("model")
    architecture: Architecture | None = Field(
        description="Dimensions of pepcurr's transformer or recursive model; None when a "
        "factory builds the model."
    )
    vocab: Vocabulary = run_field("vocab")
    residue_distribution: Literal["tryptic", "uniform"] = run_field("residue_distribution")
    seed: int = run_field("seed")
    val_seed: int = run_field("val_seed")
    device: Device = run_field("device")
    batch_size: int = run_field("batch_size")
    # the defaults below: what a run.json written before the setting existed stands for
    data_shards: int = run_field("data_shards", default=1)
    world_size: int = run_field("world_size", default=1)
    lr: float = run_field("lr")
    weight_decay: float = run_field("weight_decay")
    warmup_steps: int = run_field("warmup_steps")
    min_lr_fraction: float = run_field("min_lr_fraction")
    grad_clip: float = run_field("grad_clip")
    spectrum_sigma_da: float = run_field("spectrum_sigma_da")
    val_every: int = run_field("val_every")
    val_size: int = run_field("val_size")
    decode_every: int = run_field("decode_every")
    decode_size: int = run_field("decode_size")
    grad_every: int = run_field("grad_every")
    log_every: int = run_field("log_every")
    checkpoint_every: int = run_field("checkpoint_every")
    max_consecutive_skips: int = run_field("max_consecutive_skips")
    spike_factor: float = run_field("spike_factor")
    spike_window: int = run_field("spike_window")
    init_from: InitFrom | None = run_field("init_from", default=None)
    train_data: list[DataFile] = run_field("train_data", default_factory=list)
    val_data: list[DataFile] = run_field("val_data", default_factory=list)
    skip_invalid: bool = run_field("skip_invalid", default=False)

    @model_validator(mode="after")
    def _decoded_spectra_are_validation_spectra(self) -> RunConfig:
        if self.decode_size > self.val_size:
            raise ValueError(
                f"decode_size {self.decode_size} is larger than val_size {self.val_size}: "
                "the decoded spectra are the first decode_size of each validation set"
            )
        return self

    @model_validator(mode="after")
    def _shards_fit(self) -> RunConfig:
        if self.batch_size % self.data_shards:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of data_shards "
                f"{self.data_shards}; every shard draws the same number of spectra"
            )
        if self.data_shards % self.world_size:
            raise ValueError(
                f"data_shards {self.data_shards} is not a multiple of world_size "
                f"{self.world_size}; every rank draws whole shards"
            )
        return self

    @property
    def total_steps(self) -> int:
        return self.curriculum.total_steps

    @property
    def nominal_total_steps(self) -> int:
        """The curriculum's length before scaling (what ``compare --at`` counts in)."""
        return round(self.total_steps / self.scale)


# ----------------------------------------------------------------------------
# run.json: write, read (the one reader), and the older layouts
# ----------------------------------------------------------------------------


def run_json(config: RunConfig, provenance: dict[str, Any]) -> dict[str, Any]:
    """The content of ``run.json``: format marker, the config, and where it ran."""
    return {
        "format": RUN_FORMAT,
        "config": config.model_dump(mode="json"),
        "provenance": provenance,
    }


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run directory as parsed JSON, or a ``RunError`` saying what is wrong."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not run_dir.exists():
        raise RunError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: not a run directory (a file)")
    if not path.is_file():
        raise RunError(f"{run_dir}: not a run directory (no {RUN_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path}: corrupt {RUN_FILE} ({error})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a pepcurr run (the top level is not a JSON object)")
    return data


def read_run_config(run_dir: Path) -> RunConfig:
    """The typed ``RunConfig`` of a run directory (any ``run.json`` layout, ``_current_layout``).

    Unknown, missing or mistyped keys are a ``RunError`` naming the key.
    """
    path = Path(run_dir) / RUN_FILE
    config = _current_layout(read_run_json(run_dir), path)
    try:
        return RunConfig.model_validate_json(json.dumps(config), strict=True)
    except ValidationError as error:
        lines = validation_problem_lines(error, f"{path}: config")
        raise RunError("\n".join(lines)) from None


def read_provenance(run_dir: Path) -> dict[str, Any]:
    """``run.json``'s provenance block (empty for format 1, which mixed it into the config)."""
    provenance = read_run_json(run_dir).get("provenance", {})
    return provenance if isinstance(provenance, dict) else {}


def _current_layout(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The config of a parsed ``run.json`` in the layout this pepcurr writes.

    The older layouts: format 1 (pepcurr 0.1: flat, no ``format`` marker,
    ``_from_format_1``) and format 2 before architectures named their kind
    (``_with_kind``). No other module knows them.
    """
    if "format" in data:
        if data["format"] != RUN_FORMAT:
            raise RunError(
                f"{path}: format {data['format']!r} is not one this pepcurr reads ({RUN_FORMAT}); "
                "use the pepcurr version that wrote it"
            )
        unknown = set(data) - {"format", "config", "provenance"}
        if unknown:
            raise RunError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}")
        config = data.get("config")
    elif "curriculum" in data and "model_preset" in data:
        config = _from_format_1(data)
    else:
        raise RunError(f"{path}: not a pepcurr run (no 'format' and no 'curriculum')")
    if not isinstance(config, dict):
        raise RunError(f"{path}: 'config' is missing or not a JSON object")
    return _with_kind(config)


def _with_kind(config: dict[str, Any]) -> dict[str, Any]:
    """An ``architecture`` written before kinds were named, with its ``kind``: ``recursive``
    when it has ``supervision_steps`` (only the recursive model has them), else
    ``transformer``."""
    architecture = config.get("architecture")
    if not isinstance(architecture, dict) or "kind" in architecture:
        return config
    kind = "recursive" if "supervision_steps" in architecture else "transformer"
    return {**config, "architecture": {"kind": kind, **architecture}}


# Format 1 keys that were provenance or derived values, not settings.
_FORMAT_1_DROPPED = (
    "nominal_total_steps", "pepcurr_version", "torch_version", "python_version", "optimizer",
    "inject_nan_steps",
)  # fmt: skip


def _from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """A pepcurr 0.1 ``run.json`` (flat, 0 = auto intervals) as format-2 config data.

    ``model_preset`` becomes ``model`` and ``model`` (the dimensions)
    ``architecture``, with 0.1's decoder (no ion evidence, mass-aware inputs)
    and uniform synthetic residues; intervals of 0 are resolved as 0.1 resolved them; the
    version fields and the optimizer summary were provenance and are dropped.
    """
    config = {k: v for k, v in data.items() if k not in _FORMAT_1_DROPPED}
    config["model"] = config.pop("model_preset")
    # 0.1's transformer: no ion evidence, the mass-aware decoder on; uniform residues
    config["architecture"] = {"ion_evidence": False, "mass_aware_decoder": True, **data["model"]}
    config.setdefault("residue_distribution", "uniform")
    total = sum(stage.get("steps", 0) for stage in data["curriculum"].get("stages", []))
    for key in AUTO_INTERVALS:
        if config.get(key) == 0:
            config[key] = max(1, total // POINTS_PER_RUN)
    if config.get("warmup_steps") == 0:
        config["warmup_steps"] = max(1, min(MAX_DEFAULT_WARMUP_STEPS, total // 20))
    return config

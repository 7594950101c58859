"""TensorBoard event files from the run log: ``train --tensorboard`` and ``export-tensorboard``.

``metrics.jsonl`` stays the source of truth. ``record_scalars`` and
``record_text`` are the one mapping from a run-log record to TensorBoard:
``train --tensorboard`` applies them to each record as it is written
(``runlog.MetricsWriter``'s mirror), ``export_tensorboard`` to every record
of an existing run, so both give the same event files' content.

- ``train`` records -> ``train/<field>`` (``loss``, ``ce``, ``spectrum``,
  ``precursor``, ``w_spectrum``, ``residue_accuracy``, ``lr``, ``grad_norm``...);
- ``val`` records -> ``val_easy/<field>``, ``val_hard/<field>``;
- ``grad`` records -> ``grad/<field>`` (``spectrum_ratio``, ``spectrum_cosine``...);
- ``stage`` records -> text under ``stage``; ``skip``, ``spike``, ``resume``
  and ``end`` -> text under ``events``;
- the run's settings (``run.json``'s config, flattened) -> the HParams
  dashboard, with the validation accuracies and losses as its metrics.

The step axis is the run's step (optimizer updates). Event files go to
``RUN_DIR/tensorboard/``. TensorBoard is an optional extra
(``pip install 'pepcurr[tensorboard]'``); ``require_tensorboard`` says so
in one line when it is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.errors import PepcurrError

if TYPE_CHECKING:
    from curriculum_cli.training.config import RunConfig

TENSORBOARD_DIR = "tensorboard"
"""Where ``train --tensorboard`` and ``export-tensorboard`` write, inside the run directory."""

INSTALL_HINT = "TensorBoard is not installed; install it with: pip install 'pepcurr[tensorboard]'"

_NOT_SCALARS = {"event", "step", "split", "stage"}

HPARAM_METRICS = tuple(
    f"{split}/{name}"
    for split in ("val_easy", "val_hard")
    for name in ("residue_accuracy", "token_accuracy", "ce", "peptide_recall")
)
"""Scalars the HParams dashboard shows beside each run's settings."""


def require_tensorboard(option: str) -> None:
    """A ``PepcurrError`` naming ``option`` and how to install TensorBoard, if it is missing."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise PepcurrError(f"{option}: {INSTALL_HINT}") from None


def record_scalars(record: dict) -> list[tuple[str, float]]:
    """The scalars ``(tag, value)`` of one run-log record (none for events that are text).

    Numbers only: booleans, strings and non-finite values (``null`` in the
    log) are left out.
    """
    prefix = {"train": "train", "grad": "grad", "val": record.get("split")}.get(record["event"])
    if prefix is None:
        return []
    return [
        (f"{prefix}/{key}", float(value))
        for key, value in record.items()
        if key not in _NOT_SCALARS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    ]


def record_text(record: dict) -> tuple[str, str] | None:
    """``(tag, markdown)`` for a stage change or a run event; None for scalar records."""
    event, step = record["event"], record["step"]
    if event == "stage":
        weights = ", ".join(f"{k} {v:g}" for k, v in record.items() if k.startswith("w_"))
        gate = ""
        if "trigger" in record:
            gate = (f"; gate {record.get('metric')} >= {record.get('threshold')} "
                    f"(by {record['trigger']}, value {record.get('value')})")  # fmt: skip
        return "stage", f"step {step}: stage **{record['stage']}** ({weights}{gate})"
    if event in ("skip", "spike", "resume", "end"):
        fields = ", ".join(f"{k} {v}" for k, v in record.items() if k not in ("event", "step"))
        return "events", f"step {step}: {event}" + (f" ({fields})" if fields else "")
    return None


def hparams_of(config: RunConfig) -> dict[str, float | int | str | bool]:
    """The run's settings as flat HParams values (nested ones as ``architecture.d_model``)."""
    values: dict[str, float | int | str | bool] = {"curriculum_name": config.curriculum.name}
    for key, value in config.model_dump(mode="json").items():
        if key == "curriculum":
            continue
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, item in items:
            name = key if sub is None else f"{key}.{sub}"
            if isinstance(item, bool | int | float | str):
                values[name] = item
            elif item is not None:
                values[name] = str(item)
    return values


class TensorBoardLog:
    """Writes run-log records to TensorBoard event files in ``log_dir``.

    ``purge_step``: on resume, the step of the checkpoint; TensorBoard then
    hides what an earlier session wrote from that step on (it is written again).
    """

    def __init__(self, log_dir: Path | str, purge_step: int | None = None):
        require_tensorboard("--tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)
        self.n_scalars = 0

    def write(self, record: dict) -> None:
        """One run-log record: its scalars, or its text."""
        step = record["step"]
        for tag, value in record_scalars(record):
            self._writer.add_scalar(tag, value, step)
            self.n_scalars += 1
        text = record_text(record)
        if text is not None:
            self._writer.add_text(text[0], text[1], step)

    def write_hparams(self, config: RunConfig) -> None:
        """The run's settings for the HParams dashboard (metrics: ``HPARAM_METRICS``)."""
        from torch.utils.tensorboard.summary import hparams

        metrics = dict.fromkeys(HPARAM_METRICS, math.nan)  # values come from the scalars
        for summary in hparams(hparams_of(config), metrics):
            self._writer.file_writer.add_summary(summary)

    def close(self) -> None:
        self._writer.close()


@dataclass(frozen=True)
class ExportResult:
    """What ``export_tensorboard`` wrote for one run."""

    run_dir: Path
    log_dir: Path
    n_records: int
    n_scalars: int
    n_replaced: int  # event files of an earlier export or --tensorboard, removed first


def export_tensorboard(run_dir: Path | str, log_dir: Path | str | None = None) -> ExportResult:
    """Write TensorBoard event files for an existing run from its ``metrics.jsonl``.

    ``log_dir`` defaults to ``RUN_DIR/tensorboard``; event files already there
    are replaced, so exporting twice gives one copy of each value.
    """
    from curriculum_cli.training.config import read_run_config
    from curriculum_cli.training.runlog import METRICS_FILE, read_records

    require_tensorboard("export-tensorboard")
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    records, _ = read_records(run_dir / METRICS_FILE)
    log_dir = Path(log_dir) if log_dir is not None else run_dir / TENSORBOARD_DIR
    if log_dir.exists() and not log_dir.is_dir():
        raise PepcurrError(f"{log_dir}: is a file, not a directory for event files")
    old = sorted(log_dir.glob("events.out.tfevents.*")) if log_dir.is_dir() else []
    for path in old:
        path.unlink()
    try:
        board = TensorBoardLog(log_dir)
    except OSError as error:
        raise PepcurrError(f"{log_dir}: cannot write: {error.strerror}") from None
    board.write_hparams(config)
    for record in records:
        board.write(record)
    board.close()
    return ExportResult(run_dir, log_dir, len(records), board.n_scalars, len(old))

"""The run directory's event log, ``metrics.jsonl``, and a run read back for comparison.

``metrics.jsonl`` holds one JSON object per line, flushed after every record
so that a crash loses at most the record being written. Every record has an
integer ``step`` (optimizer updates completed) and an ``event`` kind; see
docs/run-directory.md for the fields of each kind. Non-finite floats are
written as ``null`` (JSON has no NaN).

Reading tolerates exactly one kind of damage: a truncated last line, as left
by a crash mid-write. Anything else unparseable is a ``RunError``; a resumed
run repairs its log (``rewind_log``). Logs of
pepcurr 0.1 have no ``residue_accuracy``: ``RunLog.logged_as`` names the field
that stands in, for every reader. ``run.json`` is read through
``config.read_run_config``, the checkpoint through ``checkpoint.read_checkpoint``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.errors import RunError
from curriculum_cli.training.config import RunConfig, read_run_config
from curriculum_cli.training.storage import naming

if TYPE_CHECKING:
    import pandas as pd

METRICS_FILE = "metrics.jsonl"

TIMING_FIELDS = ("steps_per_s", "wall_s", "elapsed_s")
"""The fields of records that measure time (docs/run-directory.md): they differ between two
runs whose every other field is the same (a resumed run and an uninterrupted one)."""


def _finite_or_none(value):
    """A record's value as JSON holds it: a non-finite float (in a list too) as None."""
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    with naming(tmp):
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


class MetricsWriter:
    """Appends one JSON record per line to ``metrics.jsonl``, flushed every time.

    ``mirror``, if given, receives each record after it is written (``train
    --tensorboard`` passes ``tensorboard_log.TensorBoardLog.write``).
    """

    def __init__(self, path: Path, mirror: Callable[[dict], None] | None = None):
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._mirror = mirror

    def write(self, event: str, step: int, **fields) -> dict:
        record = {"event": event, "step": int(step)}
        record.update({k: _finite_or_none(v) for k, v in fields.items()})
        with naming(self.path):
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        if self._mirror is not None:
            self._mirror(record)
        return record

    @property
    def size(self) -> int:
        """Bytes in the file so far (every record is flushed as written)."""
        return self._file.tell()

    def close(self) -> None:
        with naming(self.path):  # what a full disk left unwritten is flushed once more
            self._file.close()


def read_records(path: Path) -> tuple[list[dict], list[str]]:
    """All records of a metrics file and warnings (a truncated last line is dropped)."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: missing metrics file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise RunError(f"{path}: not a text file") from None
    records, warnings = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _parse_record(line)
        except ValueError as error:
            if number == len(lines):
                warnings.append(f"{path}: line {number} is truncated (a crash mid-write?); ignored")
                continue
            raise RunError(f"{path}: line {number} is not a metrics record ({error})") from None
        records.append(record)
    return records, warnings


def _parse_record(line: str | bytes) -> dict:
    """One line's record; a ``ValueError`` when it is not one."""
    record = json.loads(line)
    if not isinstance(record, dict) or "step" not in record or "event" not in record:
        raise ValueError("a record needs 'event' and 'step'")
    if not isinstance(record["step"], int) or isinstance(record["step"], bool):
        raise ValueError(f"'step' must be an integer, got {record['step']!r}")
    return record


def last_end_record(run_dir: Path) -> dict | None:
    """The last ``end`` record of a run directory (how the run last stopped), or None.

    None when the run has no metrics file yet or never stopped cleanly. A damaged line
    is skipped: a resume repairs the log (``rewind_log``).
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    ends = [record for _, record in _whole_records(path.read_bytes()) if record["event"] == "end"]
    return ends[-1] if ends else None


def _whole_records(data: bytes) -> Iterator[tuple[bytes, dict]]:
    """Each line of a metrics file that is a whole record, with its bytes; a line that is none
    (half-written, NUL bytes where a crash left them, garbage) is skipped."""
    for line in data.splitlines(keepends=True):
        line = line.lstrip(b"\0")  # a crash may leave NUL bytes where a write did not land
        if not line.endswith(b"\n"):
            continue
        try:
            yield line, _parse_record(line)
        except ValueError:  # UnicodeDecodeError and json's errors too
            continue


def rewind_log(path: Path, step: int, size: int | None) -> None:
    """Cut a metrics file back to a checkpoint taken at ``step``, on resume: the records
    written after it are logged again by the resumed run.

    ``size``: the file's length in bytes when the checkpoint was taken. The records
    kept are the whole records that fill those bytes, in order; a line that is no
    record (half-written, NUL bytes left by a crash, garbage) is dropped wherever
    it lies, so that the resumed run ends with the records of an uninterrupted
    one. None, for a checkpoint of pepcurr 0.1, which did not record the length:
    then the records of steps up to ``step`` are kept, without ``end`` records.
    """
    path = Path(path)
    data = path.read_bytes()
    kept, length = [], 0
    for line, record in _whole_records(data):
        if size is not None and (length + len(line) > size or record["step"] > step):
            break
        if size is None and (record["step"] > step or record["event"] == "end"):
            continue
        kept.append(line)
        length += len(line)
    repaired = b"".join(kept)
    if repaired == data:
        return
    if data.startswith(repaired):  # only a tail to cut: in place
        with naming(path), open(path, "r+b") as handle:
            handle.truncate(len(repaired))
        return
    tmp = path.with_name(path.name + ".tmp")
    with naming(tmp):
        tmp.write_bytes(repaired)
    os.replace(tmp, path)


@dataclass
class RunLog:
    """A run directory read back: its config, its events as a DataFrame, and warnings."""

    run_dir: Path
    config: RunConfig
    metrics: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    _events: dict[str, pd.DataFrame] = field(default_factory=dict, init=False, repr=False)

    def events(self, kind: str) -> pd.DataFrame:
        """The records of one event kind, in step order (made once per kind: do not modify)."""
        frame = self.metrics
        if frame.empty or "event" not in frame:
            return frame
        if kind not in self._events:
            records = frame[frame["event"] == kind]
            self._events[kind] = records.dropna(axis=1, how="all").reset_index(drop=True)
        return self._events[kind]

    def logged_as(self, field: str) -> str:
        """The field of its records that holds ``field``: ``token_accuracy`` (``<eos>``
        counted, the nearest there is) for ``residue_accuracy`` in a log of pepcurr 0.1,
        which logged no residue accuracy; ``field`` itself otherwise. The one place that
        knows the older records."""
        if field == "residue_accuracy" and field not in self.metrics:
            return "token_accuracy"
        return field

    @property
    def status(self) -> str:
        """How the run last ended: ``finished``, ``interrupted``, ``stopped``, ``failed``, or
        ``incomplete`` (still running, or killed without a trace)."""
        ends = self.events("end")
        return str(ends["status"].iloc[-1]) if len(ends) else "incomplete"

    @property
    def last_step(self) -> int:
        return int(self.metrics["step"].max()) if len(self.metrics) else 0


def read_run(run_dir: Path) -> RunLog:
    """Read ``run.json`` and ``metrics.jsonl`` of a run directory (pandas)."""
    import pandas as pd

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    records, warnings = read_records(run_dir / METRICS_FILE)
    metrics = pd.DataFrame.from_records(records)
    if len(metrics):
        metrics = metrics.sort_values("step", kind="stable").reset_index(drop=True)
    return RunLog(run_dir=run_dir, config=config, metrics=metrics, warnings=warnings)

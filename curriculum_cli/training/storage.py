"""A run's files on a full disk or where they may not be written: one clear error, nothing lost.

Training writes ``run.json``, its lock, ``metrics.jsonl`` (each record
flushed) and ``last.pt`` (through ``last.pt.tmp`` and a rename). When the
disk is full (``ENOSPC``), a quota is exceeded (``EDQUOT``), or a file may not
be written (``EACCES``; ``EPERM``, an immutable file; ``EROFS``), what was
written stays usable: the last checkpoint is intact, and ``--resume`` cuts the
log back to it. ``storage_error`` turns such an ``OSError`` into a
``StorageError`` whose one line names the file, the checkpoint a resume starts
from, and what to do; the writers name their file where the system does not
(``naming``: a failed ``write`` or ``fsync`` carries no file name).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from curriculum_cli.errors import StorageError
from curriculum_cli.training.config import RUN_FILE

PROBLEMS = {
    errno.ENOSPC: ("disk full writing {file}", "free space"),
    errno.EDQUOT: ("disk quota exceeded writing {file}", "free space"),
    errno.EROFS: ("read-only file system: cannot write {file}", "make it writable"),
    errno.EACCES: ("permission denied: {file}", "make it writable"),
    errno.EPERM: ("operation not permitted: {file} (an immutable file?)", "make it writable"),
}
"""errno -> (the problem, naming ``{file}``; what to do first)."""


def is_storage_problem(error: BaseException) -> bool:
    """Whether ``error`` is one of ``PROBLEMS`` (anything else stays what it is)."""
    return isinstance(error, OSError) and error.errno in PROBLEMS


@contextmanager
def naming(path: Path | str) -> Iterator[None]:
    """Writes to ``path``: an ``OSError`` without a file name gets ``path``'s."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            error.filename = str(path)
        raise


def storage_error(error: OSError, run_dir: Path, checkpoint_step: int | None) -> StorageError:
    """The ``StorageError`` of ``error`` (one of ``PROBLEMS``) while ``run_dir`` was written;
    ``checkpoint_step``: the step of its intact checkpoint (None: it has none)."""
    run_dir = Path(run_dir)
    problem, fix = PROBLEMS[error.errno]
    what = problem.format(file=error.filename or f"a file of {run_dir}")
    if not (run_dir / RUN_FILE).is_file():
        return StorageError(f"{what}; nothing was trained yet", fix)
    if checkpoint_step is None:
        return StorageError(f"{what}, before {run_dir}'s first checkpoint",
                            f"{fix}, delete {run_dir}")  # fmt: skip
    return StorageError(f"{what}; the checkpoint at step {checkpoint_step} is intact", fix,
                        resume_flag=True)  # fmt: skip

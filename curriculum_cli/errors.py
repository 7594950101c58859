"""Typed errors that the CLI turns into one clear line and exit code 2.

The library raises these (never ``SystemExit``) with a message that says what
is wrong and, where possible, how to fix it. ``cli.boundary.ErrorBoundary``
maps each one to a line on stderr; ``--debug`` shows the traceback instead.
``check_output_file`` is the one check of a file a command is about to write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PepcurrError(Exception):
    """Base class of every error pepcurr reports to a user."""


class CurriculumError(PepcurrError):
    """A curriculum file or preset is missing, unreadable or invalid."""


class PeptideError(PepcurrError):
    """A peptide string holds a residue or modification pepcurr does not know."""


class VocabularyError(PepcurrError):
    """A ``--vocab`` name or file is unknown, unreadable or invalid."""


class PsmError(PepcurrError):
    """A file of search-engine results (PSMs) is missing, unreadable or cannot be joined."""


class MgfError(PepcurrError):
    """An MGF file is missing, malformed, or holds an invalid spectrum."""


class ModelError(PepcurrError):
    """A ``--model`` factory cannot be loaded, or its model does not follow the interface."""


class RunError(PepcurrError):
    """A run directory, checkpoint or metrics log is missing, corrupt or inconsistent."""


class StorageError(RunError):
    """A file could not be written (a full disk, a quota, a file that may not be written);
    what was written before stays usable.

    ``what``: the problem, the file and what is intact; ``fix``: what to do first;
    ``resume_flag``: go on with ``--resume`` (``train``), else by running the same
    command again (``ab``, or nothing to resume). Pickled whole, so that a worker
    process's error reaches its parent as the same one line.
    """

    def __init__(self, what: str, fix: str, resume_flag: bool = False):
        self.what, self.fix, self.resume_flag = what, fix, resume_flag
        again = "run it again with --resume" if resume_flag else "run the same command again"
        super().__init__(f"{what}: {fix}, then {again}")

    def __reduce__(self):
        return type(self), (self.what, self.fix, self.resume_flag)


class TrainingError(PepcurrError):
    """Training cannot go on (e.g. too many non-finite steps in a row)."""


def check_output_file(
    path: Path | str, overwrite: bool, error: type[PepcurrError] = PepcurrError
) -> None:
    """Refuse, before any work, a file that cannot or should not be written: a directory, an
    existing file without ``--force`` (``overwrite``), a file in a missing directory."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a directory; give a file name")
    if path.exists() and not overwrite:
        raise error(f"{path}: file exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise error(f"{path}: directory {path.parent} does not exist")


def validation_problem_lines(error, source: str | None = None, max_lines: int = 5) -> list[str]:
    """``source: stages[2].max_length: reason``, one line per problem of a pydantic error.

    At most ``max_lines`` problems are listed, then a count of the rest.
    """
    prefix = f"{source}: " if source else ""
    lines = []
    for problem in error.errors():
        location = _dotted(problem["loc"])
        if problem["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            reason = "unknown key (a typo?)"
        elif problem["type"] == "missing":
            reason = "required field is missing"
        else:
            reason = problem["msg"].removeprefix("Value error, ")  # a validator's own message
            if problem["type"].endswith("_type") and _is_scalar(problem["input"]):
                reason += f", got {problem['input']!r}"
        lines.append(f"{prefix}{location}: {reason}" if location else f"{prefix}{reason}")
    if len(lines) > max_lines:
        hidden = len(lines) - max_lines
        lines = lines[:max_lines] + [f"{prefix}... and {hidden} more problem(s)"]
    return lines


def _dotted(location: tuple[int | str, ...]) -> str:
    """``("stages", 2, "max_length")`` -> ``stages[2].max_length``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None

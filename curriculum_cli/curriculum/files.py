"""Curriculum files: JSON in and out, every failure one line per problem naming the file;
``load_curriculum``, the curriculum a ``--curriculum`` value names (a preset or a file)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from curriculum_cli.curriculum.presets import ALL_PRESET_NAMES, preset
from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.errors import CurriculumError, check_output_file, validation_problem_lines

MAX_PROBLEM_LINES = 5
"""How many schema problems one error message lists before it summarises the rest."""


# A JSON array of numbers spread over one line per number, as json indent writes it.
_NUMBER_LIST_RE = re.compile(r"\[\n\s*(-?[\d.eE+-]+(?:,\n\s*-?[\d.eE+-]+)*)\n\s*\]")


def curriculum_json(curriculum: Curriculum) -> str:
    """The curriculum as a file: JSON indented by 2, ending in a newline; a list of numbers
    (a world's tables) on one line."""
    text = curriculum.model_dump_json(indent=2)
    text = _NUMBER_LIST_RE.sub(lambda m: "[" + re.sub(r",\n\s*", ", ", m.group(1)) + "]", text)
    return text + "\n"


def save_curriculum(curriculum: Curriculum, path: Path, *, overwrite: bool = False) -> None:
    """Write ``curriculum`` to ``path``; refuse to replace an existing file unless told to."""
    check_output_file(path, overwrite, CurriculumError)
    try:
        path.write_text(curriculum_json(curriculum), encoding="utf-8")
    except OSError as error:
        raise CurriculumError(f"{path}: cannot write: {error.strerror}") from None


def load_curriculum(source: str | Path) -> Curriculum:
    """A curriculum from a preset name (``presets.ALL_PRESET_NAMES``) or a JSON file.

    Every failure is a ``CurriculumError`` whose message starts with the file
    name and says, one line per problem, what is wrong and where.
    """
    if isinstance(source, str) and source in ALL_PRESET_NAMES:
        return preset(source)
    path = Path(source)
    if not path.exists():
        raise CurriculumError(
            f"{path}: no such file (and not a preset name: {', '.join(ALL_PRESET_NAMES)})"
        )
    return read_curriculum_file(path)


def read_curriculum_file(path: Path) -> Curriculum:
    """A curriculum from a JSON file.

    Every failure is a ``CurriculumError`` whose message starts with the file
    name and says, one line per problem, what is wrong and where.
    """
    data = _read_json_object(path)
    try:
        return Curriculum.model_validate(data)
    except ValidationError as error:
        raise CurriculumError(
            "\n".join(validation_problem_lines(error, str(path), MAX_PROBLEM_LINES))
        ) from None


def _read_json_object(path: Path) -> dict[str, Any]:
    """The top-level JSON object of a file, or a one-line ``CurriculumError``."""
    if path.is_dir():
        raise CurriculumError(f"{path}: is a directory, expected a curriculum JSON file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CurriculumError(f"{path}: cannot read: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CurriculumError(f"{path}: not a text file (not UTF-8); expected JSON") from None
    if "\x00" in text:
        raise CurriculumError(f"{path}: binary file (holds NUL bytes); expected JSON")
    if not text.strip():
        raise CurriculumError(f"{path}: file is empty; expected a JSON object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CurriculumError(
            f"{path}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    if not isinstance(data, dict):
        raise CurriculumError(
            f"{path}: the top level is a JSON {_json_kind(data)}; "
            'expected an object like {"name": ..., "stages": [...]}'
        )
    return data


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"

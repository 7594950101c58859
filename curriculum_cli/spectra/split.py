"""Peptide-disjoint train/validation/test splits of annotated MGF files (``pepcurr split``).

A model validated on peptides it trained on looks better than it is, so
Casanovo's maintainers advise sequence-disjoint validation. ``split_mgf``
groups the spectra of one or more annotated MGF files by peptide, shuffles the
groups with a seeded generator and deals them out so that each split gets about
its fraction of the *spectra*; no group lands in two splits. By default a group
is a *backbone*: the unmodified sequence, I counted as L (``chemistry.backbone``),
so that a peptide and its modified forms (``HNSYTCEATHK`` and
``HN[Deamidated]SYTCEATHK``), which share most of their fragment ladder, never
straddle train and test. ``--group peptide`` keeps pepcurr 0.2's rule: the
peptide as the model sees it (canonical residues, modifications included, I as L).

Spectra are copied byte for byte (each ``BEGIN IONS`` ... ``END IONS`` block's
own text, line endings included); a file's global parameters (lines before its
first ``BEGIN IONS``) are repeated inside each of its blocks, right after
``BEGIN IONS``, so that a block's own values still override them. Files are
read twice, as a stream: once for the peptides, once to copy, so memory grows
with the number of spectra (a key and two offsets each), not with the files'
size.

Peptides shared between the given input files are reported: files split
elsewhere (a train and a validation file) should share none.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations
from pathlib import Path

from curriculum_cli.errors import MgfError, PeptideError
from curriculum_cli.spectra.chemistry import backbone, parse_peptide

SPLITS = ("train", "val", "test")


class SplitGroup(StrEnum):
    """What ``split_mgf`` keeps in one split: spectra of one ``backbone`` (the unmodified
    sequence, I = L; the default) or of one ``peptide`` (modifications count, I = L)."""

    backbone = "backbone"
    peptide = "peptide"


@dataclass(frozen=True)
class _Entry:
    """One spectrum of an input file: where its block lies and its peptide key."""

    file: int  # index into the input paths
    start: int  # byte offset of its BEGIN IONS line
    end: int  # byte offset just past its END IONS line
    key: str  # its group: the backbone or the peptide (``peptide_key``)


@dataclass(frozen=True)
class FileOverlap:
    """Peptides found in two input files."""

    first: str
    second: str
    n_peptides: int
    examples: list[str]


@dataclass
class SplitResult:
    """What ``split_mgf`` wrote: per split its file, spectra and groups (``n_peptides``: backbones
    or peptides, as ``group`` says); groups shared by input files."""

    out_dir: Path
    seed: int
    group: SplitGroup
    fractions: dict[str, float]
    files: dict[str, Path | None]  # None: the split's fraction is 0, no file written
    n_spectra: dict[str, int]
    n_peptides: dict[str, int]
    inputs: dict[str, tuple[int, int]]  # input path -> (spectra, distinct peptides)
    overlaps: list[FileOverlap] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def peptide_key(seq: str, group: SplitGroup = SplitGroup.backbone) -> str:
    """The group of a peptide: its backbone (``PEPM`` and ``[Acetyl]-PEPM[Oxidation]`` give
    one key), or with ``SplitGroup.peptide`` canonical residue names joined (``PEPM`` and
    ``PEPM[Oxidation]`` give two). Either way I is written as L, and ``PEPTIDEC`` and
    ``PEPTLDEC[+57.021]`` give one key.
    """
    if group is SplitGroup.backbone:
        return backbone(seq)
    return "".join("L" if residue == "I" else residue for residue in parse_peptide(seq))


def split_mgf(
    paths: list[Path | str],
    out_dir: Path | str,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
    group: SplitGroup = SplitGroup.backbone,
) -> SplitResult:
    """Write ``out_dir/train.mgf``, ``val.mgf`` and ``test.mgf`` with no backbone (``group``:
    or peptide) in two of them.

    Every spectrum needs a SEQ (any spelling ``inspect`` reads). Fractions
    are of spectra and are met approximately: groups are dealt whole, each
    to the split furthest below its target. The same files, fractions and
    ``seed`` give the same split. A split with fraction 0 gets no file.
    Problems raise ``MgfError`` naming the file, the spectrum's index and TITLE.
    """
    paths = [Path(path) for path in paths]
    out_dir = Path(out_dir)
    fractions = {"val": val_fraction, "test": test_fraction}
    for name, value in fractions.items():
        if not 0.0 <= value < 1.0:
            raise MgfError(f"--{name} must be a fraction in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise MgfError(f"--val + --test must be below 1, got {val_fraction + test_fraction:g}")
    fractions = {"train": 1.0 - val_fraction - test_fraction, **fractions}
    if len(set(paths)) != len(paths):
        raise MgfError("the same input file is given twice")
    targets = {name: out_dir / f"{name}.mgf" for name in SPLITS if fractions[name] > 0}
    if out_dir.exists() and not out_dir.is_dir():
        raise MgfError(f"{out_dir}: is a file; --out must be a directory")
    for target in targets.values():
        if target.exists() and not overwrite:
            raise MgfError(f"{target}: file exists; use --force to overwrite it")
        if target.resolve() in {path.resolve() for path in paths}:
            raise MgfError(f"{target}: is an input file; choose another --out")

    entries: list[_Entry] = []
    headers: list[bytes] = []
    for index, path in enumerate(paths):
        header, found = _scan(path, index, SplitGroup(group))
        headers.append(header)
        entries += found

    # Peptides in a fixed order (first appearance), shuffled by the seed, dealt whole.
    by_key: dict[str, list[int]] = defaultdict(list)
    for position, entry in enumerate(entries):
        by_key[entry.key].append(position)
    keys = list(by_key)
    random.Random(seed).shuffle(keys)
    want = {name: fractions[name] * len(entries) for name in SPLITS}
    counts = dict.fromkeys(SPLITS, 0)
    assigned: dict[str, list[str]] = {name: [] for name in SPLITS}
    for key in keys:
        name = max(SPLITS, key=lambda s: (want[s] - counts[s]) / max(want[s], 1e-12)
                   if want[s] > 0 else -float("inf"))  # fmt: skip
        assigned[name].append(key)
        counts[name] += len(by_key[key])

    out_dir.mkdir(parents=True, exist_ok=True)
    handles = [open(path, "rb") for path in paths]  # noqa: SIM115 (closed below)
    try:
        for name, target in targets.items():
            rows = sorted(i for key in assigned[name] for i in by_key[key])
            _write_blocks(target, [entries[i] for i in rows], handles, headers)
    finally:
        for handle in handles:
            handle.close()

    warnings = [
        f"{name}: no spectra (too few peptides for --{name} {fractions[name]:g})"
        for name in targets
        if counts[name] == 0
    ]
    per_file: dict[int, Counter] = defaultdict(Counter)
    for entry in entries:
        per_file[entry.file][entry.key] += 1
    overlaps = []
    for a, b in combinations(range(len(paths)), 2):
        shared = sorted(set(per_file[a]) & set(per_file[b]))
        if shared:
            overlaps.append(FileOverlap(str(paths[a]), str(paths[b]), len(shared), shared[:3]))
    return SplitResult(
        out_dir=out_dir,
        seed=seed,
        group=SplitGroup(group),
        fractions=fractions,
        files={name: targets.get(name) for name in SPLITS},
        n_spectra=counts,
        n_peptides={name: len(assigned[name]) for name in SPLITS},
        inputs={
            str(path): (sum(per_file[i].values()), len(per_file[i])) for i, path in enumerate(paths)
        },
        overlaps=overlaps,
        warnings=warnings,
    )


def _scan(path: Path, file_index: int, group: SplitGroup) -> tuple[bytes, list[_Entry]]:
    """The global-parameter lines of an MGF file and one ``_Entry`` per spectrum block."""
    if not path.exists():
        raise MgfError(f"{path}: no such file")
    if path.is_dir():
        raise MgfError(f"{path}: is a directory, expected an MGF file")
    header: list[bytes] = []
    entries: list[_Entry] = []
    offset, start, first_line = 0, None, 0
    title, seq = "", ""

    def where() -> str:
        """The current spectrum, as ``read_mgf`` names one in its errors."""
        shown = title or "(no TITLE)"
        return f"{path}: spectrum {len(entries)} (TITLE={shown}, line {first_line}): "

    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if b"\x00" in raw:
                raise MgfError(f"{path}: binary file (holds NUL bytes), not an MGF text file")
            line = raw.decode("utf-8", errors="replace").strip()
            marker = line.upper()
            if marker == "BEGIN IONS":
                if start is not None:
                    raise MgfError(f"{where()}truncated: no END IONS before the next BEGIN IONS")
                start, first_line, title, seq = offset, number, "", ""
            elif start is None:
                if line and not line.startswith(("#", ";", "!", "/")) and "=" in line:
                    header.append(raw.rstrip(b"\r\n") + b"\n")
            elif marker == "END IONS":
                if not seq:
                    raise MgfError(f"{where()}no SEQ; split needs annotated spectra")
                try:
                    key = peptide_key(seq, group)
                except PeptideError as error:
                    raise MgfError(f"{where()}SEQ={seq}: {error}") from None
                entries.append(_Entry(file_index, start, offset + len(raw), key))
                start = None
            elif marker.startswith("TITLE="):
                title = line[len("TITLE=") :]
            elif marker.startswith("SEQ="):
                seq = line[len("SEQ=") :].strip()
            offset += len(raw)
    if start is not None:
        raise MgfError(f"{where()}truncated: the file ends before END IONS")
    if not entries:
        raise MgfError(f"{path}: not an MGF file (no complete BEGIN IONS ... END IONS block)")
    return b"".join(header), entries


def _write_blocks(target: Path, entries: list[_Entry], handles: list, headers: list[bytes]) -> None:
    """Copy the blocks of ``entries`` into ``target`` (through a temporary file and a rename)."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(tmp, "wb") as out:
            for entry in entries:
                handle = handles[entry.file]
                handle.seek(entry.start)
                block = handle.read(entry.end - entry.start)
                if headers[entry.file]:  # global parameters, right after BEGIN IONS
                    first, newline, rest = block.partition(b"\n")
                    block = first + newline + headers[entry.file] + rest
                out.write(block)
                if not block.endswith(b"\n"):
                    out.write(b"\n")
                out.write(b"\n")
        tmp.replace(target)
    except OSError as error:
        raise MgfError(f"{target}: cannot write: {error.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)

"""MGF in and out: real annotated spectra into a ``SpectrumBatch``, synthetic spectra out.

Reading goes through ``pyteomics.mgf``, one ``BEGIN IONS`` ... ``END IONS``
block at a time, so that every problem is reported with the spectrum's 0-based
index and TITLE, and so that ``skip_invalid`` can skip a bad spectrum and go
on. Peaks are preprocessed as Casanovo does (``peaks.PeakFilter``), except that
intensities end base-peak normalized (max 1), like the synthetic spectra.

Writing produces what Casanovo reads for training and evaluation: TITLE,
PEPMASS (precursor m/z), CHARGE (``2+``), SEQ (ProForma, e.g.
``C[Carbamidomethyl]``), then one ``m/z intensity`` line per peak.

``inspection.inspect_mgf`` summarises a file for a user. The conventions are
documented in ``docs/spectra-and-mgf.md``.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from curriculum_cli.errors import MgfError, PeptideError, check_output_file
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import mz_from_neutral_mass, neutral_mass_from_mz
from curriculum_cli.spectra.peaks import PeakFilter, filter_peaks
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, Vocabulary

SKIP_HINT = "; use --skip-invalid to skip such spectra"
FIX_HINT = "; fix or remove it (pepcurr inspect --skip-invalid FILE lists every invalid one)"
"""What an invalid spectrum's message advises: skipping it, where the command offers
``--skip-invalid``, else fixing the file."""


@dataclass
class MgfReadResult:
    """The spectra of an MGF file that could be read, and what was skipped.

    ``batch.peptides`` holds each spectrum's canonical peptide (``""`` when the
    spectrum has no SEQ); ``batch.titles`` its TITLE (``""`` when missing). A
    peptide with a residue outside the vocabulary (e.g. ``N[Deamidated]``, an
    N-terminal modification) keeps its string but gets no target: tokens are
    just ``<eos>`` and its length is 0, as for an unannotated spectrum.
    """

    batch: SpectrumBatch
    n_skipped: int = 0
    skipped: list[str] = field(default_factory=list)  # one message per skipped spectrum
    file_index: list[int] = field(default_factory=list)  # 0-based position in the file
    precursor_mz: list[float] = field(default_factory=list)  # PEPMASS as written (m/z)
    n_peaks_in_file: list[int] = field(default_factory=list)  # peaks before preprocessing


@dataclass
class _Spectrum:
    """One parsed, validated and preprocessed spectrum (before batching)."""

    title: str
    precursor_mz: float
    charge: int
    mz: np.ndarray
    intensity: np.ndarray
    n_peaks_in_file: int
    peptide: str
    token_ids: list[int]


@dataclass
class _Block:
    """The lines of one ``BEGIN IONS`` ... ``END IONS`` block."""

    first_line: int  # 1-based line number of BEGIN IONS
    lines: list[str]
    closed: bool  # False: the file ended (or a new BEGIN IONS came) before END IONS

    @property
    def title(self) -> str:
        for line in self.lines:
            if line.strip().upper().startswith("TITLE="):
                return line.strip()[len("TITLE=") :]
        return ""


_PYTEOMICS_OPTIONS = {
    "convert_arrays": 1,
    "read_charges": False,
    "read_ions": False,
    "use_header": False,
    "dtype": np.float64,
}


def read_mgf(
    path: str | Path,
    vocab: Vocabulary,
    peak_filter: PeakFilter = PeakFilter(),  # noqa: B008 (frozen dataclass: immutable)
    skip_invalid: bool = False,
    hint: str = SKIP_HINT,
) -> MgfReadResult:
    """Read every spectrum of an MGF file into one padded ``SpectrumBatch``.

    Each spectrum needs PEPMASS (precursor m/z) and CHARGE; SEQ is optional.
    Peaks go through ``peak_filter`` (Casanovo's defaults). Any problem raises
    ``MgfError`` naming the file, the spectrum's 0-based index and its TITLE,
    and ``hint`` (``FIX_HINT`` for a command without ``--skip-invalid``);
    with ``skip_invalid`` such spectra are skipped and counted instead (a file
    that is not MGF at all is always an error).
    """
    path = Path(path)
    header, blocks = _split_blocks(path, _read_text(path))
    spectra: list[tuple[int, _Spectrum]] = []
    skipped: list[str] = []
    for index, block in enumerate(blocks):
        try:
            spectra.append((index, _parse_block(block, header, vocab, peak_filter)))
        except _InvalidSpectrum as problem:
            message = _problem_message(path, index, block, problem)
            if not skip_invalid:
                raise MgfError(message + hint) from None
            skipped.append(message)
    if not spectra:
        raise MgfError(f"{path}: no valid spectrum ({len(skipped)} skipped); first: {skipped[0]}")
    return MgfReadResult(
        batch=_to_batch([spectrum for _, spectrum in spectra]),
        n_skipped=len(skipped),
        skipped=skipped,
        file_index=[index for index, _ in spectra],
        precursor_mz=[spectrum.precursor_mz for _, spectrum in spectra],
        n_peaks_in_file=[spectrum.n_peaks_in_file for _, spectrum in spectra],
    )


def write_mgf(
    path: str | Path, batch: SpectrumBatch, vocab: Vocabulary, *, overwrite: bool = False
) -> None:
    """Write a batch as MGF that Casanovo can train or evaluate on.

    Per spectrum: TITLE (``batch.titles`` or the index), PEPMASS (precursor
    m/z, from the neutral mass and charge), CHARGE (``2+``), SEQ (ProForma:
    ``batch.peptides`` when set, else the decoded tokens; omitted for an
    unannotated spectrum), then the real peaks as ``m/z intensity`` lines
    written with the shortest decimal that reads back to the same float32.
    """
    path = Path(path)
    check_output_file(path, overwrite, MgfError)
    mz = batch.mz.detach().cpu().numpy()
    intensity = batch.intensity.detach().cpu().numpy()
    mask = batch.peak_mask.detach().cpu().numpy()
    mass_da = batch.precursor_mass_da.detach().cpu().double().numpy()
    charges = batch.precursor_charge.detach().cpu().numpy()
    tokens = batch.tokens.detach().cpu().tolist()
    # numpy prints a float32 with the shortest digits that read back to the same value.
    peak_lines = [
        f"{a} {b}\n" for a, b in zip(mz[mask].astype(str), intensity[mask].astype(str), strict=True)
    ]
    peak_end = np.cumsum(mask.sum(axis=1))
    out = io.StringIO()
    for i in range(len(batch)):
        charge = int(charges[i])
        out.write(mgf_block(
            title=batch.titles[i] if batch.titles else str(i),
            precursor_mz=mz_from_neutral_mass(float(mass_da[i]), charge),
            charge=charge,
            peptide=batch.peptides[i] if batch.peptides else vocab.decode(tokens[i]),
            peak_lines=peak_lines[peak_end[i - 1] if i else 0 : peak_end[i]],
        ))  # fmt: skip
    try:
        path.write_text(out.getvalue(), encoding="utf-8")
    except OSError as error:
        raise MgfError(f"{path}: cannot write: {error.strerror}") from None


def mgf_block(
    title: str,
    precursor_mz: float,
    charge: int,
    peptide: str,
    peak_lines: list[str],
    params: list[tuple[str, object]] = (),  # noqa: B006 (never mutated)
) -> str:
    """One spectrum as MGF text: TITLE, PEPMASS (``repr`` of the m/z), CHARGE (``2+``), the
    extra ``params`` (``SCANS``...), SEQ when ``peptide`` is not empty, the peak lines
    (``"m/z intensity\\n"`` each), then ``END IONS`` and a blank line."""
    head = [f"BEGIN IONS\nTITLE={title}\n", f"PEPMASS={precursor_mz!r}\n", f"CHARGE={charge}+\n"]
    head += [f"{key}={value}\n" for key, value in params]
    if peptide:
        head.append(f"SEQ={peptide}\n")
    return "".join([*head, *peak_lines, "END IONS\n\n"])


# ----------------------------------------------------------------------------
# Reading, one block at a time
# ----------------------------------------------------------------------------


class _InvalidSpectrum(Exception):
    """A problem with one spectrum; ``read_mgf`` adds the file, index and title."""


def _require_file(path: Path) -> None:
    """An ``MgfError`` unless ``path`` names a file that exists."""
    if not path.exists():
        raise MgfError(f"{path}: no such file")
    if path.is_dir():
        raise MgfError(f"{path}: is a directory, expected an MGF file")


def _binary_file(path: Path) -> MgfError:
    return MgfError(f"{path}: binary file (holds NUL bytes), not an MGF text file")


def _read_text(path: Path) -> str:
    """The file's text, or an ``MgfError`` saying why it cannot be an MGF file."""
    _require_file(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MgfError(f"{path}: cannot read: {error.strerror}") from None
    if b"\x00" in raw:
        raise _binary_file(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # old MGF files with accented titles


def _iter_blocks(lines: Iterable[str], header_lines: list[str]) -> Iterator[_Block]:
    """The ``BEGIN IONS`` blocks of MGF lines, one at a time; lines before the first block
    (the global parameters) are appended to ``header_lines`` before it is yielded."""
    current: _Block | None = None
    before_first = True
    for number, line in enumerate(lines, start=1):
        marker = line.strip().upper()
        if marker == "BEGIN IONS":
            before_first = False
            if current is not None:  # the previous spectrum never ended
                yield current
            current = _Block(first_line=number, lines=[marker], closed=False)
        elif current is not None:
            current.lines.append(marker if marker == "END IONS" else line)
            if marker == "END IONS":
                current.closed = True
                yield current
                current = None
        elif before_first:
            header_lines.append(line)
    if current is not None:
        yield current


def _read_header(path: Path, header_lines: list[str]) -> dict:
    from pyteomics import mgf

    try:
        return mgf.read_header(io.StringIO("\n".join(header_lines)))
    except Exception as error:  # pyteomics raises PyteomicsError, ValueError, ...
        raise MgfError(f"{path}: cannot read the global parameters: {error}") from None


def _split_blocks(path: Path, text: str) -> tuple[dict, list[_Block]]:
    """Global header parameters and the ``BEGIN IONS`` blocks of an MGF text."""
    header_lines: list[str] = []
    blocks = list(_iter_blocks(text.splitlines(), header_lines))
    if not blocks:
        what = "empty file" if not text.strip() else "no 'BEGIN IONS' line"
        raise MgfError(f"{path}: not an MGF file ({what})")
    return _read_header(path, header_lines), blocks


def _problem_message(path: Path, index: int, block: _Block, problem: Exception) -> str:
    title = block.title or "(no TITLE)"
    return f"{path}: spectrum {index} (TITLE={title}, line {block.first_line}): {problem}"


def _decoded_lines(handle: BinaryIO, path: Path, digest) -> Iterator[str]:
    """Lines of an MGF file read in binary, hashed into ``digest`` on the way (UTF-8, else
    Latin-1 per line, as ``_read_text`` decodes a whole file)."""
    for raw in handle:
        digest.update(raw)
        if b"\x00" in raw:
            raise _binary_file(path)
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            yield raw.decode("latin-1").rstrip("\r\n")


def stream_training_spectra(
    path: str | Path,
    vocab: Vocabulary,
    peak_filter: PeakFilter,
    max_charge: int,
    digest,
) -> Iterator[tuple[int, _Spectrum | str]]:
    """Spectra of an annotated MGF file for training, one at a time (the file is never held
    in memory): ``(index, spectrum)``, or ``(index, message)`` for an invalid one.

    Training needs more than ``read_mgf``: a SEQ, every residue in ``vocab``, and
    a charge of at most ``max_charge``. ``digest`` (a ``hashlib`` object) receives the
    file's bytes, so the caller gets its SHA-256 from the same pass.
    """
    path = Path(path)
    _require_file(path)
    header_lines: list[str] = []
    header = None
    index = -1
    with open(path, "rb") as handle:
        for index, block in enumerate(_iter_blocks(_decoded_lines(handle, path, digest),
                                                   header_lines)):  # fmt: skip
            if header is None:
                header = _read_header(path, header_lines)
            try:
                yield index, _parse_block(block, header, vocab, peak_filter, max_charge)
            except _InvalidSpectrum as problem:
                yield index, _problem_message(path, index, block, problem)
    if index < 0:
        raise MgfError(f"{path}: not an MGF file (no 'BEGIN IONS' line)")


def _parse_block(
    block: _Block,
    header: dict,
    vocab: Vocabulary,
    peak_filter: PeakFilter,
    training_max_charge: int | None = None,
) -> _Spectrum:
    """Parse, validate and preprocess one block; ``_InvalidSpectrum`` on any problem.

    With ``training_max_charge`` the spectrum must also be a training example: a SEQ
    whose residues are all in ``vocab``, and a charge of at most that.
    """
    training = training_max_charge is not None
    if not block.closed:
        raise _InvalidSpectrum("truncated: no END IONS before the next spectrum or the file's end")
    from pyteomics import mgf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mgf.MGF(io.StringIO("\n".join(block.lines)), **_PYTEOMICS_OPTIONS) as reader:
                spectrum = next(iter(reader))
    except Exception as error:  # pyteomics raises PyteomicsError, ValueError, TypeError, ...
        raise _InvalidSpectrum(_explain_pyteomics_error(error, block)) from None
    params = {**header, **spectrum["params"]}
    precursor_mz = (params.get("pepmass") or (None,))[0]
    if precursor_mz is None:
        raise _InvalidSpectrum("no PEPMASS (the precursor m/z)")
    if not (math.isfinite(precursor_mz) and precursor_mz > 0):
        raise _InvalidSpectrum(f"PEPMASS must be a positive m/z, got {precursor_mz}")
    charges = params.get("charge")
    if not charges:
        raise _InvalidSpectrum("no CHARGE (the precursor charge, e.g. CHARGE=2+)")
    if len(charges) > 1:
        raise _InvalidSpectrum(f"several charges ({charges}); pepcurr needs exactly one")
    charge = int(charges[0])
    if charge < 1:
        raise _InvalidSpectrum(f"CHARGE must be positive (e.g. 2+), got {charge}")
    if training and charge > training_max_charge:
        raise _InvalidSpectrum(
            f"CHARGE={charge}+ is above the model's limit ({training_max_charge}+)"
        )

    mz, intensity = spectrum["m/z array"], spectrum["intensity array"]
    if len(mz) == 0:
        raise _InvalidSpectrum("no peaks")
    if len(mz) != len(intensity):
        raise _InvalidSpectrum("a peak line has an m/z but no intensity")
    if not (np.isfinite(mz).all() and np.isfinite(intensity).all()):
        raise _InvalidSpectrum("a peak has a non-finite m/z or intensity (nan, inf)")
    if (mz <= 0).any() or (intensity < 0).any():
        raise _InvalidSpectrum("a peak has m/z <= 0 or a negative intensity")
    used_mz, used_intensity = filter_peaks(mz, intensity, precursor_mz, charge, peak_filter)
    if len(used_mz) == 0:
        raise _InvalidSpectrum(f"no peak left after preprocessing ({peak_filter.describe()})")

    peptide, token_ids = "", []
    seq = str(params.get("seq") or "").strip()
    if seq:
        try:
            residues = vocab.parse(seq)
        except PeptideError as error:
            raise _InvalidSpectrum(f"SEQ={seq}: {error}") from None
        peptide = "".join(residues)
        try:
            token_ids = vocab.encode(residues)
        except PeptideError as error:
            if training:
                raise _InvalidSpectrum(f"SEQ={seq}: {error}") from None
            token_ids = []  # known residue the model cannot predict: no target
    elif training:
        raise _InvalidSpectrum("no SEQ (a training spectrum needs its peptide)")
    return _Spectrum(
        title=str(params.get("title", "")),
        precursor_mz=float(precursor_mz),
        charge=charge,
        mz=used_mz,
        intensity=used_intensity,
        n_peaks_in_file=len(mz),
        peptide=peptide,
        token_ids=token_ids,
    )


def _explain_pyteomics_error(error: Exception, block: _Block) -> str:
    """A one-line reason for a pyteomics failure, naming the offending line when possible."""
    text = str(error)
    # PyteomicsError quotes the bad peak line after "Line:" (newlines escaped as \n).
    bad_line = re.search(r"Line:(?:\s|\\n)*(.*?)(?:\s|\\n)*'?$", text)
    if bad_line:
        line = bad_line.group(1).strip()
        for offset, candidate in enumerate(block.lines):
            if candidate.strip() == line:
                number = block.first_line + offset
                return f"peak line {number} {line!r} is not 'm/z intensity'"
        return f"peak line {line!r} is not 'm/z intensity'"
    # ValueError / PyteomicsError on a parameter quote the bad value: find its line.
    value = re.search(r"'([^']*)'", text)
    if value:
        for offset, candidate in enumerate(block.lines):
            key, equals, rest = candidate.partition("=")
            if equals and key.strip() and rest.strip() == value.group(1):
                number = block.first_line + offset
                return f"{key.strip()}={rest.strip()} on line {number} is not a valid value"
    first_line = text.splitlines()[0] if text else type(error).__name__
    return f"cannot read the spectrum: {first_line}"


def _to_batch(spectra: list[_Spectrum]) -> SpectrumBatch:
    """Pad spectra into one batch: peaks to the most peaks, tokens to the longest target + 1."""
    n = len(spectra)
    n_peaks = max(len(s.mz) for s in spectra)
    width = max(len(s.token_ids) for s in spectra) + 1
    mz = np.zeros((n, n_peaks), dtype=np.float32)
    intensity = np.zeros((n, n_peaks), dtype=np.float32)
    peak_mask = np.zeros((n, n_peaks), dtype=bool)
    tokens = np.zeros((n, width), dtype=np.int64)
    for row, spectrum in enumerate(spectra):
        count, length = len(spectrum.mz), len(spectrum.token_ids)
        mz[row, :count] = spectrum.mz
        intensity[row, :count] = spectrum.intensity
        peak_mask[row, :count] = True
        tokens[row, :length] = spectrum.token_ids
        tokens[row, length] = EOS_TOKEN
    charges = torch.tensor([s.charge for s in spectra], dtype=torch.int64)
    precursor_mz = torch.tensor([s.precursor_mz for s in spectra], dtype=torch.float64)
    return SpectrumBatch(
        mz=torch.from_numpy(mz),
        intensity=torch.from_numpy(intensity),
        peak_mask=torch.from_numpy(peak_mask),
        precursor_mass_da=neutral_mass_from_mz(precursor_mz, charges).to(torch.float32),
        precursor_charge=charges,
        tokens=torch.from_numpy(tokens),
        lengths=torch.tensor([len(s.token_ids) for s in spectra], dtype=torch.int64),
        peptides=[s.peptide for s in spectra],
        titles=[s.title for s in spectra],
    )

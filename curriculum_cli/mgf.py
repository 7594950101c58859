"""MGF in and out: real annotated spectra into a ``SpectrumBatch``, synthetic spectra out.

Reading goes through ``pyteomics.mgf``, one ``BEGIN IONS`` ... ``END IONS``
block at a time, so that every problem is reported with the spectrum's 0-based
index and TITLE, and so that ``skip_invalid`` can skip a bad spectrum and go
on. Peaks are preprocessed as Casanovo does (``PeakFilter``), except that
intensities end base-peak normalized (max 1), like the synthetic spectra.

Writing produces what Casanovo reads for training and evaluation: TITLE,
PEPMASS (precursor m/z), CHARGE (``2+``), SEQ (ProForma, e.g.
``C[Carbamidomethyl]``), then one ``m/z intensity`` line per peak.

``inspect_mgf`` summarises a file for a user: charges, peaks, peptide lengths,
modifications, precursor error of SEQ against PEPMASS and b/y ion coverage.
The conventions are documented in ``docs/spectra-and-mgf.md``.
"""

from __future__ import annotations

import io
import math
import re
import statistics
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from curriculum_cli.batch import SpectrumBatch
from curriculum_cli.chemistry import (
    EOS_TOKEN,
    MAX_PEAK_MZ,
    MIN_PEAK_MZ,
    N_TERM_MASS_DA,
    Vocabulary,
    mz_from_neutral_mass,
    neutral_mass_from_mz,
    parse_peptide,
    peptide_fragment_ladder,
    peptide_neutral_mass_da,
    residue_mass_da,
)
from curriculum_cli.errors import MgfError, PeptideError

SKIP_HINT = "; use --skip-invalid to skip such spectra"


@dataclass(frozen=True)
class PeakFilter:
    """Casanovo's peak preprocessing (its ``config.yaml`` defaults), applied in this order.

    1. keep peaks with ``min_mz <= m/z <= max_mz``;
    2. remove peaks within ``remove_precursor_tol_da`` (Da) of the precursor
       m/z at every charge from 1 to the precursor charge (None: keep them);
    3. keep peaks with intensity >= ``min_intensity`` x the most intense
       remaining peak, then the ``max_peaks`` most intense (None: no limit);
    4. divide intensities by the most intense peak (base peak = 1).

    Casanovo then takes the square root of intensities and scales them to unit
    norm; pepcurr's batches stay base-peak normalized, as synthetic spectra are.
    """

    min_mz: float = MIN_PEAK_MZ
    max_mz: float = MAX_PEAK_MZ
    max_peaks: int | None = 150
    min_intensity: float = 0.01
    remove_precursor_tol_da: float | None = 2.0

    @classmethod
    def keep_all(cls) -> PeakFilter:
        """No filtering at all (only sorting and base-peak normalization)."""
        return cls(
            min_mz=0.0,
            max_mz=math.inf,
            max_peaks=None,
            min_intensity=0.0,
            remove_precursor_tol_da=None,
        )

    def describe(self) -> str:
        """One line for messages: what this filter keeps."""
        parts = [f"m/z {self.min_mz:g}-{self.max_mz:g}"]
        if self.remove_precursor_tol_da is not None:
            parts.append(f"precursor +/-{self.remove_precursor_tol_da:g} Da removed")
        if self.min_intensity > 0:
            parts.append(f"intensity >= {self.min_intensity:g} of base peak")
        if self.max_peaks is not None:
            parts.append(f"top {self.max_peaks} peaks")
        return ", ".join(parts)


def filter_peaks(
    mz: np.ndarray,
    intensity: np.ndarray,
    precursor_mz: float,
    precursor_charge: int,
    peak_filter: PeakFilter,
) -> tuple[np.ndarray, np.ndarray]:
    """One spectrum's peaks after ``peak_filter``: m/z ascending, intensities with max 1.

    Returns empty arrays when no peak survives (or all intensities are 0).
    """
    order = np.argsort(mz, kind="stable")
    mz, intensity = mz[order], intensity[order]
    keep = (mz >= peak_filter.min_mz) & (mz <= peak_filter.max_mz)
    if peak_filter.remove_precursor_tol_da is not None:
        neutral_mass_da = neutral_mass_from_mz(precursor_mz, precursor_charge)
        for charge in range(1, precursor_charge + 1):
            precursor_at_charge = mz_from_neutral_mass(neutral_mass_da, charge)
            keep &= np.abs(mz - precursor_at_charge) > peak_filter.remove_precursor_tol_da
    mz, intensity = mz[keep], intensity[keep]
    if len(mz) == 0 or intensity.max() <= 0:
        return mz[:0], intensity[:0]
    keep = intensity >= peak_filter.min_intensity * intensity.max()
    mz, intensity = mz[keep], intensity[keep]
    if peak_filter.max_peaks is not None and len(mz) > peak_filter.max_peaks:
        strongest = np.sort(np.argsort(-intensity, kind="stable")[: peak_filter.max_peaks])
        mz, intensity = mz[strongest], intensity[strongest]
    return mz, intensity / intensity.max()


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
) -> MgfReadResult:
    """Read every spectrum of an MGF file into one padded ``SpectrumBatch``.

    Each spectrum needs PEPMASS (precursor m/z) and CHARGE; SEQ is optional.
    Peaks go through ``peak_filter`` (Casanovo's defaults). Any problem raises
    ``MgfError`` naming the file, the spectrum's 0-based index and its TITLE;
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
                raise MgfError(message + SKIP_HINT) from None
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
    if path.is_dir():
        raise MgfError(f"{path}: is a directory; give a file name")
    if path.exists() and not overwrite:
        raise MgfError(f"{path}: file exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise MgfError(f"{path}: directory {path.parent} does not exist")
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
        title = batch.titles[i] if batch.titles else str(i)
        peptide = batch.peptides[i] if batch.peptides else vocab.decode(tokens[i])
        charge = int(charges[i])
        out.write(f"BEGIN IONS\nTITLE={title}\n")
        out.write(f"PEPMASS={mz_from_neutral_mass(float(mass_da[i]), charge)!r}\n")
        out.write(f"CHARGE={charge}+\n")
        if peptide:
            out.write(f"SEQ={peptide}\n")
        out.writelines(peak_lines[peak_end[i - 1] if i else 0 : peak_end[i]])
        out.write("END IONS\n\n")
    try:
        path.write_text(out.getvalue(), encoding="utf-8")
    except OSError as error:
        raise MgfError(f"{path}: cannot write: {error.strerror}") from None


@dataclass(frozen=True)
class ValueRange:
    """min, median, (mean,) max of a per-spectrum count or length."""

    min: float
    median: float
    max: float
    mean: float | None = None


@dataclass(frozen=True)
class PrecursorErrorSummary:
    """SEQ's precursor m/z against PEPMASS, in ppm (signed: SEQ heavier is positive)."""

    median: float
    median_abs: float
    worst: float
    worst_title: str
    n_over_tolerance: int
    tolerance_ppm: float


@dataclass(frozen=True)
class CoverageSummary:
    """Per spectrum, the fraction of SEQ's b/y ions found within ``tolerance_da`` of a peak."""

    mean: float
    median: float
    min: float
    min_title: str
    tolerance_da: float


@dataclass(frozen=True)
class MgfReport:
    """What ``inspect_mgf`` found in a file (``dataclasses.asdict`` gives its JSON).

    ``skipped`` holds one message per invalid spectrum; ``charges`` maps a
    charge (as text) to its count; ``peaks_in_file``/``peaks_used`` are per
    spectrum before and after ``preprocessing``; ``n_outside_vocabulary``
    counts annotated spectra with no training target because of
    ``residues_outside_vocabulary``. The last four are None when no spectrum
    has a SEQ.
    """

    path: str
    n_spectra: int
    n_skipped: int
    skipped: list[str]
    preprocessing: str
    charges: dict[str, int]
    peaks_in_file: ValueRange
    peaks_used: ValueRange
    n_annotated: int
    modifications: dict[str, int]
    n_outside_vocabulary: int
    residues_outside_vocabulary: list[str]
    peptide_length: ValueRange | None = None
    precursor_error_ppm: PrecursorErrorSummary | None = None
    fragment_coverage: CoverageSummary | None = None


def inspect_mgf(
    path: str | Path,
    tolerance_da: float = 0.02,
    vocab: Vocabulary | None = None,
    peak_filter: PeakFilter = PeakFilter(),  # noqa: B008 (frozen dataclass: immutable)
    skip_invalid: bool = False,
    precursor_tol_ppm: float = 50.0,
) -> MgfReport:
    """A report telling a user whether an MGF file looks right (see ``MgfReport``).

    Precursor error: SEQ's m/z against PEPMASS, spectra over
    ``precursor_tol_ppm`` counted. Coverage: b and y ions of SEQ at charge 1,
    plus charge 2 when the precursor is 3+, inside m/z 50-2500, found within
    ``tolerance_da`` (Da) of a used peak. ``vocab`` defaults to ``Vocabulary.default()``.
    """
    vocab = vocab or Vocabulary.default()
    result = read_mgf(path, vocab, peak_filter, skip_invalid)
    batch = result.batch
    titles = batch.titles or []
    annotated = [i for i, peptide in enumerate(batch.peptides or []) if peptide]
    residues = {i: parse_peptide(batch.peptides[i]) for i in annotated}
    modifications = Counter(r for i in annotated for r in residues[i] if "[" in r)
    lengths = [sum(r not in N_TERM_MASS_DA for r in residues[i]) for i in annotated]
    charges = Counter(int(z) for z in batch.precursor_charge.tolist())
    fields = dict(
        path=str(path),
        n_spectra=len(batch),
        n_skipped=result.n_skipped,
        skipped=result.skipped,
        preprocessing=peak_filter.describe(),
        charges={str(z): charges[z] for z in sorted(charges)},
        peaks_in_file=_summary(result.n_peaks_in_file),
        peaks_used=_summary(batch.peak_mask.sum(-1).tolist()),
        n_annotated=len(annotated),
        modifications=dict(modifications.most_common()),
        n_outside_vocabulary=sum(int(batch.lengths[i]) == 0 for i in annotated),
        residues_outside_vocabulary=sorted(
            {r for i in annotated for r in residues[i]} - set(vocab.residues) - {"I"}
        ),
    )
    if not annotated:
        return MgfReport(**fields)

    errors_ppm = []
    for i in annotated:
        charge = int(batch.precursor_charge[i])
        expected_mz = mz_from_neutral_mass(peptide_neutral_mass_da(residues[i]), charge)
        errors_ppm.append((result.precursor_mz[i] - expected_mz) / expected_mz * 1e6)
    worst = max(range(len(annotated)), key=lambda j: abs(errors_ppm[j]))
    precursor_error = PrecursorErrorSummary(
        median=statistics.median(errors_ppm),
        median_abs=statistics.median(abs(e) for e in errors_ppm),
        worst=errors_ppm[worst],
        worst_title=titles[annotated[worst]],
        n_over_tolerance=sum(abs(e) > precursor_tol_ppm for e in errors_ppm),
        tolerance_ppm=precursor_tol_ppm,
    )

    rows = torch.tensor(annotated)
    coverage = _fragment_coverage(
        [residues[i] for i in annotated],
        batch.mz[rows],
        batch.peak_mask[rows],
        batch.precursor_charge[rows],
        tolerance_da,
    ).tolist()
    lowest = min(range(len(annotated)), key=lambda j: coverage[j])
    return MgfReport(
        **fields,
        peptide_length=_summary(lengths, mean=False),
        precursor_error_ppm=precursor_error,
        fragment_coverage=CoverageSummary(
            mean=statistics.fmean(coverage),
            median=statistics.median(coverage),
            min=coverage[lowest],
            min_title=titles[annotated[lowest]],
            tolerance_da=tolerance_da,
        ),
    )


# ----------------------------------------------------------------------------
# Reading, one block at a time
# ----------------------------------------------------------------------------


class _InvalidSpectrum(Exception):
    """A problem with one spectrum; ``read_mgf`` adds the file, index and title."""


def _read_text(path: Path) -> str:
    """The file's text, or an ``MgfError`` saying why it cannot be an MGF file."""
    if not path.exists():
        raise MgfError(f"{path}: no such file")
    if path.is_dir():
        raise MgfError(f"{path}: is a directory, expected an MGF file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MgfError(f"{path}: cannot read: {error.strerror}") from None
    if b"\x00" in raw:
        raise MgfError(f"{path}: binary file (holds NUL bytes), not an MGF text file")
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
            raise MgfError(f"{path}: binary file (holds NUL bytes), not an MGF text file")
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
    if not path.exists():
        raise MgfError(f"{path}: no such file")
    if path.is_dir():
        raise MgfError(f"{path}: is a directory, expected an MGF file")
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
            residues = parse_peptide(seq)
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


# ----------------------------------------------------------------------------
# Inspection helpers
# ----------------------------------------------------------------------------


def _summary(values: list[int] | list[float], mean: bool = True) -> ValueRange:
    """min, median, (mean,) max of a non-empty list."""
    return ValueRange(
        min=min(values),
        median=statistics.median(values),
        max=max(values),
        mean=statistics.fmean(values) if mean else None,
    )


def _fragment_coverage(
    peptides: list[list[str]],
    peak_mz: torch.Tensor,
    peak_mask: torch.Tensor,
    precursor_charge: torch.Tensor,
    tolerance_da: float,
) -> torch.Tensor:
    """Per spectrum, the fraction of its b/y ions within ``tolerance_da`` (Da) of a peak.

    Charge 1 ions always; charge 2 ions too when the precursor charge is >= 3
    (``chemistry.peptide_fragment_ladder``); only ions inside the m/z window of
    every pepcurr spectrum (``MIN_PEAK_MZ`` to ``MAX_PEAK_MZ``) count.
    An N-terminal modification's mass counts in every b ion.
    """
    width = max(len(p) for p in peptides)
    masses = torch.zeros(len(peptides), width, dtype=torch.float64)
    lengths = torch.zeros(len(peptides), dtype=torch.int64)
    for row, residues in enumerate(peptides):
        position = 0
        for name in residues:
            masses[row, position] += residue_mass_da(name)
            position += name not in N_TERM_MASS_DA  # an N-term mod adds to the first residue
        lengths[row] = position
    ladder_mz, ladder_ok = peptide_fragment_ladder(masses, lengths, precursor_charge)
    fragments = ladder_mz.flatten(-2)
    inside = (fragments >= MIN_PEAK_MZ) & (fragments <= MAX_PEAK_MZ)
    fragment_valid = ladder_ok.flatten(-2) & inside

    # Peaks are sorted ascending with padding last: pad with +inf to keep them sorted.
    peaks = peak_mz.double().masked_fill(~peak_mask, math.inf)
    right = torch.searchsorted(peaks, fragments).clamp(max=peaks.shape[-1] - 1)
    left = (right - 1).clamp(min=0)
    nearest = torch.minimum(
        (peaks.gather(-1, right) - fragments).abs(), (peaks.gather(-1, left) - fragments).abs()
    )
    found = (nearest <= tolerance_da) & fragment_valid
    return found.sum(-1) / fragment_valid.sum(-1).clamp(min=1)

"""``pepcurr annotate``: annotated MGF built from spectra (mzML or MGF) and a search engine's PSMs.

The peptide-spectrum matches are read with psm_utils (Sage, MaxQuant ``msms.txt``,
MSFragger/FragPipe, Percolator, mzIdentML, a ProForma TSV: ``psm_utils.io``), the
spectra with pyteomics. A PSM is kept when it is a target (not a decoy) at a q-value
at or under ``fdr``; per spectrum the best kept PSM (lowest q-value, then highest
score, then rank) annotates it. A PSM finds its spectrum by identifier: the spectrum's
own (the mzML ``id``, the MGF ``TITLE``), or else its scan number (``scan=N`` in an mzML
id or in the PSM's, the MGF ``SCANS``, a bare number, or ``RUN.N.N.Z`` as TPP writes
it). When the PSMs come from several runs, only those of the run named like the
spectra file are used.

The output holds one block per annotated spectrum, in the spectra file's order: TITLE
(the spectrum's identifier), PEPMASS (its precursor m/z), CHARGE (the PSM's), SCANS and
RTINSECONDS when known, SEQ (ProForma with the vocabulary's canonical names), and its
peaks as they were in the file. Every PSM left out is counted by reason, and a PSM
whose modification the vocabulary cannot spell is counted and named, never silently
dropped. Users' documentation: ``docs/your-data.md``.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curriculum_cli.errors import MgfError, PeptideError, PsmError, check_output_file
from curriculum_cli.spectra.mgf import mgf_block
from curriculum_cli.spectra.vocabulary import Vocabulary

PSM_FORMATS = ("infer", "sage", "msms", "fragpipe", "percolator", "mzid", "tsv", "pepxml",
               "proteoscape", "msamanda", "xtandem", "peprec", "parquet")  # fmt: skip
"""``--psm-format`` values: psm_utils' reader names (``infer``: from the file name)."""

MAX_EXAMPLES = 3

_SCAN_RE = re.compile(r"(?:^|\s|\b)scan=(\d+)")
_TPP_RE = re.compile(r"^.+\.(\d+)\.\d+\.\d+$")


@dataclass
class AnnotationResult:
    """What ``annotate`` read, kept and wrote; every PSM is in exactly one of the counts
    ``n_decoys``, ``n_above_fdr``, ``n_other_run``, ``n_unspellable``, ``n_duplicate``,
    ``n_no_spectrum``, ``n_no_precursor``, ``n_written``."""

    spectra: Path
    psms: Path
    output: Path
    psm_format: str
    fdr: float
    n_spectra: int  # MS/MS spectra read
    n_psms: int
    n_decoys: int = 0
    n_above_fdr: int = 0  # targets with a q-value over fdr
    n_other_run: int = 0  # PSMs of another run than the spectra file's
    n_unspellable: int = 0
    unspellable: dict[str, int] = field(default_factory=dict)  # modification -> PSMs
    n_duplicate: int = 0  # kept, but another PSM of the same spectrum was better
    n_no_spectrum: int = 0
    no_spectrum_examples: list[str] = field(default_factory=list)
    n_no_precursor: int = 0  # the spectrum lacks a precursor m/z, or no charge is known
    n_written: int = 0
    outside_vocabulary: dict[str, int] = field(default_factory=dict)  # written, not encodable
    qvalues_computed: bool = False  # from scores and decoys (target-decoy competition)
    run: str | None = None


@dataclass
class _Kept:
    """A PSM that passed the filters: what its spectrum's block needs."""

    peptide: str  # canonical ProForma
    charge: int | None
    precursor_mz: float | None
    rank: tuple  # sort key: lower is better
    spectrum_id: str


@dataclass
class _Spectrum:
    """One MS/MS spectrum of the spectra file, peaks as read."""

    spectrum_id: str
    scan: str | None
    precursor_mz: float | None
    charge: int | None
    rt_seconds: float | None
    mz: np.ndarray
    intensity: np.ndarray


def annotate_spectra(
    spectra: Path | str,
    psms: Path | str,
    output: Path | str,
    vocab: Vocabulary,
    fdr: float = 0.01,
    psm_format: str = "infer",
    run: str | None = None,
    overwrite: bool = False,
) -> AnnotationResult:
    """Write ``output``: the spectra of ``spectra`` that a kept PSM of ``psms`` annotates.

    ``fdr``: the highest q-value kept (1 keeps every target); ``psm_format``: a psm_utils
    reader name, or ``infer``; ``run``: which run's PSMs to use when they come from
    several (default: the one named like the spectra file). Problems (unreadable files,
    missing columns, no PSM finding its spectrum) raise ``PsmError`` or ``MgfError``.
    """
    spectra, psms, output = Path(spectra), Path(psms), Path(output)
    if not 0.0 < fdr <= 1.0:
        raise PsmError(f"--fdr must be in (0, 1], got {fdr}")
    _check_output(output, spectra, overwrite)
    psm_list, psm_format = _read_psms(psms, psm_format)
    result = AnnotationResult(spectra=spectra, psms=psms, output=output, psm_format=psm_format,
                              fdr=fdr, n_spectra=0, n_psms=len(psm_list))  # fmt: skip
    qvalues = _qvalues(psm_list, psms, fdr, result)
    result.run = _chosen_run(psm_list, spectra, run)
    by_id, by_scan = _keep(psm_list, qvalues, vocab, fdr, result)

    out = io.StringIO()
    for spectrum in _read_spectra(spectra):
        result.n_spectra += 1
        kept = by_id.pop(spectrum.spectrum_id, None)
        if kept is None and spectrum.scan is not None:
            kept = by_scan.pop(spectrum.scan, None)
        if kept is None:
            continue
        by_scan.pop(_scan_of(kept.spectrum_id) or "", None)
        by_id.pop(kept.spectrum_id, None)
        precursor_mz = spectrum.precursor_mz or kept.precursor_mz
        charge = kept.charge or spectrum.charge
        if not precursor_mz or not charge:
            result.n_no_precursor += 1
            continue
        params = [("SCANS", spectrum.scan), ("RTINSECONDS", spectrum.rt_seconds)]
        peaks = [
            f"{a} {b}\n"
            for a, b in zip(spectrum.mz.astype(str), spectrum.intensity.astype(str), strict=True)
        ]
        out.write(mgf_block(spectrum.spectrum_id, precursor_mz, charge, kept.peptide, peaks,
                            [(k, v) for k, v in params if v is not None]))  # fmt: skip
        result.n_written += 1
        _count_outside(kept.peptide, vocab, result)
    unmatched = {kept.spectrum_id for kept in [*by_id.values(), *by_scan.values()]}
    result.n_no_spectrum = len(unmatched)
    result.no_spectrum_examples = sorted(unmatched)[:MAX_EXAMPLES]
    if result.n_written == 0:
        raise PsmError(_no_match_message(result, by_id, spectra))
    try:
        output.write_text(out.getvalue(), encoding="utf-8")
    except OSError as error:
        raise PsmError(f"{output}: cannot write: {error.strerror}") from None
    return result


def _check_output(output: Path, spectra: Path, overwrite: bool) -> None:
    check_output_file(output, overwrite, PsmError)
    if output.resolve() == spectra.resolve():
        raise PsmError(f"{output}: is the spectra file; choose another -o")


def _read_psms(path: Path, psm_format: str):
    """The PSMs of a search engine's results file, and the psm_utils reader used."""
    from psm_utils.io import FILETYPES, read_file
    from psm_utils.io.exceptions import PSMUtilsIOException

    if not path.is_file():
        raise PsmError(f"--psms {path}: no such file" if not path.exists()
                       else f"--psms {path}: is a directory")  # fmt: skip
    if psm_format not in ("infer", *FILETYPES):
        raise PsmError(f"--psm-format {psm_format}: unknown; one of {', '.join(PSM_FORMATS)}")
    if psm_format == "infer":
        from psm_utils.io import _infer_filetype

        try:
            psm_format = _infer_filetype(path)
        except PSMUtilsIOException:
            formats = ", ".join(PSM_FORMATS[1:])
            raise PsmError(f"--psms {path}: cannot tell the search engine from the file name; "
                           f"give --psm-format ({formats})") from None  # fmt: skip
    quiet = logging.getLogger("psm_utils")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        psm_list = read_file(path, filetype=psm_format)
    except KeyError as error:
        raise PsmError(f"--psms {path}: not a {psm_format} file: no column {error}") from None
    except Exception as error:  # psm_utils and the parsers below it raise many kinds
        raise PsmError(f"--psms {path}: cannot read it as {psm_format}: {_why(error)}") from None
    finally:
        quiet.level = level
    if len(psm_list) == 0:
        raise PsmError(
            f"--psms {path}: no PSM could be read as {psm_format} (an empty file, "
            "missing columns, or another --psm-format?)"
        )
    return psm_list, psm_format


def _qvalues(psm_list, path: Path, fdr: float, result: AnnotationResult) -> list[float | None]:
    """Each PSM's q-value: the file's, or computed from scores by target-decoy competition
    when the file has none (a ``PsmError`` when neither is possible and ``fdr`` < 1)."""
    qvalues = [psm.qvalue for psm in psm_list]
    if any(q is not None for q in qvalues) or fdr >= 1.0:
        return qvalues
    decoys = any(psm.is_decoy for psm in psm_list)
    scored = all(psm.score is not None and math.isfinite(psm.score) for psm in psm_list)
    if not (decoys and scored):
        raise PsmError(f"--psms {path}: no q-values, and no decoys and scores to compute them "
                       "from; give a file with q-values (e.g. Percolator's), or --fdr 1 to keep "
                       "every target")  # fmt: skip
    psm_list.calculate_qvalues(reverse=True)  # higher score is better
    result.qvalues_computed = True
    return [psm.qvalue for psm in psm_list]


def _chosen_run(psm_list, spectra: Path, run: str | None) -> str | None:
    """The run whose PSMs annotate ``spectra``: ``run``, else the one named like the file, else
    the only one (None: the PSMs name none)."""
    runs = sorted({str(psm.run) for psm in psm_list if psm.run})
    if run is not None:
        if run not in runs:
            raise PsmError(f"--run {run}: no PSM of that run; the runs are {', '.join(runs)}")
        return run
    if len(runs) <= 1:
        return runs[0] if runs else None
    stem = spectra.name.split(".")[0]
    if stem in runs:
        return stem
    raise PsmError(f"the PSMs come from {len(runs)} runs ({', '.join(runs[:5])}), none named "
                   f"like {spectra.name}; choose one with --run")  # fmt: skip


def _keep(psm_list, qvalues, vocab: Vocabulary, fdr: float, result: AnnotationResult):
    """The kept PSMs, the best per spectrum, by spectrum identifier and by scan number."""
    by_id: dict[str, _Kept] = {}
    unspellable: Counter = Counter()
    for psm, qvalue in zip(psm_list, qvalues, strict=True):
        if psm.is_decoy:
            result.n_decoys += 1
            continue
        if fdr < 1.0 and (qvalue is None or qvalue > fdr):  # no q-value: not shown to pass
            result.n_above_fdr += 1
            continue
        if result.run is not None and psm.run and str(psm.run) != result.run:
            result.n_other_run += 1
            continue
        peptidoform = psm.peptidoform
        try:
            peptidoform.apply_fixed_modifications()
            peptide = "".join(vocab.parse(peptidoform.modified_sequence))
        except PeptideError as error:
            unspellable[_unknown_name(str(error))] += 1
            continue
        score = psm.score if psm.score is not None else -math.inf
        kept = _Kept(peptide, peptidoform.precursor_charge, psm.precursor_mz,
                     (qvalue if qvalue is not None else 0.0, -score, psm.rank or 1),
                     str(psm.spectrum_id))  # fmt: skip
        other = by_id.get(kept.spectrum_id)
        if other is not None:
            result.n_duplicate += 1
            if other.rank <= kept.rank:
                continue
        by_id[kept.spectrum_id] = kept
    result.n_unspellable = sum(unspellable.values())
    result.unspellable = dict(unspellable.most_common())
    by_scan: dict[str, _Kept] = {}
    for kept in by_id.values():
        scan = _scan_of(kept.spectrum_id)
        if scan is not None and scan not in by_scan:
            by_scan[scan] = kept
    return by_id, by_scan


def _unknown_name(message: str) -> str:
    """The modification a ``PeptideError`` names (``M[ox]``), or its whole message."""
    found = re.search(r"unknown (?:N-terminal )?(?:modification|residue) '?([^' ]+)'?", message)
    return found.group(1) if found else message


def _scan_of(spectrum_id: str) -> str | None:
    """A scan number in an identifier: ``scan=N``, a bare number, or TPP's ``RUN.N.N.Z``."""
    if spectrum_id.isdigit():
        return str(int(spectrum_id))
    found = _SCAN_RE.search(spectrum_id) or _TPP_RE.match(spectrum_id)
    return str(int(found.group(1))) if found else None


def _count_outside(peptide: str, vocab: Vocabulary, result: AnnotationResult) -> None:
    """Count a written peptide's names that ``vocab`` cannot encode (no training target)."""
    for name in vocab.parse(peptide):
        if name not in vocab.residues and not (name == "I" and vocab.fold_il):
            result.outside_vocabulary[name] = result.outside_vocabulary.get(name, 0) + 1


def _no_match_message(result: AnnotationResult, left: dict, spectra: Path) -> str:
    kept = result.n_psms - result.n_decoys - result.n_above_fdr - result.n_other_run
    kept -= result.n_unspellable + result.n_duplicate
    if kept <= 0:
        return (f"--psms {result.psms}: no PSM is left to annotate with ({result.n_psms} read: "
                f"{result.n_decoys} decoys, {result.n_above_fdr} above q-value {result.fdr:g}, "
                f"{result.n_unspellable} with a modification the vocabulary cannot "
                "spell)")  # fmt: skip
    example = next(iter(left), "?")
    return (f"{spectra}: none of its {result.n_spectra} spectra matches one of the {kept} kept "
            f"PSMs by identifier or scan number (a PSM names its spectrum like {example!r}); "
            "are they of this file?")  # fmt: skip


# ----------------------------------------------------------------------------
# Spectra in: mzML (pyteomics.mzml) or MGF (pyteomics.mgf), MS/MS only
# ----------------------------------------------------------------------------


def _read_spectra(path: Path):
    """The MS/MS spectra of an mzML or MGF file, one at a time."""
    if not path.is_file():
        raise MgfError(f"{path}: no such file" if not path.exists()
                       else f"{path}: is a directory")  # fmt: skip
    suffix = path.suffix.lower()
    if suffix == ".mzml":
        yield from _mzml_spectra(path)
    elif suffix == ".mgf":
        yield from _mgf_spectra(path)
    else:
        raise MgfError(f"{path}: give spectra as .mzML or .mgf")


def _mzml_spectra(path: Path):
    from pyteomics import mzml

    try:
        with mzml.read(str(path), use_index=False, decode_binary=True) as reader:
            for spectrum in reader:
                if spectrum.get("ms level", 2) != 2:
                    continue
                spectrum_id = spectrum["id"]
                precursor = (spectrum.get("precursorList", {}).get("precursor") or [{}])[0]
                ion = (precursor.get("selectedIonList", {}).get("selectedIon") or [{}])[0]
                scan = (spectrum.get("scanList", {}).get("scan") or [{}])[0]
                rt = scan.get("scan start time")
                if rt is not None and getattr(rt, "unit_info", "minute") == "minute":
                    rt = float(rt) * 60.0
                yield _Spectrum(
                    spectrum_id=spectrum_id, scan=_scan_of(spectrum_id),
                    precursor_mz=ion.get("selected ion m/z"),
                    charge=int(ion["charge state"]) if "charge state" in ion else None,
                    rt_seconds=float(rt) if rt is not None else None,
                    mz=spectrum["m/z array"], intensity=spectrum["intensity array"],
                )  # fmt: skip
    except Exception as error:  # lxml and pyteomics raise many kinds on a bad file
        raise MgfError(f"{path}: cannot read it as mzML: {_why(error)}") from None


def _mgf_spectra(path: Path):
    from pyteomics import mgf

    try:
        with mgf.read(str(path), use_index=False, convert_arrays=1, read_charges=False,
                      dtype=np.float64) as reader:  # fmt: skip
            for spectrum in reader:
                params = spectrum["params"]
                title = str(params.get("title", ""))
                scans = params.get("scans")
                charges = params.get("charge") or []
                yield _Spectrum(
                    spectrum_id=title,
                    scan=str(int(scans)) if str(scans or "").isdigit() else _scan_of(title),
                    precursor_mz=(params.get("pepmass") or (None,))[0],
                    charge=int(charges[0]) if len(charges) == 1 else None,
                    rt_seconds=float(params["rtinseconds"]) if "rtinseconds" in params else None,
                    mz=spectrum["m/z array"], intensity=spectrum["intensity array"],
                )  # fmt: skip
    except Exception as error:  # pyteomics raises PyteomicsError, ValueError, ...
        raise MgfError(f"{path}: cannot read it as MGF: {_why(error)}") from None


def _why(error: Exception) -> str:
    """``Type: first line of the message`` of an error raised by a reader."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__

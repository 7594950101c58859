"""Decoded peptides scored: ``pepcurr evaluate`` on MGF spectra, and the metrics ``train`` logs.

Loads the model of a run directory (or of a ``last.pt``), reads the MGF file
with Casanovo's peak preprocessing, decodes every spectrum with the
mass-filtered beam search (``decoding.beam_search``; a parallel model in one
forward pass per batch, with the mass-aware repair in place of beam search:
``decoding.parallel_decode``) and scores the
predictions with the Casanovo-compatible metrics (``metrics.aa_match_metrics``)
against each spectrum's ``SEQ``. Spectra without ``SEQ`` are decoded but not
scored. ``pepcurr predict`` decodes spectra without SEQ the same way and writes
mzTab (``mztab``), as ``evaluate --mztab`` does too. Both decode as one
``DecodeSettings`` says, whose fields are also their command-line options.
Torch is imported where a model is decoded, so the CLI can declare the options
cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from curriculum_cli.devices import DEVICE_HELP, Device
from curriculum_cli.errors import PepcurrError
from curriculum_cli.model.metrics import DEFAULT_PRECURSOR_TOL_PPM, aa_match_metrics

if TYPE_CHECKING:
    import pandas as pd

    from curriculum_cli.model.decoding import MassRepair, Prediction
    from curriculum_cli.spectra.mgf import MgfReadResult
    from curriculum_cli.spectra.vocabulary import Vocabulary

DECODE_BATCH_SIZE = 64
"""Spectra decoded at once (each with ``beam_size`` beams)."""

DEFAULT_BEAM_SIZE = 5
"""Beams per spectrum of an autoregressive model when ``--beam-size`` is not given."""

MAX_BEAM_SIZE = 100
"""Most beams per spectrum: ``DECODE_BATCH_SIZE`` spectra times the beams are decoded at
once, each beam with its own copy of the spectrum's encoding."""


class DecodeSettings(BaseModel):
    """How ``evaluate`` and ``predict`` decode: each setting declared once, here (the
    command line's options are these fields: their flag, help, bounds and default).

    ``beam_size`` None is "not given": ``DEFAULT_BEAM_SIZE`` beams for an
    autoregressive model, and no warning for a parallel one, which has no beams."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    beam_size: int | None = Field(
        None, ge=1, le=MAX_BEAM_SIZE,
        description="Beams per spectrum (1: greedy, with the precursor filter).",
        json_schema_extra={"flag": "--beam-size", "shown_default": str(DEFAULT_BEAM_SIZE)},
    )  # fmt: skip
    precursor_tol_ppm: float = Field(
        DEFAULT_PRECURSOR_TOL_PPM, gt=0, allow_inf_nan=False,
        description="Precursor mass tolerance of the beam filter (ppm).",
        json_schema_extra={"flag": "--precursor-tol-ppm"},
    )  # fmt: skip
    no_filter: bool = Field(
        False, description="Turn the precursor-mass filter off.",
        json_schema_extra={"flag": "--no-filter"},
    )  # fmt: skip
    max_isotope: int = Field(
        1, ge=0, le=5,
        description="Accept isotope offsets 0..N (13C peaks; Casanovo's range is 0-1).",
        json_schema_extra={"flag": "--max-isotope"},
    )  # fmt: skip
    max_length: int | None = Field(
        None, ge=1, description="Most residues per peptide.",
        json_schema_extra={"flag": "--max-length", "shown_default": "the model's"},
    )  # fmt: skip
    device: Device = Field(Device.auto, description=DEVICE_HELP,
                           json_schema_extra={"flag": "--device"})  # fmt: skip
    skip_invalid: bool = Field(
        False, description="Skip unreadable spectra instead of stopping.",
        json_schema_extra={"flag": "--skip-invalid"},
    )  # fmt: skip

    @property
    def beams(self) -> int:
        """Beams per spectrum: ``beam_size``, or ``DEFAULT_BEAM_SIZE`` when not given."""
        return DEFAULT_BEAM_SIZE if self.beam_size is None else self.beam_size

    @property
    def filter_tol_ppm(self) -> float | None:
        """The precursor filter's tolerance (ppm); None: no filter."""
        return None if self.no_filter else self.precursor_tol_ppm


@dataclass
class EvaluationResult:
    """What ``evaluate_checkpoint`` found.

    ``metrics``: ``aa_precision``, ``aa_recall``, ``peptide_recall`` over the
    annotated spectra, ``precursor_error_ppm_median`` (median absolute error of
    the non-empty predictions, ppm) and ``fits_precursor`` (fraction of
    spectra whose prediction fits the precursor). ``predictions``: one row per
    spectrum: ``title``, ``charge``, ``precursor_mz``, ``true_peptide``,
    ``predicted_peptide``, ``score`` (mean log-probability per token),
    ``precursor_error_ppm``, ``isotope``, ``fits_precursor``.
    """

    source: Path
    mgf: Path
    n_spectra: int
    n_annotated: int
    n_skipped: int
    metrics: dict[str, float]
    predictions: pd.DataFrame
    settings: dict
    warnings: list[str] = field(default_factory=list)


def evaluate_checkpoint(
    source: Path | str,
    mgf_path: Path | str,
    decoding: DecodeSettings | None = None,
    predictions_csv: Path | str | None = None,
    mztab: Path | str | None = None,
    allow_changed_model: bool = False,
) -> EvaluationResult:
    """Decode the spectra of ``mgf_path`` with the model of ``source`` and score them.

    ``source``: a run directory or a checkpoint file in one; ``decoding``: how
    (default: ``DecodeSettings()``); ``allow_changed_model``: a factory's file may have
    changed since the run recorded it (``checkpoint.build_run_model``).
    ``predictions_csv``: also write the per-spectrum predictions there;
    ``mztab``: also write them as mzTab (``mztab.write_mztab``). Output paths
    are checked before decoding, so a bad path fails fast.
    """
    import statistics

    import pandas as pd

    decoding = decoding or DecodeSettings()
    outputs = (predictions_csv, mztab)
    decoded = _decode_mgf(source, mgf_path, decoding, outputs, residue_scores=mztab is not None,
                          allow_changed_model=allow_changed_model, scored=True)  # fmt: skip
    batch, read, predictions = decoded.read.batch, decoded.read, decoded.predictions
    true = list(batch.peptides)
    annotated = [i for i, peptide in enumerate(true) if peptide]
    warnings = decoded.report_warnings()
    metrics = aa_match_metrics([predictions[i].peptide for i in annotated],
                               [true[i] for i in annotated], decoded.vocab.masses)  # fmt: skip
    errors = [abs(p.precursor_error_ppm) for p in predictions if p.peptide]
    metrics["precursor_error_ppm_median"] = statistics.median(errors) if errors else math.nan
    metrics["fits_precursor"] = sum(p.fits_precursor for p in predictions) / len(predictions)
    frame = pd.DataFrame(
        {
            "title": batch.titles,
            "charge": batch.precursor_charge.tolist(),
            "precursor_mz": read.precursor_mz,
            "true_peptide": true,
            "predicted_peptide": [p.peptide for p in predictions],
            "score": [p.score for p in predictions],
            "precursor_error_ppm": [p.precursor_error_ppm for p in predictions],
            "isotope": [p.isotope for p in predictions],
            "fits_precursor": [p.fits_precursor for p in predictions],
        }
    )
    result = EvaluationResult(
        source=Path(source), mgf=Path(mgf_path), n_spectra=len(batch),
        n_annotated=len(annotated), n_skipped=read.n_skipped, metrics=metrics,
        predictions=frame, warnings=warnings, settings=decoded.settings,
    )  # fmt: skip
    if predictions_csv is not None:
        write_predictions(result, predictions_csv)
    if mztab is not None:
        _write_mztab(decoded, mztab)
    return result


@dataclass
class PredictionResult:
    """What ``predict_checkpoint`` wrote: spectra read, peptides predicted, how many fit."""

    source: Path
    mgf: Path
    mztab: Path
    n_spectra: int
    n_skipped: int
    n_predicted: int  # spectra with a peptide (an mzTab PSM row each)
    n_fit: int  # predictions that fit the precursor mass
    settings: dict
    warnings: list[str] = field(default_factory=list)


def predict_checkpoint(
    source: Path | str,
    mgf_path: Path | str,
    mztab: Path | str,
    decoding: DecodeSettings | None = None,
    allow_changed_model: bool = False,
) -> PredictionResult:
    """``pepcurr predict``: decode the spectra of an MGF file (SEQ not needed) into mzTab.

    ``decoding`` and ``allow_changed_model`` as for ``evaluate_checkpoint``; a SEQ, where
    present, is read but not used.
    """
    decoded = _decode_mgf(source, mgf_path, decoding or DecodeSettings(), outputs=(mztab,),
                          residue_scores=True,
                          allow_changed_model=allow_changed_model)  # fmt: skip
    _write_mztab(decoded, mztab)
    predictions = decoded.predictions
    return PredictionResult(
        source=Path(source), mgf=Path(mgf_path), mztab=Path(mztab),
        n_spectra=len(predictions), n_skipped=decoded.read.n_skipped,
        n_predicted=sum(bool(p.peptide) for p in predictions),
        n_fit=sum(p.fits_precursor for p in predictions), settings=decoded.settings,
        warnings=decoded.report_warnings(),
    )  # fmt: skip


@dataclass
class _Decoded:
    """A run's model decoded over an MGF file: what evaluate and predict report."""

    source: Path
    mgf: Path
    vocab: Vocabulary
    read: MgfReadResult
    predictions: list[Prediction]
    residue_scores: list[list[float]] | None  # per residue probabilities (None: not computed)
    settings: dict
    warnings: list[str]  # about the decoding (a beam size a parallel model has no use for)

    def report_warnings(self) -> list[str]:
        """What evaluate and predict warn of: the decoding, then each spectrum skipped."""
        return self.warnings + [f"skipped: {message}" for message in self.read.skipped]


def _decode_mgf(
    source, mgf_path, decoding: DecodeSettings, outputs, residue_scores: bool,
    allow_changed_model: bool = False, scored: bool = False,
) -> _Decoded:  # fmt: skip
    """Check the paths, load the model, read the MGF file, decode every spectrum (beam
    search, or a parallel model's one pass). ``scored`` (``evaluate``): the spectra must
    have SEQ, checked before decoding, and targets longer than the decoding allows are
    counted in a warning."""
    from curriculum_cli.devices import resolve_device
    from curriculum_cli.model.decoding import (
        MassRepair,
        beam_search,
        parallel_decode,
        residue_probabilities,
    )
    from curriculum_cli.model.refinement import is_parallel
    from curriculum_cli.spectra.mgf import read_mgf
    from curriculum_cli.training.checkpoint import load_model

    beam_size, precursor_tol_ppm = decoding.beams, decoding.filter_tol_ppm
    if not Path(source).exists():
        raise PepcurrError(f"{source}: no such run directory or checkpoint")
    _check_outputs(source, mgf_path, [Path(output) for output in outputs if output is not None])
    torch_device = resolve_device(decoding.device)
    model, config = load_model(source, str(torch_device), allow_changed_model)
    max_length = min(decoding.max_length or model.max_peptide_length, model.max_peptide_length)
    read = read_mgf(mgf_path, config.vocab, skip_invalid=decoding.skip_invalid)
    batch = read.batch
    notes = _length_notes(decoding, model.max_peptide_length, batch if scored else None)
    if scored and not any(batch.peptides):
        raise PepcurrError(f"{mgf_path}: no spectrum has a SEQ, so there is nothing to score; "
                           "pepcurr predict decodes spectra without one")  # fmt: skip
    isotope_offsets = tuple(range(decoding.max_isotope + 1))

    parallel = is_parallel(model)
    repair = MassRepair() if precursor_tol_ppm is not None else None
    predictions: list[Prediction] = []
    scores: list[list[float]] = []
    for start in range(0, len(batch), DECODE_BATCH_SIZE):
        chunk = batch.select(slice(start, start + DECODE_BATCH_SIZE)).to(torch_device)
        if parallel:
            decoded = parallel_decode(
                model, chunk, max_length, mass_aware=repair is not None,
                precursor_tol_ppm=precursor_tol_ppm or DEFAULT_PRECURSOR_TOL_PPM,
                isotope_offsets=isotope_offsets,
            )  # fmt: skip
            predictions += decoded.predictions
            scores += decoded.residue_probabilities
            continue
        found = beam_search(
            model, chunk, beam_size=beam_size, max_length=max_length,
            precursor_tol_ppm=precursor_tol_ppm, isotope_offsets=isotope_offsets,
        )  # fmt: skip
        predictions += found
        if residue_scores:
            scores += residue_probabilities(model, chunk, found)
    settings = {"beam_size": beam_size}
    warnings = []
    if parallel:
        settings = {"decoding": _parallel_decoding(repair)}
        if decoding.beam_size is not None and decoding.beam_size > 1:  # given, and not 1
            warnings.append(f"--beam-size {beam_size} does not apply to {config.model}, a "
                            f"parallel model: it is decoded {settings['decoding']} instead "
                            "(docs/models.md)")  # fmt: skip
    return _Decoded(
        source=Path(source), mgf=Path(mgf_path), vocab=config.vocab, read=read,
        predictions=predictions, residue_scores=scores if residue_scores else None,
        settings={**settings, "precursor_tol_ppm": precursor_tol_ppm,
                  "isotope_offsets": list(isotope_offsets), "max_length": max_length,
                  "device": str(torch_device)},
        warnings=notes + warnings,
    )  # fmt: skip


def _check_outputs(source, mgf_path, outputs: list[Path]) -> None:
    """Refuse an output that is a directory, lies in a missing one, is written twice, or
    would replace an input: the MGF file or the run's own files."""
    from curriculum_cli.training.checkpoint import CHECKPOINT_FILE
    from curriculum_cli.training.config import RUN_FILE
    from curriculum_cli.training.runlog import METRICS_FILE

    run_dir = Path(source) if Path(source).is_dir() else Path(source).parent
    own = [run_dir / name for name in (CHECKPOINT_FILE, RUN_FILE, METRICS_FILE)]
    inputs = [Path(mgf_path), Path(source), *own]
    for index, output in enumerate(outputs):
        if output.is_dir():
            raise PepcurrError(f"{output}: is a directory; give a file name")
        if not output.parent.is_dir():
            raise PepcurrError(f"{output}: its directory does not exist")
        if any(output.resolve() == path.resolve() for path in inputs):
            raise PepcurrError(f"{output}: is an input (the spectra or the run's own file); "
                               "choose another name")  # fmt: skip
        if any(output.resolve() == other.resolve() for other in outputs[:index]):
            raise PepcurrError(f"{output}: given for both --predictions and --mztab")


def _length_notes(decoding: DecodeSettings, model_max: int, targets) -> list[str]:
    """Warnings of lengths: a ``--max-length`` past what the model decodes (it decodes
    ``model_max`` tokens at most), and the annotated spectra of ``targets`` (a batch, or
    None) whose peptides are longer than the decoding allows: none of them can be recalled."""
    notes, limit = [], min(decoding.max_length or model_max, model_max)
    if decoding.max_length is not None and decoding.max_length > model_max:
        notes.append(f"--max-length {decoding.max_length}: the model decodes at most {model_max} "
                     f"tokens, so peptides stop there")  # fmt: skip
    if targets is not None:
        annotated = [length for length, peptide in zip(targets.lengths.tolist(), targets.peptides,
                                                       strict=True) if peptide]  # fmt: skip
        longer = sum(length > limit for length in annotated)
        if longer:
            notes.append(f"{longer:,} of the {len(annotated):,} annotated spectra have peptides "
                         f"longer than the {limit} tokens decoded (residues and an N-terminal "
                         "modification): none of them can be recalled")  # fmt: skip
    return notes


def _parallel_decoding(repair: MassRepair | None) -> str:
    """How a parallel model was decoded, in words (settings, mzTab, the warning)."""
    if repair is None:
        return "in one pass, arg-max (no precursor filter)"
    return (f"in one pass, with the mass-aware repair ({repair.positions} least confident "
            f"positions x top {repair.top_k} residues, {repair.lengths} lengths)")  # fmt: skip


def _write_mztab(decoded: _Decoded, path: Path | str) -> Path:
    """The decoded spectra with a peptide as mzTab PSMs (``mztab.write_mztab``)."""
    from curriculum_cli.spectra.chemistry import mz_from_neutral_mass, peptide_neutral_mass_da
    from curriculum_cli.spectra.mztab import Psm, peptide_score, write_mztab
    from curriculum_cli.spectra.peaks import PeakFilter

    read, psms = decoded.read, []
    charges = read.batch.precursor_charge.tolist()
    for i, (prediction, aa_scores) in enumerate(
        zip(decoded.predictions, decoded.residue_scores, strict=True)
    ):
        if not prediction.peptide:
            continue
        residues = tuple(decoded.vocab.tokens[token] for token in prediction.tokens)
        log_probability = prediction.score * (len(residues) + 1)  # residues and <eos>
        psms.append(Psm(
            residues=residues, spectrum_index=read.file_index[i], charge=charges[i],
            exp_mz=read.precursor_mz[i],
            calc_mz=mz_from_neutral_mass(
                peptide_neutral_mass_da(list(residues), decoded.vocab.masses), charges[i]
            ),
            score=peptide_score(log_probability, prediction.fits_precursor),
            aa_scores=tuple(aa_scores),
        ))  # fmt: skip
    settings = {"model": str(decoded.source), **decoded.settings,
                "peak preprocessing": PeakFilter().describe()}  # fmt: skip
    return write_mztab(path, psms, decoded.mgf, decoded.vocab, settings)


def write_predictions(result: EvaluationResult, path: Path | str) -> Path:
    """Write the per-spectrum predictions as CSV (one line per spectrum)."""
    path = Path(path)
    try:
        result.predictions.to_csv(path, index=False)
    except OSError as error:
        raise PepcurrError(f"{path}: cannot write the predictions: {error}") from None
    return path

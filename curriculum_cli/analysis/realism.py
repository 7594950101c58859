"""``pepcurr realism``: how far each stage's synthetic spectra are from a user's real ones.

Both sides go through the same path: pepcurr's ``PeakFilter`` (as the MGF reader applies
it), then ``spectra.fragments.annotate`` with the spectrum's own peptide (20 ppm). Per
spectrum, ``FEATURES`` (the first four are the issue's table); per stage, the median of
each, real beside synthetic, and how well a standardized logistic regression tells the
two sets apart: the ROC AUC of 5-fold stratified cross-validation, repeated
``AUC_REPEATS`` times with other folds (mean and SD), on three feature sets (the table's
4, a core of 9, all 20). 0.5: the classifier cannot tell them apart; 1: always can. The
same classifier on two backbone-disjoint halves of the real spectra gives the floor the
sampling noise of the real set allows (when each half holds ``AUC_FOLDS`` spectra). It
needs ``MIN_REAL_SPECTRA`` real spectra and draws at most ``MAX_SYNTHETIC_SPECTRA`` per stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.errors import PepcurrError
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import (
    C13_C12_DELTA_DA,
    MASS_DEFECT_SLOPE,
    MAX_PEAK_MZ,
    MIN_PEAK_MZ,
    backbone,
)
from curriculum_cli.spectra.fragments import (
    AnnotatedSpectrum,
    annotate,
    annotated_spectrum,
    match_peaks,
    read_annotated_mgf,
)
from curriculum_cli.spectra.ions import FAMILY, families_in
from curriculum_cli.spectra.peaks import PeakFilter, filter_peaks
from curriculum_cli.spectra.vocabulary import Vocabulary

TABLE_FEATURES = ("n_peaks", "by_peak_share", "by_intensity_share", "by_coverage")
"""The issue's table: peaks, share of peaks that are b/y ions (charge 1, and 2 for 3+
precursors), share of intensity in them, b/y (1+) ions present of those possible."""

FEATURES = TABLE_FEATURES + (
    "explained_share",  # peaks any ion explains (b/y/a, losses, charges, immonium, internal,
    "explained_intensity_share",  # precursor, 13C isotopes), and their share of intensity
    "above_tenth_share",  # peaks above 10% of the base peak
    "median_log_intensity",  # median log10 intensity (base peak 1)
    "top5_intensity_share",  # intensity in the 5 strongest peaks
    "median_relative_mz",  # median m/z over the precursor's neutral mass
    "above_precursor_share",  # peaks above the precursor m/z
    "below_200_share",  # peaks under m/z 200 (immonium ions, small fragments)
    "peak_density",  # peaks per 100 Da of precursor mass
    "y_over_b_log10",  # log10 (y intensity + 0.01) / (b intensity + 0.01), charge 1
    "isotope_pair_share",  # peaks with a weaker partner at +1.003355/z (z 1, 2): no annotation
    "peptide_defect_share",  # peaks with a peptide-like mass defect (within 0.15 of the grid)
    "a_or_loss_share",  # peaks labelled an a ion or a b/y neutral loss
    "base_is_by",  # the base peak is a table b/y ion
    "by_over_rest_log10",  # log10 median intensity of b/y peaks over the other peaks'
    "ladder_run",  # longest run of cleavage sites with a b or y (1+) ion, over L - 1
)
CORE_FEATURES = TABLE_FEATURES + ("explained_share", "above_tenth_share", "median_relative_mz",
                                  "y_over_b_log10", "isotope_pair_share")  # fmt: skip
"""Nine features: the table's four and five that the table misses (noise, intensity
spread, where peaks lie, y against b, isotopes)."""

FEATURE_SETS = {"table": TABLE_FEATURES, "core": CORE_FEATURES, "all": FEATURES}

AUC_FOLDS = 5
AUC_REPEATS = 3

MIN_REAL_SPECTRA = 2 * AUC_FOLDS
"""Fewest real spectra (with peaks) ``realism`` compares: each of the ``AUC_FOLDS``
stratified folds needs real spectra to test on, and two halves of them need as many."""

MAX_SYNTHETIC_SPECTRA = 20_000
"""Most synthetic spectra per stage (``-n``): a few milliseconds each to annotate, and past
this the AUC's error is the real set's, not theirs."""


def spectrum_features(spectrum: AnnotatedSpectrum) -> dict[str, float]:
    """``FEATURES`` of one preprocessed, annotated spectrum (at least one peak)."""
    mz, intensity = spectrum.mz, spectrum.intensity
    found = annotate(spectrum)
    ions = found.ions
    total = intensity.sum()
    table, explained = found.table_by, found.family >= 0
    family, isotope, charge = ions["family"], ions["isotope"], ions["charge"]
    inside = (ions["mz"] >= MIN_PEAK_MZ) & (ions["mz"] <= MAX_PEAK_MZ)
    by_1 = np.isin(family, [FAMILY["b"], FAMILY["y"]]) & (charge == 1) & (isotope == 0) & inside

    def intensity_of(selected: np.ndarray) -> float:
        return intensity[np.unique(ions["peak"][selected & ions["found"]])].sum()

    y_intensity = intensity_of((family == FAMILY["y"]) & (charge == 1) & (isotope == 0))
    b_intensity = intensity_of((family == FAMILY["b"]) & (charge == 1) & (isotope == 0))
    pair = np.zeros(len(mz), bool)
    for z in (1, 2):
        partner, close = match_peaks(mz, mz + C13_C12_DELTA_DA / z)
        pair |= close & (intensity[partner] < intensity)
    defect = mz - np.round(mz / MASS_DEFECT_SLOPE) * MASS_DEFECT_SLOPE
    losses = [FAMILY[f.name] for f in families_in("derived")]  # a ions, neutral losses
    by_median = np.median(intensity[table]) if table.any() else 1e-3
    rest_median = np.median(intensity[~table]) if (~table).any() else 1e-3
    sites = np.zeros(max(spectrum.length - 1, 1), bool)
    sites[ions["site"][by_1 & ions["found"]]] = True
    run = best = 0
    for hit in sites:
        run = run + 1 if hit else 0
        best = max(best, run)
    mass = spectrum.precursor_mass_da
    return {
        "n_peaks": float(len(mz)),
        "by_peak_share": table.mean(),
        "by_intensity_share": intensity[table].sum() / total,
        "by_coverage": float(ions["found"][by_1].mean()) if by_1.any() else 0.0,
        "explained_share": explained.mean(),
        "explained_intensity_share": intensity[explained].sum() / total,
        "above_tenth_share": (intensity > 0.1).mean(),
        "median_log_intensity": float(np.median(np.log10(intensity))),
        "top5_intensity_share": np.sort(intensity)[-5:].sum() / total,
        "median_relative_mz": float(np.median(mz) / mass),
        "above_precursor_share": (mz > spectrum.precursor_mz).mean(),
        "below_200_share": (mz < 200).mean(),
        "peak_density": 100.0 * len(mz) / mass,
        "y_over_b_log10": math.log10((y_intensity + 0.01) / (b_intensity + 0.01)),
        "isotope_pair_share": pair.mean(),
        "peptide_defect_share": (np.abs(defect) < 0.15).mean(),
        "a_or_loss_share": np.isin(found.family, losses).mean(),
        "base_is_by": float(table[np.argmax(intensity)]),
        "by_over_rest_log10": math.log10(by_median / rest_median),
        "ladder_run": best / max(spectrum.length - 1, 1),
    }


def feature_matrix(spectra: list[AnnotatedSpectrum]) -> np.ndarray:
    """``[spectra, FEATURES]``; spectra without peaks are left out."""
    rows = [spectrum_features(s) for s in spectra if len(s.mz)]
    return np.array([[row[name] for name in FEATURES] for row in rows], dtype=float)


def classifier_auc(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Mean and SD over ``AUC_REPEATS`` of the cross-validated ROC AUC of a standardized
    logistic regression (scikit-learn, balanced class weights) telling ``real`` (1) from
    ``synthetic`` (0)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.vstack([real, synthetic])
    y = np.r_[np.ones(len(real)), np.zeros(len(synthetic))]
    aucs = []
    for repeat in range(AUC_REPEATS):
        folds = StratifiedKFold(AUC_FOLDS, shuffle=True, random_state=seed + repeat)
        scores = np.zeros(len(y))
        for train, test in folds.split(x, y):
            model = make_pipeline(StandardScaler(), LogisticRegression(
                max_iter=2000, class_weight="balanced"))  # fmt: skip
            model.fit(x[train], y[train])
            scores[test] = model.decision_function(x[test])
        aucs.append(roc_auc_score(y, scores))
    return float(np.mean(aucs)), float(np.std(aucs))


@dataclass
class StageRealism:
    """One stage's synthetic spectra against the real ones."""

    stage: str
    n: int
    medians: dict[str, float]
    auc: dict[str, tuple[float, float]]  # feature set -> (mean, SD)


@dataclass
class RealismReport:
    """``pepcurr realism``'s result (``cli.render`` prints it)."""

    real_files: list[str]
    n_real: int
    real_medians: dict[str, float]
    curriculum: str
    world: bool
    seed: int
    stages: list[StageRealism] = field(default_factory=list)
    halves: dict[str, tuple[float, float]] = field(default_factory=dict)
    halves_n: tuple[int, int] = (0, 0)


def read_real(paths: list[Path]) -> list[AnnotatedSpectrum]:
    """Annotated real spectra through pepcurr's ``PeakFilter``, those with peaks."""
    spectra = [s for path in paths for s in read_annotated_mgf(Path(path), PeakFilter())]
    return [s for s in spectra if len(s.mz)]


def synthetic_spectra(batch: SpectrumBatch, vocab: Vocabulary) -> list[AnnotatedSpectrum]:
    """A synthetic batch as annotated spectra through ``PeakFilter``, as the MGF reader
    would read it back (the peptides from the tokens)."""
    counts = batch.peak_mask.sum(-1).tolist()
    precursor_mz = batch.precursor_mz.double().tolist()
    spectra = []
    for i, count in enumerate(counts):
        charge = int(batch.precursor_charge[i])
        mz, intensity = filter_peaks(batch.mz[i, :count].double().numpy(),
                                     batch.intensity[i, :count].double().numpy(),
                                     precursor_mz[i], charge, PeakFilter())  # fmt: skip
        peptide = vocab.decode(batch.tokens[i].tolist())
        spectra.append(annotated_spectrum(mz, intensity, charge, precursor_mz[i], peptide,
                                          vocab.masses))  # fmt: skip
    return [s for s in spectra if len(s.mz)]


def realism(real_paths: list[Path], curriculum: Curriculum, stage_indices: list[int],
            vocab: Vocabulary, n: int = 512, seed: int = 0) -> RealismReport:  # fmt: skip
    """Real spectra against ``n`` synthetic spectra of each chosen stage (seed ``seed``)."""
    from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_spectra

    files = ", ".join(map(str, real_paths))
    if n > MAX_SYNTHETIC_SPECTRA:
        raise PepcurrError(
            f"-n {n}: at most {MAX_SYNTHETIC_SPECTRA:,} synthetic spectra per "
            "stage (more do not sharpen the AUC: the real ones limit it)"
        )
    if len({Path(path).resolve() for path in real_paths}) < len(real_paths):
        raise PepcurrError(f"{files}: the same file is given twice; give each file once")
    real = read_real(real_paths)
    if len(real) < MIN_REAL_SPECTRA:
        raise PepcurrError(f"{files}: {len(real)} annotated spectra with peaks; realism needs at "
                           f"least {MIN_REAL_SPECTRA} (its classifier is cross-validated in "
                           f"{AUC_FOLDS} folds)")  # fmt: skip
    x_real = feature_matrix(real)
    report = RealismReport(
        real_files=[str(p) for p in real_paths], n_real=len(x_real),
        real_medians=_medians(x_real), curriculum=curriculum.name,
        world=curriculum.world is not None, seed=seed,
    )  # fmt: skip
    for index in stage_indices:
        stage = curriculum.stages[index]
        settings = SpectrumSettings.from_stage(stage, world=curriculum.world)
        batch = generate_spectra(settings, n, vocab, seed)
        x = feature_matrix(synthetic_spectra(batch, vocab))
        report.stages.append(StageRealism(stage.name, len(x), _medians(x), _aucs(x_real, x)))
    first, second = _halves(real)
    report.halves_n = (len(first), len(second))
    if min(report.halves_n) >= AUC_FOLDS:  # else no floor: empty ``halves``
        report.halves = _aucs(x_real[first], x_real[second])
    return report


def _medians(x: np.ndarray) -> dict[str, float]:
    return {name: float(np.median(x[:, j])) for j, name in enumerate(FEATURES)}


def _aucs(real: np.ndarray, synthetic: np.ndarray) -> dict[str, tuple[float, float]]:
    return {
        name: classifier_auc(real[:, columns], synthetic[:, columns])
        for name, features in FEATURE_SETS.items()
        for columns in [[FEATURES.index(f) for f in features]]
    }


def _halves(spectra: list[AnnotatedSpectrum]) -> tuple[np.ndarray, np.ndarray]:
    """Two halves of the real spectra with no backbone in both, alternating by backbone in
    sorted order (deterministic)."""
    backbones = sorted({backbone("".join(r[0] for r in s.residues)) for s in spectra})
    side = {b: i % 2 for i, b in enumerate(backbones)}
    labels = np.array([side[backbone("".join(r[0] for r in s.residues))] for s in spectra])
    return np.nonzero(labels == 0)[0], np.nonzero(labels == 1)[0]

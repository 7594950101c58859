"""``pepcurr calibrate``: a world fitted to annotated real spectra.

From the files' raw peaks (window 50-2500 m/z, the precursor removed at every charge,
no intensity cut: the simulator applies pepcurr's ``PeakFilter`` itself), in order:

1. the source's own processing: the first m/z its spectra show, a gap around the
   precursor (MassIVE-KB files have no peak within 20 Da of it), the spacing under
   which two peaks are one (the centroiding resolution), the intact precursor's rate;
2. the intensity model (``intensity_fit``): every theoretical ion, seen or censored;
3. the residual correlations of neighbouring b/y ions; the 13C peaks of seen b/y ions;
4. unexplained peaks: their count per spectrum, heights, m/z and mass defects;
5. the m/z errors of b/y ions and of the precursor;
6. peptides: charge and length per spectrum, residue composition, modification rates.

Every figure comes with the number of spectra (or ions) behind it
(``Calibration.report``). Only spectra the simulator can draw are used: charge 2 to 4,
peptides of 6-40 residues (``stage_data``); the others are counted and left out. A fit
needs ``MIN_SPECTRA`` of them, and warns under ``FEW_SPECTRA``.
``curriculum.presets.calibrated_curriculum`` makes the world a one-stage curriculum.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from curriculum_cli.errors import MgfError, validation_problem_lines
from curriculum_cli.spectra.chemistry import (
    C13_C12_DELTA_DA,
    MASS_DEFECT_SLOPE,
    PROTON_MASS_DA,
    STANDARD_RESIDUES,
    averagine_ratios,
)
from curriculum_cli.spectra.fragments import (
    AnnotatedSpectrum,
    annotate,
    match_peaks,
    read_annotated_mgf,
    theoretical_ions,
)
from curriculum_cli.spectra.intensity_fit import IntensityFit, fit_intensities, ion_rows
from curriculum_cli.spectra.ions import FAMILY
from curriculum_cli.spectra.peaks import PeakFilter, filter_peaks
from curriculum_cli.spectra.stage_data import MAX_PEPTIDE_LENGTH, MIN_PEPTIDE_LENGTH
from curriculum_cli.spectra.world import (
    AMINO_ACIDS,
    PRECURSOR_CHARGES,
    RELATIVE_MZ_BINS,
    RELATIVE_MZ_MAX,
    Correlation,
    Errors,
    Instrument,
    IntensityModel,
    Isotopes,
    Modification,
    Noise,
    Reference,
    Residues,
    Source,
    SpectrumTable,
    World,
)

WINDOW_FILTER = PeakFilter(max_peaks=None, min_intensity=0.0)
"""The m/z window and the precursor removal of ``PeakFilter``, without its intensity cuts."""

HEADROOM_JITTER_LOG10 = 0.1
"""SD of the jitter on a drawn spectrum's headroom (log10): rows are not copied exactly."""

MIN_SPECTRA = 10
"""Fewest usable spectra ``calibrate`` fits a world to: from fewer, every spread (the
precursor and fragment errors' SDs, the spectra's headroom) rests on a handful of values,
one spectrum gives SDs of exactly 0, and the intensity model has more coefficients than
the data can tell."""

FEW_SPECTRA = 50
"""Under this many spectra ``calibrate`` warns that the world's spreads are rough."""


@dataclass
class Calibration:
    """A fitted world, one line per figure, each with what it rests on, and warnings."""

    world: World
    report: list[tuple[str, str]] = field(default_factory=list)  # (what, value and n)
    warnings: list[str] = field(default_factory=list)


def calibrate(paths: list[Path], reference: Reference | None = None,
              max_iter: int = 300) -> Calibration:  # fmt: skip
    """Fit a world to the annotated spectra of ``paths`` (module docstring); ``max_iter``
    bounds the LBFGS iterations of the intensity fit."""
    paths = [Path(path) for path in paths]
    files = ", ".join(map(str, paths))
    if len({path.resolve() for path in paths}) < len(paths):
        raise MgfError(f"{files}: the same file is given twice; give each file once")
    raw = [(path, s) for path in paths for s in read_annotated_mgf(path, PeakFilter.keep_all())]
    for path, s in raw:
        if s.charge in PRECURSOR_CHARGES and not len(_filtered(s, WINDOW_FILTER).mz):
            raise MgfError(f"{path}: spectrum {s.title!r}: no peak inside "
                           f"{WINDOW_FILTER.min_mz:g}-{WINDOW_FILTER.max_mz:g} m/z")  # fmt: skip
    kept = [s for _, s in raw if _drawable(s)]
    report: list[tuple[str, str]] = [("spectra", _spectra_line(kept, [s for _, s in raw]))]
    if len(kept) < MIN_SPECTRA:
        raise MgfError(f"{files}: {report[0][1]}; calibrate needs at least {MIN_SPECTRA} "
                       "annotated spectra of charge 2-4 and 6-40 residues")  # fmt: skip
    n = len(kept)
    notes = []
    if n < FEW_SPECTRA:
        notes.append(f"a world fitted to {n} spectra: its spreads and correlations rest "
                     f"on few values; {FEW_SPECTRA} or more give steadier ones")  # fmt: skip
    try:
        with warnings.catch_warnings():  # numpy's "mean of empty slice": NaN, refused below
            warnings.simplefilter("ignore", RuntimeWarning)
            world = _fit_world(paths, kept, reference, max_iter, report, files)
    except ValidationError as error:  # a figure with nothing behind it (NaN)
        problems = "; ".join(validation_problem_lines(error))
        raise MgfError(f"{files}: the {n} spectra leave a figure of the world undetermined "
                       f"({problems}); calibrate needs real spectra with unexplained peaks "
                       "and 13C isotopes, and more of them") from None  # fmt: skip
    return Calibration(world, report, notes)


def _fit_world(paths: list[Path], kept: list[AnnotatedSpectrum], reference: Reference | None,
               max_iter: int, report: list, files: str) -> World:  # fmt: skip
    """Each part of the world in the order of the module docstring (a report line each)."""
    windowed = [_filtered(s, WINDOW_FILTER) for s in kept]
    n = len(windowed)
    instrument = _fit_instrument(kept, windowed, report)
    errors = _fit_errors(kept, report, files)  # first: finds spectra their peptides do not explain
    window = (WINDOW_FILTER.min_mz, WINDOW_FILTER.max_mz)
    rows = ion_rows(windowed, instrument.scan_min_mz, instrument.precursor_gap_da, window)
    fit = fit_intensities(windowed, rows, max_iter=max_iter)
    seen = int((~torch.isnan(rows.log_intensity)).sum())
    coefficients = fit.coefficients
    report.append(("intensity model", (
        f"{len(rows.spectrum):,} possible ions, {seen:,} seen ({n} spectra); b1+ vs y1+ "
        f"{coefficients['series:b1|2']:+.2f} log10 (2+), proline effect C:P "
        f"{coefficients['C:P']:+.2f}, a2 {coefficients['a:span2']:+.2f}; headroom median "
        f"{np.median(fit.headroom):.2f} log10"
    )))  # fmt: skip
    noise, noise_counts = _fit_noise(windowed, fit, instrument.scan_min_mz, report, files)
    preprocessed = [_filtered(s, PeakFilter()) for s in kept]
    return World(
        source=_source(paths, n),
        reference=reference or Reference(),
        spectra=SpectrumTable(
            charge=[s.charge for s in windowed],
            length=[s.length for s in windowed],
            headroom_log10=[round(float(h), 4) for h in fit.headroom],
            noise_peaks=[round(float(c), 2) for c in noise_counts],
            peaks=[len(s.mz) for s in preprocessed],
            jitter_log10=HEADROOM_JITTER_LOG10,
        ),
        residues=_fit_residues(windowed, report),
        modifications=_fit_modifications(windowed, report),
        intensity=IntensityModel(coefficients=_rounded(coefficients), shape=_rounded(fit.shape),
                                 formed_logit=_rounded(fit.formed_logit),
                                 formed_slope=_rounded(fit.formed_slope)),
        correlation=_fit_correlation(fit, report),
        isotopes=_fit_isotopes(windowed, report),
        noise=noise,
        errors=errors,
        instrument=instrument,
    )  # fmt: skip


def _drawable(spectrum: AnnotatedSpectrum) -> bool:
    """A spectrum the simulator can draw: its charge and its peptide's length."""
    return (spectrum.charge in PRECURSOR_CHARGES
            and MIN_PEPTIDE_LENGTH <= spectrum.length <= MAX_PEPTIDE_LENGTH)  # fmt: skip


def _spectra_line(kept: list[AnnotatedSpectrum], read: list[AnnotatedSpectrum]) -> str:
    """The spectra used, by charge, and those left out, by reason."""
    charges = Counter(s.charge for s in kept)
    by_charge = ", ".join(f"{z}+ {charges[z]}" for z in sorted(charges))
    line = f"{len(kept)} used" + (f" (charge {by_charge})" if kept else "")
    other_charge = sum(s.charge not in PRECURSOR_CHARGES for s in read)
    other_length = len(read) - len(kept) - other_charge
    reasons = [f"{other_charge} of charge 1 or over 4"] if other_charge else []
    if other_length:
        reasons.append(f"{other_length} of fewer than {MIN_PEPTIDE_LENGTH} or more than "
                       f"{MAX_PEPTIDE_LENGTH} residues")  # fmt: skip
    return line + (f"; left out: {', '.join(reasons)}" if reasons else "")


def _rounded(values: dict[str, float]) -> dict[str, float]:
    """Fitted numbers to 4 decimals (log10 units: far below what the data can tell)."""
    return {name: round(value, 4) for name, value in values.items()}


def _filtered(spectrum: AnnotatedSpectrum, peak_filter: PeakFilter) -> AnnotatedSpectrum:
    mz, intensity = filter_peaks(spectrum.mz, spectrum.intensity, spectrum.precursor_mz,
                                 spectrum.charge, peak_filter)  # fmt: skip
    return spectrum.with_peaks(mz, intensity)


def _source(paths: list[Path], n_spectra: int) -> Source:
    digests = [hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in paths]
    return Source(files=[str(path) for path in paths], sha256=digests, n_spectra=n_spectra)


def _fit_instrument(raw: list[AnnotatedSpectrum], windowed: list[AnnotatedSpectrum],
                    report: list) -> Instrument:  # fmt: skip
    """First m/z, the gap around the precursor, the merge spacing, the intact precursor."""
    scan_min = float(np.floor(np.percentile([s.mz[0] for s in windowed], 5)))
    nearest = min(float(np.min(np.abs(s.mz - s.precursor_mz))) for s in windowed)
    removed_da = WINDOW_FILTER.remove_precursor_tol_da
    gap = math.floor(nearest * 10) / 10 if nearest > removed_da + 0.5 else 0.0
    spacing = np.concatenate([np.diff(s.mz) / s.mz[1:] * 1e6 for s in windowed])
    merge_ppm = float(np.percentile(spacing, 0.2))
    heights = []  # the intact precursor's log10 height over the weakest windowed peak
    for r, w in zip(raw, windowed, strict=True):
        near = np.abs(r.mz - r.precursor_mz) <= 20e-6 * r.precursor_mz
        if near.any():
            weakest = w.intensity.min() * r.intensity[np.isin(r.mz, w.mz)].max()
            heights.append(math.log10(r.intensity[near].max() / weakest))
    n = len(raw)
    report.append(("instrument", (
        f"first m/z {scan_min:g} (5th percentile of the first peaks), no peak within "
        f"{gap:g} Da of the precursor m/z, peaks closer than {merge_ppm:.0f} ppm merged "
        f"(0.2th percentile of {len(spacing):,} spacings), intact precursor in "
        f"{len(heights)} of {n} spectra"
    )))  # fmt: skip
    return Instrument(
        scan_min_mz=scan_min,
        precursor_gap_da=gap,
        merge_ppm=merge_ppm,
        precursor_peak_rate=len(heights) / n,
        precursor_peak_height_log10=float(np.mean(heights)) if heights else 0.0,
    )


def _fit_residues(spectra: list[AnnotatedSpectrum], report: list) -> Residues:
    """Residue shares before the last residue and at the C-terminus (I and L apart)."""
    inner, last = Counter(), Counter()
    for s in spectra:
        letters = [r[0] for r in s.residues]
        inner.update(letters[:-1])
        last[letters[-1]] += 1
    total = sum(inner.values())
    top = ", ".join(f"{a} {c / len(spectra):.2f}" for a, c in last.most_common(3))
    report.append(("residues", f"{total:,} inner residues; last residue {top} ({len(spectra)} "
                               "spectra)"))  # fmt: skip
    return Residues(inner={a: inner[a] / total for a in AMINO_ACIDS if inner[a]},
                    last={a: last[a] / len(spectra) for a in AMINO_ACIDS if last[a]})  # fmt: skip


def _fit_modifications(spectra: list[AnnotatedSpectrum], report: list) -> dict[str, Modification]:
    """Each modified residue's share of its residue's sites; each N-terminal modification's
    share of the peptides, of those starting with one unmodified residue when all that carry
    it do (pyro-glu: of the peptides starting with Q)."""
    sites, modified, n_terms, first_of = Counter(), Counter(), Counter(), {}
    firsts = Counter(s.residues[0] for s in spectra)
    for s in spectra:
        for residue in s.residues:
            sites[residue[0]] += 1
            if residue not in STANDARD_RESIDUES:
                modified[residue] += 1
        if s.n_term is not None:
            n_terms[s.n_term] += 1
            first_of.setdefault(s.n_term, set()).add(s.residues[0])
    rates, lines = {}, []
    for token, count in sorted(modified.items()):
        rates[token] = Modification(rate=count / sites[token[0]])
        lines.append(f"{token} {count}/{sites[token[0]]} {token[0]}")
    for token, count in sorted(n_terms.items()):
        name = next(iter(first_of[token])) if len(first_of[token]) == 1 else None
        first = name[0] if name in STANDARD_RESIDUES else None  # one unmodified residue
        of = firsts[name] if first else len(spectra)
        rates[token] = Modification(rate=count / of, first_residue=first)
        lines.append(
            f"{token} {count}/{of} peptides" + (f" starting with {first}" if first else "")
        )
    report.append(("modifications", "; ".join(lines) or "none"))
    return rates


def _fit_correlation(fit: IntensityFit, report: list) -> Correlation:
    """Correlation of the residuals (log10 I - fitted mean) of seen b/y ions at charge 1:
    between neighbouring sites of a series (lag 1 and 2: a Gaussian kernel of length scale
    ``l``, share ``f``) and between the b and the y ion of one bond."""
    rows = fit.rows
    residual = rows.log_intensity.numpy() - fit.mean
    spectrum = rows.spectrum.numpy()
    found = {}
    for i in np.nonzero(~np.isnan(residual) & np.isin(rows.family, ["b", "y"])
                        & (rows.charge == 1))[0]:  # fmt: skip
        found[(spectrum[i], rows.family[i], rows.site[i])] = residual[i]

    def corr(pairs: list) -> tuple[float, int]:
        if len(pairs) <= 20:
            return 0.0, len(pairs)
        return float(np.corrcoef(np.array(pairs).T)[0, 1]), len(pairs)

    lag = {k: corr([(v, found[(s, f, i + k)]) for (s, f, i), v in found.items()
                    if (s, f, i + k) in found]) for k in (1, 2)}  # fmt: skip
    bond, n_bond = corr([(v, found[(s, "b", i)]) for (s, f, i), v in found.items()
                         if f == "y" and (s, "b", i) in found])  # fmt: skip
    c1, c2 = max(lag[1][0], 1e-3), max(lag[2][0], 1e-4)
    scale_sq = 3.0 / (2.0 * math.log(c1 / c2)) if c1 > c2 else 4.0  # c(k) = f exp(-k^2 / 2l^2)
    field_share = min(c1 / math.exp(-1.0 / (2.0 * scale_sq)), 0.8)
    bond_share = min(max(bond, 0.0), 0.9 - field_share)
    report.append(("correlation", (
        f"neighbouring b/y residuals {lag[1][0]:+.2f} (lag 1, {lag[1][1]:,} pairs), "
        f"{lag[2][0]:+.2f} (lag 2), b and y of one bond {bond:+.2f} ({n_bond:,} pairs)"
    )))  # fmt: skip
    return Correlation(field_share=field_share, length_scale_sites=math.sqrt(scale_sq),
                       bond_share=bond_share)  # fmt: skip


def _fit_isotopes(spectra: list[AnnotatedSpectrum], report: list) -> Isotopes:
    """The +1 peaks of seen b/y ions against averagine: log10 observed/averagine ratio
    ``d ~ N(offset, sd)``, a +1 peak seen when above the spectrum's weakest peak (a censored
    normal fit, so the weak ones that vanish under the floor do not bias it)."""
    expected, seen, ratio = [], [], []
    for s in spectra:
        ions = theoretical_ions(s, isotopes=1, internal=False)
        peak, found = match_peaks(s.mz, ions["mz"])
        mono = ions["isotope"] == 0
        by = np.isin(ions["family"], [FAMILY["b"], FAMILY["y"]]) & mono & found
        floor = math.log10(s.intensity.min())
        plus_1 = {m: i for i, m in enumerate(ions["mono"]) if ions["isotope"][i] == 1}
        for i in np.nonzero(by)[0]:
            j = plus_1[ions["mono"][i]]
            if ions["mz"][j] > WINDOW_FILTER.max_mz or peak[j] == peak[i]:
                continue
            neutral = ions["mz"][i] * ions["charge"][i] - ions["charge"][i] * PROTON_MASS_DA
            level = math.log10(s.intensity[peak[i]] * averagine_ratios(neutral)[0])
            expected.append(level - floor)
            seen.append(bool(found[j]))
            ratio.append(math.log10(s.intensity[peak[j]]) - level if found[j] else 0.0)
    x = torch.tensor(expected, dtype=torch.float64)
    d = torch.tensor(ratio, dtype=torch.float64)
    f = torch.tensor(seen)
    params = torch.tensor([0.0, math.log(0.15)], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        offset, sd = params[0], params[1].exp()
        ll_seen = -0.5 * ((d - offset) / sd) ** 2 - torch.log(sd)
        ll_missed = torch.special.log_ndtr(-(x + offset) / sd)
        loss = -torch.where(f, ll_seen, ll_missed).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    offset, sd = params[0].item(), params[1].exp().item()
    report.append(("isotopes", (
        f"+1/0 ratio {offset:+.3f} log10 from averagine, SD {sd:.3f}, from {len(seen):,} "
        f"b/y ions ({int(f.sum()):,} +1 peaks seen)"
    )))  # fmt: skip
    return Isotopes(ratio_offset_log10=offset, sd_log10=sd)


def _fit_noise(spectra: list[AnnotatedSpectrum], fit: IntensityFit, scan_min_mz: float,
               report: list, files: str) -> tuple[Noise, np.ndarray]:  # fmt: skip
    """Unexplained peaks (no ion or 13C isotope within 20 ppm): where and how strong.

    Heights share each spectrum's level: ``log10 I = alpha_s + nu + log10(E) / kappa``,
    seen when above its weakest peak (a truncated Weibull fit of nu and kappa). Their count
    per spectrum is kept as it is, divided by the share of such m/z that land on an ion by
    chance (those the annotation counts as explained).
    """
    counts, relative, defects, heights, owner = [], [], [], [], []
    for index, s in enumerate(spectra):
        unexplained = annotate(s).family < 0
        counts.append(int(unexplained.sum()))
        heights += np.log10(s.intensity[unexplained]).tolist()
        owner += [index] * int(unexplained.sum())
        relative += (s.mz[unexplained] / s.precursor_mass_da).tolist()
        mz = s.mz[unexplained]
        defects += (mz - np.round(mz / MASS_DEFECT_SLOPE) * MASS_DEFECT_SLOPE).tolist()
    if not heights:
        raise MgfError(f"{files}: no spectrum has a peak that its peptide's ions do not explain, "
                       "so there is no noise to fit; simulated spectra? calibrate needs real "
                       "ones")  # fmt: skip
    edges = np.linspace(0, RELATIVE_MZ_MAX, RELATIVE_MZ_BINS + 1)
    histogram = np.histogram(np.clip(relative, 0, RELATIVE_MZ_MAX - 1e-9), bins=edges)[0]
    defects = np.array(defects)
    peptide_like, half = np.abs(defects) < 0.15, np.abs(defects) > 0.35
    shape = {
        "relative_mz_histogram": (histogram / histogram.sum()).tolist(),
        "defect_mean_da": float(defects[peptide_like].mean()),
        "defect_sd_da": float(defects[peptide_like].std()),
        "peptide_like_share": float(peptide_like.mean()),
        "half_integer_share": float(half.mean()),
    }
    chance = _chance_match_rate(spectra, shape, scan_min_mz)
    level = torch.tensor(fit.level, dtype=torch.float64)[owner]
    floor = torch.tensor(fit.floor, dtype=torch.float64)[owner]
    y = torch.tensor(heights, dtype=torch.float64)
    nu = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    log_kappa = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([nu, log_kappa], max_iter=300, line_search_fn="strong_wolfe")
    ln10 = math.log(10.0)

    def closure():
        optimizer.zero_grad()
        kappa = log_kappa.exp()
        t = kappa * (y - level - nu) * ln10
        visible = -torch.exp(kappa * (floor - level - nu) * ln10)  # log P(E >= e0)
        loss = -(torch.log(kappa) + t - torch.exp(t) - visible).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    noise = Noise(level_log10=nu.item(), level_shape=log_kappa.exp().item(), **shape)
    counts = np.array(counts, dtype=float)
    report.append(("noise", (
        f"unexplained peaks per spectrum median {np.median(counts):.0f} (10-90%: "
        f"{np.percentile(counts, 10):.0f}-{np.percentile(counts, 90):.0f}; {len(spectra)} "
        f"spectra, {len(y):,} peaks), {shape['peptide_like_share']:.2f} with a peptide-like "
        f"mass defect, {chance:.3f} of such m/z land on an ion by chance"
    )))  # fmt: skip
    return noise, counts / (1.0 - chance)


def _chance_match_rate(spectra: list[AnnotatedSpectrum], shape: dict, scan_min_mz: float) -> float:
    """How often an m/z drawn as the simulator draws noise lands on one of the spectrum's
    ions (20 ppm): such a noise peak counts as explained."""
    rng = np.random.default_rng(0)
    histogram = np.asarray(shape["relative_mz_histogram"])
    width = RELATIVE_MZ_MAX / RELATIVE_MZ_BINS
    hits = tries = 0
    for s in spectra:
        bins = rng.choice(len(histogram), size=100, p=histogram / histogram.sum())
        mz = (bins + rng.random(100)) * width * s.precursor_mass_da
        kind = rng.random(100)
        peptide_like = kind < shape["peptide_like_share"]
        half = ~peptide_like & (kind < shape["peptide_like_share"] + shape["half_integer_share"])
        defect = shape["defect_mean_da"] + shape["defect_sd_da"] * rng.standard_normal(100)
        mz = np.round(mz / MASS_DEFECT_SLOPE) * MASS_DEFECT_SLOPE + np.where(
            peptide_like, defect, np.where(half, 0.5 + defect, rng.random(100) - 0.5)
        )
        mz = mz[(mz >= max(WINDOW_FILTER.min_mz, scan_min_mz)) & (mz <= WINDOW_FILTER.max_mz)]
        _, found = match_peaks(np.sort(theoretical_ions(s)["mz"]), mz)
        hits, tries = hits + int(found.sum()), tries + len(mz)
    return hits / max(tries, 1)


def _fit_errors(spectra: list[AnnotatedSpectrum], report: list, files: str) -> Errors:
    """Precursor m/z error against the annotated peptide (an isotope error when it is off by
    whole 13C spacings), and the b/y ions' m/z errors: a per-spectrum offset and a scatter."""
    precursor_ppm, isotope_errors, offsets, within = [], 0, [], []
    for s in spectra:
        true_mz = (s.peptide_mass_da + s.charge * PROTON_MASS_DA) / s.charge
        shift = round((s.precursor_mz - true_mz) * s.charge / C13_C12_DELTA_DA)
        isotope_errors += shift != 0
        observed = s.precursor_mz - shift * C13_C12_DELTA_DA / s.charge
        precursor_ppm.append((observed - true_mz) / true_mz * 1e6)
        ions = theoretical_ions(s, isotopes=0, internal=False)
        ion_mz = ions["mz"][np.isin(ions["family"], [FAMILY["b"], FAMILY["y"]])]
        peak, found = match_peaks(s.mz, ion_mz)
        errors = (s.mz[peak[found]] - ion_mz[found]) / ion_mz[found] * 1e6
        if len(errors) >= 3:
            offsets.append(float(np.median(errors)))
            within += (errors - np.median(errors)).tolist()
    if not offsets:
        raise MgfError(
            f"{files}: none of the {len(spectra)} spectra has 3 b/y ions within 20 ppm of its "
            "peptide's; are the SEQ annotations right (and the peaks centroided m/z)?"
        )
    errors = Errors(
        precursor_ppm_mean=float(np.mean(precursor_ppm)),
        precursor_ppm_sd=float(np.std(precursor_ppm)),
        precursor_isotope_error_rate=isotope_errors / len(spectra),
        fragment_ppm_offset_mean=float(np.mean(offsets)),
        fragment_ppm_offset_sd=float(np.std(offsets)),
        fragment_ppm_sd=float(np.std(within)),
    )
    report.append(("errors", (
        f"precursor {errors.precursor_ppm_mean:+.2f} +/- {errors.precursor_ppm_sd:.2f} ppm, "
        f"isotope errors {isotope_errors} ({len(spectra)} spectra); fragments offset SD "
        f"{errors.fragment_ppm_offset_sd:.2f} ppm ({len(offsets)} spectra), scatter SD "
        f"{errors.fragment_ppm_sd:.2f} ppm ({len(within):,} b/y ions)"
    )))  # fmt: skip
    return errors

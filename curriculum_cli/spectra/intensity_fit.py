"""The intensity model of a world, fitted to annotated spectra: which ions show and how strong.

Every monoisotopic ion an annotated spectrum could show (``fragments.theoretical_ions``,
internal fragments up to 6 residues, the intact precursor left out) is a row of one
likelihood. For ion ``i`` of spectrum ``s``::

    log10 I_i / base = alpha_s + x_i . beta + log10(E) / kappa_g,   E ~ Exp(1)

(a Weibull intensity: a thin upper tail, few ions tower over the rest), where
``x_i`` holds the ion's features (``design_row``; ``beta`` is named by
``world.COEFFICIENT_NAMES``) and ``g`` its ion group. The ion forms at all with
probability ``sigmoid(gamma_g + eta_g x_i . beta)``, and is seen (matched within
20 ppm) when it is above ``c_s``, the spectrum's weakest peak; otherwise it is
censored. Maximum likelihood with torch's LBFGS, ridge penalties on the residue
effects. The headroom ``alpha_s - c_s`` is what the simulator draws per spectrum.

The simulator (``spectra.simulator``) computes the same ``x . beta`` for its ions,
batched; a test keeps the two in agreement. The literature gives the effects' form
(the proline effect, mobile protons: Kapp et al. 2003; HCD's y-ion ladder, a2/b2,
immonium and internal ions), the spectra give the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from curriculum_cli.spectra.chemistry import PROTON_MASS_DA
from curriculum_cli.spectra.fragments import BASIC, AnnotatedSpectrum, match_peaks, theoretical_ions
from curriculum_cli.spectra.ions import (
    FAMILIES,
    FAMILY,
    INTACT_PRECURSOR,
    ION_FAMILY,
    ION_GROUPS,
    families_in,
)
from curriculum_cli.spectra.world import (
    COEFFICIENT_NAMES,
    INTERNAL_LENGTHS,
    POSITION_BINS,
    a_span_name,
    basic_name,
    derived_name,
    effect_name,
    immonium_name,
    internal_length_name,
    position_name,
    series_name,
    span_name,
)

COLUMN = {name: index for index, name in enumerate(COEFFICIENT_NAMES)}

RIDGE = {"N:": 1.0, "C:": 1.0, "immonium:": 0.5, "nonmobile": 1.0}
"""L2 penalty per coefficient of these groups (log10 units^-2): residue effects seen on few
bonds stay near 0 instead of fitting noise."""


def not_mobile(letters: str, charge: int) -> bool:
    """The precursor's protons are not all mobile: its charge is at most its count of R, K and
    H (Kapp et al. 2003: partially mobile, or non-mobile when at most its count of R)."""
    return charge <= sum(letters.count(c) for c in BASIC)


def design_row(spectrum: AnnotatedSpectrum, letters: str, family: str, charge: int, site: int,
               span: int, mz: float) -> tuple[list[tuple[int, float]], str] | None:  # fmt: skip
    """``(coefficient index, value)`` pairs and the ion group of one ion; None for the intact
    precursor (the preprocessing removes it)."""
    length, precursor_charge = spectrum.length, spectrum.charge
    row = ION_FAMILY[family]
    features: list[tuple[str, float]] = []
    if row.series:  # b, y and what derives from them
        series = row.series
        name = series_name(series, charge, precursor_charge)
        if name in COLUMN:
            features.append((name, 1.0))
        position = min(int(span / length * POSITION_BINS), POSITION_BINS - 1)
        if position > 0:
            features.append((position_name(series, charge, position), 1.0))
        if span <= 2:
            features.append((span_name(series, span), 1.0))
        if charge >= 2:
            fragment = letters[:span] if series == "b" else letters[length - span :]
            features.append((basic_name(series), float(sum(fragment.count(c) for c in BASIC))))
        n_side, c_side = letters[site], letters[site + 1]
        features += [(effect_name("N", n_side), 1.0), (effect_name("C", c_side), 1.0)]
        if not_mobile(letters, precursor_charge):
            features.append(("nonmobile", 1.0))
            if n_side in "DE":
                features.append(("nonmobile:N-DE", 1.0))
            if c_side == "P":
                features.append(("nonmobile:C-P", 1.0))
        if family == "a" and span <= 2:
            features.append((a_span_name(span), 1.0))
        if row.group == "derived":
            features.append((derived_name(family), 1.0))
            if charge >= 2:
                features.append((derived_name(family, two_plus=True), 1.0))
    elif row.group == "immonium":
        features.append((immonium_name(letters[site]), 1.0))
    elif row.group == "internal":
        features.append((internal_length_name(min(span, INTERNAL_LENGTHS[-1])), 1.0))
        if letters[site] == "P":
            features.append(("internal:P-first", 1.0))
        if letters[site + span] == "P":  # its second cleavage is N-terminal to a proline
            features.append(("internal:P-after", 1.0))
        if any(c in BASIC for c in letters[site : site + span]):
            features.append(("internal:basic", 1.0))
        if family == "internal-a":
            features.append(("internal:a", 1.0))
        features += [(f"internal:mz{m}", 1.0) for m in (300, 600) if mz >= m]
    elif row.group == "precursor" and family != INTACT_PRECURSOR:
        features.append(("precursor-loss", 1.0))
    else:
        return None
    return [(COLUMN[name], value) for name, value in features], row.group


@dataclass
class IonRows:
    """The rows of the likelihood: one per ion that could be seen."""

    index: torch.Tensor  # [n, width] coefficient indices (padding: 0 with value 0)
    value: torch.Tensor  # [n, width] float64
    spectrum: torch.Tensor  # [n] which spectrum
    group: torch.Tensor  # [n] index into ION_GROUPS
    log_intensity: torch.Tensor  # [n] log10 of the matched peak over the base; NaN: not seen
    family: np.ndarray  # [n] family names, for the residual correlations
    charge: np.ndarray
    site: np.ndarray


def ion_rows(spectra: list[AnnotatedSpectrum], scan_min_mz: float, gap_da: float,
             window: tuple[float, float], tol_ppm: float = 20.0) -> IonRows:  # fmt: skip
    """Every ion of every spectrum that its instrument and preprocessing could show: inside
    ``window`` from ``scan_min_mz`` on, not within 2 Da of the precursor at any charge nor
    within ``gap_da`` of it at its own."""
    rows, values, spectrum_of, groups, ys, families, charges, sites = ([] for _ in range(8))
    for index, spectrum in enumerate(spectra):
        ions = theoretical_ions(spectrum, isotopes=0)
        short = ~np.isin(ions["family"], [FAMILY[f.name] for f in families_in("internal")])
        keep = (short | (ions["span"] <= INTERNAL_LENGTHS[-1])) & (ions["mz"] <= window[1])
        keep &= ions["mz"] >= max(window[0], scan_min_mz)
        neutral = spectrum.precursor_mass_da
        for z in range(1, spectrum.charge + 1):
            keep &= np.abs(ions["mz"] - (neutral + z * PROTON_MASS_DA) / z) > 2.0
        own = (neutral + spectrum.charge * PROTON_MASS_DA) / spectrum.charge
        keep &= np.abs(ions["mz"] - own) > gap_da
        peak, found = match_peaks(spectrum.mz, ions["mz"], tol_ppm)
        letters = spectrum.letters
        for i in np.nonzero(keep)[0]:
            family = FAMILIES[ions["family"][i]]
            charge, site, span = int(ions["charge"][i]), int(ions["site"][i]), int(ions["span"][i])
            row = design_row(spectrum, letters, family, charge, site, span, float(ions["mz"][i]))
            if row is None:
                continue
            pairs, group = row
            rows.append([c for c, _ in pairs])
            values.append([v for _, v in pairs])
            spectrum_of.append(index)
            groups.append(ION_GROUPS.index(group))
            ys.append(math.log10(spectrum.intensity[peak[i]]) if found[i] else math.nan)
            families.append(family)
            charges.append(charge)
            sites.append(site)
    width = max(len(r) for r in rows)
    index_t = torch.zeros(len(rows), width, dtype=torch.long)
    value_t = torch.zeros(len(rows), width, dtype=torch.float64)
    for r, (columns, vals) in enumerate(zip(rows, values, strict=True)):
        index_t[r, : len(columns)] = torch.tensor(columns)
        value_t[r, : len(vals)] = torch.tensor(vals, dtype=torch.float64)
    return IonRows(index_t, value_t, torch.tensor(spectrum_of), torch.tensor(groups),
                   torch.tensor(ys, dtype=torch.float64), np.array(families),
                   np.array(charges), np.array(sites))  # fmt: skip


@dataclass
class IntensityFit:
    """The fitted intensity model and what it rests on."""

    coefficients: dict[str, float]
    shape: dict[str, float]  # Weibull kappa per ion group
    formed_logit: dict[str, float]
    formed_slope: dict[str, float]
    level: np.ndarray  # [spectra] alpha_s: log10 of the y1+ level over the base peak
    floor: np.ndarray  # [spectra] c_s: log10 of the weakest peak over the base peak
    rows: IonRows
    mean: np.ndarray  # [rows] alpha_s + x . beta

    @property
    def headroom(self) -> np.ndarray:
        return self.level - self.floor


def log_below(t: torch.Tensor) -> torch.Tensor:
    """log P(log10 I < c) of a Weibull intensity, ``t = kappa ln(10) (c - mu)``:
    log(1 - exp(-exp(t))), computed stably for small ``exp(t)``."""
    e = torch.exp(t)
    return torch.where(t < -4, t - e / 2, torch.log(-torch.expm1(-e.clamp_min(1e-4))))


def fit_intensities(spectra: list[AnnotatedSpectrum], rows: IonRows,
                    max_iter: int = 300) -> IntensityFit:  # fmt: skip
    """Maximum likelihood of the zero-inflated, censored Weibull model (module docstring)."""
    floor = torch.tensor([math.log10(s.intensity.min()) for s in spectra], dtype=torch.float64)
    c = floor[rows.spectrum]
    seen = ~torch.isnan(rows.log_intensity)
    y = torch.nan_to_num(rows.log_intensity)
    n_groups = len(ION_GROUPS)
    beta = torch.zeros(len(COEFFICIENT_NAMES), dtype=torch.float64, requires_grad=True)
    alpha = torch.full((len(spectra),), -1.0, dtype=torch.float64, requires_grad=True)
    log_kappa = torch.zeros(n_groups, dtype=torch.float64, requires_grad=True)
    gamma = torch.full((n_groups,), 2.0, dtype=torch.float64, requires_grad=True)
    eta = torch.zeros(n_groups, dtype=torch.float64, requires_grad=True)
    ridge = torch.tensor(
        [next((w for p, w in RIDGE.items() if name.startswith(p)), 0.0)
         for name in COEFFICIENT_NAMES], dtype=torch.float64,
    )  # fmt: skip
    ln10 = math.log(10.0)
    optimizer = torch.optim.LBFGS([beta, alpha, log_kappa, gamma, eta], lr=1, max_iter=max_iter,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-9)  # fmt: skip

    def negative_log_likelihood() -> torch.Tensor:
        features = (beta[rows.index] * rows.value).sum(-1)
        mu = alpha[rows.spectrum] + features
        kappa = log_kappa.exp()[rows.group]
        t_seen = (kappa * (y - mu) * ln10).clamp(max=30)
        ll_seen = torch.log(kappa) + t_seen - torch.exp(t_seen)  # + log ln10, a constant
        ll_below = log_below((kappa * (c - mu) * ln10).clamp(max=30))
        logit = gamma[rows.group] + eta[rows.group] * features
        log_formed, log_not = F.logsigmoid(logit), F.logsigmoid(-logit)
        ll_unseen = torch.logaddexp(log_not, log_formed + ll_below)  # not formed, or too weak
        ll = torch.where(seen, ll_seen + log_formed, ll_unseen)
        return -ll.sum() + (ridge * beta**2).sum()

    def closure():
        optimizer.zero_grad()
        loss = negative_log_likelihood()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        mean = alpha[rows.spectrum] + (beta[rows.index] * rows.value).sum(-1)
    names = list(ION_GROUPS)
    return IntensityFit(
        coefficients=dict(zip(COEFFICIENT_NAMES, beta.detach().tolist(), strict=True)),
        shape=dict(zip(names, log_kappa.exp().detach().tolist(), strict=True)),
        formed_logit=dict(zip(names, gamma.detach().tolist(), strict=True)),
        formed_slope=dict(zip(names, eta.detach().tolist(), strict=True)),
        level=alpha.detach().numpy(), floor=floor.numpy(), rows=rows, mean=mean.numpy(),
    )  # fmt: skip

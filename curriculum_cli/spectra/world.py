"""A curriculum's world: the physics of spectra that look like a user's real ones.

A curriculum without a ``world`` trains on pepcurr's plain b/y-ladder spectra
(``spectra.synthetic``). With one, every stage's spectra come from the realistic
simulator (``spectra.simulator``) with these parameters, which ``pepcurr
calibrate`` fits to annotated real spectra (``spectra.calibration``). The world
describes the spectra once, for the whole curriculum; the stages keep the
schedule, the loss weights and the difficulty ramp. In a world a stage's noise
fields scale parts of the calibrated physics, relative to ``reference`` (the
stage values at which the spectra are as calibrated): see ``Reference`` and
``docs/curriculum-format.md``.

Intensities are in log10 units. For an ion, ``log10 A = h + mu + r``: ``h`` is
the spectrum's *headroom* (how far its y1+ level sits above its detection floor,
the weakest peak it shows), ``mu`` the sum of the coefficients that apply to
the ion (``COEFFICIENT_NAMES``; y1+ ions are the reference, 0), and ``r`` a
Weibull scatter of shape ``intensity.shape[group]``. A peak is seen when
``log10 A >= 0``. The names, their meaning and the fitted values of the shipped
world are listed in ``docs/spectra-and-mgf.md``.
"""

from __future__ import annotations

import functools

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curriculum_cli.spectra.ions import ION_GROUPS, SERIES, families_in, max_fragment_charge

AMINO_ACIDS = tuple("ACDEFGHIKLMNPQRSTVWY")
"""The one-letter codes a world's residue tables are keyed by."""

EFFECT_LETTERS = tuple(a for a in AMINO_ACIDS if a != "I")
"""Residues with an intensity effect of their own: I takes L's (same mass, same chemistry
as far as fragmentation goes)."""

POSITION_BINS = 5
"""Bins of a fragment's length over the peptide's (0-0.2, ..., 0.8-1) with a coefficient."""

INTERNAL_LENGTHS = (2, 3, 4, 5, 6)
"""Residues of the internal fragments the simulator makes (a coefficient each)."""

PRECURSOR_CHARGES = (2, 3, 4)
"""Precursor charges of a world's spectra: the ones the simulator makes and calibrate fits."""

REFERENCE_ION = ("y", 1)
"""Series and charge of the ions every intensity is relative to (y1+: no coefficient)."""

RELATIVE_MZ_BINS = 24
"""Bins of the noise peaks' m/z over the precursor mass, evenly over 0-1.2."""

RELATIVE_MZ_MAX = 1.2


# The names of the coefficients that take parameters, one function per term (the fit and the
# simulator look them up through these).


def series_name(series: str, charge: int, precursor_charge: int) -> str:
    """``series:b1|2``: the b (or y) ions at fragment charge 1 of 2+ precursors."""
    return f"series:{series}{charge}|{precursor_charge}"


def position_name(series: str, charge: int, position_bin: int) -> str:
    """``position:y1:3``: a series fragment of charge 1 (``2+``: 2 or more) in length bin 3."""
    return f"position:{series}{'1' if charge == 1 else '2+'}:{position_bin}"


def span_name(series: str, span: int) -> str:
    """``span1:b``: the b1 (or b2, y1, y2) ion."""
    return f"span{span}:{series}"


def basic_name(series: str) -> str:
    """``basic:b2+``: per basic residue a series fragment of charge >= 2 holds."""
    return f"basic:{series}2+"


def derived_name(family: str, two_plus: bool = False) -> str:
    """``derived:a``: a derived family against its b or y ion; ``derived2+:a`` on top at
    charge >= 2 (``two_plus``)."""
    return f"derived{'2+' if two_plus else ''}:{family}"


def a_span_name(span: int) -> str:
    """``a:span2``: the a2 (or a1) ion, on top of its family's coefficients."""
    return f"a:span{span}"


def effect_name(side: str, letter: str) -> str:
    """``C:P``: the residue on the ``N``- or ``C``-terminal side of the cleaved bond."""
    return f"{side}:{letter}"


def immonium_name(letter: str) -> str:
    """``immonium:F``: the immonium ion of a residue."""
    return f"immonium:{letter}"


def internal_length_name(residues: int) -> str:
    """``internal:len3``: an internal fragment of 3 residues."""
    return f"internal:len{residues}"


def _coefficient_names() -> tuple[str, ...]:
    names = []
    highest = max_fragment_charge(max(PRECURSOR_CHARGES))
    for series in SERIES:
        for charge in range(1, highest + 1):
            for precursor in PRECURSOR_CHARGES:
                if charge <= max_fragment_charge(precursor) and (series, charge) != REFERENCE_ION:
                    names.append(series_name(series, charge, precursor))
    for series in SERIES:
        for charge in (1, 2):  # the charge classes 1 and 2+
            names += [position_name(series, charge, k) for k in range(1, POSITION_BINS)]
        names += [span_name(series, 1), span_name(series, 2), basic_name(series)]
    derived = [family.name for family in families_in("derived")]
    names += [derived_name(family) for family in derived]
    names += [derived_name(family, two_plus=True) for family in derived]
    names += [a_span_name(1), a_span_name(2)]
    names += [effect_name(side, a) for side in ("N", "C") for a in EFFECT_LETTERS]
    names += ["nonmobile", "nonmobile:N-DE", "nonmobile:C-P"]
    names += [immonium_name(a) for a in EFFECT_LETTERS]
    names += [internal_length_name(n) for n in INTERNAL_LENGTHS]
    names += ["internal:P-first", "internal:P-after", "internal:basic", "internal:a",
              "internal:mz300", "internal:mz600", "precursor-loss"]  # fmt: skip
    return tuple(names)


COEFFICIENT_NAMES = _coefficient_names()
"""Every intensity coefficient (log10 units), in a fixed order:

- ``series:b1|2``: b ions at charge 1 of 2+ precursors (and so on, for b/y at fragment
  charges 1 to min(precursor charge - 1, 3) of 2+ to 4+ precursors; y1+ is 0);
- ``position:y1:3``: a y ion (charge 1) whose length is 0.6-0.8 of the peptide's (bins
  1-4; bin 0 is 0); ``y2+`` for charges 2 and 3;
- ``span1:b``, ``span2:b``: the b1 and b2 ions; ``basic:b2+``: per R/K/H a b ion of
  charge >= 2 holds;
- ``derived:a``, ``derived:b-H2O``, ...: an a ion or a neutral loss (each family of the
  ``derived`` group of ``ions.ION_FAMILIES``) against its b or y ion; ``derived2+:*`` on top
  at charge >= 2; ``a:span1``, ``a:span2``: the a1 and a2;
- ``N:P``, ``C:P``: the residue on the N- or C-terminal side of the cleaved bond
  (``C:P`` is the proline effect);
- ``nonmobile``, ``nonmobile:N-DE``, ``nonmobile:C-P``: a precursor whose charge is at
  most its count of R, K and H (partially or non-mobile protons, Kapp et al. 2003), and
  bonds after D/E and before P in such a precursor;
- ``immonium:F``: the immonium ion of a residue the peptide holds;
- ``internal:len2`` ... ``internal:len6``, ``internal:P-first`` (starts at P),
  ``internal:P-after`` (ends before P), ``internal:basic``, ``internal:a`` (a-type),
  ``internal:mz300``, ``internal:mz600`` (m/z above 300, 600);
- ``precursor-loss``: the precursor minus H2O or NH3.
"""


class _StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _share(description: str):
    return Field(ge=0.0, le=1.0, allow_inf_nan=False, description=description)


def _number(description: str, **bounds):
    return Field(allow_inf_nan=False, description=description, **bounds)


class Reference(_StrictModel):
    """The stage values at which a world's spectra are as calibrated.

    In a world, a stage's ``noise_peaks``, ``peak_dropout``, ``mass_error_ppm`` and
    ``intensity_variation`` divided by these give the strength of four parts of the
    physics (0: off, 1: as calibrated): every peak that is not a b or y ion (noise,
    a ions, neutral losses, internal and immonium ions); the b/y ions the calibrated
    world misses (below 1 each b/y ion is guaranteed with probability 1 - strength, so
    at 0 every b/y ion is there); the m/z errors; the intensity scatter.
    The defaults are the last stage of the design document's arms.
    """

    noise_peaks: int = Field(default=10, ge=1, le=500, description="Full-strength noise_peaks.")
    peak_dropout: float = _number("Full-strength peak_dropout.", default=0.15, gt=0.0, le=1.0)
    mass_error_ppm: float = _number("Full-strength mass_error_ppm.", default=15.0, gt=0.0, le=100.0)
    intensity_variation: float = _number(
        "Full-strength intensity_variation.", default=0.2, gt=0.0, le=1.0
    )


class Source(_StrictModel):
    """Where a world was calibrated: the files, their SHA-256 and the spectra used."""

    files: list[str] = Field(description="The annotated MGF files, as given to calibrate.")
    sha256: list[str] = Field(description="SHA-256 of each file's bytes.")
    n_spectra: int = Field(ge=1, description="Annotated spectra the fit used.")


class SpectrumTable(_StrictModel):
    """One column per calibration spectrum: the simulator draws a row per spectrum.

    Drawing the calibration spectra's own (charge, length, headroom, noise) together
    keeps their relations (long peptides: high charge, more noise), which a set of
    separate distributions would lose.
    """

    charge: list[int] = Field(description="Precursor charge.")
    length: list[int] = Field(description="Peptide length (residues).")
    headroom_log10: list[float] = Field(
        description="log10 of the y1+ level over the weakest peak of the spectrum."
    )
    noise_peaks: list[float] = Field(
        description="Peaks of the spectrum no ion explains (window 50-2500 m/z, precursor "
        "removed, before the 1% floor), corrected for chance matches."
    )
    peaks: list[int] = Field(description="Peaks after pepcurr's preprocessing (PeakFilter).")
    jitter_log10: float = _number(
        "SD of the normal jitter added to a drawn row's headroom.", ge=0.0, le=1.0
    )

    @model_validator(mode="after")
    def _columns_agree(self) -> SpectrumTable:
        sizes = {len(getattr(self, name)) for name in ("charge", "length", "headroom_log10",
                                                        "noise_peaks", "peaks")}  # fmt: skip
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(
                "charge, length, headroom_log10, noise_peaks and peaks must be non-empty lists "
                "of the same length (one entry per spectrum)"
            )
        if not set(self.charge) <= set(PRECURSOR_CHARGES):
            raise ValueError("charge: the simulator makes precursors of charge 2 to 4")
        if min(self.length) < 2 or min(self.noise_peaks) < 0 or min(self.peaks) < 0:
            raise ValueError("length must be >= 2, noise_peaks and peaks >= 0")
        return self


class Residues(_StrictModel):
    """Residue composition: inside a peptide and at its C-terminus (shares of 1)."""

    inner: dict[str, float] = Field(description="Letter -> share of residues before the last.")
    last: dict[str, float] = Field(description="Letter -> share of peptides ending in it.")

    @field_validator("inner", "last")
    @classmethod
    def _letters_and_shares(cls, shares: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(shares) - set(AMINO_ACIDS))
        if unknown:
            raise ValueError(f"unknown residue letter(s) {', '.join(unknown)}")
        if min(shares.values(), default=-1) < 0 or abs(sum(shares.values()) - 1) > 1e-3:
            raise ValueError("shares must be >= 0 and sum to 1")
        return shares


class Modification(_StrictModel):
    """How often the simulator puts a modification on a peptide."""

    rate: float = _share(
        "A residue modification: the share of its residue's sites that carry it; an "
        "N-terminal one: the share of peptides (those starting with first_residue) that do."
    )
    first_residue: str | None = Field(
        default=None,
        description="N-terminal modifications only: only peptides starting with this "
        "residue, unmodified, carry it (pyro-glu from Q: [Ammonia-loss]-).",
    )


class IntensityModel(_StrictModel):
    """Mean log10 intensities of the ions, their scatter and their formation."""

    coefficients: dict[str, float] = Field(description="COEFFICIENT_NAMES -> log10 units.")
    shape: dict[str, float] = Field(
        description="Ion group -> shape kappa of the Weibull scatter: r = log10(E) / kappa, "
        "E ~ Exp(1) (large kappa: little scatter)."
    )
    formed_logit: dict[str, float] = Field(
        description="Ion group -> gamma: an ion forms at all with probability "
        "sigmoid(gamma + eta * mu)."
    )
    formed_slope: dict[str, float] = Field(description="Ion group -> eta.")

    @model_validator(mode="after")
    def _known_names(self) -> IntensityModel:
        missing = [n for n in COEFFICIENT_NAMES if n not in self.coefficients]
        unknown = sorted(set(self.coefficients) - set(COEFFICIENT_NAMES))
        if missing or unknown:
            raise ValueError(
                f"coefficients: missing {', '.join(missing) or 'none'}; unknown "
                f"{', '.join(unknown) or 'none'} (docs/spectra-and-mgf.md lists the names)"
            )
        for field in ("shape", "formed_logit", "formed_slope"):
            if set(getattr(self, field)) != set(ION_GROUPS):
                raise ValueError(f"{field}: give exactly the groups {', '.join(ION_GROUPS)}")
        if min(self.shape.values()) <= 0:
            raise ValueError("shape: every kappa must be > 0")
        return self


class Correlation(_StrictModel):
    """How the scatter of neighbouring b/y ions is shared (a Gaussian copula)."""

    field_share: float = _share("Share of the scatter from a smooth field along each series.")
    length_scale_sites: float = _number("The field's length scale (cleavage sites).", gt=0.0)
    bond_share: float = _share("Share from a term shared by the b and the y ion of one bond.")


class Isotopes(_StrictModel):
    """13C peaks: averagine ratios (Senko et al. 1995) times a fitted offset, with scatter."""

    ratio_offset_log10: float = _number("log10 of observed over averagine +1/0 ratio.")
    sd_log10: float = _number("SD of that ratio around its mean (log10).", ge=0.0)


class Noise(_StrictModel):
    """Peaks no ion explains: heights, m/z and mass defects (their counts are per row)."""

    level_log10: float = _number(
        "nu: a noise peak's log10 height is h + nu + log10(E) / shape, E ~ Exp(1)."
    )
    level_shape: float = _number("Weibull shape of the noise heights.", gt=0.0)
    relative_mz_histogram: list[float] = Field(
        description=f"Shares of noise m/z over the precursor mass in {RELATIVE_MZ_BINS} "
        f"bins over 0-{RELATIVE_MZ_MAX}."
    )
    defect_mean_da: float = _number("Mean mass defect of peptide-like noise (Da).")
    defect_sd_da: float = _number("Its SD (Da).", ge=0.0)
    peptide_like_share: float = _share("Share of noise with a peptide-like mass defect.")
    half_integer_share: float = _share("Share on the half-integer grid (doubly charged).")

    @field_validator("relative_mz_histogram")
    @classmethod
    def _histogram(cls, shares: list[float]) -> list[float]:
        if len(shares) != RELATIVE_MZ_BINS or min(shares) < 0 or sum(shares) <= 0:
            raise ValueError(f"give {RELATIVE_MZ_BINS} shares >= 0, not all 0")
        return shares


class Errors(_StrictModel):
    """m/z errors of the fragments and of the precursor (ppm), and isotope errors."""

    precursor_ppm_mean: float = _number("Mean precursor m/z error (ppm).")
    precursor_ppm_sd: float = _number("SD of the precursor m/z error (ppm).", ge=0.0)
    precursor_isotope_error_rate: float = _share("Share of precursors picked at the 13C peak.")
    fragment_ppm_offset_mean: float = _number("Mean per-spectrum fragment m/z offset (ppm).")
    fragment_ppm_offset_sd: float = _number("SD of the per-spectrum offset (ppm).", ge=0.0)
    fragment_ppm_sd: float = _number("SD of each fragment's m/z error around it (ppm).", ge=0.0)


class Instrument(_StrictModel):
    """What the instrument and the source's own processing leave out or merge."""

    scan_min_mz: float = _number("Lowest m/z the spectra show.", ge=0.0)
    precursor_gap_da: float = _number(
        "No peak within this many Da of the precursor m/z (0: none removed).", ge=0.0
    )
    merge_ppm: float = _number("Peaks closer than this (ppm) are one peak.", ge=0.0)
    precursor_peak_rate: float = _share("Share of spectra showing the intact precursor.")
    precursor_peak_height_log10: float = _number("Its height over the floor (log10).")


class World(_StrictModel):
    """The physics of a curriculum's spectra (``pepcurr calibrate`` writes one)."""

    source: Source
    reference: Reference = Field(default_factory=Reference)
    spectra: SpectrumTable
    residues: Residues
    modifications: dict[str, Modification] = Field(
        default_factory=dict,
        description="Token (M[Oxidation], [Acetyl]-) -> rate. The simulator draws every "
        "modification the run's vocabulary holds: at this rate, or at the default rate "
        "of simulator.DEFAULT_MODIFICATION_RATES when the world does not list it.",
    )
    intensity: IntensityModel
    correlation: Correlation
    isotopes: Isotopes
    noise: Noise
    errors: Errors
    instrument: Instrument

    def __hash__(self) -> int:  # the dict fields make the default hash fail
        return hash(self._fingerprint)

    @functools.cached_property
    def _fingerprint(self) -> str:
        return self.model_dump_json()

    @property
    def lengths(self) -> tuple[int, int]:
        """Shortest and longest peptide of the world's spectra (residues)."""
        return min(self.spectra.length), max(self.spectra.length)

    def rows_between(self, min_length: int, max_length: int) -> list[int]:
        """Rows of the spectrum table with peptides of ``min_length``-``max_length``."""
        return [i for i, n in enumerate(self.spectra.length) if min_length <= n <= max_length]

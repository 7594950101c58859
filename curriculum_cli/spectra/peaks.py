"""Peak preprocessing, the one path every spectrum takes before the model sees it.

Real spectra (MGF) and, where asked, synthetic ones go through ``filter_peaks``
with a ``PeakFilter``: Casanovo's defaults, except that intensities end base-peak
normalized (max 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from curriculum_cli.spectra.chemistry import (
    MAX_PEAK_MZ,
    MIN_PEAK_MZ,
    mz_from_neutral_mass,
    neutral_mass_from_mz,
)


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

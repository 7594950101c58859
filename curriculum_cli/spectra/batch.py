"""The one batch structure the model takes, from synthetic and real spectra alike."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from curriculum_cli.spectra.chemistry import mz_from_neutral_mass
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN


@dataclass
class SpectrumBatch:
    """A padded batch of spectra and (when annotated) their peptides.

    Shapes: ``B`` spectra, ``P`` peak slots, ``T`` = longest peptide + 1.

    - ``mz``: ``[B, P]`` float32, peak m/z sorted ascending, 0 at padding
    - ``intensity``: ``[B, P]`` float32, base-peak normalized (max 1), 0 at padding
    - ``peak_mask``: ``[B, P]`` bool, True where a real peak is
    - ``precursor_mass_da``: ``[B]`` float32, the precursor's *neutral* mass (Da)
    - ``precursor_charge``: ``[B]`` int64
    - ``tokens``: ``[B, T]`` int64 residue token ids, ``<eos>`` after the last
      residue, ``<pad>`` after that (see ``chemistry.Vocabulary``)
    - ``lengths``: ``[B]`` int64 residue count (0 for an unannotated spectrum)
    - ``peptides``: canonical peptide strings, kept for metrics on real data
      (they may hold residues the vocabulary lacks); None for synthetic data
    - ``titles``: spectrum titles from an MGF file; None for synthetic data
    """

    mz: torch.Tensor
    intensity: torch.Tensor
    peak_mask: torch.Tensor
    precursor_mass_da: torch.Tensor
    precursor_charge: torch.Tensor
    tokens: torch.Tensor
    lengths: torch.Tensor
    peptides: list[str] | None = None
    titles: list[str] | None = None

    def __len__(self) -> int:
        return self.mz.shape[0]

    @property
    def precursor_mz(self) -> torch.Tensor:
        """Precursor m/z at its charge: (M + z*proton)/z."""
        return mz_from_neutral_mass(self.precursor_mass_da, self.precursor_charge)

    def to(self, device: torch.device | str) -> SpectrumBatch:
        return replace(
            self,
            mz=self.mz.to(device),
            intensity=self.intensity.to(device),
            peak_mask=self.peak_mask.to(device),
            precursor_mass_da=self.precursor_mass_da.to(device),
            precursor_charge=self.precursor_charge.to(device),
            tokens=self.tokens.to(device),
            lengths=self.lengths.to(device),
        )

    def without_targets(self) -> SpectrumBatch:
        """The spectra alone, as an unannotated batch holds them (``tokens`` one ``<eos>``
        column, ``lengths`` 0, no peptides): what a parallel model is given."""
        return replace(
            self,
            tokens=torch.full_like(self.tokens[:, :1], EOS_TOKEN),
            lengths=torch.zeros_like(self.lengths),
            peptides=None,
        )

    def select(self, index: slice) -> SpectrumBatch:
        """The spectra at ``index`` (a slice), as a new batch."""
        return SpectrumBatch(
            mz=self.mz[index],
            intensity=self.intensity[index],
            peak_mask=self.peak_mask[index],
            precursor_mass_da=self.precursor_mass_da[index],
            precursor_charge=self.precursor_charge[index],
            tokens=self.tokens[index],
            lengths=self.lengths[index],
            peptides=self.peptides[index] if self.peptides is not None else None,
            titles=self.titles[index] if self.titles is not None else None,
        )


def concat_batches(batches: list[SpectrumBatch]) -> SpectrumBatch:
    """Batches one after the other, peaks and tokens padded to the widest (one batch: itself).

    ``peptides`` and ``titles`` are kept only when every batch has them.
    """
    if len(batches) == 1:
        return batches[0]
    peaks = max(b.mz.shape[1] for b in batches)
    width = max(b.tokens.shape[1] for b in batches)

    def cat(name: str, columns: int, fill) -> torch.Tensor:
        parts = [getattr(b, name) for b in batches]
        parts = [torch.nn.functional.pad(p, (0, columns - p.shape[1]), value=fill) for p in parts]
        return torch.cat(parts)

    def joined(name: str) -> list[str] | None:
        lists = [getattr(b, name) for b in batches]
        return None if any(x is None for x in lists) else [s for x in lists for s in x]

    return SpectrumBatch(
        mz=cat("mz", peaks, 0.0),
        intensity=cat("intensity", peaks, 0.0),
        peak_mask=cat("peak_mask", peaks, False),
        precursor_mass_da=torch.cat([b.precursor_mass_da for b in batches]),
        precursor_charge=torch.cat([b.precursor_charge for b in batches]),
        tokens=cat("tokens", width, PAD_TOKEN),
        lengths=torch.cat([b.lengths for b in batches]),
        peptides=joined("peptides"),
        titles=joined("titles"),
    )

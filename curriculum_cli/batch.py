"""The one batch structure the model takes, from synthetic and real spectra alike."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from curriculum_cli.chemistry import mz_from_neutral_mass


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

    @staticmethod
    def concat(batches: list[SpectrumBatch]) -> SpectrumBatch:
        """Batches of the same peak and token widths as one batch (one batch: itself)."""
        if len(batches) == 1:
            return batches[0]
        import torch

        def joined(name: str):
            values = [getattr(batch, name) for batch in batches]
            if values[0] is None:
                return None
            return torch.cat(values) if isinstance(values[0], torch.Tensor) else sum(values, [])

        return SpectrumBatch(**{name: joined(name) for name in SpectrumBatch.__dataclass_fields__})

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

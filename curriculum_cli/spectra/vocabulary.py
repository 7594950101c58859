"""The model's token vocabulary: special tokens, one token per residue, and their masses.

``<pad>`` = 0 and ``<eos>`` = 1, then one id per residue in the order of
``Vocabulary.residues``. Masses come from ``chemistry`` (one table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from curriculum_cli.errors import PeptideError
from curriculum_cli.spectra.chemistry import RESIDUE_MASS_DA, STANDARD_RESIDUES, parse_peptide

if TYPE_CHECKING:
    import torch


PAD_TOKEN = 0
EOS_TOKEN = 1
SPECIAL_TOKENS = ("<pad>", "<eos>")


@dataclass(frozen=True)
class Vocabulary:
    """Token ids of the model: ``<pad>`` = 0, ``<eos>`` = 1, then one id per residue.

    ``fold_il``: I and L have the same mass (113.084064 Da), so no mass-based
    loss and no spectrum can tell them apart; by default I is encoded as L and
    the model never has to guess between two isobaric tokens. Turn it off to
    keep I as its own token.
    """

    # run.json holds it: an unknown key there is an error, not silently dropped
    __pydantic_config__ = {"extra": "forbid"}

    residues: tuple[str, ...]
    fold_il: bool = True

    @classmethod
    def default(cls, fold_il: bool = True, oxidation: bool = False) -> Vocabulary:
        residues = [r for r in STANDARD_RESIDUES if not (fold_il and r == "I")]
        if oxidation:
            residues.append("M[Oxidation]")
        return cls(residues=tuple(residues), fold_il=fold_il)

    @property
    def size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.residues)

    @property
    def tokens(self) -> tuple[str, ...]:
        return SPECIAL_TOKENS + self.residues

    def residue_masses(self, device=None, dtype=None) -> torch.Tensor:
        """Mass table ``[size]`` in Da; 0 for the special tokens."""
        import torch

        masses = [0.0] * len(SPECIAL_TOKENS) + [RESIDUE_MASS_DA[r] for r in self.residues]
        return torch.tensor(masses, device=device, dtype=dtype or torch.float32)

    def encode(self, peptide: str | list[str]) -> list[int]:
        """Token ids of a peptide's residues (no ``<eos>``); I becomes L when folded."""
        residues = parse_peptide(peptide) if isinstance(peptide, str) else peptide
        index = {r: i + len(SPECIAL_TOKENS) for i, r in enumerate(self.residues)}
        ids = []
        for r in residues:
            key = "L" if (self.fold_il and r == "I") else r
            if key not in index:
                raise PeptideError(
                    f"residue {r!r} is not in the model's vocabulary ({', '.join(self.residues)})"
                )
            ids.append(index[key])
        return ids

    def decode(self, ids) -> str:
        """Peptide string of token ids, up to the first ``<eos>``; ``<pad>`` is skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_TOKEN:
                break
            if i >= len(SPECIAL_TOKENS):
                out.append(self.residues[i - len(SPECIAL_TOKENS)])
        return "".join(out)

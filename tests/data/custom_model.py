"""A small model of the user's own, plugged in with ``--model tests/data/custom_model.py:tiny_gru``.

It is deliberately not pepcurr's transformer: a mean-pooled peak encoder and a
GRU decoder, following the interface of docs/models.md (``forward``,
``encode``, ``decode``, ``vocab``, ``max_peptide_length``). ``tiny_gru_dropout``
adds dropout (the exact-resume test); the other factories here are broken on
purpose, for the error tests.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyGRU(nn.Module):
    def __init__(self, vocab, width: int = 32, max_peptide_length: int = 30):
        super().__init__()
        self.vocab = vocab
        self.max_peptide_length = max_peptide_length
        self.peak = nn.Linear(2, width)
        self.precursor = nn.Linear(2, width)
        self.token = nn.Embedding(vocab.size, width)
        self.gru = nn.GRU(width, width, batch_first=True)
        self.head = nn.Linear(2 * width, vocab.size)

    def encode(self, mz, intensity, peak_mask):
        peaks = self.peak(torch.stack([mz / 1000.0, intensity], dim=-1))
        peaks = peaks * peak_mask.unsqueeze(-1)
        pooled = peaks.sum(1) / peak_mask.sum(1, keepdim=True).clamp(min=1)
        return pooled.unsqueeze(1), torch.zeros(len(mz), 1, dtype=torch.bool, device=mz.device)

    def decode(
        self,
        prefix_tokens,
        precursor_mass_da,
        precursor_charge,
        memory,
        memory_mask,
        peak_mz=None,
        peak_intensity=None,
    ):
        start = self.precursor(
            torch.stack([precursor_mass_da / 1000.0, precursor_charge.float()], dim=-1)
        )
        inputs = torch.cat([start.unsqueeze(1), self.token(prefix_tokens)], dim=1)
        hidden, _ = self.gru(inputs)
        context = memory.expand(-1, hidden.shape[1], -1)
        return self.head(torch.cat([hidden, context], dim=-1))

    def forward(self, batch):
        memory, memory_mask = self.encode(batch.mz, batch.intensity, batch.peak_mask)
        return self.decode(
            batch.tokens[:, :-1],
            batch.precursor_mass_da,
            batch.precursor_charge,
            memory,
            memory_mask,
        )


def tiny_gru(vocab):
    return TinyGRU(vocab)


class _FlatLogits(TinyGRU):
    def forward(self, batch):
        return super().forward(batch).sum(-1)  # [B, T]: the wrong shape


def wrong_shape(vocab):
    return _FlatLogits(vocab)


def not_a_module(vocab):
    return "a string"


class _DropoutGRU(TinyGRU):
    """The GRU model with dropout on its decoder states: a training step draws from torch's
    global random generator, so an exact resume needs that generator in the checkpoint."""

    def __init__(self, vocab):
        super().__init__(vocab)
        self.dropout = nn.Dropout(0.2)

    def decode(self, prefix_tokens, precursor_mass_da, precursor_charge, memory, memory_mask,
               peak_mz=None, peak_intensity=None):  # fmt: skip
        return super().decode(
            prefix_tokens, precursor_mass_da, precursor_charge, self.dropout(memory), memory_mask
        )


def tiny_gru_dropout(vocab):
    return _DropoutGRU(vocab)


class _Heads(nn.Module):
    """A layer that insists on a width divisible by its heads, as attention layers do."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        assert width % heads == 0
        self.project = nn.Linear(width, width)


def heads_do_not_divide(vocab):
    """Raises inside the factory: a bare ``assert`` of the user's own (no message)."""
    return _Heads(width=70, heads=8)


def needs_a_config(vocab, config):
    """Takes two arguments; pepcurr calls a factory with one."""
    return TinyGRU(vocab)


def factory(vocab):
    """Named like an emoji code (``:factory:``): its messages must still read as written."""
    raise ValueError("no weights for this vocabulary")

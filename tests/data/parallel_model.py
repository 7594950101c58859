"""A small parallel model of the user's own: ``--model tests/data/parallel_model.py:tiny_refiner``.

It follows the parallel interface of docs/models.md: ``decoding = "parallel"``,
``forward(batch)`` returns the logits of every position of its canvas
(``max_peptide_length + 1`` positions) at once, here as a list of three
refinement steps, and ``step_weights`` weights their losses. The network is
deliberately not pepcurr's: mean-pooled peaks plus the precursor give a
context vector, and each step adds a correction computed from the context,
the position and the previous step's soft answer. The other factories are
broken on purpose, for the error tests.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyRefiner(nn.Module):
    decoding = "parallel"
    step_weights = (1.0, 2.0, 3.0)  # pepcurr normalises them: 1/6, 2/6, 3/6

    def __init__(self, vocab, width: int = 32, max_peptide_length: int = 20, steps: int = 3):
        super().__init__()
        self.vocab = vocab
        self.max_peptide_length = max_peptide_length
        self.steps = steps
        self.peak = nn.Linear(2, width)
        self.precursor = nn.Linear(2, width)
        self.position = nn.Parameter(0.1 * torch.randn(max_peptide_length + 1, width))
        self.answer = nn.Linear(vocab.size, width)
        self.mix = nn.Sequential(nn.Linear(width, width), nn.ReLU())
        self.head = nn.Linear(width, vocab.size)

    def forward(self, batch):
        peaks = self.peak(torch.stack([batch.mz / 1000.0, batch.intensity], dim=-1))
        peaks = peaks * batch.peak_mask.unsqueeze(-1)
        pooled = peaks.sum(1) / batch.peak_mask.sum(1, keepdim=True).clamp(min=1)
        precursor = torch.stack(
            [batch.precursor_mass_da / 1000.0, batch.precursor_charge.float()], dim=-1
        )
        context = (pooled + self.precursor(precursor)).unsqueeze(1)  # [B, 1, width]
        logits = torch.zeros(len(batch), self.max_peptide_length + 1, self.vocab.size)
        steps = []
        for _ in range(self.steps):
            hidden = self.mix(context + self.position + self.answer(torch.softmax(logits, -1)))
            logits = logits + self.head(hidden)
            steps.append(logits)
        return steps


def tiny_refiner(vocab):
    return TinyRefiner(vocab)


class _NoWeights(TinyRefiner):
    step_weights = None


def no_step_weights(vocab):
    return _NoWeights(vocab)


class _Narrow(TinyRefiner):
    def forward(self, batch):
        return [step[:, :4] for step in super().forward(batch)]  # fewer positions than the canvas


def narrow_canvas(vocab):
    return _Narrow(vocab)


class _Unused(TinyRefiner):
    def __init__(self, vocab):
        super().__init__(vocab)
        self.spare = nn.Linear(4, 4)  # never called: no gradient


def unused_parameter(vocab):
    return _Unused(vocab)


class _WithLatent(TinyRefiner):
    """Returns ``(logits of every step [S, B, W, V], latent [B, W, D])``, as a recursive
    model's own forward often does."""

    def forward(self, batch):
        steps = torch.stack(super().forward(batch))
        return steps, torch.zeros(len(batch), self.max_peptide_length + 1, 32)


def with_latent(vocab):
    return _WithLatent(vocab)


class _AuxOnLast(TinyRefiner):
    """Spectrum and precursor losses on the last refinement step only (pepTRM's scheme)."""

    aux_step_weights = (0.0, 0.0, 1.0)


def aux_on_last_step(vocab):
    return _AuxOnLast(vocab)

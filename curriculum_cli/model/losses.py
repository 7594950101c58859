"""Cross-entropy plus the two mass-physics losses (formulas in docs/losses.md).

The auxiliary losses see the decoder's *soft* prediction: at each residue
position, a probability distribution over residue tokens. Its expected
residue mass (Da) makes soft b/y fragment m/z (spectrum loss) and a soft
total mass (precursor loss). Both take residue probabilities rather than
logits, so a test can feed an exact one-hot and get the exact minimum.

Special tokens (``<pad>``, ``<eos>``) have no mass. They are left out and the
distribution is renormalized over residues: otherwise probability that the
model puts on ``<eos>`` would count as 0 Da and drag every expected mass low.
Positions past the true peptide length are ignored (the length comes from the
target, as in teacher forcing).

An N-terminal modification token (``[Acetyl]-``, a vocabulary's first-token-only
tokens, ``n_terminal``) is a position of its own in the decoder, as in its
target: at position 0 its mass delta (negative for ``[Ammonia-loss]-``) is part
of the expected mass there. After position 0 it is left out of the distribution,
as decoding never emits it there. The spectrum loss merges position 0 into
position 1 when the *target* starts with an N-terminal token (the target fixes
the peptide's structure, as it fixes the length), so its mass weighs in every b
ion; the precursor loss just sums every position.

Both auxiliary losses see only the expected residue mass per position, so a
mass-balanced mixture of wrong residues (or an isobaric one: GG for N, AG for
Q) can score as well as the truth: they reward mass consistency, and only
cross-entropy names the residue.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES
from curriculum_cli.model.refinement import SINGLE_STEP, StepWeights
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import (
    H2O_MASS_DA,
    merge_n_terminal,
    peptide_fragment_ladder,
)
from curriculum_cli.spectra.vocabulary import PAD_TOKEN, SPECIAL_TOKENS

#: Default width (standard deviation, Da) of the Gaussian kernel of the spectrum loss.
SPECTRUM_SIGMA_DA = 1.0
#: Smooth-L1 transition of the precursor loss, in percent of the precursor mass
#: (1% = 10,000 ppm, about 11 Da for a 1,100 Da peptide): quadratic below, linear above.
PRECURSOR_BETA_PERCENT = 1.0
# Keeps 1 - kernel away from 0 so that log(1 - kernel) and its gradient stay finite.
_KERNEL_CEILING = 1.0 - 1e-6


def cross_entropy_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy; ``<pad>`` targets are ignored, ``<eos>`` counts."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), tokens.reshape(-1), ignore_index=PAD_TOKEN
    )


def residue_probabilities(
    logits: torch.Tensor, n_terminal: torch.Tensor | None = None
) -> torch.Tensor:
    """Softmax over residue tokens only, ``[B, T, V]`` -> ``[B, T, V - n_special]``.

    ``n_terminal`` ``[V - n_special]`` bool marks the N-terminal tokens (None: the
    vocabulary has none): they count at position 0 only.
    """
    residue_logits = logits[..., len(SPECIAL_TOKENS) :]
    if residue_logits.dtype in (torch.float16, torch.bfloat16):
        residue_logits = residue_logits.float()
    if n_terminal is not None:
        later = residue_logits[:, 1:].masked_fill(n_terminal, -torch.inf)
        residue_logits = torch.cat([residue_logits[:, :1], later], dim=1)
    return torch.softmax(residue_logits, dim=-1)


def starts_n_terminal(tokens: torch.Tensor, n_terminal: torch.Tensor | None) -> torch.Tensor:
    """``[B]`` bool: the target ``tokens`` ``[B, T]`` start with an N-terminal token."""
    if n_terminal is None:
        return torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    first = tokens[:, 0] - len(SPECIAL_TOKENS)
    return (first >= 0) & n_terminal[first.clamp(min=0)]


def expected_residue_masses(
    residue_probs: torch.Tensor, residue_masses_da: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Expected mass (Da) per position, ``[B, T]``; 0 at positions >= length.

    ``residue_masses_da`` is the mass table of residue tokens only (``[V - n_special]``).
    """
    masses = residue_probs @ residue_masses_da.to(residue_probs.dtype)
    positions = torch.arange(masses.shape[-1], device=masses.device)
    return masses * (positions < lengths.unsqueeze(-1))


def _soft_or(log_miss: torch.Tensor, dim: int) -> torch.Tensor:
    """1 - prod(1 - k) over ``dim``, from ``log(1 - k)``: "explained by at least one"."""
    return 1.0 - torch.exp(log_miss.sum(dim=dim))


def spectrum_loss(
    residue_probs: torch.Tensor,
    residue_masses_da: torch.Tensor,
    batch: SpectrumBatch,
    sigma_da: float = SPECTRUM_SIGMA_DA,
    n_terminal: torch.Tensor | None = None,
) -> torch.Tensor:
    """How badly the soft b/y fragments explain the observed peaks, in [0, 1].

    Soft fragments: b and y m/z from expected residue masses at charge 1, and at
    charge 2 too for precursors of charge >= 3 (``chemistry.peptide_fragment_ladder``).
    Each (fragment, peak) pair is scored by a Gaussian kernel
    ``k = exp(-(d / sigma_da)^2 / 2)`` of their distance ``d`` in m/z.
    Two fractions, each in [0, 1]:

    - explained intensity: sum over peaks of intensity * P(peak hit by any
      fragment), over the total intensity, with P = 1 - prod(1 - k);
    - fragment hit rate: mean over valid fragments of P(fragment lands on any peak).

    loss = 1 - (explained + hit rate) / 2, averaged over the batch. It is 0 when
    every fragment sits exactly on a peak and every peak is a fragment (the
    true one-hot on a clean spectrum); noise peaks raise its floor. ``n_terminal``: the
    vocabulary's N-terminal tokens (see the module docstring), None when it has none.
    """
    masses = expected_residue_masses(residue_probs, residue_masses_da, batch.lengths)
    lengths = batch.lengths
    if n_terminal is not None:
        masses, lengths = merge_n_terminal(
            masses, lengths, starts_n_terminal(batch.tokens, n_terminal)
        )
    ladder_mz, ladder_ok = peptide_fragment_ladder(masses, lengths, batch.precursor_charge)
    fragment_mz_all = ladder_mz.flatten(-2)  # [B, F]
    fragment_ok = ladder_ok.flatten(-2).to(fragment_mz_all.dtype)
    peak_ok = batch.peak_mask.to(fragment_mz_all.dtype)  # [B, P]

    distance = fragment_mz_all.unsqueeze(-1) - batch.mz.unsqueeze(-2).to(fragment_mz_all.dtype)
    kernel = torch.exp(-0.5 * (distance / sigma_da) ** 2)  # [B, F, P]
    pair_ok = fragment_ok.unsqueeze(-1) * peak_ok.unsqueeze(-2)
    # log(1 - k) of each valid pair, once for both directions
    log_miss = torch.log1p(-kernel.clamp(max=_KERNEL_CEILING)) * pair_ok

    peak_hit = _soft_or(log_miss, dim=1)  # [B, P]
    intensity = batch.intensity.to(peak_hit.dtype) * peak_ok
    explained = (intensity * peak_hit).sum(-1) / intensity.sum(-1).clamp_min(1e-12)

    fragment_hit = _soft_or(log_miss, dim=2)  # [B, F]
    hit_rate = (fragment_hit * fragment_ok).sum(-1) / fragment_ok.sum(-1).clamp_min(1.0)

    return (1.0 - 0.5 * (explained + hit_rate)).mean()


def precursor_loss(
    residue_probs: torch.Tensor,
    residue_masses_da: torch.Tensor,
    batch: SpectrumBatch,
    beta_percent: float = PRECURSOR_BETA_PERCENT,
) -> torch.Tensor:
    """Smooth-L1 of the expected peptide mass's relative error, in percent.

    Expected mass = sum of expected residue masses + H2O; the error is
    relative to the precursor's neutral mass and expressed in percent
    (1% = 10,000 ppm), so the loss is of order 1 early in training, like CE,
    and means the same for short and long peptides. Quadratic within
    ``beta_percent``, linear beyond. Exactly 0 for the true one-hot.
    """
    masses = expected_residue_masses(residue_probs, residue_masses_da, batch.lengths)
    predicted_da = masses.sum(-1) + H2O_MASS_DA
    target_da = batch.precursor_mass_da.to(predicted_da.dtype)
    error_percent = 100.0 * (predicted_da - target_da) / target_da
    return F.smooth_l1_loss(error_percent, torch.zeros_like(error_percent), beta=beta_percent)


def loss_terms(
    logits: torch.Tensor,
    batch: SpectrumBatch,
    residue_masses_da: torch.Tensor,
    sigma_da: float = SPECTRUM_SIGMA_DA,
    n_terminal: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The three unweighted loss terms of one answer ``[B, T, V]`` (a teacher-forced pass);
    ``n_terminal`` ``[V - n_special]`` bool: the vocabulary's N-terminal tokens (None: it
    has none)."""
    return refinement_loss_terms(logits.unsqueeze(0), batch, residue_masses_da, sigma_da,
                                 SINGLE_STEP, n_terminal)  # fmt: skip


StepTerms = dict[str, list[torch.Tensor | None]]
"""Each loss term of each refinement step, first step first, detached (for the log); None
where the step's weight for that term is 0 (not computed)."""


def refinement_loss_terms(
    steps: torch.Tensor,
    batch: SpectrumBatch,
    residue_masses_da: torch.Tensor,
    sigma_da: float,
    weights: StepWeights,
    n_terminal: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The three loss terms of every refinement step ``[S, B, T, V]``, combined by weight.

    ``term = sum_s w_s * term(steps[s])`` with ``weights.ce`` for cross-entropy and
    ``weights.aux`` for the spectrum and precursor losses (``model.refinement``); a
    step whose weight is 0 is not computed. One step of weight 1 (an
    autoregressive model) gives ``loss_terms`` of its logits. ``n_terminal``: as in
    ``loss_terms``.
    """
    return refinement_step_terms(steps, batch, residue_masses_da, sigma_da, weights,
                                 n_terminal)[0]  # fmt: skip


def refinement_step_terms(
    steps: torch.Tensor,
    batch: SpectrumBatch,
    residue_masses_da: torch.Tensor,
    sigma_da: float,
    weights: StepWeights,
    n_terminal: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], StepTerms]:
    """``refinement_loss_terms``, and each step's own unweighted terms (``StepTerms``) beside.

    The combined terms are made exactly as ``refinement_loss_terms`` makes them (the
    per-step values are detached copies: they add nothing to the graph).
    """
    terms: dict[str, torch.Tensor] = {}
    by_step: StepTerms = {name: [] for name in ("ce", *AUXILIARY_LOSSES)}

    def add(name: str, weight: float, value: torch.Tensor) -> None:
        terms[name] = weight * value if name not in terms else terms[name] + weight * value
        by_step[name].append(value.detach())

    for step, (ce_weight, aux_weight) in enumerate(zip(weights.ce, weights.aux, strict=True)):
        logits = steps[step]
        if ce_weight > 0:
            add("ce", ce_weight, cross_entropy_loss(logits, batch.tokens))
        else:
            by_step["ce"].append(None)
        if aux_weight > 0:
            probs = residue_probabilities(logits, n_terminal)
            spectrum = spectrum_loss(probs, residue_masses_da, batch, sigma_da, n_terminal)
            add("spectrum", aux_weight, spectrum)
            add("precursor", aux_weight, precursor_loss(probs, residue_masses_da, batch))
        else:
            by_step["spectrum"].append(None)
            by_step["precursor"].append(None)
    return {name: terms[name] for name in ("ce", *AUXILIARY_LOSSES)}, by_step


def sharded_loss_terms(
    steps: torch.Tensor,
    batch: SpectrumBatch,
    residue_masses_da: torch.Tensor,
    sigma_da: float,
    shards: int,
    weights: StepWeights,
    n_terminal: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], StepTerms]:
    """``refinement_step_terms`` of each of ``shards`` equal slices of the batch, averaged.

    A batch drawn as several data shards (one per rank under torchrun) is
    scored as the ranks score it: each term per shard, then the mean, so one
    process with every shard and data-parallel ranks with one shard each
    follow the same loss (cross-entropy is a mean over tokens, and shards hold
    different numbers of tokens). ``steps``: ``[S, B, T, V]``. Returns the combined
    terms and each step's own (``StepTerms``, the mean over shards too).
    """
    if shards == 1:
        return refinement_step_terms(steps, batch, residue_masses_da, sigma_da, weights,
                                     n_terminal)  # fmt: skip
    size = len(batch) // shards
    per_shard = [
        refinement_step_terms(
            steps[:, i * size : (i + 1) * size],
            batch.select(slice(i * size, (i + 1) * size)),
            residue_masses_da,
            sigma_da,
            weights,
            n_terminal,
        )  # fmt: skip
        for i in range(shards)
    ]
    combined = {name: torch.stack([t[name] for t, _ in per_shard]).mean()
                for name in per_shard[0][0]}  # fmt: skip
    by_step = {
        name: [None if values[0] is None else torch.stack(values).mean()
               for values in zip(*(s[name] for _, s in per_shard), strict=True)]
        for name in per_shard[0][1]
    }  # fmt: skip
    return combined, by_step


def total_loss(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """CE + sum of weight * auxiliary term (``weights``: the curriculum stage's loss weights).

    A term whose weight is 0 is left out of the sum entirely, so it cannot
    touch the update (not even through a NaN).
    """
    total = terms["ce"]
    for name in AUXILIARY_LOSSES:
        if weights[name] > 0:
            total = total + weights[name] * terms[name]
    return total

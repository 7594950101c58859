"""Peptides from a trained model: greedy decoding and beam search with a precursor-mass filter.

Both decoders encode each spectrum once and then extend residue prefixes one
token at a time through ``model.decode`` (no key/value cache: the tiny model's
prefixes are short), which also computes the per-candidate ion evidence of a
model that has it from the decoded prefix and the spectrum's peaks. ``<pad>``
is never predicted, ``<eos>`` ends a peptide, a peptide has at least one
residue and at most ``max_length`` tokens. An N-terminal modification token
(``[Acetyl]-``) can only be the first token, and must be followed by a residue:
decoding runs N- to C-terminus, so the model decides on it before the residues
(Casanovo 5 decodes C to N and decides on it last, discarding beams that put it
elsewhere; here it is never offered elsewhere).

The beam search is batched over spectra and beams: one ``decode`` call per
step for every live beam of every spectrum. Its mass filter uses the fact that
residue masses are positive, so a prefix only grows heavier (an N-terminal
modification may weigh less than nothing, ``[Ammonia-loss]-``, but it only
comes first, before any prefix could be too heavy): a continuation
whose prefix mass + H2O already exceeds the precursor's neutral mass plus the
tolerance (for the lightest isotope offset allowed) can never fit and is
dropped. A beam that ends (``<eos>``) is kept as a result only if its mass
matches the precursor within the tolerance at one of the allowed isotope
offsets; otherwise it is remembered as a fallback (and frees its place in the
beam), returned only for a spectrum where no beam fits. Scores are the mean
log-probability (nats) per generated token, ``<eos>`` included; higher is
better.

A parallel model (``model.refinement``) has no prefix to extend: it gives the
distribution of every position in one forward pass, and ``parallel_decode``
reads the peptide off its last refinement step (the arg-max residues up to
the first ``<eos>``). Beam search has nothing to search there; in its place,
the mass-aware repair (``MassRepair``) re-chooses the least confident
positions among their most probable residues, for the most probable
lengths, so that the peptide fits the precursor mass: still one forward pass.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch

from curriculum_cli.model.metrics import C13_C12_DELTA_DA, DEFAULT_PRECURSOR_TOL_PPM, mass_error_ppm
from curriculum_cli.model.refinement import as_steps
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import H2O_MASS_DA
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS, Vocabulary


@dataclass(frozen=True)
class Prediction:
    """One decoded peptide.

    - ``peptide``: ProForma-style string of canonical residues ("" when nothing was found)
    - ``tokens``: its residue token ids (no ``<eos>``)
    - ``score``: mean log-probability per generated token, ``<eos>`` included
      (nats, <= 0; -inf for an empty prediction)
    - ``precursor_error_ppm``: signed mass error against the precursor at
      ``isotope`` (see ``metrics.mass_error_ppm``); NaN for an empty prediction
    - ``isotope``: the allowed isotope offset with the smallest absolute error
    - ``fits_precursor``: whether that error is within the tolerance
    """

    peptide: str
    tokens: tuple[int, ...]
    score: float
    precursor_error_ppm: float
    isotope: int
    fits_precursor: bool


def true_peptides(batch: SpectrumBatch, vocab: Vocabulary) -> list[str]:
    """The annotated peptides of a batch: ``batch.peptides`` or, for synthetic data, its tokens."""
    if batch.peptides is not None:
        return list(batch.peptides)
    return [vocab.decode(row) for row in batch.tokens.tolist()]


def _precursor_fit(
    mass_da: torch.Tensor,
    precursor_mass_da: torch.Tensor,
    tol_ppm: float,
    isotope_offsets: tuple[int, ...],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best isotope offset, its signed error (ppm) and whether it is within ``tol_ppm``."""
    errors = torch.stack(
        [mass_error_ppm(mass_da, precursor_mass_da, isotope) for isotope in isotope_offsets]
    )
    best = errors.abs().argmin(dim=0)
    error = errors.gather(0, best.unsqueeze(0)).squeeze(0)
    isotope = torch.tensor(isotope_offsets, device=mass_da.device)[best]
    return error, isotope, error.abs() <= tol_ppm


def _predictions(
    vocab: Vocabulary,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    scores: torch.Tensor,
    precursor_mass_da: torch.Tensor,
    tol_ppm: float,
    isotope_offsets: tuple[int, ...],
) -> list[Prediction]:
    """``Prediction`` objects from residue tokens ``[B, L]``, lengths and mean scores ``[B]``."""
    masses = vocab.residue_masses(device=tokens.device, dtype=torch.float64)
    mass_da = masses[tokens].sum(dim=-1) + H2O_MASS_DA
    error, isotope, fits = _precursor_fit(
        mass_da, precursor_mass_da.double(), tol_ppm, isotope_offsets
    )
    predictions = []
    for row, length, score, err, iso, fit in zip(
        tokens.tolist(), lengths.tolist(), scores.tolist(), error.tolist(), isotope.tolist(),
        fits.tolist(), strict=True,
    ):  # fmt: skip
        ids = tuple(row[:length])
        if not ids:
            predictions.append(Prediction("", (), -math.inf, math.nan, 0, False))
            continue
        predictions.append(Prediction(vocab.decode(ids), ids, score, err, iso, fit))
    return predictions


def _step_log_probs(model, prefix, batch_rows, batch: SpectrumBatch, memory, memory_mask):
    """Next-token log-probabilities ``[N, V]`` of prefixes ``[N, t]`` of spectra ``batch_rows``."""
    logits = model.decode(
        prefix,
        batch.precursor_mass_da[batch_rows],
        batch.precursor_charge[batch_rows],
        memory[batch_rows],
        memory_mask[batch_rows],
        batch.mz[batch_rows],
        batch.intensity[batch_rows],
    )[:, -1].float()
    never = torch.tensor([PAD_TOKEN], device=logits.device)
    return torch.log_softmax(logits.index_fill(-1, never, -math.inf), dim=-1)


def _legal_max_length(model, max_length: int) -> int:
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1 residue, got {max_length}")
    return min(max_length, model.max_peptide_length)


def _forbid(log_probs: torch.Tensor, t: int, first: torch.Tensor | None, n_terminal, max_length):
    """Rule out, in place, the tokens that cannot come at step ``t`` (``log_probs`` ``[..., V]``;
    ``first`` ``[...]``: each prefix's first token, None at ``t == 0``).

    ``<eos>`` needs a residue before it; past ``max_length`` tokens only ``<eos>`` is left;
    an N-terminal token (``n_terminal``: their ids, a tensor) only comes first, and only
    when a residue can still follow it.
    """
    if t == 0:
        log_probs[..., EOS_TOKEN] = -math.inf
    elif t == 1 and len(n_terminal):
        only_n_terminal = torch.isin(first, n_terminal).unsqueeze(-1)
        log_probs[..., EOS_TOKEN : EOS_TOKEN + 1].masked_fill_(only_n_terminal, -math.inf)
    if t == max_length:
        log_probs[..., EOS_TOKEN + 1 :] = -math.inf
    elif len(n_terminal) and (t > 0 or max_length < 2):
        log_probs[..., n_terminal] = -math.inf


@torch.no_grad()
def greedy_decode(
    model,
    batch: SpectrumBatch,
    max_length: int,
    *,
    precursor_tol_ppm: float = DEFAULT_PRECURSOR_TOL_PPM,
    isotope_offsets: tuple[int, ...] = (0,),
) -> list[Prediction]:
    """The most probable token at each step, for every spectrum of ``batch`` at once.

    ``max_length``: most residues per peptide (capped at the model's own
    limit); a peptide still open then is closed with ``<eos>``. The tolerance
    and isotope offsets only set ``Prediction.fits_precursor``; nothing is
    filtered.
    """
    max_length = _legal_max_length(model, max_length)
    n_spectra = len(batch)
    device = batch.mz.device
    n_terminal = torch.tensor(model.vocab.n_terminal_ids, dtype=torch.long, device=device)
    memory, memory_mask = model.encode(batch.mz, batch.intensity, batch.peak_mask)
    tokens = torch.zeros(n_spectra, 0, dtype=torch.long, device=device)
    lengths = torch.zeros(n_spectra, dtype=torch.long, device=device)
    log_prob_sums = torch.zeros(n_spectra, dtype=torch.float64, device=device)
    open_rows = torch.arange(n_spectra, device=device)
    for t in range(max_length + 1):
        log_probs = _step_log_probs(model, tokens[open_rows], open_rows, batch, memory, memory_mask)
        _forbid(log_probs, t, tokens[open_rows, 0] if t else None, n_terminal, max_length)
        best_log_prob, best_token = log_probs.max(dim=-1)
        log_prob_sums[open_rows] += best_log_prob.double()
        column = torch.full((n_spectra, 1), PAD_TOKEN, dtype=torch.long, device=device)
        column[open_rows, 0] = best_token
        tokens = torch.cat([tokens, column], dim=1)
        ended = best_token == EOS_TOKEN
        lengths[open_rows[ended]] = t
        open_rows = open_rows[~ended]
        if len(open_rows) == 0:
            break
    scores = log_prob_sums / (lengths + 1)
    return _predictions(
        model.vocab, tokens, lengths, scores, batch.precursor_mass_da, precursor_tol_ppm,
        isotope_offsets,
    )  # fmt: skip


def _top_k(candidates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best ``k`` continuations ``[B, K, V]`` per spectrum: summed scores, parent beams, tokens."""
    top_sums, top_index = candidates.flatten(1).topk(k, dim=1)
    vocab_size = candidates.shape[-1]
    return top_sums, top_index // vocab_size, top_index % vocab_size


def _gather_beams(tokens: torch.Tensor, parent: torch.Tensor) -> torch.Tensor:
    """Token prefixes ``[B, K, t]`` of the beams ``parent`` ``[B, K]`` picks."""
    return tokens.gather(1, parent.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


@torch.no_grad()
def beam_search(
    model,
    batch: SpectrumBatch,
    beam_size: int = 5,
    max_length: int = 30,
    precursor_tol_ppm: float | None = DEFAULT_PRECURSOR_TOL_PPM,
    isotope_offsets: tuple[int, ...] = (0,),
) -> list[Prediction]:
    """Beam search over residues with a precursor-mass filter, batched over spectra and beams.

    At each step the ``beam_size`` best continuations (by summed
    log-probability) of each spectrum's live beams are kept; a continuation
    ending in ``<eos>`` leaves the beam and joins the spectrum's finished
    peptides, the others stay live. The finished peptide with the best mean
    log-probability per token is returned.

    ``precursor_tol_ppm``: the mass filter's tolerance (ppm of the precursor's
    neutral mass); None turns the filter off (then ``beam_size=1`` is greedy
    decoding). ``isotope_offsets``: ``(0,)``, or ``(0, 1)`` to also accept a
    peptide one 13C spacing lighter than the precursor. With the filter on,
    prefixes too heavy to fit are dropped and only peptides that fit finish; a
    peptide whose ``<eos>`` made the top ``beam_size`` but which misses the
    precursor is a fallback, and the best fallback is returned (flagged
    ``fits_precursor=False``) only for a spectrum where nothing fits.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    max_length = _legal_max_length(model, max_length)
    filtered = precursor_tol_ppm is not None
    tol_ppm = precursor_tol_ppm if filtered else DEFAULT_PRECURSOR_TOL_PPM
    n_spectra, n_beams = len(batch), beam_size
    device = batch.mz.device
    vocab_size = model.vocab.size
    residue_mass = model.vocab.residue_masses(device=device, dtype=torch.float64)
    n_terminal = torch.tensor(model.vocab.n_terminal_ids, dtype=torch.long, device=device)
    precursor = batch.precursor_mass_da.double()
    # Heaviest peptide that can still fit: the lightest isotope's mass plus the tolerance.
    max_mass_da = (precursor - min(isotope_offsets) * C13_C12_DELTA_DA) * (1 + tol_ppm * 1e-6)
    memory, memory_mask = model.encode(batch.mz, batch.intensity, batch.peak_mask)

    # Live beams: [B, K, t] tokens, summed log-probs, prefix masses. Only beam 0 starts live,
    # so the first step's K best continuations are K different tokens, not K copies.
    tokens = torch.zeros(n_spectra, n_beams, 0, dtype=torch.long, device=device)
    sums = torch.full((n_spectra, n_beams), -math.inf, dtype=torch.float64, device=device)
    sums[:, 0] = 0.0
    prefix_mass = torch.zeros(n_spectra, n_beams, dtype=torch.float64, device=device)
    # Per spectrum: the best finished peptide (with the filter: one that fits), and the best
    # that would have finished but missed the precursor.
    results = {
        kind: {
            "score": torch.full((n_spectra,), -math.inf, dtype=torch.float64, device=device),
            "tokens": torch.zeros(n_spectra, max_length, dtype=torch.long, device=device),
            "length": torch.zeros(n_spectra, dtype=torch.long, device=device),
        }
        for kind in ("finished", "fallback")
    }

    def keep_best(kind: str, mean_scores: torch.Tensor, candidates: torch.Tensor, t: int) -> None:
        """Per spectrum, store the best of ``mean_scores`` ``[B, K]`` if it beats the stored one."""
        best_score, best_beam = mean_scores.max(dim=1)
        better = best_score > results[kind]["score"]
        if not better.any():
            return
        rows = better.nonzero().squeeze(1)
        results[kind]["score"][rows] = best_score[rows]
        results[kind]["tokens"][rows, :t] = candidates[rows, best_beam[rows]]
        results[kind]["tokens"][rows, t:] = PAD_TOKEN
        results[kind]["length"][rows] = t

    for t in range(max_length + 1):
        live = torch.isfinite(sums)
        if not live.any():
            break
        flat_live = live.view(-1).nonzero().squeeze(1)
        log_probs = torch.full(
            (n_spectra * n_beams, vocab_size), -math.inf, dtype=torch.float64, device=device
        )
        log_probs[flat_live] = _step_log_probs(
            model, tokens.reshape(n_spectra * n_beams, t)[flat_live], flat_live // n_beams,
            batch, memory, memory_mask,
        ).double()  # fmt: skip
        log_probs = log_probs.view(n_spectra, n_beams, vocab_size)
        candidates = sums.unsqueeze(-1) + log_probs  # [B, K, V]; <pad> is -inf already

        # <eos> only after a residue, an N-terminal token only first; residues: none past
        # max_length and, with the filter, none that make the prefix too heavy to fit.
        _forbid(candidates, t, tokens[..., 0] if t else None, n_terminal, max_length)
        if t < max_length and filtered:
            heavy = prefix_mass.unsqueeze(-1) + residue_mass + H2O_MASS_DA > max_mass_da.view(
                -1, 1, 1
            )
            candidates = candidates.masked_fill(heavy, -math.inf)
        if filtered and t > 0:
            # A peptide that would finish among the top K but misses the precursor is a
            # fallback; its <eos> is then ruled out, so it takes no beam's place.
            _, _, fits = _precursor_fit(
                prefix_mass + H2O_MASS_DA, precursor.unsqueeze(1), tol_ppm, isotope_offsets
            )
            top_sums, parent, token = _top_k(candidates, n_beams)
            misfit = (token == EOS_TOKEN) & ~fits.gather(1, parent) & torch.isfinite(top_sums)
            keep_best("fallback", (top_sums / (t + 1)).masked_fill(~misfit, -math.inf),
                      _gather_beams(tokens, parent), t)  # fmt: skip
            candidates[..., EOS_TOKEN] = candidates[..., EOS_TOKEN].masked_fill(~fits, -math.inf)

        top_sums, parent, token = _top_k(candidates, n_beams)
        valid = torch.isfinite(top_sums)
        ended = valid & (token == EOS_TOKEN)
        parent_tokens = _gather_beams(tokens, parent)
        if ended.any():
            keep_best(
                "finished", (top_sums / (t + 1)).masked_fill(~ended, -math.inf), parent_tokens, t
            )
        tokens = torch.cat([parent_tokens, token.unsqueeze(-1)], dim=2)
        sums = top_sums.masked_fill(ended | ~valid, -math.inf)
        prefix_mass = prefix_mass.gather(1, parent) + residue_mass[token]

    found = torch.isfinite(results["finished"]["score"])
    chosen = {
        key: torch.where(found.view(-1, *[1] * (value.dim() - 1)), value, results["fallback"][key])
        for key, value in results["finished"].items()
    }
    return _predictions(
        model.vocab, chosen["tokens"], chosen["length"], chosen["score"], batch.precursor_mass_da,
        tol_ppm, isotope_offsets,
    )  # fmt: skip


@torch.no_grad()
def residue_probabilities(
    model, batch: SpectrumBatch, predictions: list[Prediction]
) -> list[list[float]]:
    """Per token of each prediction, the model's probability of it (0-1), N- to C-terminus.

    The probability of token ``i`` given the spectrum and tokens ``0..i-1``,
    from one teacher-forced ``decode`` over the predicted peptides (``<pad>``,
    and N-terminal tokens after the first, excluded, as in decoding): the
    per-residue scores of an mzTab file (an N-terminal modification has one too). They
    equal the decoder's own step probabilities up to float rounding.
    """
    width = max([len(p.tokens) for p in predictions] + [1])
    device = batch.mz.device
    prefix = torch.full((len(batch), width), PAD_TOKEN, dtype=torch.long, device=device)
    for row, prediction in enumerate(predictions):
        prefix[row, : len(prediction.tokens)] = torch.tensor(prediction.tokens, device=device)
    memory, memory_mask = model.encode(batch.mz, batch.intensity, batch.peak_mask)
    logits = model.decode(
        prefix, batch.precursor_mass_da, batch.precursor_charge, memory, memory_mask,
        batch.mz, batch.intensity,
    )[:, :width].float()  # fmt: skip
    logits[..., PAD_TOKEN] = -math.inf
    if model.vocab.n_terminal_ids:  # decoding offers them first only
        logits[:, 1:, list(model.vocab.n_terminal_ids)] = -math.inf
    picked = torch.softmax(logits, dim=-1).gather(-1, prefix.unsqueeze(-1)).squeeze(-1)
    return [picked[row, : len(p.tokens)].tolist() for row, p in enumerate(predictions)]


@dataclass(frozen=True)
class MassRepair:
    """The mass-aware repair of ``parallel_decode`` (the default settings are ``evaluate``'s).

    For each of the ``lengths`` most probable peptide lengths, the ``positions``
    least confident positions (smallest log-probability margin between their
    best and second-best residue) are re-chosen among their ``top_k`` most
    probable residues: ``top_k ** positions`` peptides per length (81).
    """

    positions: int = 4
    top_k: int = 3
    lengths: int = 2


@dataclass(frozen=True)
class ParallelDecoding:
    """What ``parallel_decode`` found: the peptides, and per residue of each its probability
    (0-1, N- to C-terminus; the per-residue scores of an mzTab file)."""

    predictions: list[Prediction]
    residue_probabilities: list[list[float]] = field(default_factory=list)


@torch.no_grad()
def parallel_decode(
    model,
    batch: SpectrumBatch,
    max_length: int,
    *,
    mass_aware: bool = True,
    precursor_tol_ppm: float = DEFAULT_PRECURSOR_TOL_PPM,
    isotope_offsets: tuple[int, ...] = (0,),
    repair: MassRepair = MassRepair(),
) -> ParallelDecoding:
    """Peptides of a parallel model from one forward pass over the spectra alone.

    The last refinement step's log-probabilities (``<pad>`` excluded) at
    positions ``0..max_length`` (capped at the model's limit) give:

    - **the arg-max peptide**: the most probable residue at each position up to
      the first position ``L >= 1`` whose most probable token is ``<eos>``
      (``max_length`` when none is); its score is the mean log-probability of
      those residues and of ``<eos>`` at ``L``, as greedy decoding scores. An
      N-terminal modification token (``[Acetyl]-``) is a candidate at position 0
      only, and then ``L >= 2`` (left out of the distribution elsewhere, as the
      losses leave it out);
    - with ``mass_aware``, **the mass-aware repair** (``repair``): for each of
      the most probable lengths (the arg-max one, then the positions where
      ``<eos>`` is most probable), every combination of the ``top_k`` best
      residues at the ``positions`` least confident positions (the arg-max
      peptide among them) is scored the same way, and the best-scoring one
      that fits the precursor (``precursor_tol_ppm``, ``isotope_offsets``) is
      returned; the arg-max peptide, flagged ``fits_precursor=False``, when
      none fits, as beam search falls back.

    A repair cannot mend an error that moved the residues after it (a missed
    or extra residue early on): per-position alternatives only swap residues.
    """
    # 1) one forward pass; the last step's log-probabilities at positions 0..max_length
    max_length = _legal_max_length(model, max_length)
    last = as_steps(model(batch.without_targets()))[-1].float()
    if last.shape[1] <= max_length:
        raise ValueError(f"the model returns {last.shape[1]} positions; decoding "
                         f"{max_length} residues needs {max_length + 1}")  # fmt: skip
    n_terminal = torch.tensor(model.vocab.n_terminal_ids, dtype=torch.long, device=last.device)
    log_probs = _parallel_log_probs(last[:, : max_length + 1], n_terminal, max_length)
    # 2) the arg-max peptide at each candidate length [B, N]: summed log-probability and mass
    lengths = _candidate_lengths(log_probs, max_length, repair.lengths if mass_aware else 1,
                                 n_terminal)  # fmt: skip
    top_k = min(repair.top_k, log_probs.shape[-1] - len(SPECIAL_TOKENS)) if mass_aware else 1
    top_log_probs, top_tokens = log_probs[..., len(SPECIAL_TOKENS) :].topk(top_k, dim=-1)
    top_tokens = top_tokens + len(SPECIAL_TOKENS)  # [B, L + 1, k]
    inside = torch.arange(max_length + 1, device=last.device) < lengths.unsqueeze(-1)  # [B, N, L+1]
    eos = log_probs[..., EOS_TOKEN].double().gather(1, lengths)  # [B, N]
    base_sum = top_log_probs[..., 0].double().unsqueeze(1).masked_fill(~inside, 0.0).sum(-1) + eos
    masses = model.vocab.residue_masses(device=last.device, dtype=torch.float64)
    base_mass = (masses[top_tokens[..., 0]].unsqueeze(1) * inside).sum(-1) + H2O_MASS_DA
    # 3) the repairs: C combinations per length (C = 1: the arg-max peptide alone)
    chosen = torch.zeros(*lengths.shape, 0, dtype=torch.long, device=last.device)
    grid = torch.zeros(1, 0, dtype=torch.long, device=last.device)
    sums, mass_da = base_sum.unsqueeze(-1), base_mass.unsqueeze(-1)  # [B, N, C], C = 1
    if mass_aware and top_k > 1:
        chosen, grid, sums, mass_da = _repairs(
            top_log_probs, top_tokens, masses, inside, base_sum, base_mass, repair.positions
        )
    # 4) the best-scoring peptide that fits; else the arg-max peptide at the first length
    if len(n_terminal):  # an N-terminal token needs a residue after it
        lone = _lone_n_terminal(top_tokens, chosen, grid, lengths, n_terminal)
        sums = sums.masked_fill(lone, -math.inf)
    means = sums / (lengths + 1).unsqueeze(-1)
    _, _, fits = _precursor_fit(
        mass_da, batch.precursor_mass_da.double().view(-1, 1, 1), precursor_tol_ppm,
        isotope_offsets,
    )  # fmt: skip
    scores = means.masked_fill(~fits, -math.inf).flatten(1)
    best = scores.argmax(dim=1)
    found = torch.isfinite(scores.gather(1, best.unsqueeze(1)).squeeze(1))
    n_combos = sums.shape[-1]
    length_index = torch.where(found, best // n_combos, 0)
    combo = torch.where(found, best % n_combos, 0)
    rows = torch.arange(len(batch), device=last.device)
    length = lengths[rows, length_index]
    tokens = top_tokens[..., 0].clone()
    if grid.shape[1]:
        positions = chosen[rows, length_index]  # [B, m]
        picks = grid[combo]  # [B, m]
        tokens.scatter_(1, positions, top_tokens[rows.unsqueeze(1), positions, picks])
    outside = torch.arange(max_length + 1, device=last.device) >= length.unsqueeze(1)
    tokens = tokens.masked_fill(outside, PAD_TOKEN)
    score = means[rows, length_index, combo]
    predictions = _predictions(
        model.vocab, tokens, length, score, batch.precursor_mass_da, precursor_tol_ppm,
        isotope_offsets,
    )  # fmt: skip
    picked = log_probs.gather(-1, tokens.clamp(min=len(SPECIAL_TOKENS)).unsqueeze(-1)).exp()
    return ParallelDecoding(
        predictions, [picked[row, :n, 0].tolist() for row, n in enumerate(length.tolist())]
    )


def _parallel_log_probs(
    logits: torch.Tensor, n_terminal: torch.Tensor, max_length: int
) -> torch.Tensor:
    """Log-probabilities ``[B, L + 1, V]`` of the tokens each position may hold: never
    ``<pad>``, an N-terminal token (``n_terminal``: their ids) only at position 0 and only
    when a residue can follow it (``max_length >= 2``), as ``losses.residue_probabilities``
    and ``_forbid`` rule."""
    logits = logits.index_fill(-1, torch.tensor([PAD_TOKEN], device=logits.device), -math.inf)
    if len(n_terminal):
        first = 0 if max_length < 2 else 1
        logits[:, first:].index_fill_(-1, n_terminal, -math.inf)
    return torch.log_softmax(logits, -1)


def _candidate_lengths(
    log_probs: torch.Tensor, max_length: int, n_lengths: int, n_terminal: torch.Tensor
) -> torch.Tensor:
    """``[B, N]`` peptide lengths to try: the arg-max one first (the first position from 1 on
    whose most probable token is ``<eos>``, from 2 on after an N-terminal token; ``max_length``
    if none), then the positions where ``<eos>`` is most probable."""
    ends = log_probs.argmax(dim=-1) == EOS_TOKEN
    ends[:, 0] = False  # at least one residue
    if len(n_terminal):
        ends[:, 1] &= ~torch.isin(log_probs[:, 0].argmax(dim=-1), n_terminal)
    ends[:, max_length] = True  # nothing but <eos> left
    first = ends.int().argmax(dim=1, keepdim=True)  # the first True
    others = min(n_lengths, max_length) - 1
    if others == 0:
        return first
    eos = log_probs[..., EOS_TOKEN].clone()
    eos[:, 0] = -math.inf
    eos.scatter_(1, first, -math.inf)
    return torch.cat([first, eos.topk(others, dim=1).indices], dim=1)


def _lone_n_terminal(top_tokens, chosen, grid, lengths, n_terminal) -> torch.Tensor:
    """``[B, N, C]`` bool: the peptide of length ``n`` and combination ``c`` (``_repairs``'
    ``chosen`` ``[B, N, m]`` and ``grid`` ``[C, m]``) is an N-terminal token alone."""
    at_zero = (chosen == 0).unsqueeze(2)  # [B, N, 1, m]: position 0 is re-chosen
    pick = (grid.view(1, 1, *grid.shape) * at_zero).sum(-1)  # [B, N, C]: its rank among top-k
    first = top_tokens[:, 0].gather(1, pick.flatten(1)).view_as(pick)
    return torch.isin(first, n_terminal) & (lengths < 2).unsqueeze(-1)


def _repairs(top_log_probs, top_tokens, masses, inside, base_sum, base_mass, n_positions):
    """Every combination of the ``k`` best residues at the least confident positions.

    Inputs per spectrum ``b`` and candidate length ``n``: the positions' ``k``
    best residues ``[B, L+1, k]`` (log-probabilities and tokens), ``inside``
    ``[B, N, L+1]`` (positions before the length), the arg-max peptide's summed
    log-probability and mass ``[B, N]``. Returns the re-chosen positions
    ``[B, N, m]``, the combinations ``[C, m]`` (indices into the ``k`` best;
    combination 0 keeps the arg-max), and each combination's summed
    log-probability and mass ``[B, N, C]`` (-inf for one that changes a
    position past the length).
    """
    k = top_log_probs.shape[-1]
    margin = top_log_probs[..., 0] - top_log_probs[..., 1]  # [B, L+1]: small = unsure
    margin = margin.unsqueeze(1).masked_fill(~inside, math.inf)
    m = min(n_positions, margin.shape[-1])
    chosen = margin.topk(m, dim=-1, largest=False).indices  # [B, N, m]
    usable = inside.gather(-1, chosen)  # a position past the length keeps the arg-max
    grid = torch.tensor(list(itertools.product(range(k), repeat=m)), device=chosen.device)

    def alternatives(values: torch.Tensor) -> torch.Tensor:
        """``values`` ``[B, L+1, k]`` at the chosen positions, less the arg-max's: [B, N, m, k]."""
        delta = values - values[..., :1]
        expanded = delta.unsqueeze(1).expand(-1, chosen.shape[1], -1, -1)
        return expanded.gather(2, chosen.unsqueeze(-1).expand(-1, -1, -1, k))

    slot = torch.arange(m, device=chosen.device)
    delta_log_prob = alternatives(top_log_probs.double())[..., slot, grid].sum(-1)  # [B, N, C]
    delta_mass = alternatives(masses[top_tokens])[..., slot, grid].sum(-1)
    changes_outside = ((grid != 0).unsqueeze(0).unsqueeze(0) & ~usable.unsqueeze(2)).any(-1)
    sums = (base_sum.unsqueeze(-1) + delta_log_prob).masked_fill(changes_outside, -math.inf)
    return chosen, grid, sums, base_mass.unsqueeze(-1) + delta_mass

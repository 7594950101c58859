"""The transformer: peaks in, residue tokens out (an encoder-decoder in the style of Casanovo).

The encoder reads the spectrum as a set of peaks. Each peak's m/z gets a
multi-scale sinusoidal encoding (as in Casanovo/depthcharge: wavelengths
spaced geometrically from 0.001 to 10,000 m/z, so both the integer and the
sub-Dalton parts of a mass are visible) plus a learned projection of its
intensity. A learned "spectrum" token is prepended so that a spectrum with no
surviving peaks still attends to something (no NaN from an all-masked row).

The decoder is causal. Its first position is the precursor: the neutral mass
(same sinusoidal encoding) plus a charge embedding. Position ``i`` of the
output predicts residue ``i``; after the last residue it should predict
``<eos>``.

Per-candidate ion evidence (``ModelConfig.ion_evidence``, on in the default
presets ``tiny`` and ``base``): at each decoder position, for every candidate
token, ``candidate_ion_evidence`` looks up the peaks at the m/z of the b ion the
prefix plus that residue would make and of the complementary y ion (charge 2
too for precursors of 3+), and whether the residue would complete the
precursor mass or overshoot it. These features are added to the decoder's
input and, through a small per-candidate network, to the candidate's logit:
the decoder no longer has to learn mass arithmetic from sinusoidal encodings
(the idea of DeepNovo, Tran et al., PNAS 2017). Teacher forcing computes them
from the true prefix, decoding (greedy and beam) from the decoded one, because
both go through ``decode``.

Mass-aware decoding (``ModelConfig.mass_aware_decoder``, off in every preset;
pepcurr's model before ion evidence): each decoder position also gets the m/z
of the b ion of the residues decoded so far and of the complementary y ion, in
the peaks' sinusoidal encoding. With both options off (presets
``casanovo-tiny``, ``casanovo-base``) the model is the plain Casanovo design.
See ``docs/models.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import (
    H2O_MASS_DA,
    MAX_CHARGE,
    PROTON_MASS_DA,
    fragment_ladder,
)
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS, Vocabulary


@dataclass(frozen=True)
class IonEvidenceConfig:
    """Per-candidate b/y ion evidence (``CandidateEvidence``): the options both of pepcurr's
    model kinds have, declared once (``ModelConfig`` and ``recursive.RecursiveConfig`` extend it).

    ``ion_evidence``: the evidence on (see the module docstring); ``fragment_tolerance_ppm``
    is the width (standard deviation, ppm of the fragment m/z) of its Gaussian peak match,
    ``precursor_tolerance_ppm`` that of its "completes the precursor mass" feature (ppm of
    the precursor's neutral mass), ``evidence_hidden`` the width of its per-candidate network.
    """

    # run.json holds it: an unknown key there is an error, not silently dropped
    __pydantic_config__ = {"extra": "forbid"}

    ion_evidence: bool = True
    fragment_tolerance_ppm: float = 20.0
    precursor_tolerance_ppm: float = 50.0
    evidence_hidden: int = 32


@dataclass(frozen=True)
class ModelConfig(IonEvidenceConfig):
    """Transformer dimensions and decoder options. Dropout is 0 by default, as in Casanovo.

    ``kind`` tags the architecture in ``run.json`` (``training.config.Architecture``).
    The ion-evidence options are ``IonEvidenceConfig``'s. ``mass_aware_decoder``:
    sinusoidal b/y m/z of the decoded prefix in the decoder input.
    """

    kind: Literal["transformer"] = "transformer"
    d_model: int = 128
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    n_heads: int = 4
    dim_feedforward: int = 512
    dropout: float = 0.0
    max_peptide_length: int = 40
    mass_aware_decoder: bool = False


_TINY = dict(d_model=128, n_encoder_layers=2, n_decoder_layers=2, n_heads=4, dim_feedforward=512)
_BASE = dict(d_model=512, n_encoder_layers=9, n_decoder_layers=9, n_heads=8, dim_feedforward=1024)
_PLAIN = dict(ion_evidence=False, mass_aware_decoder=False)

#: Named models (``docs/models.md``): ``tiny`` trains on a CPU, ``base`` has Casanovo's
#: dimensions; both decode with per-candidate ion evidence. ``casanovo-tiny`` and
#: ``casanovo-base`` are the same sizes as the plain Casanovo design (no ion evidence, no
#: prefix masses): a stand-in for a user whose own model is plain.
MODEL_PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(**_TINY),
    "base": ModelConfig(**_BASE),
    "casanovo-tiny": ModelConfig(**_TINY, **_PLAIN),
    "casanovo-base": ModelConfig(**_BASE, **_PLAIN),
}

#: Features per (position, candidate) of ``candidate_ion_evidence``.
EVIDENCE_FEATURES = (
    "b_match", "y_match", "b++_match", "y++_match",
    "b_intensity", "y_intensity", "b++_intensity", "y++_intensity",
    "completes_precursor", "impossible",
)  # fmt: skip


def candidate_ion_evidence(
    prefix_mass_da: torch.Tensor,
    precursor_mass_da: torch.Tensor,
    precursor_charge: torch.Tensor,
    peak_mz: torch.Tensor,
    peak_intensity: torch.Tensor,
    peak_mask: torch.Tensor,
    candidate_mass_da: torch.Tensor,
    fragment_tolerance_ppm: float,
    precursor_tolerance_ppm: float,
    n_terminal: torch.Tensor,
    lightest_residue_da: float,
) -> torch.Tensor:
    """What the spectrum says about each candidate next token, ``[B, T, V, 10]``.

    Inputs: ``prefix_mass_da`` ``[B, T]``, the summed residue masses (Da) before
    each position; ``precursor_mass_da`` ``[B]`` (neutral, Da); ``precursor_charge``
    ``[B]``; peaks ``[B, P]`` sorted by m/z with padding last (``peak_mask``
    False); ``candidate_mass_da`` ``[V]``, the mass of each token (0 for
    ``<pad>``/``<eos>``); ``n_terminal`` ``[V]`` bool, the N-terminal modification
    tokens; ``lightest_residue_da``, the vocabulary's lightest residue (the smallest
    step of a mass ladder). For candidate ``r`` at a position with prefix mass ``P``,
    ``chemistry.fragment_ladder`` gives the b ion ``P + m_r`` and the complementary
    y ion ``precursor - P - m_r`` (charge 1; charge 2 only for 3+ precursors). For
    each of the four ions (``EVIDENCE_FEATURES``):

    - ``*_match``: ``exp(-(d / s)^2 / 2)`` of the m/z distance ``d`` to the nearest
      peak, ``s = fragment_tolerance_ppm * 1e-6 * m/z`` (1 on a peak, about 0 more
      than 3 s away or with no peaks);
    - ``*_intensity``: that peak's intensity (base peak = 1) times its match.

    Then, with ``rest = precursor - H2O - P - m_r`` (mass still to explain, Da) and
    ``s_p = precursor_tolerance_ppm * 1e-6 * precursor``:

    - ``completes_precursor``: ``exp(-(rest / s_p)^2 / 2)``;
    - ``impossible``: 1 when ``rest < -3 s_p`` (too heavy) or ``3 s_p < rest <``
      the lightest residue (57.02 Da, G: no residue is that light), else 0.

    ``<pad>`` gets only zeros; ``<eos>`` (mass 0) gets only the last two, which then
    say whether the prefix already completes the precursor; so does an N-terminal
    token (its "b ion" would be the modification alone, no fragment; its mass then
    weighs in the prefix of every later position). Peaks are matched with
    ``torch.searchsorted`` (padding replaced by +inf so rows stay sorted); nothing
    here has a gradient, and it runs on the batch's device.
    """
    batch, length = prefix_mass_da.shape
    vocab_size = candidate_mass_da.shape[0]
    completed = prefix_mass_da.unsqueeze(-1) + candidate_mass_da  # [B, T, V] b-side mass
    flat = completed.reshape(batch, length * vocab_size)
    ions_mz, expected = fragment_ladder(flat, precursor_mass_da, precursor_charge)  # [B, TV, 4]

    peaks = peak_mz.masked_fill(~peak_mask, math.inf)
    queries = ions_mz.reshape(batch, -1)
    last = peaks.shape[-1] - 1
    right = torch.searchsorted(peaks, queries).clamp_(max=last)
    left = (right - 1).clamp_(min=0)
    right_distance = (peaks.gather(-1, right) - queries).abs()
    left_distance = (queries - peaks.gather(-1, left)).abs()
    nearer_right = right_distance < left_distance
    distance = torch.where(nearer_right, right_distance, left_distance)
    nearest = torch.where(nearer_right, right, left)
    width = fragment_tolerance_ppm * 1e-6 * queries.abs().clamp_min(1.0)
    # Clamped at 10 widths (exp(-50), 2e-22): no infinity from a padded or missing peak.
    match = torch.exp(-0.5 * (distance / width).clamp_max(10.0).square())
    match = match.view(batch, length * vocab_size, 4) * expected
    intensity = peak_intensity.gather(-1, nearest).view_as(match) * match
    ion_features = torch.cat([match, intensity], dim=-1).view(batch, length, vocab_size, 8)

    rest = (precursor_mass_da - H2O_MASS_DA).view(batch, 1, 1) - completed
    precursor_width = (precursor_tolerance_ppm * 1e-6 * precursor_mass_da).view(batch, 1, 1)
    completes = torch.exp(-0.5 * (rest / precursor_width).square())
    too_heavy = rest < -3 * precursor_width
    gap = (rest > 3 * precursor_width) & (rest < lightest_residue_da - 3 * precursor_width)
    mass_features = torch.stack([completes, (too_heavy | gap).to(completes.dtype)], dim=-1)

    token_ids = torch.arange(vocab_size, device=candidate_mass_da.device)
    is_residue = (token_ids >= len(SPECIAL_TOKENS)) & ~n_terminal
    is_eos = token_ids == EOS_TOKEN
    ion_features = ion_features * is_residue.view(1, 1, vocab_size, 1)
    mass_features = mass_features * (is_residue | is_eos | n_terminal).view(1, 1, vocab_size, 1)
    return torch.cat([ion_features, mass_features], dim=-1)


class CandidateEvidence(nn.Module):
    """Turns ``candidate_ion_evidence`` into a decoder-input term and a logit bias.

    - input ``[B, T, D]``: a linear map of all candidates' features at a position;
    - bias ``[B, T, V]``: per candidate, ``w . relu(W f + e_v)`` with a learned
      embedding ``e_v`` of the candidate token, added to its logit.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        d_model: int,
        hidden: int,
        fragment_tolerance_ppm: float,
        precursor_tolerance_ppm: float,
    ):
        super().__init__()
        self.fragment_tolerance_ppm = fragment_tolerance_ppm
        self.precursor_tolerance_ppm = precursor_tolerance_ppm
        n_features = len(EVIDENCE_FEATURES)
        self.register_buffer("candidate_mass_da", vocab.residue_masses(), persistent=False)
        self.register_buffer("n_terminal", vocab.n_terminal_mask(), persistent=False)
        n_terminal = set(vocab.n_terminal_ids)
        self.lightest_residue_da = min(vocab.mass_da(token) for token_id, token in
                                       enumerate(vocab.tokens) if token_id >= len(SPECIAL_TOKENS)
                                       and token_id not in n_terminal)  # fmt: skip
        self.to_input = nn.Linear(vocab.size * n_features, d_model)
        self.feature_proj = nn.Linear(n_features, hidden)
        self.candidate_embedding = nn.Parameter(torch.zeros(vocab.size, hidden))
        self.to_bias = nn.Linear(hidden, 1)

    @classmethod
    def of(cls, config: IonEvidenceConfig, d_model: int, vocab: Vocabulary) -> CandidateEvidence:
        """The evidence module of a model config's ion-evidence options (``ModelConfig`` or
        ``recursive.RecursiveConfig``), for a model of width ``d_model``."""
        return cls(
            vocab, d_model, config.evidence_hidden, config.fragment_tolerance_ppm,
            config.precursor_tolerance_ppm,
        )  # fmt: skip

    def per_token_parameters(self, prefix: str) -> dict[str, tuple[int, int]]:
        """Its parameters holding one slice per token, named under ``prefix`` (the
        module's name in the model): ``per_token_parameters`` of a model that has it."""
        return {
            f"{prefix}.candidate_embedding": (0, 1),
            f"{prefix}.to_input.weight": (1, len(EVIDENCE_FEATURES)),  # features per token
        }

    def forward(
        self,
        prefix_mass_da: torch.Tensor,
        precursor_mass_da: torch.Tensor,
        precursor_charge: torch.Tensor,
        peak_mz: torch.Tensor,
        peak_intensity: torch.Tensor,
        peak_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = candidate_ion_evidence(
            prefix_mass_da, precursor_mass_da, precursor_charge, peak_mz, peak_intensity,
            peak_mask, self.candidate_mass_da, self.fragment_tolerance_ppm,
            self.precursor_tolerance_ppm, self.n_terminal, self.lightest_residue_da,
        )  # fmt: skip
        hidden = torch.relu(self.feature_proj(features) + self.candidate_embedding)
        return self.to_input(features.flatten(-2)), self.to_bias(hidden).squeeze(-1)


class SinusoidalMassEncoder(nn.Module):
    """Multi-scale sin/cos features of an m/z or mass (Da), ``[...]`` -> ``[..., d_model]``."""

    def __init__(
        self, d_model: int, min_wavelength: float = 0.001, max_wavelength: float = 10_000.0
    ):
        super().__init__()
        n_sin = d_model // 2
        n_cos = d_model - n_sin
        base = min_wavelength / (2 * math.pi)
        scale = max_wavelength / min_wavelength
        sin_term = base * scale ** (torch.arange(n_sin, dtype=torch.float64) / max(n_sin - 1, 1))
        cos_term = base * scale ** (torch.arange(n_cos, dtype=torch.float64) / max(n_cos - 1, 1))
        self.register_buffer("sin_term", sin_term.float(), persistent=False)
        self.register_buffer("cos_term", cos_term.float(), persistent=False)

    def forward(self, mass: torch.Tensor) -> torch.Tensor:
        mass = mass.float().unsqueeze(-1)
        return torch.cat([torch.sin(mass / self.sin_term), torch.cos(mass / self.cos_term)], dim=-1)


def transformer_encoder(
    d_model: int, n_heads: int, dim_feedforward: int, dropout: float, n_layers: int
) -> nn.TransformerEncoder:
    """Pre-norm self-attention layers over a set (the peaks), batch first."""
    layer = nn.TransformerEncoderLayer(
        d_model, n_heads, dim_feedforward, dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)


def transformer_decoder(
    d_model: int, n_heads: int, dim_feedforward: int, dropout: float, n_layers: int
) -> nn.TransformerDecoder:
    """Pre-norm layers of self-attention, cross-attention to a memory and a feed-forward network."""
    layer = nn.TransformerDecoderLayer(
        d_model, n_heads, dim_feedforward, dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerDecoder(layer, n_layers)


def encode_peaks(
    model: nn.Module, mz: torch.Tensor, intensity: torch.Tensor, peak_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The peak encoder of pepcurr's models: memory ``[B, P+1, D]`` and its padding mask.

    ``model`` holds ``mass_encoder`` (``SinusoidalMassEncoder``), ``intensity_proj``,
    ``spectrum_token`` ``[1, 1, D]`` and ``encoder`` (``transformer_encoder``). Each
    peak is its m/z's sinusoidal encoding plus a projection of its intensity; the
    learned spectrum token comes first (True in the mask = padding).
    """
    peaks = model.mass_encoder(mz) + model.intensity_proj(intensity.unsqueeze(-1))
    peaks = torch.cat([model.spectrum_token.expand(peaks.shape[0], -1, -1), peaks], dim=1)
    pad_mask = torch.cat([torch.zeros_like(peak_mask[:, :1]), ~peak_mask], dim=1)
    return model.encoder(peaks, src_key_padding_mask=pad_mask), pad_mask


def encode_precursor(
    model: nn.Module, precursor_mass_da: torch.Tensor, precursor_charge: torch.Tensor
) -> torch.Tensor:
    """The precursor as one vector ``[B, D]``: its neutral mass's sinusoidal encoding plus a
    charge embedding (``model.mass_encoder``, ``model.charge_embedding``)."""
    return model.mass_encoder(precursor_mass_da) + model.charge_embedding(
        precursor_charge.clamp(0, MAX_CHARGE)
    )


class PeptideTransformer(nn.Module):
    """Encoder over peaks, causal decoder over residues conditioned on the precursor."""

    def __init__(self, config: ModelConfig, vocab: Vocabulary):
        super().__init__()
        self.config = config
        self.vocab = vocab
        self.max_peptide_length = config.max_peptide_length
        d = config.d_model
        self.mass_encoder = SinusoidalMassEncoder(d)
        self.intensity_proj = nn.Linear(1, d)
        self.spectrum_token = nn.Parameter(torch.zeros(1, 1, d))
        self.charge_embedding = nn.Embedding(MAX_CHARGE + 1, d)
        self.token_embedding = nn.Embedding(vocab.size, d, padding_idx=PAD_TOKEN)
        self.position_embedding = nn.Embedding(config.max_peptide_length + 2, d)
        self.register_buffer("token_masses", vocab.residue_masses(), persistent=False)
        self.prefix_proj = nn.Linear(2 * d, d) if config.mass_aware_decoder else None
        self.evidence = CandidateEvidence.of(config, d, vocab) if config.ion_evidence else None
        self.encoder = transformer_encoder(
            d, config.n_heads, config.dim_feedforward, config.dropout, config.n_encoder_layers
        )
        self.decoder = transformer_decoder(
            d, config.n_heads, config.dim_feedforward, config.dropout, config.n_decoder_layers
        )
        self.final_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab.size)

    def per_token_parameters(self) -> dict[str, tuple[int, int]]:
        """Parameters holding one slice per vocabulary token: name -> (dimension, slice width).

        What ``token_transfer`` moves when a run fine-tunes into another vocabulary.
        """
        axes = {"token_embedding.weight": (0, 1), "head.weight": (0, 1), "head.bias": (0, 1)}
        if self.evidence is not None:
            axes.update(self.evidence.per_token_parameters("evidence"))
        return axes

    def encode(
        self, mz: torch.Tensor, intensity: torch.Tensor, peak_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Peaks ``[B, P]`` -> memory ``[B, P+1, D]`` and its padding mask (True = padding)."""
        return encode_peaks(self, mz, intensity, peak_mask)

    def decode(
        self,
        prefix_tokens: torch.Tensor,
        precursor_mass_da: torch.Tensor,
        precursor_charge: torch.Tensor,
        memory: torch.Tensor,
        memory_pad_mask: torch.Tensor,
        peak_mz: torch.Tensor | None = None,
        peak_intensity: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``[B, t+1, V]`` for a residue prefix ``[B, t]`` (``t`` may be 0).

        ``logits[:, i]`` is the distribution of residue ``i`` (or ``<eos>``).
        ``peak_mz``/``peak_intensity`` ``[B, P]`` (the spectra that ``encode`` read;
        their mask is ``memory_pad_mask``) are needed with ``ion_evidence``.
        """
        precursor = encode_precursor(self, precursor_mass_da, precursor_charge)
        x = torch.cat([precursor.unsqueeze(1), self.token_embedding(prefix_tokens)], dim=1)
        length = x.shape[1]
        x = x + self.position_embedding(torch.arange(length, device=x.device))
        prefix_mass = self._prefix_masses(prefix_tokens)
        if self.prefix_proj is not None:
            x = x + self._prefix_ion_features(prefix_mass, precursor_mass_da)
        bias = None
        if self.evidence is not None:
            if peak_mz is None or peak_intensity is None:
                raise ValueError("a model with ion evidence decodes with the spectra's peaks")
            evidence_input, bias = self.evidence(
                prefix_mass, precursor_mass_da, precursor_charge, peak_mz, peak_intensity,
                ~memory_pad_mask[:, 1:],
            )  # fmt: skip
            x = x + evidence_input
        causal = torch.triu(
            torch.full((length, length), float("-inf"), device=x.device), diagonal=1
        )
        x = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=memory_pad_mask)
        logits = self.head(self.final_norm(x))
        return logits if bias is None else logits + bias.to(logits.dtype)

    def _prefix_masses(self, prefix_tokens: torch.Tensor) -> torch.Tensor:
        """Summed residue mass (Da) before each of the ``t + 1`` positions, ``[B, t+1]``."""
        residue_mass = self.token_masses[prefix_tokens]  # special tokens weigh 0 Da
        zero = residue_mass.new_zeros(residue_mass.shape[0], 1)
        return torch.cat([zero, torch.cumsum(residue_mass, dim=1)], dim=1)

    def _prefix_ion_features(
        self, prefix_mass: torch.Tensor, precursor_mass_da: torch.Tensor
    ) -> torch.Tensor:
        """Encoded b-ion m/z of each decoded prefix and y-ion m/z of the rest, ``[B, t+1, D]``."""
        b_mz = prefix_mass + PROTON_MASS_DA
        y_mz = precursor_mass_da.unsqueeze(1) - prefix_mass + PROTON_MASS_DA
        features = torch.cat([self.mass_encoder(b_mz), self.mass_encoder(y_mz)], dim=-1)
        return self.prefix_proj(features)

    def forward(self, batch: SpectrumBatch) -> torch.Tensor:
        """Teacher-forced logits ``[B, T, V]`` for the batch's target tokens ``[B, T]``."""
        memory, pad_mask = self.encode(batch.mz, batch.intensity, batch.peak_mask)
        prefix = batch.tokens[:, :-1]
        return self.decode(
            prefix, batch.precursor_mass_da, batch.precursor_charge, memory, pad_mask,
            batch.mz, batch.intensity,
        )  # fmt: skip

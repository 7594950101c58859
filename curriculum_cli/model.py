"""The transformer: peaks in, residue tokens out (a Casanovo-style encoder-decoder).

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

Mass-aware decoding (``ModelConfig.mass_aware_decoder``, on by default): each
decoder position also gets the m/z of the b ion of the residues decoded so far
and of the complementary y ion (precursor minus that prefix), in the same
sinusoidal encoding as the peaks. Matching a prefix to its peak then becomes a
similarity of two identical encodings instead of a sum the network must learn
to compute, which makes a small model learn several times faster. Without it
the model is the plain Casanovo design.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from curriculum_cli.batch import SpectrumBatch
from curriculum_cli.chemistry import PAD_TOKEN, PROTON_MASS_DA, Vocabulary

MAX_CHARGE = 10


@dataclass(frozen=True)
class ModelConfig:
    """Transformer dimensions. Dropout is 0 by default, as in Casanovo."""

    # run.json holds it: an unknown key there is an error, not silently dropped
    __pydantic_config__ = {"extra": "forbid"}

    d_model: int = 128
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    n_heads: int = 4
    dim_feedforward: int = 512
    dropout: float = 0.0
    max_peptide_length: int = 40
    mass_aware_decoder: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


#: Named sizes: ``tiny`` trains on a CPU; ``base`` has Casanovo's dimensions.
MODEL_PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(
        d_model=128, n_encoder_layers=2, n_decoder_layers=2, n_heads=4, dim_feedforward=512
    ),
    "base": ModelConfig(
        d_model=512, n_encoder_layers=9, n_decoder_layers=9, n_heads=8, dim_feedforward=1024
    ),
}


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
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                d,
                config.n_heads,
                config.dim_feedforward,
                config.dropout,
                batch_first=True,
                norm_first=True,
            ),
            config.n_encoder_layers,
            enable_nested_tensor=False,
        )
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(
                d,
                config.n_heads,
                config.dim_feedforward,
                config.dropout,
                batch_first=True,
                norm_first=True,
            ),
            config.n_decoder_layers,
        )
        self.final_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab.size)

    def encode(
        self, mz: torch.Tensor, intensity: torch.Tensor, peak_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Peaks ``[B, P]`` -> memory ``[B, P+1, D]`` and its padding mask (True = padding)."""
        peaks = self.mass_encoder(mz) + self.intensity_proj(intensity.unsqueeze(-1))
        peaks = torch.cat([self.spectrum_token.expand(peaks.shape[0], -1, -1), peaks], dim=1)
        pad_mask = torch.cat([torch.zeros_like(peak_mask[:, :1]), ~peak_mask], dim=1)
        return self.encoder(peaks, src_key_padding_mask=pad_mask), pad_mask

    def decode(
        self,
        prefix_tokens: torch.Tensor,
        precursor_mass_da: torch.Tensor,
        precursor_charge: torch.Tensor,
        memory: torch.Tensor,
        memory_pad_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Logits ``[B, t+1, V]`` for a residue prefix ``[B, t]`` (``t`` may be 0).

        ``logits[:, i]`` is the distribution of residue ``i`` (or ``<eos>``).
        """
        precursor = self.mass_encoder(precursor_mass_da) + self.charge_embedding(
            precursor_charge.clamp(0, MAX_CHARGE)
        )
        x = torch.cat([precursor.unsqueeze(1), self.token_embedding(prefix_tokens)], dim=1)
        length = x.shape[1]
        x = x + self.position_embedding(torch.arange(length, device=x.device))
        if self.prefix_proj is not None:
            x = x + self._prefix_ion_features(prefix_tokens, precursor_mass_da)
        causal = torch.triu(
            torch.full((length, length), float("-inf"), device=x.device), diagonal=1
        )
        x = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=memory_pad_mask)
        return self.head(self.final_norm(x))

    def _prefix_ion_features(
        self, prefix_tokens: torch.Tensor, precursor_mass_da: torch.Tensor
    ) -> torch.Tensor:
        """Encoded b-ion m/z of each decoded prefix and y-ion m/z of the rest, ``[B, t+1, D]``."""
        residue_mass = self.token_masses[prefix_tokens]  # special tokens weigh 0 Da
        zero = residue_mass.new_zeros(residue_mass.shape[0], 1)
        prefix_mass = torch.cat([zero, torch.cumsum(residue_mass, dim=1)], dim=1)
        b_mz = prefix_mass + PROTON_MASS_DA
        y_mz = precursor_mass_da.unsqueeze(1) - prefix_mass + PROTON_MASS_DA
        features = torch.cat([self.mass_encoder(b_mz), self.mass_encoder(y_mz)], dim=-1)
        return self.prefix_proj(features)

    def forward(self, batch: SpectrumBatch) -> torch.Tensor:
        """Teacher-forced logits ``[B, T, V]`` for the batch's target tokens ``[B, T]``."""
        memory, pad_mask = self.encode(batch.mz, batch.intensity, batch.peak_mask)
        prefix = batch.tokens[:, :-1]
        return self.decode(
            prefix, batch.precursor_mass_da, batch.precursor_charge, memory, pad_mask
        )


def build_model(model: str | ModelConfig, vocab: Vocabulary) -> PeptideTransformer:
    """A model from a preset name (``tiny``, ``base``) or an explicit ``ModelConfig``."""
    if isinstance(model, str):
        if model not in MODEL_PRESETS:
            from curriculum_cli.errors import PepcurrError

            raise PepcurrError(
                f"unknown model preset {model!r}; choose one of: {', '.join(MODEL_PRESETS)}"
            )
        model = MODEL_PRESETS[model]
    return PeptideTransformer(model, vocab)

"""Synthetic MS/MS spectra generated on the training device from a stage's data settings.

Every training step draws a fresh batch, so generation is fully vectorized
(no Python loop over peptides or peaks) and every random draw goes through one
``torch.Generator``: the same seed gives the same batch, bit for bit, on the CPU.

The model of a spectrum (see ``docs/spectra-and-mgf.md``):

- peptide length uniform in ``[min_length, max_length]``; residues uniform over
  the vocabulary's residues, or tryptic-like (ending in K or R, no K/R inside);
- precursor charge from ``charge_probs`` (default 2+: 70%, 3+: 30%);
  the precursor's neutral mass is exact (no error on it);
- b and y ions at charge 1, and at charge 2 as well when the precursor is 3+ or
  higher; each fragment peak dropped with probability ``peak_dropout``;
- m/z error: each fragment m/z is multiplied by ``1 + e * 1e-6`` with
  ``e ~ Normal(0, mass_error_ppm)``;
- intensities: y ions 1.0, b ions 0.6, doubly charged fragments half of that,
  each times a factor uniform in ``[1 - intensity_variation, 1 + intensity_variation)``;
- ``noise_peaks`` peaks uniform in m/z over ``[50, precursor neutral mass]``,
  intensity uniform in ``[0.02, 0.2]``, never dropped, no m/z error;
- peaks sorted by m/z, padded to ``SpectrumSettings.max_peaks`` slots, then
  intensities divided by the spectrum's most intense peak (base peak = 1).

Not simulated: neutral losses, immonium ions, isotope peaks, internal
fragments, a/c/x/z ions, realistic (sequence-dependent) intensity patterns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import torch

from curriculum_cli.batch import SpectrumBatch
from curriculum_cli.chemistry import (
    EOS_TOKEN,
    PAD_TOKEN,
    Vocabulary,
    fragment_mz,
    mz_from_neutral_mass,
    neutral_mass_from_mz,
    peptide_mass_da,
)
from curriculum_cli.curriculum import NOISE_FIELDS
from curriculum_cli.errors import CurriculumError

RESIDUE_DISTRIBUTIONS = ("uniform", "tryptic")
"""Accepted values of ``SpectrumSettings.residue_distribution``."""

TRYPTIC_C_TERMINAL = ("K", "R")
"""Residues a tryptic peptide ends with (trypsin cleaves after K and R)."""

NOISE_MIN_MZ = 50.0
"""Lowest m/z of a noise peak; the highest is the precursor's neutral mass (Da)."""

Y_ION_INTENSITY = 1.0
B_ION_INTENSITY = 0.6
DOUBLY_CHARGED_FACTOR = 0.5
NOISE_INTENSITY_RANGE = (0.02, 0.2)
"""Nominal intensities before normalization: y ions dominate, as in HCD spectra of tryptic
peptides; doubly charged fragments are weaker; noise stays low."""

# The data settings a curriculum stage carries (the rest are its loss weights).
_STAGE_FIELDS = ("min_length", "max_length", *NOISE_FIELDS)


@dataclass(frozen=True)
class SpectrumSettings:
    """What the generator draws: a stage's data settings plus the peptide and charge model.

    Lengths are in residues, ``peak_dropout`` a probability (0-1),
    ``mass_error_ppm`` the standard deviation of the fragment m/z error (ppm),
    ``intensity_variation`` the half-width of the uniform intensity factor (0-1).
    ``charge_probs`` holds ``(charge, probability)`` pairs summing to 1.
    """

    min_length: int
    max_length: int
    noise_peaks: int = 0
    peak_dropout: float = 0.0
    mass_error_ppm: float = 0.0
    intensity_variation: float = 0.0
    residue_distribution: str = "uniform"
    charge_probs: tuple[tuple[int, float], ...] = ((2, 0.7), (3, 0.3))

    def __post_init__(self) -> None:
        problems = []
        if not 2 <= self.min_length <= self.max_length:
            problems.append(
                f"lengths must satisfy 2 <= min_length <= max_length, "
                f"got {self.min_length} and {self.max_length}"
            )
        if self.noise_peaks < 0:
            problems.append(f"noise_peaks must be >= 0, got {self.noise_peaks}")
        if not 0.0 <= self.peak_dropout <= 1.0:
            problems.append(f"peak_dropout must be in [0, 1], got {self.peak_dropout}")
        if not self.mass_error_ppm >= 0.0:
            problems.append(f"mass_error_ppm must be >= 0, got {self.mass_error_ppm}")
        if not 0.0 <= self.intensity_variation <= 1.0:
            problems.append(
                f"intensity_variation must be in [0, 1], got {self.intensity_variation}"
            )
        if self.residue_distribution not in RESIDUE_DISTRIBUTIONS:
            problems.append(
                f"residue_distribution must be one of {', '.join(RESIDUE_DISTRIBUTIONS)}, "
                f"got {self.residue_distribution!r}"
            )
        charges = [charge for charge, _ in self.charge_probs]
        probs = [prob for _, prob in self.charge_probs]
        if not charges or min(charges) < 1 or min(probs) < 0 or abs(sum(probs) - 1) > 1e-6:
            problems.append(
                f"charge_probs must be (charge >= 1, probability >= 0) pairs summing to 1, "
                f"got {self.charge_probs}"
            )
        if problems:
            raise CurriculumError("spectrum settings: " + "; ".join(problems))

    @classmethod
    def from_stage(cls, stage, **overrides) -> SpectrumSettings:
        """Settings of a curriculum ``Stage``; keyword overrides that are not None win.

        ``SpectrumSettings.from_stage(stage, noise_peaks=20)`` is the stage with
        20 noise peaks; ``noise_peaks=None`` keeps the stage's value (handy for
        optional command-line options).
        """
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown spectrum settings: {', '.join(sorted(unknown))}")
        values = {name: getattr(stage, name) for name in _STAGE_FIELDS}
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def max_peaks(self) -> int:
        """Peak slots of every batch: b and y at charges 1 and 2 at max_length, plus noise.

        Fixed per settings, so every batch of a stage has the same shape.
        """
        return 4 * (self.max_length - 1) + self.noise_peaks


def generate_batch(
    settings: SpectrumSettings,
    batch_size: int,
    vocab: Vocabulary,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> SpectrumBatch:
    """A batch of ``batch_size`` synthetic spectra with their target tokens, on ``device``.

    ``generator`` must live on ``device``. ``tokens`` is ``[B, max_length + 1]``:
    residue ids, ``<eos>`` after the last residue, ``<pad>`` after that. Peaks
    are ``[B, settings.max_peaks]``, m/z ascending, padding last (m/z 0,
    intensity 0, mask False). ``precursor_mass_da`` is the exact neutral mass.
    """
    device = torch.device(device)
    tables = _tables(settings, vocab, device)
    n, width, k = batch_size, settings.max_length, settings.noise_peaks
    slots = 4 * (width - 1)  # [b1 | y1 | b2 | y2] fragment slots
    draw = {"generator": generator, "device": device}

    # Few, large random draws (each kernel call costs microseconds on a CPU). Uniform columns:
    # [charge | dropout (slots) | intensity factor (slots) | noise m/z (k) | noise intensity (k)]
    lengths = torch.randint(settings.min_length, width + 1, (n,), **draw)
    residues = _draw_residues(tables, n, width + 1, lengths, generator, device)
    uniform = torch.rand(n, 1 + 2 * slots + 2 * k, **draw)

    # Peptides: residue token ids, <eos> right after the last residue, <pad> after that.
    length_col = lengths.unsqueeze(-1)
    tokens = torch.where(tables.positions < length_col, residues, PAD_TOKEN)
    tokens = tokens.masked_fill_(tables.positions == length_col, EOS_TOKEN)

    # Masses in float64, rounded once to float32: clean peaks are exact to float32 precision.
    residue_masses = tables.mass_da[tokens[:, :width]]
    precursor_mass_da = peptide_mass_da(residue_masses).to(torch.float32)
    charge_index = (uniform[:, :1] >= tables.charge_cdf).sum(-1)
    precursor_charge = tables.charges[charge_index]

    # Fragments at charge 1 and 2; charge 2 only counts for precursors of charge >= 3.
    b_mz, y_mz, valid = fragment_mz(residue_masses, lengths, charge=1)
    singly = torch.cat([b_mz, y_mz], dim=-1)
    doubly = mz_from_neutral_mass(neutral_mass_from_mz(singly, 1), 2)
    peak_mz = torch.cat([singly, doubly], dim=-1).to(torch.float32)
    valid = valid.repeat(1, 2)
    present = torch.cat([valid, valid & (precursor_charge >= 3).unsqueeze(-1)], dim=-1)

    if settings.peak_dropout > 0:
        present &= uniform[:, 1 : 1 + slots] >= settings.peak_dropout
    if settings.mass_error_ppm > 0:
        # mz + mz * e * 1e-6 with e ~ Normal(0, mass_error_ppm)
        error = torch.randn(n, slots, **draw)
        peak_mz = torch.addcmul(peak_mz, peak_mz, error, value=settings.mass_error_ppm * 1e-6)
    nominal = tables.nominal_intensity
    intensity = nominal.expand(n, -1)
    if settings.intensity_variation > 0:
        # nominal * (1 - v + 2 v u), u ~ U[0, 1). A uniform factor, not a log-normal one: exp()
        # over more than 2048 elements runs on all cores and stalls for milliseconds whenever
        # another process holds one of them.
        v = settings.intensity_variation
        factor_u = uniform[:, 1 + slots : 1 + 2 * slots]
        intensity = torch.addcmul(nominal * (1 - v), nominal, factor_u, value=2 * v)

    if k > 0:
        noise = uniform[:, 1 + 2 * slots :]
        span = (precursor_mass_da - NOISE_MIN_MZ).unsqueeze(-1)
        low, high = NOISE_INTENSITY_RANGE
        peak_mz = torch.cat([peak_mz, NOISE_MIN_MZ + noise[:, :k] * span], dim=-1)
        intensity = torch.cat([intensity, low + (high - low) * noise[:, k:]], dim=-1)
        present = torch.cat([present, tables.noise_present.expand(n, -1)], dim=-1)

    # Sort by m/z with absent peaks last, then normalize to the base peak.
    # (An unstable sort: deterministic all the same, and 20x faster than stable at batch 1024.)
    sort_key = peak_mz.masked_fill_(~present, float("inf"))
    sorted_mz, order = torch.sort(sort_key, dim=-1)
    peak_mask = present.gather(-1, order)
    intensity = intensity.gather(-1, order).masked_fill_(~peak_mask, 0.0)
    intensity = intensity / intensity.amax(-1, keepdim=True).clamp_min_(1e-12)
    return SpectrumBatch(
        mz=sorted_mz.masked_fill_(~peak_mask, 0.0),
        intensity=intensity,
        peak_mask=peak_mask,
        precursor_mass_da=precursor_mass_da,
        precursor_charge=precursor_charge,
        tokens=tokens,
        lengths=lengths,
    )


def generate_spectra(
    settings: SpectrumSettings,
    n: int,
    vocab: Vocabulary,
    seed: int,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
) -> SpectrumBatch:
    """``n`` synthetic spectra drawn in chunks of ``batch_size`` from one generator.

    Deterministic for a seed (and a batch size): used for validation sets and
    the ``pepcurr spectra`` command.
    """
    if n < 1:
        raise CurriculumError(f"number of spectra must be >= 1, got {n}")
    generator = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        chunks.append(generate_batch(settings, size, vocab, generator, device))
    if len(chunks) == 1:
        return chunks[0]
    return SpectrumBatch(
        **{
            name: torch.cat([getattr(chunk, name) for chunk in chunks])
            for name in (
                "mz",
                "intensity",
                "peak_mask",
                "precursor_mass_da",
                "precursor_charge",
                "tokens",
                "lengths",
            )
        }
    )


@dataclass(frozen=True)
class _Tables:
    """Constant tensors of one (settings, vocabulary, device), built once and cached."""

    mass_da: torch.Tensor  # [vocab size] residue masses (Da), float64, 0 for specials
    positions: torch.Tensor  # [max_length + 1] token positions
    charges: torch.Tensor  # [C] precursor charges
    charge_cdf: torch.Tensor  # [C - 1] cumulative probabilities: the bin edges of u ~ U[0, 1)
    nominal_intensity: torch.Tensor  # [1, 4 * (max_length - 1)] for [b1 | y1 | b2 | y2]
    noise_present: torch.Tensor  # [1, noise_peaks] all True
    inside_ids: torch.Tensor  # residue ids allowed inside a peptide
    last_ids: torch.Tensor | None  # residue ids allowed last (None: same as inside)


@functools.lru_cache(maxsize=64)
def _tables(settings: SpectrumSettings, vocab: Vocabulary, device: torch.device) -> _Tables:
    sites = settings.max_length - 1
    nominal = [
        B_ION_INTENSITY,
        Y_ION_INTENSITY,
        B_ION_INTENSITY * DOUBLY_CHARGED_FACTOR,
        Y_ION_INTENSITY * DOUBLY_CHARGED_FACTOR,
    ]
    first_residue = len(vocab.tokens) - len(vocab.residues)
    inside_ids = torch.arange(first_residue, vocab.size, device=device)
    last_ids = None
    if settings.residue_distribution == "tryptic":
        last = [r for r in TRYPTIC_C_TERMINAL if r in vocab.residues]
        if not last:
            raise CurriculumError("the tryptic residue distribution needs K or R in the vocabulary")
        inside_ids = torch.tensor(
            [i for i, r in enumerate(vocab.tokens) if r in vocab.residues and r not in last],
            device=device,
        )
        last_ids = torch.tensor(vocab.encode(last), device=device)
    probs = [p for _, p in settings.charge_probs]
    return _Tables(
        mass_da=vocab.residue_masses(device=device, dtype=torch.float64),
        positions=torch.arange(settings.max_length + 1, device=device),
        charges=torch.tensor([c for c, _ in settings.charge_probs], device=device),
        charge_cdf=torch.tensor(probs, device=device).cumsum(0)[:-1],
        nominal_intensity=torch.tensor(nominal, device=device)
        .repeat_interleave(sites)
        .unsqueeze(0),
        noise_present=torch.ones(1, settings.noise_peaks, dtype=torch.bool, device=device),
        inside_ids=inside_ids,
        last_ids=last_ids,
    )


def _draw_residues(
    tables: _Tables,
    n: int,
    width: int,
    lengths: torch.Tensor,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Residue token ids ``[n, width]``; positions past a peptide's end are overwritten later."""
    picks = torch.randint(len(tables.inside_ids), (n, width), generator=generator, device=device)
    residues = tables.inside_ids[picks]
    if tables.last_ids is None:
        return residues
    picks = torch.randint(len(tables.last_ids), (n, 1), generator=generator, device=device)
    last = tables.last_ids[picks]
    return torch.where(tables.positions == (lengths - 1).unsqueeze(-1), last, residues)

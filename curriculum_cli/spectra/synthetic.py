"""Synthetic MS/MS spectra generated on the training device from a stage's data settings.

Every training step draws a fresh batch, so generation is fully vectorized
(no Python loop over peptides or peaks) and every random draw goes through one
``torch.Generator``: the same seed gives the same batch, bit for bit, on the CPU.

The model of a spectrum (see ``docs/spectra-and-mgf.md``):

- peptide length uniform in ``[min_length, max_length]``; residues tryptic by
  default (UniProtKB/Swiss-Prot composition inside, no K/R inside, ending in K
  or R) or uniform over the vocabulary's residues (``residue_distribution``);
  unmodified: a vocabulary's modified and N-terminal tokens are never drawn here (a
  curriculum's world draws them at its rates: ``simulator``);
- precursor charge from ``charge_probs`` (default 2+: 70%, 3+: 30%);
  the precursor's neutral mass is exact (no error on it);
- the b/y ladder of ``chemistry.peptide_fragment_ladder``: b and y ions at
  charge 1, and at charge 2 as well when the precursor is 3+ or higher; each
  fragment peak dropped with probability ``peak_dropout``;
- m/z error: each fragment m/z is multiplied by ``1 + e * 1e-6`` with
  ``e ~ Normal(0, mass_error_ppm)``;
- intensities drawn per fragment: y uniform in [0.2, 1.0], b in [0.05, 0.65],
  doubly charged fragments half of such a draw; each times a factor uniform in
  ``[1 - intensity_variation, 1 + intensity_variation)``;
- ``noise_peaks`` peaks uniform in m/z over ``[50, min(precursor mass, 2500)]``,
  intensity drawn as a b ion's, never dropped, no m/z error;
- only peaks inside the m/z window the MGF reader keeps (``chemistry.MIN_PEAK_MZ``
  to ``MAX_PEAK_MZ``, 50-2500) are kept;
- peaks sorted by m/z, padded to ``SpectrumSettings.max_peaks`` slots, then
  intensities divided by the spectrum's most intense peak (base peak = 1).

Not simulated: neutral losses, immonium ions, isotope peaks, internal
fragments, a/c/x/z ions, realistic (sequence-dependent) intensity patterns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import torch

from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.batch import SpectrumBatch, concat_batches
from curriculum_cli.spectra.chemistry import (
    MAX_PEAK_MZ,
    MIN_PEAK_MZ,
    SWISS_PROT_RESIDUE_PERCENT,
    ResidueDistribution,
    peptide_fragment_ladder,
    peptide_mass_da,
)
from curriculum_cli.spectra.simulator import simulate_batch
from curriculum_cli.spectra.stage_data import DATA_FIELDS, StageData
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN, Vocabulary
from curriculum_cli.spectra.world import World

RESIDUE_DISTRIBUTIONS = tuple(ResidueDistribution)
"""Accepted values of ``SpectrumSettings.residue_distribution`` (the first is the default)."""

TRYPTIC_C_TERMINAL = ("K", "R")
"""Residues a tryptic peptide ends with (trypsin cleaves after K and R)."""

ION_INTENSITY_RANGE = {"b": (0.05, 0.65), "y": (0.2, 1.0)}
"""Nominal intensity of a singly charged fragment: uniform in this range, drawn per fragment.
y ions are stronger on average (mean 0.6 against 0.35), as in HCD spectra of tryptic
peptides, but the ranges overlap: about one (b, y) pair in five has the brighter b."""

DOUBLY_CHARGED_FACTOR = 0.5
"""A doubly charged fragment's intensity: this times a draw of its singly charged range."""

NOISE_INTENSITY_RANGE = ION_INTENSITY_RANGE["b"]
"""Noise intensities are drawn exactly as b ions' are: a noise peak cannot be told from a b
ion by its intensity at all, and overlaps the lower 56% of the y ions' range."""


@dataclass(frozen=True)
class SpectrumSettings:
    """What the generator draws: a stage's data settings plus the peptide and charge model.

    Lengths are in residues, ``peak_dropout`` a probability (0-1),
    ``mass_error_ppm`` the standard deviation of the fragment m/z error (ppm),
    ``intensity_variation`` the half-width of the uniform intensity factor (0-1).
    ``charge_probs`` holds ``(charge, probability)`` pairs summing to 1.

    With a ``world`` (a curriculum's) the realistic simulator draws instead
    (``simulator.simulate_batch``): the world's peptides and charges (``residue_distribution``
    and ``charge_probs`` do not apply), the stage's lengths, and its noise fields as
    strengths relative to the world's reference.
    """

    min_length: int
    max_length: int
    noise_peaks: int = 0
    peak_dropout: float = 0.0
    mass_error_ppm: float = 0.0
    intensity_variation: float = 0.0
    residue_distribution: str = "tryptic"
    charge_probs: tuple[tuple[int, float], ...] = ((2, 0.7), (3, 0.3))
    world: World | None = None

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
    def from_stage(cls, stage: StageData, **overrides) -> SpectrumSettings:
        """Settings of a stage's data (a curriculum ``Stage`` is one); keyword overrides that
        are not None win.

        ``SpectrumSettings.from_stage(stage, noise_peaks=20)`` is the stage with
        20 noise peaks; ``noise_peaks=None`` keeps the stage's value (handy for
        optional command-line options); ``world=curriculum.world`` its curriculum's world.
        Overridden data fields keep a stage's bounds (a pydantic ``ValidationError``).
        """
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown spectrum settings: {', '.join(sorted(unknown))}")
        values = {name: getattr(stage, name) for name in DATA_FIELDS}
        values.update({name: value for name, value in overrides.items() if value is not None})
        if any(values[name] != getattr(stage, name) for name in DATA_FIELDS):
            StageData(**{name: values[name] for name in DATA_FIELDS})  # the bounds of a stage
        return cls(**values)

    @property
    def max_peaks(self) -> int:
        """Peak slots of every batch of the plain generator: b and y at charges 1 and 2 at
        max_length, plus noise. Fixed per settings, so every batch of a stage has the same
        shape. (A world's batches have as many slots as their fullest spectrum.)
        """
        return 4 * (self.max_length - 1) + self.noise_peaks


def generate_batch(
    settings: SpectrumSettings,
    batch_size: int,
    vocab: Vocabulary,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    bucketed: bool = False,
) -> SpectrumBatch:
    """A batch of ``batch_size`` synthetic spectra with their target tokens, on ``device``.

    ``generator`` must live on ``device``. ``tokens`` is ``[B, max_length + 1]``:
    residue ids, ``<eos>`` after the last residue, ``<pad>`` after that. Peaks
    are ``[B, settings.max_peaks]``, m/z ascending, padding last (m/z 0,
    intensity 0, mask False). ``precursor_mass_da`` is the exact neutral mass.
    With a world, ``simulator.simulate_batch`` makes the batch (``bucketed``: a
    training batch of similar spectra; see there).
    """
    if settings.world is not None:
        return simulate_batch(settings, batch_size, vocab, generator, device, bucketed)
    device = torch.device(device)
    tables = _tables(settings, vocab, device)
    n, width, k = batch_size, settings.max_length, settings.noise_peaks
    slots = 4 * (width - 1)  # (b, y, b++, y++) at each of the width - 1 cleavage sites
    draw = {"generator": generator, "device": device}

    # Few, large random draws (each kernel call costs microseconds on a CPU). Uniform columns:
    # [charge | dropout (slots) | intensity (slots) | intensity factor (slots) |
    #  noise m/z (k) | noise intensity (k) | residues (width + 1)]
    lengths = torch.randint(settings.min_length, width + 1, (n,), **draw)
    uniform = torch.rand(n, 1 + 3 * slots + 2 * k + width + 1, **draw)
    columns = torch.split(uniform, [1, slots, slots, slots, k, k, width + 1], dim=-1)
    charge_u, dropout_u, intensity_u, factor_u, noise_mz_u, noise_intensity_u, residue_u = columns

    # Peptides: residue token ids, <eos> right after the last residue, <pad> after that.
    length_col = lengths.unsqueeze(-1)
    residues = _draw_residues(tables, residue_u.contiguous(), length_col)
    tokens = torch.where(tables.positions < length_col, residues, PAD_TOKEN)
    tokens = tokens.masked_fill_(tables.positions == length_col, EOS_TOKEN)

    # Masses in float64, rounded once to float32: clean peaks are exact to float32 precision.
    residue_masses = tables.mass_da[tokens[:, :width]]
    precursor_mass_da = peptide_mass_da(residue_masses).to(torch.float32)
    charge_index = (charge_u >= tables.charge_cdf).sum(-1)
    precursor_charge = tables.charges[charge_index]

    # The b/y ladder (charge 2 only for precursors of charge >= 3), one slot per ion.
    ladder_mz, present = peptide_fragment_ladder(residue_masses, lengths, precursor_charge)
    peak_mz = ladder_mz.flatten(1).to(torch.float32)
    present = present.flatten(1)
    if settings.peak_dropout > 0:
        present &= dropout_u >= settings.peak_dropout
    if settings.mass_error_ppm > 0:
        # mz + mz * e * 1e-6 with e ~ Normal(0, mass_error_ppm)
        error = torch.randn(n, slots, **draw)
        peak_mz = torch.addcmul(peak_mz, peak_mz, error, value=settings.mass_error_ppm * 1e-6)
    # Per-fragment intensity low + span * u, u ~ U[0, 1), from its ion type's range.
    intensity = torch.addcmul(tables.intensity_low, tables.intensity_span, intensity_u)
    if settings.intensity_variation > 0:
        # times (1 - v + 2 v u), u ~ U[0, 1). A uniform factor, not a log-normal one: exp()
        # over more than 2048 elements runs on all cores and stalls for milliseconds whenever
        # another process holds one of them.
        v = settings.intensity_variation
        intensity = intensity * (1 - v + 2 * v * factor_u)

    if k > 0:
        # Noise m/z uniform in [MIN_PEAK_MZ, min(precursor mass, MAX_PEAK_MZ)].
        top = precursor_mass_da.clamp(max=MAX_PEAK_MZ).unsqueeze(-1)
        noise_mz = torch.addcmul(torch.full_like(top, MIN_PEAK_MZ), top - MIN_PEAK_MZ, noise_mz_u)
        low, high = NOISE_INTENSITY_RANGE
        peak_mz = torch.cat([peak_mz, noise_mz], dim=-1)
        intensity = torch.cat([intensity, low + (high - low) * noise_intensity_u], dim=-1)
        present = torch.cat([present, tables.noise_present.expand(n, -1)], dim=-1)

    # Only what the MGF reader would keep: m/z inside [MIN_PEAK_MZ, MAX_PEAK_MZ].
    present &= (peak_mz >= MIN_PEAK_MZ) & (peak_mz <= MAX_PEAK_MZ)

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
    return concat_batches(chunks)  # a world's chunks: padded to the widest


def residue_weights(vocab: Vocabulary, distribution: str) -> tuple[list[float], list[float]]:
    """Probabilities of each of ``vocab.residues`` inside a peptide and as its last residue.

    ``uniform``: every unmodified residue equally likely everywhere. ``tryptic``: inside,
    the UniProtKB/Swiss-Prot composition (``chemistry.SWISS_PROT_RESIDUE_PERCENT``) without
    K and R, renormalized; last, K or R in proportion to their Swiss-Prot frequencies (K
    51.2%, R 48.8%). With I folded into L, L takes both frequencies; ``C[Carbamidomethyl]``
    takes C's. A modified residue or an N-terminal modification (``vocab.modifications``)
    is never drawn: synthetic peptides are unmodified.
    """
    modified = {m.token for m in vocab.modifications}
    residues = [r for r in vocab.residues if r not in modified]
    if distribution == "uniform":
        return ([0.0 if r in modified else 1.0 / len(residues) for r in vocab.residues],) * 2
    if not any(r in TRYPTIC_C_TERMINAL for r in residues):
        raise CurriculumError("the tryptic residue distribution needs K or R in the vocabulary")

    def percent(residue: str) -> float:
        if residue in modified:
            return 0.0
        base = residue[0]
        value = SWISS_PROT_RESIDUE_PERCENT[base]
        if base == "L" and vocab.fold_il:
            value += SWISS_PROT_RESIDUE_PERCENT["I"]
        return value

    inside = [0.0 if r in TRYPTIC_C_TERMINAL else percent(r) for r in vocab.residues]
    last = [percent(r) if r in TRYPTIC_C_TERMINAL else 0.0 for r in vocab.residues]
    return [w / sum(inside) for w in inside], [w / sum(last) for w in last]


@dataclass(frozen=True)
class _Tables:
    """Constant tensors of one (settings, vocabulary, device), built once and cached."""

    mass_da: torch.Tensor  # [vocab size] residue masses (Da), float64, 0 for specials
    positions: torch.Tensor  # [max_length + 1] token positions
    charges: torch.Tensor  # [C] precursor charges
    charge_cdf: torch.Tensor  # [C - 1] cumulative probabilities: the bin edges of u ~ U[0, 1)
    intensity_low: torch.Tensor  # [1, slots] lowest nominal intensity of each ladder slot
    intensity_span: torch.Tensor  # [1, slots] width of its range
    noise_present: torch.Tensor  # [1, noise_peaks] all True
    residue_ids: torch.Tensor  # [R] token ids of the vocabulary's residues
    inside_cdf: torch.Tensor  # [R] cumulative probabilities of a residue inside a peptide
    last_cdf: torch.Tensor  # [R] ... of the last residue


@functools.lru_cache(maxsize=64)
def _tables(settings: SpectrumSettings, vocab: Vocabulary, device: torch.device) -> _Tables:
    sites = settings.max_length - 1
    ranges = [ION_INTENSITY_RANGE["b"], ION_INTENSITY_RANGE["y"]]
    ranges += [(low * DOUBLY_CHARGED_FACTOR, high * DOUBLY_CHARGED_FACTOR) for low, high in ranges]
    low = torch.tensor([lo for lo, _ in ranges], device=device).repeat(sites).unsqueeze(0)
    high = torch.tensor([hi for _, hi in ranges], device=device).repeat(sites).unsqueeze(0)
    inside, last = residue_weights(vocab, settings.residue_distribution)
    first_residue = vocab.size - len(vocab.residues)
    probs = [p for _, p in settings.charge_probs]
    return _Tables(
        mass_da=vocab.residue_masses(device=device, dtype=torch.float64),
        positions=torch.arange(settings.max_length + 1, device=device),
        charges=torch.tensor([c for c, _ in settings.charge_probs], device=device),
        charge_cdf=torch.tensor(probs, device=device).cumsum(0)[:-1],
        intensity_low=low,
        intensity_span=high - low,
        noise_present=torch.ones(1, settings.noise_peaks, dtype=torch.bool, device=device),
        residue_ids=torch.arange(first_residue, vocab.size, device=device),
        inside_cdf=_cdf(inside, device),
        last_cdf=_cdf(last, device),
    )


def _cdf(probabilities: list[float], device: torch.device) -> torch.Tensor:
    """Cumulative probabilities, exactly 1.0 from the last possible item on.

    So that no u < 1 can land past it on a rounding error (onto an impossible residue).
    """
    cdf = torch.tensor(probabilities, dtype=torch.float64).cumsum(0).float()
    last_possible = max(i for i, p in enumerate(probabilities) if p > 0)
    cdf[last_possible:] = 1.0
    return cdf.to(device)


def _draw_residues(tables: _Tables, u: torch.Tensor, length_col: torch.Tensor) -> torch.Tensor:
    """Residue token ids ``[n, width]`` from uniforms ``u`` by inverse CDF; the residue at
    ``length - 1`` from the last-residue distribution. Positions past the end are overwritten
    later."""
    top = len(tables.residue_ids) - 1
    inside = torch.searchsorted(tables.inside_cdf, u, right=True).clamp_(max=top)
    last = torch.searchsorted(tables.last_cdf, u, right=True).clamp_(max=top)
    is_last = tables.positions == (length_col - 1)
    return tables.residue_ids[torch.where(is_last, last, inside)]

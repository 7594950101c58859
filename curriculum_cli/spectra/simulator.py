"""Realistic synthetic spectra: the physics of a curriculum's ``world``, batched on the device.

``simulate_batch`` draws a batch the way ``synthetic.generate_batch`` does (no Python
loop over peptides or peaks, every random number from one ``torch.Generator``, the
same seed giving the same batch bit for bit on the CPU), from the parameters that
``pepcurr calibrate`` fitted (``world``). For each spectrum, in order:

1. a row of the world's spectrum table with a peptide length in the stage's range:
   precursor charge (2-4), length, headroom ``h`` (+ jitter) and noise count;
2. the peptide: residues from the world's composition (K/R inside make missed
   cleavages), every modification the run's vocabulary holds at the world's rate
   (``DEFAULT_MODIFICATION_RATES`` when it lists none);
3. ions, each with a mean log10 intensity ``mu`` (``world``): b, y, a and
   the neutral losses at charges 1 to ``ions.max_fragment_charge``; immonium ions of the residues
   present; internal fragments of 2-6 residues; the precursor and its H2O/NH3 losses.
   Each forms with probability ``sigmoid(gamma + eta mu)`` and has ``log10 A = h + mu
   + r``, ``r`` a Weibull scatter, correlated between neighbouring b/y ions;
4. 13C peaks (+1, +2) of the strongest ions at averagine ratios; noise peaks (the
   row's count, heights above the floor, m/z and mass defects as calibrated);
5. detection (``log10 A >= 0``) and the scan range; m/z errors (per spectrum and per
   peak), the precursor's m/z error and isotope error;
6. the source's processing (peaks closer than the resolution merge, its gap around
   the precursor) and then pepcurr's ``PeakFilter``, as for real spectra: precursor
   +/-2 Da at every charge removed, >= 1% of the base peak, the 150 strongest, base = 1.

A stage's noise fields scale four parts of this (``world.Reference``): ``noise_peaks``
everything that is not a b/y ion, ``peak_dropout`` the b/y ions the world misses (below
full strength each b/y ion is guaranteed with probability 1 - strength: formed, at least
at the floor, and kept whatever the row's peak count), ``mass_error_ppm`` the errors,
``intensity_variation`` the scatter ``r``. A spectrum keeps at most its row's count of
peaks (besides guaranteed b/y ions), the strongest. Peak slots are trimmed to the batch's
fullest spectrum; a training batch (``bucketed``) draws its rows from one of ``BUCKETS``
groups of similar peak counts, so that it pays only for the peaks it holds. See
``docs/spectra-and-mgf.md``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import (
    C13_C12_DELTA_DA,
    H2O_MASS_DA,
    MASS_DEFECT_SLOPE,
    PROTON_MASS_DA,
    averagine_ratios,
)
from curriculum_cli.spectra.fragments import BASIC, residue_letter
from curriculum_cli.spectra.ions import (
    INTACT_PRECURSOR,
    ION_FAMILY,
    SERIES,
    SERIES_FAMILIES,
    families_in,
    max_fragment_charge,
)
from curriculum_cli.spectra.peaks import PeakFilter
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS, Vocabulary
from curriculum_cli.spectra.world import (
    EFFECT_LETTERS,
    INTERNAL_LENGTHS,
    POSITION_BINS,
    PRECURSOR_CHARGES,
    RELATIVE_MZ_BINS,
    RELATIVE_MZ_MAX,
    World,
    a_span_name,
    basic_name,
    derived_name,
    effect_name,
    immonium_name,
    internal_length_name,
    position_name,
    series_name,
    span_name,
)

DEFAULT_MODIFICATION_RATES = {"residue": 0.05, "n_term": 0.02}
"""Rates of a vocabulary's modification the world does not list: a modified residue on
5% of its residue's sites, an N-terminal modification on 2% of the peptides."""

BUCKETS = 8
"""Groups of the world's spectra by peak count; a training batch draws from one."""

MONO_SLOTS = 128
"""Strongest monoisotopic ions per spectrum kept before their isotope peaks are added."""

NOISE_SLOTS = 160
"""Noise peaks a spectrum can have at most (2 of the 125 spectra of ``calibrated-hcd``
had more; the 150-peak limit of ``PeakFilter`` comes first anyway)."""

CANDIDATE_SLOTS = 200
"""Strongest peaks kept before the m/z errors, merging and the precursor removal (at
most 50 of them can be removed or merged before ``PeakFilter`` keeps its 150)."""

# The ion families of ``ions.ION_FAMILIES``, each group in the order of its slots.
_TERMINAL = SERIES_FAMILIES  # b, a, b-H2O, b-NH3, y, y-H2O, y-NH3: [n, F, Z, S] slots
_INTERNAL = families_in("internal")  # b-type, a-type
_IMMONIUM = ION_FAMILY["immonium"]
_PRECURSOR_LOSSES = tuple(f for f in families_in("precursor") if f.name != INTACT_PRECURSOR)
_PRECURSOR_KINDS = len(_PRECURSOR_LOSSES) + 1  # the losses, then the intact precursor
_MAX_PRECURSOR_CHARGE = max(PRECURSOR_CHARGES)
_EULER_GAMMA = 0.5772156649015329
# Columns of a token's chemistry (``_Tables.chemistry``): one per residue set a terminal family
# needs (H2O losers, NH3 losers), then these
_LOSS_SETS = tuple(dict.fromkeys(f.needs for f in _TERMINAL if f.needs))
_BASIC, _PROLINE, _ACIDIC, _N_EFFECT, _C_EFFECT = range(len(_LOSS_SETS), len(_LOSS_SETS) + 5)
_CHEMISTRY_COLUMNS = _C_EFFECT + 1


@dataclass(frozen=True)
class Strength:
    """How much of four parts of the world a stage turns on (1: as calibrated)."""

    noise: float  # every peak that is not a b/y ion
    dropout: float  # missing b/y ions (< 1: some restored; > 1: more removed)
    errors: float  # m/z errors
    scatter: float  # intensity scatter

    @classmethod
    def of(cls, settings) -> Strength:
        """From a ``SpectrumSettings``' noise fields over its world's reference values."""
        reference = settings.world.reference
        return cls(
            noise=settings.noise_peaks / reference.noise_peaks,
            dropout=settings.peak_dropout / reference.peak_dropout,
            errors=settings.mass_error_ppm / reference.mass_error_ppm,
            scatter=settings.intensity_variation / reference.intensity_variation,
        )


@dataclass(frozen=True)
class _Tables:
    """Constant tensors of one (world, stage lengths, vocabulary, device), built once."""

    width: int  # the stage's longest peptide
    fragment_charges: int  # highest fragment charge of the rows (1-3)
    token_width: int  # target tokens: width + <eos> (+ 1 with N-terminal tokens)
    rows: dict[str, torch.Tensor]  # the eligible table rows, sorted by peak count
    bucket_cdf: torch.Tensor  # [buckets] cumulative share of the rows
    bucket_start: torch.Tensor  # [buckets] first row of each bucket
    bucket_size: torch.Tensor
    residue_ids: torch.Tensor  # [R] unmodified residue tokens
    inner_cdf: torch.Tensor  # [R]
    last_cdf: torch.Tensor  # [R]
    mod_target: torch.Tensor  # [V, K] a token's modified forms (itself where none)
    mod_cdf: torch.Tensor  # [V, K] cumulative rates of them (2 where none)
    n_term_ids: torch.Tensor  # [J] N-terminal tokens
    n_term_cdf: torch.Tensor  # [V, J] cumulative rates given the first residue token
    mass_da: torch.Tensor  # [V] float64 (0 for specials, the delta for N-terminal tokens)
    chemistry: torch.Tensor  # [V, _CHEMISTRY_COLUMNS] see the column constants above
    immonium_mz: torch.Tensor  # [V]
    immonium_mu: torch.Tensor  # [V] (-inf: no immonium ion)
    series: torch.Tensor  # [F, Z, 5] series x fragment charge x precursor charge (-inf: none)
    position: torch.Tensor  # [2, 2, POSITION_BINS] series x (charge 1, >= 2) x bin
    span: torch.Tensor  # [2, 2] series x (1, 2 residues)
    basic: torch.Tensor  # [2] per basic residue, fragment charge >= 2
    a_span: torch.Tensor  # [F, S] a1 / a2 on the a family
    family_series: torch.Tensor  # [F]
    family_shift: torch.Tensor  # [F, 1] (Da)
    family_loss: torch.Tensor  # [F]
    family_group: dict[str, torch.Tensor]  # kappa, gamma, eta per family [F, 1, 1]
    internal_length: torch.Tensor  # [5]
    sites: torch.Tensor  # [S] the cleavage sites 0..W-2
    internal_starts: torch.Tensor  # [W-2] first residue of each internal fragment
    internal_ends: torch.Tensor  # [W-2, 5] residue after its last (may pass W)
    position_index: torch.Tensor  # [F, Z, 1] offset of (series, charge class) in ``position``
    fragment_charge: torch.Tensor  # [1, 1, Z, 1] float
    ion_charge: torch.Tensor  # [1, ions] charge of every ion slot (terminal ... precursor)
    precursor_charge: torch.Tensor  # [4] the charges 1-4
    field_cholesky: torch.Tensor  # [S, S]
    relative_mz_cdf: torch.Tensor
    scalars: dict


def simulate_batch(
    settings,
    batch_size: int,
    vocab: Vocabulary,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    bucketed: bool = False,
) -> SpectrumBatch:
    """A batch of the world's spectra (``settings.world``) at the stage's lengths and
    strengths, on ``device`` (``generator`` lives there). Peaks ``[B, P]`` with ``P`` the
    batch's fullest spectrum, m/z ascending, padding last; ``precursor_mass_da`` is the
    *observed* neutral mass (with its error); ``tokens`` hold an N-terminal modification
    first when there is one. ``bucketed``: the rows come from one peak-count bucket."""
    device = torch.device(device)
    tables = _tables(settings.world, settings.min_length, settings.max_length, vocab, device)
    strength = Strength.of(settings)
    n, width = batch_size, tables.width
    sites, charges, k = width - 1, tables.fragment_charges, len(_TERMINAL)
    internal = len(_INTERNAL) * (width - 2) * len(INTERNAL_LENGTHS)
    precursor = _PRECURSOR_KINDS * _MAX_PRECURSOR_CHARGE
    symbols = tables.mass_da.shape[0]
    draw = {"generator": generator, "device": device}
    # Every random number of the batch in two draws, split by column blocks.
    u_blocks = [2, 3 * width + 2, 2 * internal, 2 * symbols, 2 * precursor, 5 * NOISE_SLOTS,
                len(SERIES) * charges * sites, 1]  # fmt: skip
    z_blocks = [6 * sites, 2 * k * charges * sites, 2 * MONO_SLOTS, 2 * NOISE_SLOTS, 4,
                CANDIDATE_SLOTS]  # fmt: skip
    u_row, u_peptide, u_internal, u_immonium, u_precursor, u_noise, u_dropout, u_iso = torch.rand(
        n, sum(u_blocks), **draw
    ).split(u_blocks, dim=-1)
    z_fields, z_terminal, z_isotopes, z_noise, z_spectrum, z_peaks = torch.randn(
        n, sum(z_blocks), **draw
    ).split(z_blocks, dim=-1)
    row = _draw_rows(tables, u_row, bucketed)
    length, charge = tables.rows["length"][row], tables.rows["charge"][row]
    headroom = tables.rows["headroom"][row] + tables.scalars["jitter"] * z_spectrum[:, 0]
    residues, n_term, tokens, lengths = _draw_peptides(tables, u_peptide, length)

    masses = tables.mass_da[residues]  # [n, W] float64, 0 at padding
    masses[:, 0] += tables.mass_da[n_term]
    cumulative = torch.cumsum(masses, -1)
    peptide_mass = cumulative[:, -1] + H2O_MASS_DA  # float64
    chemistry = tables.chemistry[residues]  # [n, W, _CHEMISTRY_COLUMNS]
    *terminal, guaranteed = _terminal_ions(
        tables, strength, cumulative, peptide_mass, chemistry, length, charge, headroom,
        z_fields, z_terminal, u_dropout,
    )  # fmt: skip
    ions = [
        terminal,
        _internal_ions(tables, strength, cumulative, chemistry, length, headroom, u_internal),
        _immonium_ions(tables, strength, residues, headroom, u_immonium),
        _precursor_ions(tables, strength, peptide_mass, charge, headroom, u_precursor),
    ]  # fmt: skip
    level = torch.cat([i[0] for i in ions], -1)  # log10 A over the floor, -inf: absent
    mz = torch.cat([i[1] for i in ions], -1)
    others = torch.zeros_like(mz[:, guaranteed.shape[-1] :], dtype=torch.bool)
    kept = torch.cat([guaranteed, others], -1)  # b/y ions a stage guarantees
    level, mz, kept = _with_isotopes(tables, level, mz, kept, z_isotopes)
    noise_level, noise_mz = _noise_peaks(tables, strength, row, headroom, peptide_mass,
                                         u_noise, z_noise)  # fmt: skip
    level = torch.cat([level, noise_level], -1)
    mz = torch.cat([mz, noise_mz], -1)
    kept = torch.cat([kept, torch.zeros_like(noise_level, dtype=torch.bool)], -1)
    observed_mass = _observed_precursor(tables, strength, peptide_mass, z_spectrum, u_iso)
    most = tables.rows["peaks"][row]  # the row's own count of peaks
    mz_out, intensity, mask = _processed(tables, strength, level, mz, kept, observed_mass, charge,
                                         most, z_spectrum, z_peaks)  # fmt: skip
    return SpectrumBatch(
        mz=mz_out,
        intensity=intensity,
        peak_mask=mask,
        precursor_mass_da=observed_mass.to(torch.float32),
        precursor_charge=charge,
        tokens=tokens,
        lengths=lengths,
    )


# ----------------------------------------------------------------------------
# Peptides
# ----------------------------------------------------------------------------


def _draw_rows(tables: _Tables, u: torch.Tensor, bucketed: bool) -> torch.Tensor:
    """Row of the world's spectrum table per spectrum, uniform over the eligible rows; with
    ``bucketed`` all from one bucket (picked with probability its share of the rows)."""
    n_rows = tables.rows["length"].shape[0]
    if not bucketed:
        return (u[:, 0] * n_rows).long().clamp_(max=n_rows - 1)
    bucket = torch.searchsorted(tables.bucket_cdf, u[:1, 1].contiguous(), right=True)
    bucket = bucket.clamp_(max=len(tables.bucket_cdf) - 1)
    offset = (u[:, 0] * tables.bucket_size[bucket]).long()
    return (tables.bucket_start[bucket] + offset).clamp_(max=n_rows - 1)


def _draw_peptides(tables: _Tables, u: torch.Tensor, length: torch.Tensor):
    """Residue tokens ``[n, W]`` (PAD after the end), the N-terminal token (0: none), the
    target tokens and their lengths, from uniforms ``u`` ``[n, 3 W + 2]``."""
    width = tables.width
    u_residue, u_mod, u_rest = u[:, :width], u[:, width : 2 * width], u[:, 2 * width :]
    positions = torch.arange(width, device=u.device)
    top = len(tables.residue_ids) - 1
    u_residue = u_residue.contiguous()
    inner = torch.searchsorted(tables.inner_cdf, u_residue, right=True).clamp_(max=top)
    last = torch.searchsorted(tables.last_cdf, u_residue, right=True).clamp_(max=top)
    length_col = length.unsqueeze(-1)
    residues = tables.residue_ids[torch.where(positions == length_col - 1, last, inner)]
    # modified forms: the first whose cumulative rate exceeds the draw
    choice = (u_mod.unsqueeze(-1) >= tables.mod_cdf[residues]).sum(-1, keepdim=True)
    targets = torch.cat([tables.mod_target[residues], residues.unsqueeze(-1)], -1)
    residues = targets.gather(-1, choice).squeeze(-1)
    residues = residues.masked_fill_(positions >= length_col, PAD_TOKEN)
    n_terms = len(tables.n_term_ids)
    n_term = torch.zeros_like(length)
    if n_terms:
        j = (u_rest[:, :1] >= tables.n_term_cdf[residues[:, 0]]).sum(-1)
        n_term = torch.cat([tables.n_term_ids, n_term.new_zeros(1)])[j]
    has_n_term = n_term > 0
    tokens = torch.full((len(length), tables.token_width), PAD_TOKEN, device=u.device)
    shifted = has_n_term.long().unsqueeze(-1)
    tokens.scatter_(1, positions + shifted, residues)
    tokens[:, 0] = torch.where(has_n_term, n_term, tokens[:, 0])
    lengths = length + has_n_term.long()
    tokens.scatter_(1, lengths.unsqueeze(-1), EOS_TOKEN)
    return residues, n_term, tokens, lengths


# ----------------------------------------------------------------------------
# Ions: (log10 A over the floor, m/z, charge), each [n, slots]
# ----------------------------------------------------------------------------


def _weibull_log10(u: torch.Tensor, kappa) -> torch.Tensor:
    """log10 of a Weibull (shape ``kappa``, scale 1) quantile at ``u``: log10(-ln(1-u))/kappa."""
    return torch.log10(-torch.log1p(-u.clamp(1e-12, 1 - 1e-7))) / kappa


def _scaled(r: torch.Tensor, kappa, scatter: float) -> torch.Tensor:
    """A Weibull scatter ``r`` shrunk towards its mean by ``scatter`` (1: unchanged)."""
    if scatter == 1.0:
        return r
    mean = -_EULER_GAMMA / math.log(10.0) / kappa
    return mean + scatter * (r - mean)


def _formed_share(noise: float) -> float:
    """A stage's share of the calibrated formation of ions that are not b or y."""
    return min(noise, 1.0)


def _times(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x * factor``, without the operator call when the factor is 1 (the same numbers)."""
    return x if factor == 1.0 else x * factor


def _terminal_ions(tables, strength, cumulative, peptide_mass, chemistry, length, charge,
                   headroom, z_fields, z_terminal, u_dropout):  # fmt: skip
    """b, y, a and neutral losses (``_TERMINAL``) at fragment charges 1..Z: ``[n, F * Z * S]``
    each."""
    n, sites = cumulative.shape[0], tables.width - 1
    k, charges = len(_TERMINAL), tables.fragment_charges
    counts = torch.cumsum(chemistry[..., : _BASIC + 1], 1)  # loss sets, basic: prefix counts
    prefix = counts[:, :-1]  # [n, S, loss sets + 1]
    suffix = counts[:, -1:] - prefix
    site = tables.sites
    length_col = length.unsqueeze(-1)
    site_ok = site < length_col - 1  # [n, S]
    span = torch.stack([(site + 1).expand(n, sites), length_col - 1 - site], 1)  # [n, 2, S]
    bins = torch.div(span * POSITION_BINS, length_col.unsqueeze(1), rounding_mode="floor")
    bins = bins.clamp_(0, POSITION_BINS - 1)
    not_mobile = (charge <= counts[:, -1, _BASIC]).unsqueeze(-1)  # [n, 1]
    s = tables.scalars
    bond = chemistry[:, :-1, _N_EFFECT] + chemistry[:, 1:, _C_EFFECT]  # [n, S]
    bond = bond + not_mobile * (s["nonmobile"] + s["nonmobile_de"] * chemistry[:, :-1, _ACIDIC]
                                + s["nonmobile_p"] * chemistry[:, 1:, _PROLINE])  # fmt: skip
    fs = tables.family_series
    position = tables.position.view(-1)[tables.position_index + bins[:, fs].unsqueeze(2)]
    span_effect = (span == 1) * tables.span[:, 0].view(1, 2, 1) + (span == 2) * tables.span[
        :, 1
    ].view(1, 2, 1)  # [n, 2, S]
    basic = torch.stack([prefix[..., _BASIC], suffix[..., _BASIC]], 1) * tables.basic.view(1, 2, 1)
    z = tables.fragment_charge
    series = tables.series[:, :, charge].permute(2, 0, 1).unsqueeze(-1)  # [n, F, Z, 1]
    mu = (series + position
          + (span_effect + bond.unsqueeze(1))[:, fs].unsqueeze(2)
          + (z >= 2) * basic[:, fs].unsqueeze(2) + tables.a_span.view(1, k, 1, sites))  # fmt: skip
    holds = torch.stack([
        torch.stack([site_ok, *(piece[..., c] > 0 for c in range(len(_LOSS_SETS)))], 1)
        for piece in (prefix, suffix)
    ], 1)  # [n, 2 series, 1 + loss sets, S]: nothing needed, or a residue of each set  # fmt: skip
    possible = (holds[:, fs, tables.family_loss] & site_ok.unsqueeze(1)).unsqueeze(2)
    possible = possible & torch.isfinite(series)
    fragment = torch.stack([cumulative[:, :-1], peptide_mass.unsqueeze(-1) - cumulative[:, :-1]], 1)
    neutral = (fragment.float()[:, fs] + tables.family_shift).unsqueeze(2)  # [n, F, 1, S]
    mz = (neutral + z * PROTON_MASS_DA) / z

    # Correlated scatter: a smooth field along each series and a term per bond (one pair for
    # the intensity, one for the formation), centred over the peptide's sites.
    fields = z_fields.view(n, 6, sites)
    smooth = fields[:, :4] @ tables.field_cholesky.T
    valid = site_ok.unsqueeze(1).float()
    parts = torch.cat([smooth, fields[:, 4:]], 1)
    parts = parts - (parts * valid).sum(-1, keepdim=True) / valid.sum(-1, keepdim=True).clamp_min(1)
    field_w, bond_w = math.sqrt(s["field_share"]), math.sqrt(s["bond_share"])
    own_w = math.sqrt(max(1.0 - s["field_share"] - s["bond_share"], 0.0))
    shared = (field_w * parts[:, :2] + bond_w * parts[:, 4:5])[:, fs].unsqueeze(2)
    shared_formed = (field_w * parts[:, 2:4] + bond_w * parts[:, 5:6])[:, fs].unsqueeze(2)
    z_intensity, z_formed = z_terminal.view(n, 2, k, charges, sites).unbind(1)
    group = tables.family_group
    r = _weibull_log10(torch.special.ndtr(shared + own_w * z_intensity), group["kappa"])
    r = _scaled(r, group["kappa"], strength.scatter)
    p_formed = torch.sigmoid(group["gamma"] + group["eta"] * mu.clamp(min=-30.0))
    if _formed_share(strength.noise) < 1.0:  # only b/y ions keep their calibrated formation
        share = _formed_share(strength.noise)
        p_formed = p_formed * group["by"] + p_formed * (1 - group["by"]) * share
    formed = torch.special.ndtr(shared_formed + own_w * z_formed) > 1 - p_formed
    level = headroom.view(n, 1, 1, 1) + mu + r
    present = possible & formed & (level >= 0)
    guaranteed = torch.zeros_like(present)
    if strength.dropout != 1.0:  # b/y ions only
        u = u_dropout.view(n, 2, charges, sites)[:, fs]  # one draw per b and y ion
        by = group["by"].bool()
        if strength.dropout < 1.0:  # guaranteed: formed, at least at the floor, and kept
            guaranteed = by & possible & (u < 1.0 - strength.dropout)
            level = torch.where(guaranteed & ~present, level.clamp(min=0.0), level)
            present = present | guaranteed
        else:
            present = present & ~(by & (u < min(strength.dropout - 1.0, 1.0)))
    level = torch.where(present, level, -math.inf)
    return level.reshape(n, -1), mz.reshape(n, -1), guaranteed.reshape(n, -1)


def _internal_ions(tables, strength, cumulative, chemistry, length, headroom, u):
    """Internal b- and a-type fragments of 2-6 residues, charge 1: ``[n, 2 * (W-2) * 5]``."""
    n, width = cumulative.shape[0], tables.width
    s = tables.scalars
    starts, ends = tables.internal_starts, tables.internal_ends
    ends_c = ends.clamp(max=width)
    with_zero = torch.cat([torch.zeros_like(cumulative[:, :1]), cumulative], -1)
    neutral = (with_zero[:, ends_c] - with_zero[:, starts].unsqueeze(-1)).float()  # [n, W-2, 5]
    inside = ends.unsqueeze(0) <= length.view(n, 1, 1) - 1
    proline = torch.cat([chemistry[..., _PROLINE], torch.zeros_like(chemistry[:, :1, 0])], -1)
    basic = torch.cat(
        [torch.zeros_like(chemistry[:, :1, 0]), torch.cumsum(chemistry[..., _BASIC], 1)], -1
    )
    has_basic = (basic[:, ends_c] - basic[:, starts].unsqueeze(-1)) > 0
    mu = tables.internal_length + s["internal_p_first"] * proline[:, 1 : width - 1].unsqueeze(-1)
    mu = mu + s["internal_p_after"] * proline[:, ends_c] + s["internal_basic"] * has_basic
    neutral = torch.stack([neutral + f.shift_da for f in _INTERNAL], 1)  # b-type, a-type
    mz = neutral + PROTON_MASS_DA
    mu = torch.stack([mu + s["internal_a"] if f.name == "internal-a" else mu for f in _INTERNAL], 1)
    mu = mu + s["internal_mz300"] * (mz >= 300) + s["internal_mz600"] * (mz >= 600)
    u_level, u_formed = u.view(n, *mu.shape[1:], 2).unbind(-1)
    p_formed = torch.sigmoid(s["internal_gamma"] + s["internal_eta"] * mu)
    formed = u_formed < _times(p_formed, _formed_share(strength.noise))
    r = _scaled(_weibull_log10(u_level, s["internal_kappa"]), s["internal_kappa"], strength.scatter)
    level = torch.where(inside.unsqueeze(1) & formed, headroom.view(n, 1, 1, 1) + mu + r, -math.inf)
    return level.reshape(n, -1), mz.reshape(n, -1)


def _immonium_ions(tables, strength, residues, headroom, u):
    """The immonium ion of each residue token the peptide holds: ``[n, V]``."""
    n, symbols = residues.shape[0], tables.mass_da.shape[0]
    s = tables.scalars
    present = torch.zeros(n, symbols, dtype=torch.bool, device=residues.device)
    present.scatter_(1, residues, True)
    mu = tables.immonium_mu
    u_level, u_formed = u[:, :symbols], u[:, symbols:]
    p_formed = torch.sigmoid(s["immonium_gamma"] + s["immonium_eta"] * mu.clamp(min=-30.0))
    formed = u_formed < _times(p_formed, _formed_share(strength.noise))
    r = _scaled(_weibull_log10(u_level, s["immonium_kappa"]), s["immonium_kappa"], strength.scatter)
    level = torch.where(present & formed, headroom.unsqueeze(-1) + mu + r, -math.inf)
    return level, tables.immonium_mz.expand(n, symbols)


def _precursor_ions(tables, strength, peptide_mass, charge, headroom, u):
    """The precursor minus H2O and NH3 (``_PRECURSOR_LOSSES``), and intact, at charges 1-4 up
    to its own: ``[n, 12]``."""
    n, charges, losses = peptide_mass.shape[0], _MAX_PRECURSOR_CHARGE, len(_PRECURSOR_LOSSES)
    s = tables.scalars
    z = tables.ion_charge[:, -charges:].view(1, 1, charges)
    mass = peptide_mass.float().view(n, 1, 1)
    neutral = torch.cat([mass + f.shift_da for f in _PRECURSOR_LOSSES] + [mass], 1)  # [n, 3, 1]
    mz = (neutral + z * PROTON_MASS_DA) / z  # [n, 3, 4]
    u_level, u_formed = u.view(n, 2, _PRECURSOR_KINDS, charges).unbind(1)
    mu = s["precursor_loss"]
    share = _formed_share(strength.noise)
    formed_loss = u_formed[:, :losses] < s["precursor_formed"] * share
    r = _scaled(
        _weibull_log10(u_level, s["precursor_kappa"]), s["precursor_kappa"], strength.scatter
    )
    loss_level = torch.where(formed_loss, headroom.view(n, 1, 1) + mu + r[:, :losses], -math.inf)
    intact = u_formed[:, losses:] < s["precursor_peak_rate"] * share
    intact_level = torch.where(intact, s["precursor_peak_height"] + r[:, losses:], -math.inf)
    level = torch.cat([loss_level, intact_level], 1)
    level = torch.where(z <= charge.view(n, 1, 1), level, -math.inf)
    return level.reshape(n, -1), mz.reshape(n, -1)


def _with_isotopes(tables, level, mz, kept, z):
    """The ``MONO_SLOTS`` strongest ions with their +1 and +2 13C peaks: averagine ratios of
    the ion's neutral mass, times the world's offset, with a log-normal scatter."""
    n = level.shape[0]
    s = tables.scalars
    slots = min(MONO_SLOTS, level.shape[-1])
    level, index = torch.topk(level, slots, dim=-1)
    mz, charge = mz.gather(-1, index), tables.ion_charge.expand(n, -1).gather(-1, index)
    kept = kept.gather(-1, index)
    neutral = mz * charge - charge * PROTON_MASS_DA
    plus_1, plus_2 = averagine_ratios(neutral)
    ratios = torch.log10(torch.stack([plus_1, plus_2], 1).clamp_min(1e-6)) + s["isotope_offset"]
    isotopes = level.unsqueeze(1) + ratios + s["isotope_sd"] * z[:, : 2 * slots].view(n, 2, slots)
    step = C13_C12_DELTA_DA / charge
    mz = torch.cat([mz, mz + step, mz + 2 * step], -1)
    kept = torch.cat([kept, torch.zeros_like(isotopes.reshape(n, -1), dtype=torch.bool)], -1)
    return torch.cat([level, isotopes.reshape(n, -1)], -1), mz, kept


def _noise_peaks(tables, strength, row, headroom, peptide_mass, u, z):
    """The row's count of unexplained peaks (times the stage's strength), heights above the
    floor, m/z from the world's histogram snapped to its mass-defect mixture, and a +1
    isotope each: ``[n, 2 * NOISE_SLOTS]``."""
    n, slots = u.shape[0], NOISE_SLOTS
    s = tables.scalars
    u_active, u_bin, u_within, u_defect, u_height = u.view(n, 5, slots).unbind(1)
    expected = tables.rows["noise"][row] * strength.noise
    active = u_active < (expected / slots).unsqueeze(-1)
    # log10 A = h + nu + log10(E) / kappa >= 0 (seen): E >= e0, so E = e0 + Exp(1)
    kappa, nu = s["noise_kappa"], s["noise_nu"]
    e0 = torch.pow(10.0, -kappa * (headroom + nu)).unsqueeze(-1)
    height = (headroom.unsqueeze(-1) + nu) + torch.log10(
        e0 - torch.log(u_height.clamp_min(1e-12))
    ) / kappa
    bins = torch.searchsorted(tables.relative_mz_cdf, u_bin.contiguous(), right=True)
    bins = bins.clamp_(max=RELATIVE_MZ_BINS - 1)
    bin_width = RELATIVE_MZ_MAX / RELATIVE_MZ_BINS
    mz = (bins + u_within) * bin_width * peptide_mass.float().unsqueeze(-1)
    peptide_like = u_defect < s["peptide_like"]
    half = ~peptide_like & (u_defect < s["peptide_like"] + s["half_integer"])
    defect = s["defect_mean"] + s["defect_sd"] * z[:, :slots]
    uniform = (u_defect - s["peptide_like"] - s["half_integer"]) / max(
        1e-9, 1 - s["peptide_like"] - s["half_integer"]
    ) - 0.5
    mz = torch.round(mz / MASS_DEFECT_SLOPE) * MASS_DEFECT_SLOPE + torch.where(
        peptide_like, defect, torch.where(half, 0.5 + defect, uniform)
    )
    charge = 1.0 + half.float()  # the half-integer grid: doubly charged
    level = torch.where(active, height, -math.inf)
    plus_1, _ = averagine_ratios(mz * charge)
    isotope = level + torch.log10(plus_1.clamp_min(1e-6)) + s["isotope_offset"]
    isotope = isotope + s["isotope_sd"] * z[:, slots:]
    return torch.cat([level, isotope], -1), torch.cat([mz, mz + C13_C12_DELTA_DA / charge], -1)


def _observed_precursor(tables, strength, peptide_mass, z, u):
    """The neutral mass an instrument reports: ppm error, and +1 13C at the isotope-error
    rate (float64)."""
    s = tables.scalars
    ppm = s["precursor_ppm_mean"] + s["precursor_ppm_sd"] * z[:, 1].double()
    ppm = _times(ppm, strength.errors)
    mass = peptide_mass * (1 + 1e-6 * ppm)
    isotope_error = u[:, 0] < s["isotope_error_rate"] * min(strength.errors, 1.0)
    return mass + C13_C12_DELTA_DA * isotope_error.double()


def _processed(tables, strength, level, mz, kept, observed_mass, charge, most, z_spectrum,
               z_peaks):  # fmt: skip
    """Detection and the scan range, m/z errors, the source's and pepcurr's preprocessing: peaks
    ``[n, P]`` (m/z ascending, base peak 1, padding last), ``P`` the fullest. Beside the
    guaranteed b/y ions (``kept``), a spectrum keeps only peaks among its ``most`` strongest."""
    n = level.shape[0]
    s = tables.scalars
    seen = (level >= 0) & (mz >= s["min_mz"]) & (mz <= s["max_mz"])
    level = torch.where(seen, level, -math.inf)
    level, index = torch.topk(level, min(CANDIDATE_SLOTS, level.shape[-1]), dim=-1)
    mz, kept = mz.gather(-1, index), kept.gather(-1, index)
    offset_ppm = s["fragment_offset_mean"] + s["fragment_offset_sd"] * z_spectrum[:, 2:3]
    ppm = _times(offset_ppm + s["fragment_ppm_sd"] * z_peaks[:, : mz.shape[-1]], strength.errors)
    mz = torch.addcmul(mz, mz, ppm, value=1e-6)
    # The precursor at every charge up to its own: PeakFilter's +/-2 Da, the source's gap.
    z = tables.precursor_charge
    precursor_mz = ((observed_mass.unsqueeze(-1) + z * PROTON_MASS_DA) / z).float()
    precursor_mz = torch.where(z <= charge.unsqueeze(-1), precursor_mz, -1e4)
    near = (mz.unsqueeze(-1) - precursor_mz.unsqueeze(1)).abs().amin(-1) <= s["precursor_tol"]
    own = precursor_mz.gather(-1, (charge - 1).unsqueeze(-1))
    near |= (mz - own).abs() <= s["gap"]
    level = level.masked_fill(near, -math.inf)
    # m/z ascending; a peak closer to the next than the resolution merges into it
    mz, order = torch.sort(torch.where(torch.isfinite(level), mz, math.inf), -1)
    level, kept = level.gather(-1, order), kept.gather(-1, order)
    intensity = torch.pow(10.0, level - level.amax(-1, keepdim=True).clamp(min=-1e4))  # -inf: 0
    if s["merge_ppm"] > 0:
        after, before = mz[:, 1:], mz[:, :-1]
        close = ((after - before) <= s["merge_ppm"] * 1e-6 * after) & torch.isfinite(after)
        merged = intensity[:, :-1] + torch.where(close, intensity[:, 1:], 0.0)
        centroid = (before * intensity[:, :-1] + after * intensity[:, 1:]) / merged.clamp_min(1e-30)
        mz = torch.cat([torch.where(close, centroid, before), mz[:, -1:]], -1)
        intensity = torch.cat([merged, intensity[:, -1:]], -1)
        intensity[:, 1:] = intensity[:, 1:].masked_fill(close, 0.0)
        kept = torch.cat([kept[:, :-1] | (close & kept[:, 1:]), kept[:, -1:]], -1)
    # PeakFilter: >= min_intensity of the base peak, the max_peaks strongest, base = 1; and
    # the row's count: other peaks only among the ``most`` strongest
    base = intensity.amax(-1, keepdim=True)
    strongest = torch.topk(intensity, min(s["max_peaks"], intensity.shape[-1]), dim=-1).values
    rank = (most.clamp(max=strongest.shape[-1]) - 1).clamp_(min=0).unsqueeze(-1)
    floor = torch.maximum(strongest[:, -1:], s["min_intensity"] * base)
    among_most = intensity >= strongest.gather(-1, rank)
    keep = (intensity >= floor) & (intensity > 0) & (kept | among_most)
    counts = keep.sum(-1)
    width = max(int(counts.max()), 1)  # the batch's fullest spectrum (a host sync)
    slot = torch.where(keep, torch.cumsum(keep, -1) - 1, width)
    out_mz = torch.zeros(n, width + 1, device=mz.device)
    out_intensity = torch.zeros(n, width + 1, device=mz.device)
    out_mz.scatter_(1, slot, mz.masked_fill(~keep, 0.0))
    out_intensity.scatter_(1, slot, (intensity / base.clamp_min(1e-30)).masked_fill(~keep, 0.0))
    mask = torch.arange(width, device=mz.device) < counts.unsqueeze(-1)
    return out_mz[:, :width], out_intensity[:, :width], mask


# ----------------------------------------------------------------------------
# Constant tables
# ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _tables(world: World, min_length: int, max_length: int, vocab: Vocabulary,
            device: torch.device) -> _Tables:  # fmt: skip
    """The constant tensors of a batch of ``world`` at ``min_length``-``max_length`` residues,
    in named pieces: the table rows, the peptides, the tokens, the terminal families, the ion
    slots and the world's single numbers."""
    rows = world.rows_between(min_length, max_length)
    rows.sort(key=lambda i: world.spectra.peaks[i])
    width = max(world.spectra.length[i] for i in rows)
    fragment_charges = max(max_fragment_charge(world.spectra.charge[i]) for i in rows)
    sites = width - 1
    histogram = torch.tensor(world.noise.relative_mz_histogram, dtype=torch.float64)
    coefficients = world.intensity.coefficients
    f32 = {"device": device, "dtype": torch.float32}
    return _Tables(
        width=width,
        fragment_charges=fragment_charges,
        token_width=width + 1 + any(m.n_terminal for m in vocab.modifications),
        **_row_fields(world, rows, device),
        **_peptide_fields(world, vocab, device),
        **_token_fields(coefficients, vocab, device),
        **_terminal_fields(world, fragment_charges, sites, device),
        internal_length=torch.tensor(
            [coefficients[internal_length_name(k)] for k in INTERNAL_LENGTHS], **f32
        ),
        **_slot_fields(width, fragment_charges, vocab, device),
        field_cholesky=_field_cholesky(world.correlation.length_scale_sites, sites).to(device),
        relative_mz_cdf=_cdf((histogram / histogram.sum()).tolist(), device),
        scalars=_scalars(world),
    )


def _row_fields(world: World, rows: list[int], device: torch.device) -> dict:
    """``rows`` (the eligible rows of the spectrum table, sorted by peak count) as tensors, and
    their ``BUCKETS``: ``rows``, ``bucket_cdf``, ``bucket_start``, ``bucket_size``."""
    table = world.spectra
    f32 = {"device": device, "dtype": torch.float32}
    buckets = [b for b in _split(len(rows), BUCKETS) if b[1] > b[0]]
    sizes = torch.tensor([end - start for start, end in buckets], dtype=torch.float64)
    return {
        "rows": {
            "charge": torch.tensor([table.charge[i] for i in rows], device=device),
            "length": torch.tensor([table.length[i] for i in rows], device=device),
            "headroom": torch.tensor([table.headroom_log10[i] for i in rows], **f32),
            "noise": torch.tensor([table.noise_peaks[i] for i in rows], **f32),
            "peaks": torch.tensor([table.peaks[i] for i in rows], device=device),
        },
        "bucket_cdf": _cdf(sizes.tolist(), device),
        "bucket_start": torch.tensor([start for start, _ in buckets], device=device),
        "bucket_size": sizes.to(device=device, dtype=torch.float32),
    }


def _peptide_fields(world: World, vocab: Vocabulary, device: torch.device) -> dict:
    """What a peptide is drawn from: ``residue_ids``, ``inner_cdf``, ``last_cdf``,
    ``mod_target``, ``mod_cdf``, ``n_term_ids``, ``n_term_cdf``, ``mass_da``."""
    residue_ids, inner, last = _composition(world, vocab)
    mod_target, mod_cdf, n_term_ids, n_term_cdf = _modification_tables(world, vocab)
    return {
        "residue_ids": torch.tensor(residue_ids, device=device),
        "inner_cdf": _cdf(inner, device),
        "last_cdf": _cdf(last, device),
        "mod_target": mod_target.to(device),
        "mod_cdf": mod_cdf.to(device),
        "n_term_ids": n_term_ids.to(device),
        "n_term_cdf": n_term_cdf.to(device),
        "mass_da": vocab.residue_masses(device=device, dtype=torch.float64),
    }


def _token_fields(coefficients: dict[str, float], vocab: Vocabulary,
                  device: torch.device) -> dict:  # fmt: skip
    """Per token: ``chemistry`` (the ``_CHEMISTRY_COLUMNS``), ``immonium_mz``, ``immonium_mu``."""
    f32 = {"device": device, "dtype": torch.float32}
    chemistry = [[0.0] * _CHEMISTRY_COLUMNS for _ in range(vocab.size)]
    immonium_mz, immonium_mu = [0.0] * vocab.size, [-math.inf] * vocab.size
    masses = vocab.residue_masses(dtype=torch.float64).tolist()
    for token_id, letter in _token_letters(vocab).items():
        chemistry[token_id] = [*(letter in needs for needs in _LOSS_SETS), letter in BASIC,
                               letter == "P", letter in "DE",
                               coefficients[effect_name("N", letter)],
                               coefficients[effect_name("C", letter)]]  # fmt: skip
        immonium_mz[token_id] = masses[token_id] + _IMMONIUM.shift_da + PROTON_MASS_DA
        immonium_mu[token_id] = coefficients[immonium_name(letter)]
    return {
        "chemistry": torch.tensor(chemistry, **f32),
        "immonium_mz": torch.tensor(immonium_mz, **f32),
        "immonium_mu": torch.tensor(immonium_mu, **f32),
    }


def _terminal_fields(world: World, fragment_charges: int, sites: int,
                     device: torch.device) -> dict:  # fmt: skip
    """The terminal families' constants, ``_TERMINAL`` order: ``series``, ``position``,
    ``position_index``, ``span``, ``basic``, ``a_span``, ``family_series``, ``family_shift``,
    ``family_loss``, ``family_group``."""
    f32 = {"device": device, "dtype": torch.float32}
    coefficients, intensity = world.intensity.coefficients, world.intensity
    series = torch.full((len(_TERMINAL), fragment_charges, _MAX_PRECURSOR_CHARGE + 1), -math.inf)
    for f, family in enumerate(_TERMINAL):
        own, own_2plus = derived_name(family.name), derived_name(family.name, two_plus=True)
        for z in range(1, fragment_charges + 1):
            for precursor in PRECURSOR_CHARGES:
                if z <= max_fragment_charge(precursor):
                    value = coefficients.get(series_name(family.series, z, precursor), 0.0)
                    if family.group == "derived":  # its own coefficients, on top of the series'
                        value += coefficients[own]
                        value += coefficients[own_2plus] if z >= 2 else 0.0
                    series[f, z - 1, precursor] = value
    position = torch.zeros(len(SERIES), 2, POSITION_BINS)
    for which, letter in enumerate(SERIES):
        for charge_class in range(2):  # fragment charge 1, >= 2
            for k in range(1, POSITION_BINS):
                position[which, charge_class, k] = coefficients[
                    position_name(letter, charge_class + 1, k)
                ]
    class_of_charge = [0, 1, 1][:fragment_charges]
    which = [SERIES.index(family.series) for family in _TERMINAL]
    position_index = torch.tensor([[[(w * 2 + c) * POSITION_BINS] for c in class_of_charge]
                                   for w in which])  # fmt: skip
    a_span = torch.zeros(len(_TERMINAL), max(sites, 2))
    a_row = _TERMINAL.index(ION_FAMILY["a"])
    a_span[a_row, 0], a_span[a_row, 1] = coefficients[a_span_name(1)], coefficients[a_span_name(2)]
    groups = [family.group for family in _TERMINAL]
    loss = [0 if not f.needs else 1 + _LOSS_SETS.index(f.needs) for f in _TERMINAL]
    return {
        "series": series.to(device),
        "position": position.to(device),
        "position_index": position_index.to(device),
        "span": torch.tensor(
            [[coefficients[span_name(letter, k)] for k in (1, 2)] for letter in SERIES], **f32
        ),
        "basic": torch.tensor([coefficients[basic_name(letter)] for letter in SERIES], **f32),
        "a_span": a_span[:, :sites].to(device),
        "family_series": torch.tensor(which, device=device),
        "family_shift": torch.tensor([f.shift_da for f in _TERMINAL], **f32).view(-1, 1),
        "family_loss": torch.tensor(loss, device=device),
        "family_group": {
            name: torch.tensor(values, **f32).view(-1, 1, 1)
            for name, values in (
                ("kappa", [intensity.shape[g] for g in groups]),
                ("gamma", [intensity.formed_logit[g] for g in groups]),
                ("eta", [intensity.formed_slope[g] for g in groups]),
                ("by", [g == "terminal" for g in groups]),
            )
        },
    }


def _slot_fields(width: int, fragment_charges: int, vocab: Vocabulary,
                 device: torch.device) -> dict:  # fmt: skip
    """Where the ions sit: ``sites``, ``internal_starts``, ``internal_ends``,
    ``fragment_charge``, ``ion_charge`` (of every ion slot: terminal, internal, immonium,
    precursor), ``precursor_charge``."""
    sites = width - 1
    starts = torch.arange(1, width - 1)
    fragment_charge = torch.arange(1, fragment_charges + 1, dtype=torch.float32)
    precursor_charge = torch.arange(1, _MAX_PRECURSOR_CHARGE + 1, dtype=torch.float32)
    ion_charge = torch.cat([
        fragment_charge.view(1, -1, 1).expand(len(_TERMINAL), -1, sites).reshape(-1),
        torch.ones(len(_INTERNAL) * len(starts) * len(INTERNAL_LENGTHS) + vocab.size),
        precursor_charge.repeat(_PRECURSOR_KINDS),
    ]).unsqueeze(0)  # fmt: skip
    return {
        "sites": torch.arange(sites, device=device),
        "internal_starts": starts.to(device),
        "internal_ends": (starts.view(-1, 1) + torch.tensor(INTERNAL_LENGTHS)).to(device),
        "fragment_charge": fragment_charge.view(1, 1, -1, 1).to(device),
        "ion_charge": ion_charge.to(device),
        "precursor_charge": torch.arange(1, _MAX_PRECURSOR_CHARGE + 1, device=device),
    }


def _scalars(world: World) -> dict:
    """The world's single numbers the ion functions read (``_Tables.scalars``), and pepcurr's
    ``PeakFilter``'s."""
    coefficients, intensity = world.intensity.coefficients, world.intensity
    shape, gamma, eta = intensity.shape, intensity.formed_logit, intensity.formed_slope
    correlation, noise, errors = world.correlation, world.noise, world.errors
    instrument, peak_filter = world.instrument, PeakFilter()
    return {
        "jitter": world.spectra.jitter_log10,
        "nonmobile": coefficients["nonmobile"],
        "nonmobile_de": coefficients["nonmobile:N-DE"],
        "nonmobile_p": coefficients["nonmobile:C-P"],
        "field_share": correlation.field_share, "bond_share": correlation.bond_share,
        "internal_p_first": coefficients["internal:P-first"],
        "internal_p_after": coefficients["internal:P-after"],
        "internal_basic": coefficients["internal:basic"],
        "internal_a": coefficients["internal:a"],
        "internal_mz300": coefficients["internal:mz300"],
        "internal_mz600": coefficients["internal:mz600"],
        "precursor_loss": coefficients["precursor-loss"],
        "precursor_formed": 1 / (1 + math.exp(-gamma["precursor"] - eta["precursor"]
                                              * coefficients["precursor-loss"])),
        "precursor_peak_rate": instrument.precursor_peak_rate,
        "precursor_peak_height": instrument.precursor_peak_height_log10,
        **{f"{group}_{name}": values[group] for group in ("internal", "immonium", "precursor")
           for name, values in (("kappa", shape), ("gamma", gamma), ("eta", eta))},
        "isotope_offset": world.isotopes.ratio_offset_log10,
        "isotope_sd": world.isotopes.sd_log10,
        "noise_nu": noise.level_log10, "noise_kappa": noise.level_shape,
        "defect_mean": noise.defect_mean_da, "defect_sd": noise.defect_sd_da,
        "peptide_like": noise.peptide_like_share, "half_integer": noise.half_integer_share,
        "precursor_ppm_mean": errors.precursor_ppm_mean,
        "precursor_ppm_sd": errors.precursor_ppm_sd,
        "isotope_error_rate": errors.precursor_isotope_error_rate,
        "fragment_offset_mean": errors.fragment_ppm_offset_mean,
        "fragment_offset_sd": errors.fragment_ppm_offset_sd,
        "fragment_ppm_sd": errors.fragment_ppm_sd,
        "min_mz": max(instrument.scan_min_mz, peak_filter.min_mz),
        "max_mz": peak_filter.max_mz, "max_peaks": peak_filter.max_peaks,
        "min_intensity": peak_filter.min_intensity,
        "precursor_tol": peak_filter.remove_precursor_tol_da,
        "gap": instrument.precursor_gap_da, "merge_ppm": instrument.merge_ppm,
    }  # fmt: skip


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """``[start, end)`` of ``parts`` near-equal consecutive groups of ``n`` items."""
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _cdf(probabilities: list[float], device: torch.device) -> torch.Tensor:
    """Cumulative probabilities, exactly 1.0 from the last possible item on (so that no
    u < 1 lands past it on a rounding error)."""
    cdf = torch.tensor(probabilities, dtype=torch.float64).cumsum(0)
    cdf = (cdf / cdf[-1]).float()
    cdf[max(i for i, p in enumerate(probabilities) if p > 0) :] = 1.0
    return cdf.to(device)


def _field_cholesky(length_scale: float, size: int) -> torch.Tensor:
    """Cholesky factor of a Gaussian kernel over ``size`` sites (a smooth random field)."""
    k = torch.arange(max(size, 1), dtype=torch.float64)
    kernel = torch.exp(-((k.view(-1, 1) - k.view(1, -1)) ** 2) / (2 * length_scale**2))
    jitter = 1e-6 * torch.eye(len(k), dtype=torch.float64)
    return torch.linalg.cholesky(kernel + jitter).float()


def _token_letters(vocab: Vocabulary) -> dict[int, str]:
    """Token id -> the residue it behaves as (``fragments.residue_letter``), residues only."""
    n_terms = set(vocab.n_terminal_ids)
    letters = {}
    for token_id, token in enumerate(vocab.residues, start=len(SPECIAL_TOKENS)):
        if token_id not in n_terms:
            letter = residue_letter(token, vocab.mass_da(token))
            letters[token_id] = letter if letter in EFFECT_LETTERS else "L"
    return letters


def _composition(world: World, vocab: Vocabulary) -> tuple[list[int], list[float], list[float]]:
    """The vocabulary's unmodified residue tokens and their shares inside a peptide and last
    (the world's by letter; I's share goes to L when the vocabulary folds I into L)."""
    modified = {m.token for m in vocab.modifications}
    ids, inner, last = [], [], []
    for token_id, token in enumerate(vocab.residues, start=len(SPECIAL_TOKENS)):
        if token in modified:
            continue
        letter = token[0]
        letters = ("I", "L") if (letter == "L" and vocab.fold_il) else (letter,)
        ids.append(token_id)
        inner.append(sum(world.residues.inner.get(a, 0.0) for a in letters))
        last.append(sum(world.residues.last.get(a, 0.0) for a in letters))
    if not any(inner) or not any(last):
        raise CurriculumError("the world's residues and the vocabulary share no residue")
    return ids, inner, last


def _modification_tables(world: World, vocab: Vocabulary):
    """Per residue token its modified forms and their cumulative rates; per first residue
    token the cumulative rates of the N-terminal modifications."""
    rates = {token: m.rate for token, m in world.modifications.items()}
    firsts = {token: m.first_residue for token, m in world.modifications.items()}
    residue_mods: dict[int, list[tuple[int, float]]] = {}
    n_terms = []
    for m in vocab.modifications:
        kind = "n_term" if m.n_terminal else "residue"
        rate = rates.get(m.token, DEFAULT_MODIFICATION_RATES[kind])
        if m.n_terminal:
            n_terms.append((m.token_id, rate, firsts.get(m.token)))
        elif m.unmodified is not None:
            unmodified_id = vocab.residues.index(m.unmodified) + len(SPECIAL_TOKENS)
            residue_mods.setdefault(unmodified_id, []).append((m.token_id, rate))
    width = max([len(v) for v in residue_mods.values()], default=0) or 1
    target = torch.arange(vocab.size).view(-1, 1).repeat(1, width)
    cdf = torch.full((vocab.size, width), 2.0)
    for token_id, forms in residue_mods.items():
        total = 0.0
        for k, (form_id, rate) in enumerate(forms):
            total += rate
            target[token_id, k], cdf[token_id, k] = form_id, total
    ids = torch.tensor([t for t, _, _ in n_terms], dtype=torch.long)
    n_term_cdf = torch.zeros(vocab.size, len(n_terms))
    for token_id, token in enumerate(vocab.tokens):
        total = 0.0
        for j, (_, rate, first) in enumerate(n_terms):
            # only on that unmodified residue (pyro-glu from Q, not from a deamidated Q)
            if first is None or token == ("C[Carbamidomethyl]" if first == "C" else first):
                total += rate
            n_term_cdf[token_id, j] = total
    return target, cdf, ids, n_term_cdf

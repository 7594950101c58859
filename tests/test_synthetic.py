"""The synthetic spectrum generator: exact clean peaks, and noise that matches its settings.

Statistical checks compare an observed rate or spread with the setting within
``Z`` standard errors of the estimate (binomial for rates, chi-square for
variances), computed from the number of samples, not picked by hand. The
seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import pytest
import torch

from curriculum_cli.errors import CurriculumError
from curriculum_cli.spectra.chemistry import (
    MAX_PEAK_MZ,
    MIN_PEAK_MZ,
    SWISS_PROT_RESIDUE_PERCENT,
    mz_from_neutral_mass,
    peptide_fragment_ladder,
    peptide_mass_da,
)
from curriculum_cli.spectra.synthetic import (
    SpectrumSettings,
    generate_batch,
    generate_spectra,
    residue_weights,
)
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN, Vocabulary

Z = 4.0  # standard errors: a false alarm about once in 16,000 seeds
VOCAB = Vocabulary.default()


def _batch(settings: SpectrumSettings, n: int, seed: int = 0):
    return generate_batch(settings, n, VOCAB, torch.Generator().manual_seed(seed))


def _expected_fragments(batch) -> list[torch.Tensor]:
    """Exact b/y m/z of each spectrum (charge 2 too for 3+ precursors) inside the m/z window
    the MGF reader keeps, float32, sorted."""
    masses = VOCAB.residue_masses(dtype=torch.float64)[batch.tokens[:, :-1]]
    ladder_mz, valid = peptide_fragment_ladder(masses, batch.lengths, batch.precursor_charge)
    out = []
    for row in range(len(batch)):
        ions = ladder_mz[row][valid[row]].to(torch.float32)
        ions = ions[(ions >= MIN_PEAK_MZ) & (ions <= MAX_PEAK_MZ)]
        out.append(ions.sort().values)
    return out


def test_batch_shapes_tokens_and_precursor_mass():
    settings = SpectrumSettings(min_length=7, max_length=12, noise_peaks=3)
    batch = _batch(settings, 64)
    assert batch.mz.shape == batch.intensity.shape == batch.peak_mask.shape
    assert batch.mz.shape == (64, settings.max_peaks)
    assert batch.tokens.shape == (64, settings.max_length + 1)
    assert batch.mz.dtype == batch.intensity.dtype == batch.precursor_mass_da.dtype == torch.float32
    assert ((batch.lengths >= 7) & (batch.lengths <= 12)).all()
    for row in range(64):
        length = int(batch.lengths[row])
        assert (batch.tokens[row, :length] >= 2).all()
        assert batch.tokens[row, length] == EOS_TOKEN
        assert (batch.tokens[row, length + 1 :] == PAD_TOKEN).all()
    masses = VOCAB.residue_masses(dtype=torch.float64)[batch.tokens]
    exact = peptide_mass_da(masses).to(torch.float32)
    assert torch.equal(batch.precursor_mass_da, exact)
    assert set(batch.precursor_charge.tolist()) <= {2, 3}
    assert batch.peptides is None and batch.titles is None


def test_every_b_and_y_ion_of_a_clean_spectrum_is_at_its_exact_mz():
    batch = _batch(SpectrumSettings(min_length=6, max_length=20), 200, seed=1)
    for row, expected in enumerate(_expected_fragments(batch)):
        observed = batch.mz[row][batch.peak_mask[row]]
        assert torch.equal(observed, expected)  # bit for bit: same float32 values
    assert (batch.precursor_charge == 3).any()  # the doubly charged ions were checked too


def test_peaks_are_sorted_padded_last_and_base_peak_normalized():
    settings = SpectrumSettings(7, 15, noise_peaks=5, peak_dropout=0.3, intensity_variation=0.5)
    batch = _batch(settings, 100, seed=2)
    counts = batch.peak_mask.sum(-1)
    for row in range(100):
        count = int(counts[row])
        assert batch.peak_mask[row, :count].all() and not batch.peak_mask[row, count:].any()
        real = batch.mz[row, :count]
        assert (real[1:] >= real[:-1]).all()
        assert (batch.mz[row, count:] == 0).all() and (batch.intensity[row, count:] == 0).all()
        assert batch.intensity[row, :count].max() == 1.0
        assert (batch.intensity[row, :count] > 0).all()


@pytest.mark.parametrize("k", [1, 7, 25])
def test_noise_peaks_add_exactly_k_peaks_in_range(k):
    settings = SpectrumSettings(min_length=7, max_length=14, noise_peaks=k)
    batch = _batch(settings, 100, seed=k)
    fragments = _expected_fragments(batch)
    for row in range(100):
        observed = batch.mz[row][batch.peak_mask[row]]
        assert len(observed) == len(fragments[row]) + k
        noise = observed[~torch.isin(observed, fragments[row])]
        assert len(noise) == k  # no noise peak lands exactly on a fragment here
        assert (noise >= 50.0).all() and (noise <= batch.precursor_mass_da[row]).all()


def test_observed_dropout_rate_matches_setting_within_sampling_error():
    p = 0.2
    batch = _batch(SpectrumSettings(min_length=7, max_length=18, peak_dropout=p), 2000, seed=3)
    fragments = sum(len(f) for f in _expected_fragments(batch))
    kept = int(batch.peak_mask.sum())
    observed = 1 - kept / fragments
    standard_error = math.sqrt(p * (1 - p) / fragments)
    assert abs(observed - p) < Z * standard_error, (observed, standard_error)


def test_observed_ppm_spread_matches_setting_within_sampling_error():
    sigma_ppm = 15.0
    settings = SpectrumSettings(min_length=7, max_length=18, mass_error_ppm=sigma_ppm)
    batch = _batch(settings, 2000, seed=4)
    errors = []
    for row, expected in enumerate(_expected_fragments(batch)):
        # Sorted peaks pair with sorted exact ions (15 ppm rarely swaps two neighbours).
        observed = batch.mz[row][batch.peak_mask[row]].double()
        errors.append((observed - expected.double()) / expected.double() * 1e6)
    errors = torch.cat(errors)
    n = len(errors)
    # Mean: normal standard error; variance: chi-square, relative standard error sqrt(2/n).
    assert abs(errors.mean().item()) < Z * sigma_ppm / math.sqrt(n)
    variance_ratio = (errors.pow(2).mean() / sigma_ppm**2).item()
    assert abs(variance_ratio - 1) < Z * math.sqrt(2 / n), variance_ratio


def test_charge_distribution_matches_charge_probs():
    settings = SpectrumSettings(7, 10, charge_probs=((2, 0.5), (3, 0.3), (4, 0.2)))
    n = 5000
    charges = _batch(settings, n, seed=5).precursor_charge
    for charge, p in settings.charge_probs:
        observed = (charges == charge).float().mean().item()
        assert abs(observed - p) < Z * math.sqrt(p * (1 - p) / n), (charge, observed)


def test_doubly_charged_fragments_only_for_precursors_of_charge_3_or_more():
    settings = SpectrumSettings(8, 8)  # every peptide has 7 cleavage sites
    batch = _batch(settings, 200, seed=6)
    counts = batch.peak_mask.sum(-1)
    assert (counts[batch.precursor_charge == 2] == 14).all()  # singly charged b/y are >= 58 m/z
    expected = torch.tensor([len(ions) for ions in _expected_fragments(batch)])
    triply = batch.precursor_charge == 3
    assert torch.equal(counts[triply], expected[triply])
    assert (counts[triply] > 14).all() and (counts[triply] <= 28).all()


def test_tryptic_peptides_end_in_k_or_r_with_no_k_or_r_inside():
    settings = SpectrumSettings(7, 12)  # tryptic is the default
    assert settings.residue_distribution == "tryptic"
    batch = _batch(settings, 300, seed=7)
    for row in range(300):
        peptide = VOCAB.decode(batch.tokens[row])
        assert peptide[-1] in "KR"
        assert "K" not in peptide[:-1] and "R" not in peptide[:-1]


def _residue_counts(batch, last: bool) -> torch.Tensor:
    """Occurrences of each residue token, at the last position or at the others."""
    positions = torch.arange(batch.tokens.shape[1])
    at_last = positions == (batch.lengths - 1).unsqueeze(-1)
    where = at_last if last else (positions < batch.lengths.unsqueeze(-1)) & ~at_last
    return torch.bincount(batch.tokens[where], minlength=VOCAB.size)[2:]


@pytest.mark.parametrize("distribution", ["tryptic", "uniform"])
def test_residue_frequencies_match_their_source_within_sampling_error(distribution):
    """Tryptic: Swiss-Prot composition inside (L + I folded), K/R last as 5.80 : 5.53."""
    settings = SpectrumSettings(7, 12, residue_distribution=distribution)
    batch = _batch(settings, 6000, seed=8)
    inside, last = residue_weights(VOCAB, distribution)
    for counts, expected in ((_residue_counts(batch, False), inside),
                             (_residue_counts(batch, True), last)):  # fmt: skip
        n = int(counts.sum())
        for residue, count, p in zip(VOCAB.residues, counts.tolist(), expected, strict=True):
            tolerance = Z * math.sqrt(max(p * (1 - p), 1e-12) / n)
            assert abs(count / n - p) <= tolerance, (residue, count / n, p)
    if distribution == "tryptic":
        total_inside = sum(SWISS_PROT_RESIDUE_PERCENT[r] for r in SWISS_PROT_RESIDUE_PERCENT
                           if r not in "KR")  # fmt: skip
        leucine = inside[VOCAB.residues.index("L")]
        assert leucine == pytest.approx((9.65 + 5.91) / total_inside)
        assert last[VOCAB.residues.index("K")] == pytest.approx(5.80 / (5.80 + 5.53))


def _intensities_by_ion(batch) -> list[dict[str, torch.Tensor]]:
    """Per spectrum of clean charge-2 spectra: the intensities of its b ions, y ions, noise."""
    masses = VOCAB.residue_masses(dtype=torch.float64)[batch.tokens[:, :-1]]
    ladder_mz, valid = peptide_fragment_ladder(masses, batch.lengths, batch.precursor_charge)
    out = []
    for row in range(len(batch)):
        observed = batch.mz[row][batch.peak_mask[row]]
        intensity = batch.intensity[row][batch.peak_mask[row]]
        ions = {}
        for name, column in (("b", 0), ("y", 1)):
            ion_mz = ladder_mz[row, :, column][valid[row, :, column]].float()
            ions[name] = intensity[torch.isin(observed, ion_mz)]
        ions["noise"] = intensity[~torch.isin(observed, ladder_mz[row][valid[row]].float())]
        out.append(ions)
    return out


def _p_greater(spectra, first: str, second: str) -> float:
    """Mean over spectra of P(a random ``first`` peak outshines a random ``second`` peak)."""
    shares = [
        (ions[first].unsqueeze(-1) > ions[second]).float().mean().item()
        for ions in spectra
        if len(ions[first]) and len(ions[second])
    ]
    return sum(shares) / len(shares)


def test_y_ions_are_brighter_than_b_ions_on_average_and_noise_overlaps_both():
    """Nominal draws: b ~ U[0.05, 0.65], y ~ U[0.2, 1.0], noise drawn as b. Comparisons inside
    a spectrum do not depend on the base-peak normalization, so the expected shares are exact:
    P(b > y) = 0.45^2 / 2 / (0.6 * 0.8) = 0.2109, P(noise > b) = 1/2."""
    n = 2000
    settings = SpectrumSettings(7, 12, noise_peaks=8, charge_probs=((2, 1.0),))
    spectra = _intensities_by_ion(_batch(settings, n, seed=9))
    tolerance = Z * math.sqrt(0.25 / n)  # each spectrum's share is in [0, 1]
    b_over_y = 0.45**2 / 2 / (0.6 * 0.8)
    assert abs(_p_greater(spectra, "b", "y") - b_over_y) < tolerance
    assert abs(_p_greater(spectra, "noise", "b") - 0.5) < tolerance
    assert abs(_p_greater(spectra, "noise", "y") - b_over_y) < tolerance
    y_mean = torch.cat([ions["y"] for ions in spectra]).mean()
    b_mean = torch.cat([ions["b"] for ions in spectra]).mean()
    assert y_mean > 1.4 * b_mean  # 0.6 / 0.35 = 1.71 before normalization


def test_no_peak_lies_outside_the_mz_window_the_mgf_reader_keeps():
    settings = SpectrumSettings(
        30, 40, noise_peaks=20, mass_error_ppm=15.0, charge_probs=((3, 1.0),)
    )
    batch = _batch(settings, 200, seed=10)
    real = batch.mz[batch.peak_mask]
    assert real.min() >= MIN_PEAK_MZ and real.max() <= MAX_PEAK_MZ
    # The ladders do reach outside the window (b1++ below 50, long y ions above 2500).
    masses = VOCAB.residue_masses(dtype=torch.float64)[batch.tokens[:, :-1]]
    ladder_mz, valid = peptide_fragment_ladder(masses, batch.lengths, batch.precursor_charge)
    assert (ladder_mz[valid] < MIN_PEAK_MZ).any() and (ladder_mz[valid] > MAX_PEAK_MZ).any()


def test_same_seed_gives_the_same_batch_bit_for_bit_and_another_seed_does_not():
    settings = SpectrumSettings(7, 18, 10, 0.15, 15.0, 0.2)
    first, again = _batch(settings, 64, seed=11), _batch(settings, 64, seed=11)
    other = _batch(settings, 64, seed=12)
    for name in ("mz", "intensity", "peak_mask", "precursor_mass_da", "precursor_charge", "tokens"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert not torch.equal(first.tokens, other.tokens)
    assert not torch.equal(first.mz, other.mz)


def test_generate_spectra_concatenates_chunks_deterministically():
    settings = SpectrumSettings(7, 10, noise_peaks=2)
    spectra = generate_spectra(settings, 50, VOCAB, seed=3, batch_size=16)
    again = generate_spectra(settings, 50, VOCAB, seed=3, batch_size=16)
    assert len(spectra) == 50 and spectra.mz.shape == (50, settings.max_peaks)
    assert torch.equal(spectra.mz, again.mz) and torch.equal(spectra.tokens, again.tokens)
    single = generate_spectra(settings, 16, VOCAB, seed=3, batch_size=16)
    assert torch.equal(spectra.mz[:16], single.mz)


def test_from_stage_takes_the_stage_settings_and_non_none_overrides():
    from curriculum_cli.curriculum.schema import Stage

    stage = Stage(name="s", steps=10, min_length=7, max_length=9, noise_peaks=2, peak_dropout=0.1)
    settings = SpectrumSettings.from_stage(stage, noise_peaks=5, mass_error_ppm=None)
    assert (settings.min_length, settings.max_length) == (7, 9)
    assert (settings.noise_peaks, settings.peak_dropout, settings.mass_error_ppm) == (5, 0.1, 0.0)
    assert settings.max_peaks == 4 * 8 + 5


@pytest.mark.parametrize(
    "bad",
    [
        dict(min_length=10, max_length=8),
        dict(peak_dropout=1.5),
        dict(noise_peaks=-1),
        dict(residue_distribution="zipf"),
        dict(charge_probs=((2, 0.5), (3, 0.2))),
    ],
)
def test_invalid_settings_are_a_clear_error(bad):
    values = dict(min_length=7, max_length=10) | bad
    with pytest.raises(CurriculumError, match="spectrum settings"):
        SpectrumSettings(**values)


def test_precursor_mz_of_a_batch_follows_its_charge():
    batch = _batch(SpectrumSettings(7, 10), 8)
    expected = mz_from_neutral_mass(batch.precursor_mass_da, batch.precursor_charge)
    assert torch.allclose(batch.precursor_mz, expected)

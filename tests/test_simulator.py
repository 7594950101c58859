"""The realistic simulator of a curriculum's world (the shipped ``calibrated-hcd``).

Checked against what it claims: the same path as real spectra (``PeakFilter`` leaves its
spectra unchanged), a clean stage holding every b/y ion at its exact m/z, the
modifications of the run's vocabulary at their rates, and the mean intensities the
calibration's design rows give.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from curriculum_cli.curriculum.presets import preset
from curriculum_cli.curriculum.schema import Stage
from curriculum_cli.spectra.chemistry import PROTON_MASS_DA
from curriculum_cli.spectra.fragments import annotated_spectrum, theoretical_ions
from curriculum_cli.spectra.intensity_fit import design_row
from curriculum_cli.spectra.ions import FAMILY, max_fragment_charge
from curriculum_cli.spectra.peaks import PeakFilter, filter_peaks
from curriculum_cli.spectra.simulator import DEFAULT_MODIFICATION_RATES, simulate_batch
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_spectra
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, Vocabulary
from curriculum_cli.spectra.world import COEFFICIENT_NAMES
from tests.helpers import OXIDATION_VOCAB

WORLD = preset("calibrated-hcd").world
CASANOVO = Vocabulary.named("casanovo")
STANDARD = Vocabulary.default()
FULL = dict(noise_peaks=10, peak_dropout=0.15, mass_error_ppm=15.0, intensity_variation=0.2)
CLEAN = dict(noise_peaks=0, peak_dropout=0.0, mass_error_ppm=0.0, intensity_variation=0.0)


def settings(min_length=7, max_length=18, **knobs) -> SpectrumSettings:
    stage = Stage(name="s", steps=1, min_length=min_length, max_length=max_length, **knobs)
    return SpectrumSettings.from_stage(stage, world=WORLD)


def batch(knobs=FULL, n=64, seed=0, vocab=CASANOVO, bucketed=False, **lengths):
    generator = torch.Generator().manual_seed(seed)
    return simulate_batch(settings(**lengths, **knobs), n, vocab, generator, bucketed=bucketed)


def spectra(b, vocab=CASANOVO):
    """(AnnotatedSpectrum, peak count) of each spectrum of a batch."""
    counts = b.peak_mask.sum(-1).tolist()
    out = []
    for i, count in enumerate(counts):
        peptide = vocab.decode(b.tokens[i].tolist())
        out.append(annotated_spectrum(
            b.mz[i, :count].double().numpy(), b.intensity[i, :count].double().numpy(),
            int(b.precursor_charge[i]), float(b.precursor_mz[i]), peptide, vocab.masses,
        ))  # fmt: skip
    return out


def test_same_seed_same_batch_and_bucketed_batches_hold_similar_spectra():
    first, again, other = batch(seed=3), batch(seed=3), batch(seed=4)
    for name in ("mz", "intensity", "peak_mask", "precursor_mass_da", "tokens", "lengths"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert not torch.equal(first.precursor_mass_da, other.precursor_mass_da)
    # one batch: the fullest spectrum sets the width; a bucketed batch is much narrower
    assert first.mz.shape[1] == int(first.peak_mask.sum(-1).max())
    widths = [batch(seed=s, bucketed=True).mz.shape[1] for s in range(8)]
    assert np.mean(widths) < 0.85 * first.mz.shape[1]


def test_spectra_go_through_pepcurrs_peak_filter_unchanged():
    b = batch(n=48, seed=1)
    assert bool(((b.mz[:, 1:] >= b.mz[:, :-1]) | ~b.peak_mask[:, 1:]).all())  # ascending
    for spectrum in spectra(b):
        mz, intensity = filter_peaks(spectrum.mz, spectrum.intensity, spectrum.precursor_mz,
                                     spectrum.charge, PeakFilter())  # fmt: skip
        np.testing.assert_array_equal(mz, spectrum.mz)
        np.testing.assert_allclose(intensity, spectrum.intensity, rtol=1e-6)
        assert intensity.max() == 1.0 and len(mz) <= 150


def test_a_clean_stage_holds_every_b_and_y_ion_and_nothing_else():
    """No noise, no missing b/y ions, no m/z error: every b/y ion at charges 1 to
    min(z - 1, 3) inside the instrument's range is a peak, at its m/z (a merge of two
    ions closer than the resolution moves it by less than that), and every peak is a b/y
    ion or one of its 13C peaks."""
    b = batch(CLEAN, n=32, seed=2, vocab=STANDARD, min_length=7, max_length=12)
    resolution_ppm = WORLD.instrument.merge_ppm
    lowest = max(WORLD.instrument.scan_min_mz, 50.0)
    for spectrum in spectra(b, STANDARD):
        ions = theoretical_ions(spectrum, isotopes=2, internal=False)
        by = np.isin(ions["family"], [FAMILY["b"], FAMILY["y"]])
        by &= ions["charge"] <= max_fragment_charge(spectrum.charge)
        precursor = [(spectrum.precursor_mass_da + z * PROTON_MASS_DA) / z
                     for z in range(1, spectrum.charge + 1)]  # fmt: skip
        seen = (ions["mz"] >= lowest) & (ions["mz"] <= 2500) & (ions["isotope"] == 0)
        for mz in precursor:
            seen &= np.abs(ions["mz"] - mz) > WORLD.instrument.precursor_gap_da + 0.1
        expected = ions["mz"][by & seen]
        distance = np.abs(spectrum.mz[None, :] - expected[:, None]).min(1) / expected * 1e6
        assert distance.max() <= resolution_ppm
        every = ions["mz"][by]
        nearest = np.abs(every[None, :] - spectrum.mz[:, None]).min(1) / spectrum.mz * 1e6
        assert nearest.max() <= resolution_ppm


def test_every_modification_of_the_vocabulary_at_its_rate():
    b = batch(n=512, seed=5, min_length=7, max_length=27)
    tokens = [CASANOVO.tokens[t] for row in b.tokens.tolist() for t in row]
    first = [CASANOVO.tokens[row[0]] for row in b.tokens.tolist()]
    rates = {token: m.rate for token, m in WORLD.modifications.items()}
    for token, site in (("M[Oxidation]", "M"), ("N[Deamidated]", "N")):
        n_modified, n_sites = tokens.count(token), tokens.count(token) + tokens.count(site)
        se = math.sqrt(rates[token] * (1 - rates[token]) / n_sites)
        assert abs(n_modified / n_sites - rates[token]) < 4 * se
    # N-terminal tokens only first; [Ammonia-loss]- only before a Q; the unlisted one at its
    # default rate
    n_terms = set(m.token for m in CASANOVO.modifications if m.n_terminal)
    assert not n_terms & {t for row in b.tokens.tolist() for t in map(CASANOVO.tokens.__getitem__,
                                                                      row[1:])}  # fmt: skip
    pyro = [i for i, token in enumerate(first) if token == "[Ammonia-loss]-"]
    assert pyro and all(CASANOVO.tokens[b.tokens[i, 1]] == "Q" for i in pyro)
    unlisted = first.count("[+25.980265]-") / len(first)
    default = DEFAULT_MODIFICATION_RATES["n_term"]
    assert abs(unlisted - default) < 4 * math.sqrt(default * (1 - default) / len(first))
    # targets: N-terminal token first, <eos> after the residues; precursor within its error
    assert bool((b.tokens.gather(1, b.lengths.unsqueeze(1)) == EOS_TOKEN).all())
    for row, length in zip(b.tokens.tolist()[:50], b.lengths.tolist(), strict=False):
        peptide = CASANOVO.decode(row)
        assert len(CASANOVO.encode(peptide)) == length


def test_a_vocabulary_gets_only_its_own_modifications():
    b = batch(n=256, seed=6, vocab=OXIDATION_VOCAB)
    drawn = {OXIDATION_VOCAB.tokens[t] for t in b.tokens.unique().tolist()}
    assert "M[Oxidation]" in drawn and "M" in drawn
    assert b.tokens.shape[1] == 18 + 1  # no N-terminal token, so no room for one
    plain = batch(n=256, seed=6, vocab=STANDARD)
    assert not {STANDARD.tokens[t] for t in plain.tokens.unique().tolist()} - set(STANDARD.tokens)


def test_mean_intensity_is_the_calibration_design():
    """With no scatter and no noise, a seen b/y ion's log10 intensity over the spectrum's
    y1+ level is x . beta of its design row (the one the calibration fitted), minus the
    Weibull scatter's mean; differences between two ions of one spectrum cancel h."""
    b = batch(dict(CLEAN, peak_dropout=0.15), n=24, seed=7, vocab=STANDARD, max_length=12)
    beta = np.array([WORLD.intensity.coefficients[name] for name in COEFFICIENT_NAMES])
    for spectrum in spectra(b, STANDARD):
        ions = theoretical_ions(spectrum, isotopes=0, internal=False)
        peaks = []
        for i in np.nonzero(ions["family"] == FAMILY["y"])[0]:
            pairs, _ = design_row(spectrum, spectrum.letters, "y", int(ions["charge"][i]),
                                  int(ions["site"][i]), int(ions["span"][i]),
                                  float(ions["mz"][i]))  # fmt: skip
            mu = sum(beta[column] * value for column, value in pairs)
            distance = np.abs(spectrum.mz - ions["mz"][i]) / ions["mz"][i] * 1e6
            if distance.min() < 1 and spectrum.intensity[distance.argmin()] > 0.05:
                peaks.append((mu, math.log10(spectrum.intensity[distance.argmin()])))
        for (mu_a, seen_a), (mu_b, seen_b) in zip(peaks, peaks[1:], strict=False):
            assert abs((seen_a - seen_b) - (mu_a - mu_b)) < 0.02  # merges, isotopes aside


@pytest.mark.parametrize("bad", [dict(min_length=28, max_length=30)])
def test_a_stage_outside_the_world_is_one_clear_error(bad, write_json):
    from curriculum_cli.curriculum.files import read_curriculum_file
    from curriculum_cli.errors import CurriculumError

    data = preset("realistic-revised").model_dump()
    data["stages"][3].update(bad)
    with pytest.raises(
        CurriculumError,
        match=r"stages\[3\]\.max_length: the world has no "
        r"spectrum of a peptide with 28-30 residues",
    ):
        read_curriculum_file(write_json(data))


def test_validation_sets_of_a_world_pad_chunks_to_the_widest():
    spectra_ = generate_spectra(settings(**FULL), 70, STANDARD, seed=1, batch_size=32)
    assert len(spectra_) == 70
    assert spectra_.mz.shape[1] == int(spectra_.peak_mask.sum(-1).max())


def test_a_run_on_a_world_resumes_bit_identically(tmp_path):
    """Bucketed training batches and validation sets of a world, through the real loop."""
    from curriculum_cli.curriculum.schema import Curriculum
    from curriculum_cli.training.loop import train
    from curriculum_cli.training.runlog import METRICS_FILE
    from tests.helpers import tiny_run_config
    from tests.test_engine import comparable, read_jsonl

    world_run = Curriculum(name="world", world=WORLD, stages=[
        Stage(name="clean", steps=4, min_length=7, max_length=10),
        Stage(name="full", steps=4, min_length=7, max_length=12, spectrum_loss_weight=0.1,
              **FULL),
    ])  # fmt: skip
    config = tiny_run_config(world_run, val_every=4, grad_every=4, checkpoint_every=3)
    train(config, tmp_path / "straight")
    train(config, tmp_path / "resumed", max_steps=5)
    assert train(config, tmp_path / "resumed", resume=True).step == 8
    straight, again = (comparable(read_jsonl(tmp_path / run / METRICS_FILE))
                       for run in ("straight", "resumed"))  # fmt: skip
    assert again == straight

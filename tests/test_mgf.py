"""MGF in and out: the real annotated sample, a synthetic round trip, peak filtering, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curriculum_cli.errors import MgfError
from curriculum_cli.spectra.chemistry import mz_from_neutral_mass, peptide_neutral_mass_da
from curriculum_cli.spectra.inspection import inspect_mgf
from curriculum_cli.spectra.mgf import read_mgf, write_mgf
from curriculum_cli.spectra.peaks import PeakFilter, filter_peaks
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_spectra
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, Vocabulary
from tests.helpers import BAD_MGF_CASES, NOT_MGF_CASES, OXIDATION_VOCAB, SAMPLE_MGF

VOCAB = Vocabulary.default()


@pytest.fixture(scope="module")
def sample():
    return read_mgf(SAMPLE_MGF, VOCAB)


def test_real_sample_parses_to_128_annotated_spectra(sample):
    batch = sample.batch
    assert len(batch) == 128 and sample.n_skipped == 0
    assert batch.titles[:3] == ["0", "1", "2"]
    assert batch.peptides[0] == "IAHYNKR"
    assert all(batch.peptides)
    assert sorted(set(batch.precursor_charge.tolist())) == [2, 3]
    assert (batch.intensity.amax(-1) == 1.0).all()
    counts = batch.peak_mask.sum(-1)
    for row in range(len(batch)):
        real = batch.mz[row, : counts[row]]
        assert (real[1:] >= real[:-1]).all() and not batch.peak_mask[row, counts[row] :].any()


def test_real_sample_precursors_match_seq_within_20_ppm(sample):
    batch = sample.batch
    for row, peptide in enumerate(batch.peptides):
        charge = int(batch.precursor_charge[row])
        expected_mz = mz_from_neutral_mass(peptide_neutral_mass_da(peptide), charge)
        error_ppm = (sample.precursor_mz[row] - expected_mz) / expected_mz * 1e6
        assert abs(error_ppm) < 20, (batch.titles[row], peptide, error_ppm)


def test_peptides_outside_the_vocabulary_keep_their_string_but_get_no_target(sample):
    batch = sample.batch
    outside = [i for i, p in enumerate(batch.peptides) if "Oxidation" in p or "Deamidated" in p]
    assert outside
    for row in outside:
        assert batch.lengths[row] == 0 and batch.tokens[row, 0] == EOS_TOKEN
    inside = [i for i in range(len(batch)) if i not in outside]
    for row in inside:
        decoded = VOCAB.decode(batch.tokens[row])
        assert decoded == batch.peptides[row].replace("I", "L")
        assert batch.lengths[row] == len(VOCAB.encode(batch.peptides[row]))
    with_oxidation = read_mgf(SAMPLE_MGF, OXIDATION_VOCAB).batch
    assert sum(int(with_oxidation.lengths[i]) > 0 for i in outside) > 0


def test_synthetic_spectra_survive_an_mgf_round_trip_exactly(tmp_path):
    settings = SpectrumSettings(7, 18, noise_peaks=10, peak_dropout=0.15, mass_error_ppm=15.0)
    batch = generate_spectra(settings, 64, VOCAB, seed=9)
    path = tmp_path / "synthetic.mgf"
    write_mgf(path, batch, VOCAB)
    back = read_mgf(path, VOCAB, peak_filter=PeakFilter.keep_all()).batch
    assert len(back) == 64 and back.titles == [str(i) for i in range(64)]
    assert torch.equal(back.precursor_charge, batch.precursor_charge)
    torch.testing.assert_close(back.precursor_mass_da, batch.precursor_mass_da)
    for row in range(64):
        mask, back_mask = batch.peak_mask[row], back.peak_mask[row]
        assert torch.equal(back.mz[row][back_mask], batch.mz[row][mask])
        assert torch.equal(back.intensity[row][back_mask], batch.intensity[row][mask])
        assert back.peptides[row] == VOCAB.decode(batch.tokens[row])
        length = int(batch.lengths[row])
        assert torch.equal(back.tokens[row, : length + 1], batch.tokens[row, : length + 1])


def test_written_mgf_carries_title_pepmass_charge_and_proforma_seq(tmp_path):
    batch = generate_spectra(SpectrumSettings(7, 9), 3, VOCAB, seed=1)
    path = tmp_path / "out.mgf"
    write_mgf(path, batch, VOCAB)
    text = path.read_text()
    assert text.count("BEGIN IONS") == text.count("END IONS") == 3
    for key in ("TITLE=0", "PEPMASS=", "CHARGE=2+", "SEQ="):
        assert key in text
    seqs = [line[len("SEQ=") :] for line in text.splitlines() if line.startswith("SEQ=")]
    assert seqs == [VOCAB.decode(tokens) for tokens in batch.tokens]


def test_write_mgf_refuses_to_overwrite_unless_told(tmp_path):
    batch = generate_spectra(SpectrumSettings(7, 9), 2, VOCAB, seed=1)
    path = tmp_path / "out.mgf"
    path.write_text("keep me")
    with pytest.raises(MgfError, match="exists"):
        write_mgf(path, batch, VOCAB)
    assert path.read_text() == "keep me"
    write_mgf(path, batch, VOCAB, overwrite=True)
    assert path.read_text().startswith("BEGIN IONS")


def test_peak_filter_follows_casanovo_order_and_normalizes_to_base_peak():
    precursor_mz, charge = 500.0, 2  # neutral mass 997.985 Da, 1+ precursor at 998.99
    mz = np.array([30.0, 120.0, 300.0, 499.0, 501.5, 700.0, 999.5, 1500.0, 2600.0])
    intensity = np.array([9.0, 0.001, 2.0, 8.0, 8.0, 4.0, 8.0, 1.0, 9.0])
    kept_mz, kept_intensity = filter_peaks(mz, intensity, precursor_mz, charge, PeakFilter())
    # 30 and 2600 out of range; 499, 501.5 (2+) and 999.5 (1+) in the precursor windows;
    # 120 under 1% of the base peak (700, intensity 4).
    assert kept_mz.tolist() == [300.0, 700.0, 1500.0]
    assert kept_intensity.tolist() == [0.5, 1.0, 0.25]
    top_two = PeakFilter(max_peaks=2)
    assert filter_peaks(mz, intensity, precursor_mz, charge, top_two)[0].tolist() == [300.0, 700.0]
    keep_all = filter_peaks(mz, intensity, precursor_mz, charge, PeakFilter.keep_all())
    assert len(keep_all[0]) == len(mz)


def test_casanovo_defaults():
    assert PeakFilter() == PeakFilter(
        min_mz=50.0, max_mz=2500.0, max_peaks=150, min_intensity=0.01, remove_precursor_tol_da=2.0
    )


@pytest.mark.parametrize("case", sorted(BAD_MGF_CASES))
def test_each_bad_spectrum_is_an_error_naming_index_and_title(case, write_file):
    text, where, words = BAD_MGF_CASES[case]
    path = write_file(text)
    with pytest.raises(MgfError) as error:
        read_mgf(path, VOCAB)
    message = str(error.value)
    assert str(path) in message and where in message and words in message
    assert "\n" not in message


@pytest.mark.parametrize("case", sorted(BAD_MGF_CASES))
def test_skip_invalid_skips_and_counts_bad_spectra(case, write_file):
    text, _, _ = BAD_MGF_CASES[case]
    result = read_mgf(write_file(text + text), VOCAB, skip_invalid=True)
    assert result.n_skipped == len(result.skipped) == 2
    assert result.batch.titles == ["good", "good"] and result.file_index == [0, 2]


@pytest.mark.parametrize("case", sorted(NOT_MGF_CASES))
def test_a_file_that_is_not_mgf_is_an_error_even_with_skip_invalid(case, write_file):
    content, words = NOT_MGF_CASES[case]
    with pytest.raises(MgfError, match=words):
        read_mgf(write_file(content), VOCAB, skip_invalid=True)


def test_missing_file_and_directory_are_errors(tmp_path):
    with pytest.raises(MgfError, match="no such file"):
        read_mgf(tmp_path / "missing.mgf", VOCAB)
    with pytest.raises(MgfError, match="directory"):
        read_mgf(tmp_path, VOCAB)


def test_global_charge_in_the_header_applies_to_every_spectrum(write_file):
    text = "CHARGE=3+\nBEGIN IONS\nTITLE=a\nPEPMASS=400.2\n100.0 1.0\nEND IONS\n"
    assert read_mgf(write_file(text), VOCAB).batch.precursor_charge.tolist() == [3]


def test_inspect_reports_the_real_sample(sample):
    report = inspect_mgf(SAMPLE_MGF)
    assert report.n_spectra == 128 and report.n_annotated == 128
    assert report.charges == {"2": 127, "3": 1}
    assert report.peptide_length.min == 6 and report.peptide_length.max == 19
    assert report.modifications["C[Carbamidomethyl]"] == 23
    assert set(report.residues_outside_vocabulary) == {"M[Oxidation]", "N[Deamidated]"}
    assert abs(report.precursor_error_ppm.worst) < 20
    assert 0.2 < report.fragment_coverage.mean < 1.0


def test_inspect_finds_every_ion_of_clean_synthetic_spectra(tmp_path):
    batch = generate_spectra(SpectrumSettings(7, 12), 32, VOCAB, seed=2)
    path = tmp_path / "clean.mgf"
    write_mgf(path, batch, VOCAB)
    report = inspect_mgf(path, tolerance_da=1e-4, peak_filter=PeakFilter.keep_all())
    assert report.fragment_coverage.min == 1.0
    assert abs(report.precursor_error_ppm.worst) < 0.2  # float32 neutral mass
    assert report.n_outside_vocabulary == 0

"""``pepcurr split``: peptide-disjoint splits, byte-faithful blocks, overlaps between inputs."""

from __future__ import annotations

from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.spectra.mgf import read_mgf
from curriculum_cli.spectra.split import SplitGroup, peptide_key, split_mgf
from curriculum_cli.spectra.vocabulary import Vocabulary
from tests.helpers import HCD_MGF, SAMPLE_MGF

runner = CliRunner()


def _blocks(data: bytes) -> list[bytes]:
    """The ``BEGIN IONS`` ... ``END IONS`` blocks of an MGF file's bytes, as written."""
    return [b"BEGIN IONS" + part.split(b"END IONS")[0] + b"END IONS"
            for part in data.split(b"BEGIN IONS")[1:]]  # fmt: skip


def _spectrum(title: str, seq: str, extra: str = "") -> str:
    return (f"BEGIN IONS\nTITLE={title}\nPEPMASS=400.2\n{extra}SEQ={seq}\n"
            "100.0 1.0\n200.0 0.5\nEND IONS\n")  # fmt: skip


def test_split_is_peptide_disjoint_byte_faithful_and_seeded(tmp_path):
    result = split_mgf([SAMPLE_MGF], tmp_path / "a", val_fraction=0.2, test_fraction=0.1, seed=3)
    assert sum(result.n_spectra.values()) == 128
    assert abs(result.n_spectra["val"] - 0.2 * 128) <= 3
    assert abs(result.n_spectra["test"] - 0.1 * 128) <= 3
    vocab = Vocabulary.default()
    keys = {}
    for split in ("train", "val", "test"):
        peptides = read_mgf(tmp_path / "a" / f"{split}.mgf", vocab).batch.peptides
        assert len(peptides) == result.n_spectra[split]
        keys[split] = {peptide_key(p) for p in peptides}
        assert len(keys[split]) == result.n_peptides[split]
    assert not keys["train"] & keys["val"]
    assert not keys["train"] & keys["test"]
    assert not keys["val"] & keys["test"]
    # every block is copied as it was in the input, each exactly once
    written = [b for s in ("train", "val", "test") for b in _blocks((tmp_path / "a" / f"{s}.mgf").read_bytes())]  # fmt: skip  # noqa: E501
    assert sorted(written) == sorted(_blocks(SAMPLE_MGF.read_bytes()))
    # same seed, same files; another seed, another split
    split_mgf([SAMPLE_MGF], tmp_path / "b", val_fraction=0.2, test_fraction=0.1, seed=3)
    split_mgf([SAMPLE_MGF], tmp_path / "c", val_fraction=0.2, test_fraction=0.1, seed=4)
    same = (tmp_path / "a" / "val.mgf").read_bytes() == (tmp_path / "b" / "val.mgf").read_bytes()
    other = (tmp_path / "a" / "val.mgf").read_bytes() == (tmp_path / "c" / "val.mgf").read_bytes()
    assert same and not other


def test_split_folds_i_into_l_reports_overlap_and_keeps_global_parameters(write_file, tmp_path):
    first = write_file(
        "CHARGE=2+\n" + _spectrum("a0", "PEPTIDEK") + _spectrum("a1", "GGMK"), "a.mgf"
    )
    second = write_file(_spectrum("b0", "PEPTLDEK", "CHARGE=3+\n") + _spectrum("b1", "GGM[Oxidation]K", "CHARGE=2+\n"), "b.mgf")  # fmt: skip  # noqa: E501
    backbones = split_mgf([first, second], tmp_path / "bb", val_fraction=0.3, test_fraction=0.0)
    assert [(o.n_peptides, o.examples) for o in backbones.overlaps] == [(2, ["GGMK", "PEPTLDEK"])]
    result = split_mgf([first, second], tmp_path / "out", val_fraction=0.3, test_fraction=0.0,
                       group=SplitGroup.peptide)  # fmt: skip
    assert [(o.n_peptides, o.examples) for o in result.overlaps] == [(1, ["PEPTLDEK"])]
    assert result.files["test"] is None and not (tmp_path / "out" / "test.mgf").exists()
    assert result.n_peptides["train"] + result.n_peptides["val"] == 3  # M and M[Oxidation] differ
    batches = [read_mgf(tmp_path / "out" / f"{s}.mgf", Vocabulary.default()).batch
               for s in ("train", "val")]  # fmt: skip
    charges = {t: int(z) for b in batches for t, z in zip(b.titles, b.precursor_charge, strict=True)}  # fmt: skip  # noqa: E501
    assert charges == {"a0": 2, "a1": 2, "b0": 3, "b1": 2}  # a.mgf's header CHARGE kept
    peptide_of = {t: p for b in batches for t, p in zip(b.titles, b.peptides, strict=True)}
    splits_of = {t: s for s, b in zip(("train", "val"), batches, strict=True) for t in b.titles}
    assert splits_of["a0"] == splits_of["b0"] and peptide_of["b0"] == "PEPTLDEK"


def test_split_cli_bad_input_is_one_line_and_exit_2(write_file, tmp_path):
    unannotated = write_file(_spectrum("ok", "PEPK") + "BEGIN IONS\nTITLE=bare\nPEPMASS=1\n"
                             "CHARGE=2+\n100 1\nEND IONS\n", "bare.mgf")  # fmt: skip
    odd = write_file(_spectrum("odd", "PEPXK"), "odd.mgf")
    cases = [
        ([unannotated], "spectrum 1 (TITLE=bare, line 8): no SEQ"),
        ([odd], "spectrum 0 (TITLE=odd, line 1): SEQ=PEPXK: unknown residue 'X'"),
        ([tmp_path / "none.mgf"], "none.mgf: no such file"),
        ([odd, "--val", "0.6", "--test", "0.5"], "--val + --test must be below 1"),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, ["split", *map(str, arguments), "--out", str(tmp_path / "o")])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert message in lines[0], lines[0]
    ok = runner.invoke(app, ["split", str(SAMPLE_MGF), "--out", str(tmp_path / "s")])
    assert ok.exit_code == 0 and "no backbone is in two splits" in ok.stdout
    again = runner.invoke(app, ["split", str(SAMPLE_MGF), "--out", str(tmp_path / "s")])
    assert again.exit_code == 2 and "use --force" in again.stderr


def test_split_of_synthetic_and_real_files_keeps_each_backbone_in_one_part(tmp_path):
    """Default grouping: no unmodified sequence (I = L) in two parts, even where the real
    files hold a peptide and its modified form; the output says which rule was used."""
    synthetic = tmp_path / "synthetic.mgf"
    made = runner.invoke(app, ["spectra", "-c", "revised", "--stage", "stage_1_foundation", "-n",
                               "60", "-o", str(synthetic), "--vocab", "casanovo"])  # fmt: skip
    assert made.exit_code == 0, made.output
    inputs = [synthetic, HCD_MGF, SAMPLE_MGF]
    result = runner.invoke(app, ["split", *map(str, inputs), "-o", str(tmp_path / "out"),
                                 "--val", "0.2", "--test", "0.2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no backbone is in two splits (grouped by unmodified sequence, I = L" in result.stdout
    parts = {}
    for split in ("train", "val", "test"):
        text = (tmp_path / "out" / f"{split}.mgf").read_text()
        seqs = [line[4:] for line in text.splitlines() if line.startswith("SEQ=")]
        parts[split] = {peptide_key(seq) for seq in seqs}
        assert parts[split]
    assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"]
                or parts["val"] & parts["test"])  # fmt: skip
    # the old rule is still there, and says so
    old = runner.invoke(app, ["split", str(SAMPLE_MGF), "-o", str(tmp_path / "old"),
                              "--group", "peptide"])  # fmt: skip
    assert "no peptide is in two splits (grouped by peptide: I = L, modifications count)" in (
        old.stdout
    )
    assert peptide_key("[Acetyl]-PEM[+15.995]IK") == peptide_key("PEMLK") == "PEMLK"
    assert peptide_key("[Acetyl]-PEMIK", SplitGroup.peptide) == "[Acetyl]-PEMLK"

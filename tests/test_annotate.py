"""``pepcurr annotate``: annotated MGF from spectra (mzML, MGF) and search results (PSMs).

The tests make their own files: spectra taken from the MassIVE-KB sample (its SEQ lines
are the known truth), written as a small hand-made mzML or as MGF without SEQ, and PSM
tables in psm_utils' ProForma TSV and Sage's TSV with decoys, q-values and problems.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from pyteomics import mgf
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.errors import PsmError
from curriculum_cli.spectra.annotate import annotate_spectra
from curriculum_cli.spectra.vocabulary import Vocabulary
from tests.helpers import HCD_MGF

runner = CliRunner()
CASANOVO = Vocabulary.named("casanovo")
N_KNOWN = 12


@pytest.fixture(scope="module")
def known() -> list[dict]:
    """The first spectra of the MassIVE-KB sample, with several modified peptides among them."""
    with mgf.read(str(HCD_MGF), use_index=False) as reader:
        spectra = [s for _, s in zip(range(60), reader, strict=False)]
    modified = [s for s in spectra if "[" in s["params"]["seq"].replace("C[Carbamidomethyl]", "")]
    plain = [s for s in spectra if s not in modified]
    chosen = modified[:4] + plain[: N_KNOWN - 4]
    return [{"scan": 100 + i, "seq": s["params"]["seq"], "charge": int(s["params"]["charge"][0]),
             "mz": s["m/z array"], "intensity": s["intensity array"],
             "pepmass": s["params"]["pepmass"][0]} for i, s in enumerate(chosen)]  # fmt: skip


def _binary(values: np.ndarray, accession: str, name: str) -> str:
    encoded = base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode()
    return (f'<binaryDataArray encodedLength="{len(encoded)}">'
            '<cvParam cvRef="MS" accession="MS:1000523" name="64-bit float"/>'
            '<cvParam cvRef="MS" accession="MS:1000576" name="no compression"/>'
            f'<cvParam cvRef="MS" accession="{accession}" name="{name}"/>'
            f"<binary>{encoded}</binary></binaryDataArray>")  # fmt: skip


def write_mzml(path: Path, spectra: list[dict]) -> Path:
    """A minimal mzML 1.1 of MS2 spectra (ids ``... scan=N``), and one MS1 scan to skip."""
    blocks = []
    for index, s in enumerate([{"scan": 99, "ms1": True, **spectra[0]}, *spectra]):
        level = 1 if s.get("ms1") else 2
        precursor = "" if level == 1 else (
            '<precursorList count="1"><precursor><selectedIonList count="1"><selectedIon>'
            f'<cvParam cvRef="MS" accession="MS:1000744" name="selected ion m/z" '
            f'value="{s["pepmass"]!r}"/><cvParam cvRef="MS" accession="MS:1000041" '
            f'name="charge state" value="{s["charge"]}"/></selectedIon></selectedIonList>'
            "</precursor></precursorList>")  # fmt: skip
        blocks.append(
            f'<spectrum index="{index}" id="controllerType=0 controllerNumber=1 '
            f'scan={s["scan"]}" defaultArrayLength="{len(s["mz"])}">'
            f'<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="{level}"/>'
            '<scanList count="1"><scan><cvParam cvRef="MS" accession="MS:1000016" '
            'name="scan start time" value="1.5" unitCvRef="UO" unitAccession="UO:0000031" '
            f'unitName="minute"/></scan></scanList>{precursor}<binaryDataArrayList count="2">'
            + _binary(s["mz"], "MS:1000514", "m/z array")
            + _binary(s["intensity"], "MS:1000515", "intensity array")
            + "</binaryDataArrayList></spectrum>"
        )  # fmt: skip
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<mzML xmlns="http://psi.hupo.org/ms/mzml" '
        'version="1.1.0"><cvList count="1"><cv id="MS" fullName="PSI-MS" URI="x"/></cvList>'
        f'<run id="run1"><spectrumList count="{len(blocks)}">{"".join(blocks)}'
        "</spectrumList></run></mzML>\n"
    )  # fmt: skip
    return path


def write_psm_tsv(path: Path, known: list[dict]) -> Path:
    """psm_utils' TSV: a kept PSM per known spectrum but the last two, and the problems."""
    rows = [(s["seq"], s["charge"], f"controllerType=0 controllerNumber=1 scan={s['scan']}",
             "False", "0.001", "50") for s in known[:-2]]  # fmt: skip
    scan = lambda i: f"controllerType=0 controllerNumber=1 scan={known[i]['scan']}"  # noqa: E731
    rows += [
        ("PEPTIDEK", 2, scan(0), "False", "0.002", "10"),  # a worse PSM of a spectrum
        ("KEDITPEP", 2, scan(-2), "True", "0.0", "40"),  # a decoy
        ("PEPTIDER", 2, scan(-1), "False", "0.05", "5"),  # above the q-value threshold
        ("PEPS[Phospho]TIDEK", 2, scan(-1), "False", "0.001", "30"),  # no such token
        ("PEPTIDEK", 2, "controllerType=0 controllerNumber=1 scan=9999", "False", "0.001", "30"),
    ]  # fmt: skip
    lines = ["peptidoform\tspectrum_id\trun\tis_decoy\tqvalue\tscore"]
    lines += [f"{seq}/{z}\t{sid}\trun1\t{decoy}\t{q}\t{score}"
              for seq, z, sid, decoy, q, score in rows]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def _read(path: Path) -> list[dict]:
    with mgf.read(str(path), use_index=False) as reader:
        return list(reader)


def test_annotate_round_trips_mzml_and_psms_into_the_same_annotated_mgf(known, tmp_path):
    spectra = write_mzml(tmp_path / "run1.mzML", known)
    psms = write_psm_tsv(tmp_path / "results.tsv", known)
    out = tmp_path / "annotated.mgf"
    result = annotate_spectra(spectra, psms, out, CASANOVO, fdr=0.01)
    assert (result.n_spectra, result.n_psms, result.psm_format) == (N_KNOWN, N_KNOWN + 3, "tsv")
    counts = (result.n_decoys, result.n_above_fdr, result.n_unspellable, result.n_duplicate,
              result.n_no_spectrum, result.n_written)  # fmt: skip
    assert counts == (1, 1, 1, 1, 1, N_KNOWN - 2)
    assert result.unspellable == {"S[Phospho]": 1}
    assert result.no_spectrum_examples == ["controllerType=0 controllerNumber=1 scan=9999"]
    written = _read(out)
    assert len(written) == N_KNOWN - 2
    for spectrum, truth in zip(written, known, strict=False):
        params = spectrum["params"]
        assert params["title"] == f"controllerType=0 controllerNumber=1 scan={truth['scan']}"
        assert "".join(CASANOVO.parse(params["seq"])) == "".join(CASANOVO.parse(truth["seq"]))
        assert (params["pepmass"][0], int(params["charge"][0])) == (truth["pepmass"],
                                                                    truth["charge"])  # fmt: skip
        assert (int(params["scans"]), float(params["rtinseconds"])) == (truth["scan"], 90.0)
        np.testing.assert_array_equal(spectrum["m/z array"], truth["mz"])
        np.testing.assert_array_equal(spectrum["intensity array"], truth["intensity"])
    # the q-value filter: at 0.05 the PSM above 0.01 is kept, and annotates the last spectrum
    wider = annotate_spectra(spectra, psms, tmp_path / "wider.mgf", CASANOVO, fdr=0.05)
    assert (wider.n_above_fdr, wider.n_written) == (0, N_KNOWN - 1)
    assert _read(tmp_path / "wider.mgf")[-1]["params"]["seq"] == "PEPTIDER"


def test_annotate_reads_sage_results_and_mgf_spectra_and_reports_on_the_command_line(
    known, tmp_path
):
    spectra = tmp_path / "sample.mgf"
    spectra.write_text("".join(
        f"BEGIN IONS\nTITLE=sample.{s['scan']}.{s['scan']}.{s['charge']}\nPEPMASS={s['pepmass']}"
        f"\nCHARGE={s['charge']}+\nSCANS={s['scan']}\n"
        + "".join(f"{a} {b}\n" for a, b in zip(s["mz"], s["intensity"], strict=True))
        + "END IONS\n" for s in known))  # fmt: skip
    header = ("psm_id\tpeptide\tproteins\tfilename\tscannr\trank\tlabel\texpmass\tcalcmass\t"
              "charge\trt\tsage_discriminant_score\tspectrum_q")  # fmt: skip
    rows = [header]
    for i, s in enumerate(known):
        sage_seq = s["seq"].replace("[Oxidation]", "[+15.9949]").replace("[Acetyl]-", "[+42.0106]-")
        label = "-1" if i == 0 else "1"  # the first is a decoy
        rows.append(f"{i}\t{sage_seq}\tP1\tsample.mzML\t{s['scan']}\t1\t{label}\t1000.0\t1000.0\t"
                    f"{s['charge']}\t1.0\t{1 - i / 100}\t0.001")  # fmt: skip
    psms = tmp_path / "results.sage.tsv"
    psms.write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["annotate", str(spectra), "--psms", str(psms), "-o",
                                 str(tmp_path / "out.mgf")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"read {N_KNOWN} PSMs of run sample from {psms} (sage_tsv)" in result.stdout
    assert "  1 decoys" in result.stdout
    assert f"  {N_KNOWN - 1} annotate a spectrum" in result.stdout
    assert "warning: written peptides hold tokens vocabulary standard lacks" in result.stdout
    seqs = [s["params"]["seq"] for s in _read(tmp_path / "out.mgf")]
    assert seqs == ["".join(CASANOVO.parse(s["seq"])) for s in known[1:]]


def test_annotate_bad_input_is_one_line_and_exit_2(known, tmp_path):
    spectra = write_mzml(tmp_path / "run1.mzML", known)
    psms = write_psm_tsv(tmp_path / "results.tsv", known)
    no_columns = tmp_path / "bad.tsv"
    no_columns.write_text("sequence\tscan\nPEPTIDEK\t1\n")
    other = tmp_path / "other.tsv"
    other.write_text("peptidoform\tspectrum_id\tqvalue\nPEPTIDEK/2\tscan=1\t0.0\n")
    broken = tmp_path / "broken.mzML"
    broken.write_text("<mzML><run><spectrumList><spectrum id='a'>")
    cases = [
        ([str(spectra), "--psms", str(no_columns)], "no PSM could be read as tsv"),
        ([str(spectra), "--psms", str(other)], "none of its 12 spectra matches one of the 1 kept"),
        ([str(spectra), "--psms", str(tmp_path / "none.tsv")], "none.tsv: no such file"),
        ([str(spectra), "--psms", str(psms), "--psm-format", "mascot"], "unknown; one of"),
        ([str(broken), "--psms", str(psms)], "cannot read it as mzML"),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, ["annotate", *arguments, "-o", str(tmp_path / "o.mgf")])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output
    with pytest.raises(PsmError, match="no PSM is left"):
        annotate_spectra(spectra, psms, tmp_path / "x.mgf", CASANOVO, fdr=1e-6)

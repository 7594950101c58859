"""Write the inputs of docs/your-data.md: spectra without SEQ and search results for them.

No search engine runs here: the "search results" are the annotations of
data/massivekb_ms2pip_250.mgf re-expressed as a Sage results file
(``results.sage.tsv``: mass-delta spelling, q-values, decoys), so that the walkthrough
shows every step of ``pepcurr annotate`` on real spectra. Every 10th spectrum gets a
decoy PSM (its reversed backbone) that outscores its target, every 12th target a
q-value above 1%; the rest are targets at q = 0.001.

    python scripts/example_search_results.py OUT_DIR
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pyteomics import mgf

SOURCE = Path(__file__).resolve().parents[1] / "data" / "massivekb_ms2pip_250.mgf"
SAGE_COLUMNS = ("psm_id", "peptide", "proteins", "filename", "scannr", "rank", "label",
                "expmass", "calcmass", "charge", "rt", "sage_discriminant_score",
                "spectrum_q")  # fmt: skip
DELTAS = {"[Oxidation]": "[+15.9949]", "[Deamidated]": "[+0.9840]", "[Acetyl]-": "[+42.0106]-",
          "[Carbamyl]-": "[+43.0058]-", "[Ammonia-loss]-": "[-17.0265]-",
          "C[Carbamidomethyl]": "C[+57.0215]"}  # fmt: skip


def sage_spelling(seq: str) -> str:
    for name, delta in DELTAS.items():
        seq = seq.replace(name, delta)
    return seq


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    spectra, rows = [], ["\t".join(SAGE_COLUMNS)]
    with mgf.read(str(SOURCE), use_index=False) as reader:
        for index, spectrum in enumerate(reader):
            params = spectrum["params"]
            scan, charge = 1000 + index, int(params["charge"][0])
            pairs = zip(spectrum["m/z array"], spectrum["intensity array"], strict=True)
            peaks = "".join(f"{a} {b}\n" for a, b in pairs)
            spectra.append(f"BEGIN IONS\nTITLE=spectra.{scan}.{scan}.{charge}\n"
                           f"PEPMASS={params['pepmass'][0]}\nCHARGE={charge}+\nSCANS={scan}\n"
                           f"{peaks}END IONS\n")  # fmt: skip
            seq = sage_spelling(params["seq"])
            q = 0.05 if index % 12 == 11 else 0.001
            psm = ["P1", "spectra.mzML", str(scan), "1", "1", "0", "0", str(charge), "0"]
            rows.append("\t".join([str(len(rows)), seq, *psm, f"{1 - index / 1000:.4f}", str(q)]))
            if index % 10 == 9:
                letters = re.sub(r"\[[^\]]*\]-?", "", seq)
                decoy = letters[-2::-1] + letters[-1]  # reversed, the C-terminal K/R kept
                decoy_psm = ["rev_P1", "spectra.mzML", str(scan), "1", "-1", "0", "0", str(charge)]
                rows.append("\t".join([str(len(rows)), decoy, *decoy_psm, "0", "2.0", "0.5"]))
    (out_dir / "spectra.mgf").write_text("".join(spectra))
    (out_dir / "results.sage.tsv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="Folder for spectra.mgf and results.sage.tsv.")
    main(parser.parse_args().out_dir)

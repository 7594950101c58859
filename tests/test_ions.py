"""The table of ion families (``spectra.ions``) is the one source of what ions there are.

The annotator makes exactly the table's families at the charges of their rule, with the
masses pyteomics gives; the intensity fit groups each ion as its row does; the world's
coefficient names that name a family or a series come from the rows; the simulator's
terminal ions sit at the rows' charges; and the fragment-charge rule is written once.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from pyteomics import mass

from curriculum_cli.curriculum.presets import preset
from curriculum_cli.spectra import simulator
from curriculum_cli.spectra.chemistry import RESIDUE_MASS_DA, STANDARD_MASSES
from curriculum_cli.spectra.fragments import annotated_spectrum, theoretical_ions
from curriculum_cli.spectra.intensity_fit import design_row
from curriculum_cli.spectra.ions import (
    CHARGE_RULES,
    FAMILIES,
    INTACT_PRECURSOR,
    ION_FAMILIES,
    ION_FAMILY,
    ION_GROUPS,
    SERIES,
    SERIES_FAMILIES,
    families_in,
    max_fragment_charge,
)
from curriculum_cli.spectra.vocabulary import Vocabulary
from curriculum_cli.spectra.world import COEFFICIENT_NAMES, PRECURSOR_CHARGES

PACKAGE = Path(__file__).resolve().parents[1] / "curriculum_cli"

# Holds residues that lose H2O (S, T, D, E) and NH3 (K, N, Q, R), neither at both ends.
PEPTIDE = "GASTKDLNQEWR"

# pyteomics' name of each family it knows (the others: immonium and internal ions).
PYTEOMICS_ION = {"b": "b", "y": "y", "a": "a", "b-H2O": "b-H2O", "b-NH3": "b-NH3",
                 "y-H2O": "y-H2O", "y-NH3": "y-NH3", "precursor": "M",
                 "precursor-H2O": "M-H2O", "precursor-NH3": "M-NH3"}  # fmt: skip
# pepcurr's residue masses, so that the comparison checks the ion conventions, not the table
PYTEOMICS_AA_MASS = {letter: RESIDUE_MASS_DA[letter] for letter in set(PEPTIDE)}


def _ions(precursor_charge: int):
    spectrum = annotated_spectrum(np.zeros(0), np.zeros(0), precursor_charge, 500.0, PEPTIDE,
                                  STANDARD_MASSES)  # fmt: skip
    return spectrum, theoretical_ions(spectrum, isotopes=0)


def test_every_row_names_a_known_group_and_charge_rule_and_every_group_has_a_row():
    assert len(set(FAMILIES)) == len(FAMILIES)
    assert {family.group for family in ION_FAMILIES} == set(ION_GROUPS)
    assert {family.charge_rule for family in ION_FAMILIES} <= set(CHARGE_RULES)
    assert {family.series for family in ION_FAMILIES} - {None} == set(SERIES) == {"b", "y"}
    assert [f.name for f in SERIES_FAMILIES] == ["b", "a", "b-H2O", "b-NH3", "y", "y-H2O",
                                                 "y-NH3"]  # fmt: skip


@pytest.mark.parametrize("precursor_charge", [1, 2, 3, 4, 5])
def test_the_annotator_makes_every_family_of_the_table_at_the_charges_of_its_rule(
    precursor_charge,
):
    _, ions = _ions(precursor_charge)
    for index, family in enumerate(ION_FAMILIES):
        charges = set(ions["charge"][ions["family"] == index].tolist())
        assert charges == set(family.charges(precursor_charge)), family.name
    assert set(ions["family"].tolist()) == set(range(len(FAMILIES)))
    fragment = ION_FAMILY["b"].charges(precursor_charge)
    assert fragment == range(1, max_fragment_charge(precursor_charge) + 1)
    assert max(fragment) == {1: 1, 2: 1, 3: 2, 4: 3, 5: 3}[precursor_charge]


def test_series_and_precursor_ions_have_pyteomics_masses_and_losses_need_their_residues():
    spectrum, ions = _ions(3)
    losers = {"H2O": set("STDE"), "NH3": set("RKNQ")}
    for index, family in enumerate(ION_FAMILIES):
        if family.name not in PYTEOMICS_ION:
            continue
        rows = np.nonzero(ions["family"] == index)[0]
        for row in rows:
            span, z = int(ions["span"][row]), int(ions["charge"][row])
            piece = PEPTIDE[:span] if family.series == "b" else PEPTIDE[len(PEPTIDE) - span :]
            expected = mass.fast_mass(piece, ion_type=PYTEOMICS_ION[family.name], charge=z,
                                      aa_mass=PYTEOMICS_AA_MASS)  # fmt: skip
            assert ions["mz"][row] == pytest.approx(expected, abs=1e-6), family.name
        if family.series:  # one ion per charge at each site whose fragment holds a loser
            loss = family.name.partition("-")[2]
            spans = range(1, len(PEPTIDE))
            able = [n for n in spans if not loss or losers[loss] & set(
                PEPTIDE[:n] if family.series == "b" else PEPTIDE[len(PEPTIDE) - n :])]  # fmt: skip
            charges = len(family.charges(spectrum.charge))
            assert sorted(ions["span"][rows].tolist()) == sorted(able * charges), family.name


def test_the_fit_groups_every_ion_as_its_row():
    spectrum, ions = _ions(3)
    letters = spectrum.letters
    for row in range(len(ions["mz"])):
        family = FAMILIES[ions["family"][row]]
        design = design_row(spectrum, letters, family, int(ions["charge"][row]),
                            int(ions["site"][row]), int(ions["span"][row]),
                            float(ions["mz"][row]))  # fmt: skip
        if family == INTACT_PRECURSOR:
            assert design is None
        else:
            assert design[1] == ION_FAMILY[family].group


def test_every_coefficient_that_names_a_family_or_a_series_comes_from_a_row():
    derived = {family.name for family in families_in("derived")}
    named = {name.split(":", 1)[1] for name in COEFFICIENT_NAMES
             if name.split(":")[0] in ("derived", "derived2+")}  # fmt: skip
    assert named == derived
    assert sum(name.startswith("derived") for name in COEFFICIENT_NAMES) == 2 * len(derived)
    series_terms = [name for name in COEFFICIENT_NAMES if name.startswith("series:")]
    expected = {f"series:{s}{z}|{p}" for s in SERIES for p in PRECURSOR_CHARGES
                for z in range(1, max_fragment_charge(p) + 1)} - {"series:y1|2", "series:y1|3",
                                                                   "series:y1|4"}  # fmt: skip
    assert set(series_terms) == expected
    for prefix in ("position:", "span1:", "span2:", "basic:"):
        letters = {name.removeprefix(prefix)[0] if prefix == "position:" else
                   name.split(":")[1][0] for name in COEFFICIENT_NAMES
                   if name.startswith(prefix)}  # fmt: skip
        assert letters == set(SERIES), prefix


def test_the_simulator_makes_the_series_families_at_the_rows_charges():
    world = preset("calibrated-hcd").world
    tables = simulator._tables(world, 7, 30, Vocabulary.default(), torch.device("cpu"))
    assert tables.family_shift.view(-1).tolist() == pytest.approx(
        [family.shift_da for family in SERIES_FAMILIES]
    )
    for f, family in enumerate(SERIES_FAMILIES):
        for p in PRECURSOR_CHARGES:
            made = torch.isfinite(tables.series[f, :, p]).nonzero().view(-1) + 1
            assert made.tolist() == list(family.charges(p)), (family.name, p)


def _charge_rules(tree: ast.AST) -> list[int]:
    """Lines that spell ``min(<charge> - 1, 3)``: the fragment-charge rule."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id == "min" and len(node.args) == 2
        and isinstance(node.args[0], ast.BinOp) and isinstance(node.args[0].op, ast.Sub)
        and isinstance(node.args[0].right, ast.Constant) and node.args[0].right.value == 1
        and isinstance(node.args[1], ast.Constant) and node.args[1].value == 3
    ]  # fmt: skip


def test_the_fragment_charge_rule_is_written_once():
    found = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := _charge_rules(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert list(found) == ["spectra/ions.py"] and len(found["spectra/ions.py"]) == 1

"""The ion families a spectrum may show: one table, and the fragment-charge rule.

One row (``IonFamily``) per family, read by the annotator (``fragments``: which
ions a peptide has and which peaks they explain), the intensity fit
(``intensity_fit``: each ion's design row and group), the world's coefficient
names (``world.COEFFICIENT_NAMES``) and the simulator (``simulator``). A new
family is a row here plus its term in the simulator (and its features in
``intensity_fit.design_row``) where it needs one of its own.

A family's neutral mass is the mass of its *piece* plus ``shift_da``: the
N-terminal (``series`` b) or C-terminal (``series`` y) piece of a backbone
cleavage, for the terminal fragments; one residue for an immonium ion, a stretch
of inner residues for an internal fragment, the whole peptide for the precursor
(the ``group`` names which). Its m/z at charge z is ``(neutral + z * proton) / z``.
"""

from __future__ import annotations

from dataclasses import dataclass

from curriculum_cli.spectra.chemistry import CO_MASS_DA, H2O_MASS_DA, NH3_MASS_DA

H2O_LOSERS = frozenset("STDE")
"""Residues that let a fragment lose H2O: it must hold one of them."""

NH3_LOSERS = frozenset("RKNQ")
"""Residues that let a fragment lose NH3: it must hold one of them."""

ION_GROUPS = ("terminal", "derived", "immonium", "internal", "precursor")
"""Ion groups with a scatter shape and a formation probability of their own (a world's
``intensity.shape`` and so on): b/y ions; a ions and neutral losses of b/y; immonium ions;
internal fragments; the precursor and its losses."""

CHARGE_RULES = ("fragment", "one", "precursor")
"""How a family's charges follow from the precursor's: 1 to ``max_fragment_charge``; 1 only;
1 to the precursor's own."""


def max_fragment_charge(precursor_charge: int) -> int:
    """Highest charge of a b/y fragment: min(precursor charge - 1, 3), at least 1."""
    return max(1, min(precursor_charge - 1, 3))


@dataclass(frozen=True)
class IonFamily:
    """One kind of ion: where its mass comes from, what it needs, how it is labelled."""

    name: str
    series: str | None  # "b" / "y": the N- / C-terminal piece of a cleavage; None: no series
    shift_da: float  # added to the piece's neutral mass (Da)
    needs: frozenset[str]  # the fragment must hold one of these residues (empty: nothing)
    group: str  # one of ION_GROUPS
    priority: int  # a peak several ions explain is labelled with the lowest (mono first)
    charge_rule: str  # one of CHARGE_RULES

    def __post_init__(self) -> None:
        if self.group not in ION_GROUPS or self.charge_rule not in CHARGE_RULES:
            raise ValueError(f"{self.name}: group must be one of {ION_GROUPS}, charge_rule one "
                             f"of {CHARGE_RULES}")  # fmt: skip
        if self.needs and self.series is None:
            raise ValueError(f"{self.name}: only a series fragment can need residues")

    def charges(self, precursor_charge: int) -> range:
        """The charges this family's ions carry in a spectrum of ``precursor_charge``."""
        highest = {
            "fragment": max_fragment_charge(precursor_charge),
            "one": 1,
            "precursor": precursor_charge,
        }[self.charge_rule]
        return range(1, highest + 1)


_NONE = frozenset()

ION_FAMILIES = (
    IonFamily("b", "b", 0.0, _NONE, "terminal", 0, "fragment"),
    IonFamily("y", "y", 0.0, _NONE, "terminal", 0, "fragment"),
    IonFamily("a", "b", -CO_MASS_DA, _NONE, "derived", 2, "fragment"),
    IonFamily("b-H2O", "b", -H2O_MASS_DA, H2O_LOSERS, "derived", 3, "fragment"),
    IonFamily("b-NH3", "b", -NH3_MASS_DA, NH3_LOSERS, "derived", 3, "fragment"),
    IonFamily("y-H2O", "y", -H2O_MASS_DA, H2O_LOSERS, "derived", 3, "fragment"),
    IonFamily("y-NH3", "y", -NH3_MASS_DA, NH3_LOSERS, "derived", 3, "fragment"),
    IonFamily("immonium", None, -CO_MASS_DA, _NONE, "immonium", 5, "one"),
    IonFamily("internal", None, 0.0, _NONE, "internal", 6, "one"),
    IonFamily("internal-a", None, -CO_MASS_DA, _NONE, "internal", 6, "one"),
    IonFamily("precursor", None, 0.0, _NONE, "precursor", 4, "precursor"),
    IonFamily("precursor-H2O", None, -H2O_MASS_DA, _NONE, "precursor", 4, "precursor"),
    IonFamily("precursor-NH3", None, -NH3_MASS_DA, _NONE, "precursor", 4, "precursor"),
)
"""Every ion family, in the order the annotator lists them (``fragments.theoretical_ions``)."""

FAMILIES = tuple(family.name for family in ION_FAMILIES)
"""The families' names, in table order (an annotation's ``family`` indexes this)."""

FAMILY = {name: index for index, name in enumerate(FAMILIES)}
"""Family name -> its index in ``FAMILIES``."""

ION_FAMILY = {family.name: family for family in ION_FAMILIES}
"""Family name -> its row."""

SERIES = tuple(dict.fromkeys(family.series for family in ION_FAMILIES if family.series))
"""The fragment series, b then y."""

SERIES_FAMILIES = tuple(
    family for series in SERIES for family in ION_FAMILIES if family.series == series
)
"""The families of the two series, the b series' first (b, a, b-H2O, ..., y, y-H2O, ...): the
simulator's order of its terminal ions."""

INTACT_PRECURSOR = "precursor"
"""The family of the intact precursor (pepcurr's preprocessing removes it)."""


def families_in(group: str) -> tuple[IonFamily, ...]:
    """The rows of one of ``ION_GROUPS``, in table order."""
    return tuple(family for family in ION_FAMILIES if family.group == group)

"""The model's token vocabulary: special tokens, one token per residue, and their masses.

``<pad>`` = 0 and ``<eos>`` = 1, then one id per token in the order of
``Vocabulary.residues``: unmodified residues, modified ones (``M[Oxidation]``)
and N-terminal modifications (``[Acetyl]-``), each a token of its own. Masses
come from ``chemistry`` (one table); a vocabulary file may add tokens of its own
with their masses (``masses_da``).

Three vocabularies are named (``--vocab``): ``standard`` (the 19 residues of
pepcurr's synthetic world, I folded into L, carbamidomethylated C), ``casanovo``
(Casanovo 5's default: those plus M oxidation, N/Q deamidation and the four
N-terminal modifications), or a YAML/JSON file (``load_vocabulary``). An
N-terminal token is the first token of a target, before the residues
(``docs/vocabulary.md`` says how decoding, the losses and the metrics see it).
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import model_serializer

from curriculum_cli.errors import PeptideError, VocabularyError
from curriculum_cli.spectra.chemistry import (
    C_UNMODIFIED_MASS_DA,
    DELTA_TOLERANCE_DA,
    N_TERM_MASS_DA,
    RESIDUE_MASS_DA,
    STANDARD_RESIDUES,
    MassTable,
    parse_peptide,
)

if TYPE_CHECKING:
    import torch


PAD_TOKEN = 0
EOS_TOKEN = 1
SPECIAL_TOKENS = ("<pad>", "<eos>")

N_TERM = "N-term"
"""The site of an N-terminal modification (``ModifiedToken.site``), as mzTab writes it."""

#: Casanovo 5's default modifications (its ``config.yaml`` residues beyond the 20 amino acids).
CASANOVO_MODIFICATIONS = (
    "M[Oxidation]", "N[Deamidated]", "Q[Deamidated]",
    "[Acetyl]-", "[Carbamyl]-", "[Ammonia-loss]-", "[+25.980265]-",
)  # fmt: skip

VOCABULARY_NAMES = ("standard", "casanovo")
"""The named vocabularies of ``--vocab`` (the first is the default)."""

# A file token: a residue letter with an optional [modification], or an N-terminal [mod]-.
_RESIDUE_TOKEN_RE = re.compile(r"[A-Z](\[[^\]\[]+\])?")
_N_TERM_TOKEN_RE = re.compile(r"\[[^\]\[]+\]-")
# Two tokens of one site closer in mass than this cannot be told apart by a mass delta.
_SAME_MASS_DA = DELTA_TOLERANCE_DA

RESIDUE_MASS_RANGE_DA = (30.0, 3000.0)
"""The full mass (Da) a vocabulary file may give a residue token pepcurr does not know:
glycine, the lightest residue, is 57.02 Da; a residue with a large modification (a glycan, a
cross-linker) stays under 3,000 Da. A mass outside is a typo or a unit slip (1e-7, 1e300)."""

N_TERM_DELTA_RANGE_DA = (-500.0, 500.0)
"""The mass delta (Da) a file may give an N-terminal token pepcurr does not know: the
labels in use (acetyl 42.01, TMTpro 304.21) lie well inside; a delta within 0.01 Da of 0
is an unmodified N-terminus, no token."""


@dataclass(frozen=True)
class ModifiedToken:
    """A token that is not one of the 20 unmodified residues (``Vocabulary.modifications``).

    ``site``: the residue letter it modifies, or ``N_TERM``; ``unmodified``: the
    token of that unmodified residue in the vocabulary (None for an N-terminal
    modification, or when the vocabulary lacks it); ``delta_da``: its mass minus
    the unmodified residue token's (``C[Carbamidomethyl]`` for a C), the mass an
    N-terminal token adds for one. Modifying a peptide is swapping a residue token
    for a ``ModifiedToken`` of its site, or putting an N-terminal one first.
    """

    token: str
    token_id: int
    site: str
    unmodified: str | None
    delta_da: float

    @property
    def n_terminal(self) -> bool:
        return self.site == N_TERM


@dataclass(frozen=True)
class Vocabulary:
    """Token ids of the model: ``<pad>`` = 0, ``<eos>`` = 1, then one id per residue token.

    ``residues``: token names in id order (canonical ProForma: ``M``,
    ``M[Oxidation]``, ``[Acetyl]-``). ``fold_il``: I and L have the same mass
    (113.084064 Da), so no mass-based loss and no spectrum can tell them apart; by
    default I is encoded as L and the model never has to guess between two
    isobaric tokens. Turn it off to keep I as its own token. ``masses_da``:
    ``(token, mass)`` of tokens that ``chemistry``'s tables lack (from a vocabulary
    file); empty for the named vocabularies, and then left out of ``run.json``.
    """

    # run.json holds it: an unknown key there is an error, not silently dropped
    __pydantic_config__ = {"extra": "forbid"}

    residues: tuple[str, ...]
    fold_il: bool = True
    masses_da: tuple[tuple[str, float], ...] = ()

    @model_serializer(mode="wrap")
    def _without_empty_masses(self, handler) -> dict[str, Any]:
        """``run.json`` of a named vocabulary stays as it was before files existed."""
        data = handler(self)
        if not self.masses_da:
            data.pop("masses_da", None)
        return data

    @classmethod
    def default(cls, fold_il: bool = True) -> Vocabulary:
        """The ``standard`` vocabulary: the 20 unmodified residues (I folded into L)."""
        return cls(residues=tuple(r for r in STANDARD_RESIDUES if not (fold_il and r == "I")),
                   fold_il=fold_il)  # fmt: skip

    @classmethod
    def named(cls, name: str, fold_il: bool = True) -> Vocabulary:
        """``standard`` or ``casanovo`` (Casanovo 5's default residues and modifications)."""
        if name not in VOCABULARY_NAMES:
            raise VocabularyError(
                f"--vocab {name}: unknown vocabulary; give {', '.join(VOCABULARY_NAMES)} or a "
                "YAML/JSON file"
            )
        standard = cls.default(fold_il)
        if name == "standard":
            return standard
        return cls(residues=standard.residues + CASANOVO_MODIFICATIONS, fold_il=fold_il)

    @property
    def size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.residues)

    @property
    def tokens(self) -> tuple[str, ...]:
        return SPECIAL_TOKENS + self.residues

    @functools.cached_property
    def masses(self) -> MassTable:
        """The names this vocabulary's peptides may use, with their masses (Da):
        ``chemistry``'s tables plus the vocabulary's own tokens."""
        own = dict(self.masses_da)
        residues = {**RESIDUE_MASS_DA, **{t: m for t, m in own.items() if not _is_n_term(t)}}
        n_terms = {**N_TERM_MASS_DA, **{t: m for t, m in own.items() if _is_n_term(t)}}
        return MassTable(residues, n_terms)

    def mass_da(self, token: str) -> float:
        """Mass (Da) of a residue token; an N-terminal token's is its mass delta."""
        table = self.masses
        return table.n_terms[token] if _is_n_term(token) else table.residues[token]

    def residue_masses(self, device=None, dtype=None) -> torch.Tensor:
        """Mass table ``[size]`` in Da; 0 for the special tokens, an N-terminal token's delta
        (negative for ``[Ammonia-loss]-``) for it."""
        import torch

        masses = [0.0] * len(SPECIAL_TOKENS) + [self.mass_da(r) for r in self.residues]
        return torch.tensor(masses, device=device, dtype=dtype or torch.float32)

    @functools.cached_property
    def modifications(self) -> tuple[ModifiedToken, ...]:
        """The tokens that are not one of the 20 unmodified residues, in id order: what a
        generator may put on a peptide and ``inspect`` counts (C[Carbamidomethyl] is
        pepcurr's unmodified C)."""
        found = []
        for token_id, token in enumerate(self.residues, start=len(SPECIAL_TOKENS)):
            if token in STANDARD_RESIDUES:
                continue
            if _is_n_term(token):
                found.append(ModifiedToken(token, token_id, N_TERM, None, self.mass_da(token)))
                continue
            site = token[0]
            unmodified = "C[Carbamidomethyl]" if site == "C" else site
            present = unmodified if unmodified in self.residues else None
            delta_da = self.mass_da(token) - RESIDUE_MASS_DA[unmodified]
            found.append(ModifiedToken(token, token_id, site, present, delta_da))
        return tuple(found)

    @property
    def n_terminal_ids(self) -> tuple[int, ...]:
        """Token ids of the N-terminal modifications (only ever the first token of a target)."""
        return tuple(m.token_id for m in self.modifications if m.n_terminal)

    def n_terminal_mask(self, device=None) -> torch.Tensor:
        """``[size]`` bool, True at the N-terminal tokens."""
        import torch

        mask = torch.zeros(self.size, dtype=torch.bool)
        mask[list(self.n_terminal_ids)] = True
        return mask.to(device)

    def parse(self, peptide: str) -> list[str]:
        """A peptide string as canonical names of this vocabulary's masses
        (``chemistry.parse_peptide``); names it cannot encode are still read."""
        return parse_peptide(peptide, self.masses)

    def encode(self, peptide: str | list[str]) -> list[int]:
        """Token ids of a peptide (no ``<eos>``): its N-terminal modification first, if any,
        then its residues; I becomes L when folded."""
        residues = self.parse(peptide) if isinstance(peptide, str) else peptide
        index = {r: i + len(SPECIAL_TOKENS) for i, r in enumerate(self.residues)}
        ids = []
        for r in residues:
            key = "L" if (self.fold_il and r == "I") else r
            if key not in index:
                raise PeptideError(
                    f"residue {r!r} is not in the model's vocabulary ({', '.join(self.residues)})"
                )
            ids.append(index[key])
        return ids

    def decode(self, ids) -> str:
        """Peptide string (ProForma) of token ids, up to the first ``<eos>``; ``<pad>`` is
        skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_TOKEN:
                break
            if i >= len(SPECIAL_TOKENS):
                out.append(self.residues[i - len(SPECIAL_TOKENS)])
        return "".join(out)

    def difference(self, other: Vocabulary) -> tuple[list[str], list[str], list[str]]:
        """Tokens of ``other`` kept here, tokens only here (added), tokens only there
        (dropped); each in its vocabulary's order."""
        kept = [t for t in other.residues if t in self.residues]
        added = [t for t in self.residues if t not in other.residues]
        dropped = [t for t in other.residues if t not in self.residues]
        return kept, added, dropped


def _is_n_term(token: str) -> bool:
    return token.endswith("]-") and token.startswith("[")


# ----------------------------------------------------------------------------
# --vocab: a name or a file
# ----------------------------------------------------------------------------


def load_vocabulary(spec: str | Path) -> Vocabulary:
    """The vocabulary ``--vocab`` names: ``standard``, ``casanovo``, or a YAML/JSON file.

    A file holds ``residues``: token -> mass (Da) as Casanovo's ``config.yaml``
    writes them (a residue's full mass; an N-terminal ``[Name]-`` token's mass
    delta; ``null`` takes pepcurr's mass of a token it knows), and optionally
    ``base`` (``standard`` or ``casanovo``: its tokens come first) and ``fold_il``
    (default true). Every problem is one line of the ``VocabularyError``.
    """
    text = str(spec)
    if text in VOCABULARY_NAMES:
        return Vocabulary.named(text)
    path = Path(spec)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise VocabularyError(
            f"--vocab {text}: give {' or '.join(VOCABULARY_NAMES)}, or a .yaml/.yml/.json file"
        )
    data, lines = _read_vocabulary_file(path)
    problems: list[str] = []
    unknown = sorted(set(data) - {"base", "residues", "fold_il"})
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)} (a typo?); the keys are base, "
                        "residues, fold_il")  # fmt: skip
    fold_il = data.get("fold_il", True)
    if not isinstance(fold_il, bool):
        problems.append(f"fold_il: must be true or false, got {fold_il!r}")
        fold_il = True
    base_name = data.get("base")
    base: tuple[str, ...] = ()
    if base_name is not None:
        if base_name not in VOCABULARY_NAMES:
            problems.append(f"base: must be one of {', '.join(VOCABULARY_NAMES)}, "
                            f"got {base_name!r}")  # fmt: skip
        else:
            base = Vocabulary.named(base_name, fold_il).residues
    given = data.get("residues")
    if not isinstance(given, dict) or (not given and not base):
        problems.append("residues: must map each token to its mass in Da "
                        "(e.g. 'M[Oxidation]: 147.0354')")  # fmt: skip
        given = {}
    problems += [
        f"{key}: given {len(at)} times, on lines {', '.join(map(str, at))}; keep one"
        for key, at in lines.items()
        if len(at) > 1
    ]  # the file's reader keeps the last
    tokens, own, spelled = list(base), [], {}
    for raw_token, raw_mass in given.items():
        token, mass, problem = _file_token(str(raw_token), raw_mass)
        if problem:
            problems.append(f"residues.{raw_token}: {problem}")
        elif token in spelled:
            other = spelled[token]
            at = f" (lines {lines[other][0]} and {lines[str(raw_token)][0]})" if lines else ""
            problems.append(f"residues.{raw_token}: the same token as {other}{at}; keep one")
        else:
            spelled[token] = str(raw_token)
            if token == "I" and fold_il:
                continue  # folded into L, as Casanovo's tokenizer drops I
            if token not in tokens:
                tokens.append(token)
                if mass is not None:
                    own.append((token, mass))
    problems += _same_mass_problems(tokens, dict(own))
    if problems:
        raise VocabularyError("\n".join(f"{path}: {line}" for line in problems))
    return Vocabulary(residues=tuple(tokens), fold_il=fold_il, masses_da=tuple(own))


def _read_vocabulary_file(path: Path) -> tuple[dict, dict[str, list[int]]]:
    """The file's mapping, and the lines (1-based) each key stands on: a key on several lines
    is given twice, which JSON and YAML readers settle silently (the last one wins)."""
    if not path.is_file():
        what = "no such file" if not path.exists() else "is a directory"
        raise VocabularyError(f"--vocab {path}: {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise VocabularyError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as error:
        raise VocabularyError(f"{path}: cannot read it: {error.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            data, lines = json.loads(text), _json_key_lines(text)
        else:
            data, lines = _yaml_with_key_lines(text)
    except Exception as error:  # json and yaml raise their own kinds
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        mark = getattr(error, "problem_mark", None)
        if mark is not None:  # yaml: where, and what
            first = f"line {mark.line + 1}: {error.problem}"
            near = text.splitlines()[max(mark.line - 1, 0) : mark.line + 1]
            if any(line.lstrip().startswith("[") for line in near):  # [Acetyl]-: a flow list
                first += " (quote a token that starts with '[': '[Acetyl]-')"
        raise VocabularyError(f"{path}: not valid {path.suffix[1:].upper()}: {first}") from None
    if not isinstance(data, dict):
        raise VocabularyError(f"{path}: the vocabulary file must be a mapping with 'residues'")
    return data, lines


def _json_key_lines(text: str) -> dict[str, list[int]]:
    """Each object key of a JSON text and the lines it stands on."""
    lines: dict[str, list[int]] = {}
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:', text):
        key = json.loads(f'"{match.group(1)}"')
        lines.setdefault(key, []).append(text.count("\n", 0, match.start()) + 1)
    return lines


def _yaml_with_key_lines(text: str) -> tuple[Any, dict[str, list[int]]]:
    """A YAML text read as ``yaml.safe_load`` reads it, and each mapping key's lines."""
    import yaml

    class KeyLineLoader(yaml.SafeLoader):
        pass

    lines: dict[str, list[int]] = {}

    def mapping(loader, node):
        loader.flatten_mapping(node)
        data = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: a key must be "
                                     "text; quote an N-terminal token ('[Acetyl]-')")  # fmt: skip
            lines.setdefault(str(key), []).append(key_node.start_mark.line + 1)
            data[key] = loader.construct_object(value_node, deep=True)
        return data

    KeyLineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=KeyLineLoader), lines  # noqa: S506 (a SafeLoader)


def _file_token(token: str, mass) -> tuple[str, float | None, str | None]:
    """A file's token checked: ``(canonical token, its own mass or None, problem or None)``.

    ``None`` as own mass: pepcurr's tables know the token, and the file's mass (if any)
    agrees with them.
    """
    if mass is not None and (isinstance(mass, bool) or not isinstance(mass, int | float)
                             or not math.isfinite(mass)):  # fmt: skip
        return token, None, f"the mass must be a number in Da, got {mass!r}"
    n_terminal = bool(_N_TERM_TOKEN_RE.fullmatch(token))
    if not n_terminal and not _RESIDUE_TOKEN_RE.fullmatch(token):
        return token, None, ("not a token: write a residue letter with an optional "
                             "[modification] (M[Oxidation], S[+79.966331]) or an N-terminal "
                             "modification as [Name]- ([Acetyl]-)")  # fmt: skip
    if not n_terminal and token[0] not in RESIDUE_MASS_DA and token[0] != "C":
        return token, None, f"{token[0]!r} is not one of the 20 amino acids"
    known_mass = N_TERM_MASS_DA.get(token) if n_terminal else RESIDUE_MASS_DA.get(token)
    if token == "C":
        token, known_mass = "C[Carbamidomethyl]", RESIDUE_MASS_DA["C[Carbamidomethyl]"]
    if known_mass is not None:
        if mass is not None and abs(mass - known_mass) > 1e-3:
            note = (" (pepcurr's C is always carbamidomethylated)"
                    if token.startswith("C[Carbamidomethyl]") else "")  # fmt: skip
            return token, None, (f"{mass} Da differs from pepcurr's {known_mass} Da{note}; "
                                 "leave the mass out (null) or correct it")  # fmt: skip
        return token, None, None
    if mass is None:
        return token, None, "a token pepcurr does not know needs its mass in Da"
    low, high = N_TERM_DELTA_RANGE_DA if n_terminal else RESIDUE_MASS_RANGE_DA
    if not low <= mass <= high or (n_terminal and abs(mass) <= _SAME_MASS_DA):
        what = (
            "an N-terminal token's mass delta must be from {:g} to {:g} Da and not 0"
            if n_terminal
            else "a residue's full mass must be from {:g} to {:g} Da"
        )
        return token, None, f"{what.format(low, high)} (docs/vocabulary.md), got {mass:g}"
    delta = token[1:-1] if n_terminal else token[2:-1]
    if _is_number(delta):
        base_da = 0.0 if n_terminal else _base_mass_da(token[0])
        if abs(base_da + float(delta) - mass) > DELTA_TOLERANCE_DA:
            return token, None, (f"{mass} Da is not the {'delta' if n_terminal else 'residue'} "
                                 f"{delta} makes ({base_da + float(delta):.6f} Da)")  # fmt: skip
    return token, float(mass), None


def _same_mass_problems(tokens: list[str], own: dict[str, float]) -> list[str]:
    """Two tokens of one site and (within 0.01 Da) one mass: a mass delta could not tell
    which one a peptide means."""
    problems, seen = [], {}
    for token in tokens:
        mass = own.get(token, N_TERM_MASS_DA.get(token, RESIDUE_MASS_DA.get(token)))
        site = N_TERM if _is_n_term(token) else token[0]
        for other, other_mass in seen.get(site, []):
            if abs(other_mass - mass) <= _SAME_MASS_DA:
                problems.append(f"residues.{token}: has the mass of {other} ({other_mass} Da) "
                                "at the same site; keep one of them")  # fmt: skip
        seen.setdefault(site, []).append((token, mass))
    return problems


def _base_mass_da(letter: str) -> float:
    return C_UNMODIFIED_MASS_DA if letter == "C" else RESIDUE_MASS_DA[letter]


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"[+-]\d+(\.\d+)?", text))


def vocabulary_label(vocab: Vocabulary) -> str:
    """``standard``/``casanovo`` when ``vocab`` is one of them, else ``N tokens``."""
    for name in VOCABULARY_NAMES:
        if vocab == Vocabulary.named(name, vocab.fold_il):
            return name if vocab.fold_il else f"{name} (I kept)"
    return f"{len(vocab.residues)} tokens"

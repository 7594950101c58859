"""A trained model's weights moved into another vocabulary (``train --init-from RUN --vocab V``).

Some parameters hold one slice per vocabulary token: the token embedding's and the output
head's rows, and in pepcurr's transformer with ion evidence the candidate embedding's rows
and a block of the evidence input's columns per token. A model says which (and along which
dimension, how wide a slice) with ``per_token_parameters()``; every other parameter does not
depend on the vocabulary and is copied as it is.

Per token of the new vocabulary, its slices come from:

- the same token in the checkpoint's vocabulary: copied exactly (kept);
- else its unmodified residue there (``M`` for ``M[Oxidation]``, ``C[Carbamidomethyl]``
  for a modified C, ``L`` for an unfolded ``I``): the model starts by treating the new
  token as that residue, and the ion evidence tells them apart by mass (Casanovo 5.2's
  ``new_token_init`` asks the user for such a map; pepcurr takes this one);
- else (an N-terminal modification, or a residue the checkpoint lacks): the new model's own
  freshly initialised slice (drawn from the run's seed).

Tokens only in the checkpoint are dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curriculum_cli.errors import RunError

if TYPE_CHECKING:
    import torch

    from curriculum_cli.spectra.vocabulary import Vocabulary


def initial_source(token: str, source: Vocabulary) -> str | None:
    """The checkpoint token whose slices a new ``token`` starts from (None: fresh)."""
    if token in source.tokens:
        return token
    if token == "I":
        candidate = "L"
    elif token.startswith("["):
        return None
    else:
        candidate = "C[Carbamidomethyl]" if token[0] == "C" else token[0]
    return candidate if candidate in source.tokens else None


def transfer_token_weights(
    weights: dict[str, torch.Tensor],
    model: torch.nn.Module,
    source: Vocabulary,
    target: Vocabulary,
    where: str,
) -> dict[str, torch.Tensor]:
    """``weights`` (a state dict of a model with vocabulary ``source``) for ``model`` (built
    with ``target``): per-token slices moved as the module docstring says, the rest as is.

    A ``RunError`` when the model does not name its per-token parameters, or when one of
    them does not have one slice per token of ``source``.
    """
    axes_of = getattr(model, "per_token_parameters", None)
    if axes_of is None:
        raise RunError(
            f"{where}: the vocabulary differs, and this model does not say which of its "
            "parameters hold one slice per token: give it a per_token_parameters() method "
            "(docs/models.md), or fine-tune with the checkpoint's vocabulary"
        )
    own = model.state_dict()
    sources = [initial_source(token, source) for token in target.tokens]
    moved = dict(weights)
    for name, (dim, width) in axes_of().items():
        old = weights.get(name)
        if old is None or old.shape[dim] != source.size * width:
            found = "is missing" if old is None else f"has {old.shape[dim]} along dim {dim}"
            raise RunError(f"{where}: {name} {found} in the checkpoint; its vocabulary has "
                           f"{source.size} tokens of {width}")  # fmt: skip
        new = own[name].detach().clone()
        for token_id, token in enumerate(sources):
            if token is not None:
                origin = source.tokens.index(token)
                new.narrow(dim, token_id * width, width).copy_(
                    old.narrow(dim, origin * width, width)
                )
        moved[name] = new
    return moved

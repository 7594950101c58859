"""Measured "gradient strength": per-loss gradient norms, ratios and cosines.

The design document estimated an auxiliary loss's gradient strength as
accuracy squared. pepcurr measures it instead: the gradient of each loss term
taken separately with respect to the shared parameters (every trainable
parameter of the model), then

- ``<aux>_norm``: the L2 norm of that loss's gradient;
- ``<aux>_ratio``: aux norm / CE norm (how strong the raw signal is);
- ``<aux>_ratio_weighted``: weight * aux norm / CE norm (its size in the
  summed gradient at the current curriculum weight; not its share of an Adam
  update, which normalises each parameter: see docs/losses.md);
- ``<aux>_cosine``: cosine between the aux gradient and the CE gradient
  (> 0: helps cross-entropy, < 0: tug of war).

It is measured whether or not the loss is switched on, so a run shows what the
gradient would have been before its introduction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES

WINDOW_FRACTION = 0.02
"""Around an introduction, within this fraction of the run's steps on either side, gradients
are measured ``DENSE_FACTOR`` times as often, and ``compare`` summarises them as a window."""

DENSE_FACTOR = 4


def measured_at(step: int, every: int, introductions: Iterable[int], total_steps: int) -> bool:
    """Whether the gradients are measured before the update at ``step``.

    Every ``every`` steps, and every ``every // DENSE_FACTOR`` steps within
    ``WINDOW_FRACTION`` of the run of an introduction, so that the figures
    there are a mean over several batches rather than one batch.
    """
    if step % every == 0:
        return True
    half_window = max(1, round(WINDOW_FRACTION * total_steps))
    dense = max(1, every // DENSE_FACTOR)
    return step % dense == 0 and any(abs(step - at) <= half_window for at in introductions)


def _flat_gradient(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
            for g, p in zip(grads, params, strict=True)
        ]
    )


def measure_gradients(
    terms: dict[str, torch.Tensor],
    params: list[torch.Tensor],
    weights: dict[str, float],
    average: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Norms, ratios and cosines of each loss term's gradient (see module docstring).

    ``terms`` are the unweighted losses of one forward pass (their graph is
    kept for the real backward pass); ``weights`` the current curriculum
    weights of the auxiliary losses. ``average`` (data-parallel ranks: the
    mean over ranks) turns each rank's gradient into the run's gradient first.
    """
    average = average or (lambda gradient: gradient)
    ce = average(_flat_gradient(terms["ce"], params))
    ce_norm = ce.norm()
    result = {"ce_norm": ce_norm.item()}
    for name in AUXILIARY_LOSSES:
        aux = average(_flat_gradient(terms[name], params))
        aux_norm = aux.norm()
        ratio = (aux_norm / ce_norm).item() if ce_norm > 0 else float("nan")
        denominator = aux_norm * ce_norm
        cosine = (aux @ ce / denominator).item() if denominator > 0 else float("nan")
        result[f"{name}_norm"] = aux_norm.item()
        result[f"{name}_ratio"] = ratio
        result[f"{name}_ratio_weighted"] = weights[name] * ratio
        result[f"{name}_cosine"] = cosine
    return result

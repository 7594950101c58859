"""How a model decodes, and its output as refinement steps with the weights of their losses.

A model is **autoregressive** (the default: ``forward`` gives teacher-forced
logits ``[B, T, V]``, decoding extends a prefix through ``decode``) or
**parallel** (class attribute ``decoding = "parallel"``: ``forward`` gives the
logits of every position of the model's canvas at once, from the spectra
alone). A parallel model may return one answer per refinement step
(``[S, B, W, V]``, or a list of ``S`` tensors ``[B, W, V]``) with
``step_weights``: each loss is applied to every step and the steps' values
combined with those weights, normalised to sum 1 (deep supervision, as in the
Tiny Recursive Model and pepTRM). ``aux_step_weights``, when the model has it,
weights the spectrum and precursor losses instead (pepTRM's own scheme puts
them on the last step only: ``(0, ..., 0, 1)``). Accuracies and decoded
peptides come from the last step. The contract is in ``docs/models.md``.

``as_steps`` turns any of these outputs into one tensor ``[S, B, T, V]`` (an
autoregressive model's ``[B, T, V]`` becomes ``S = 1``, a view: nothing in
its numbers changes); ``step_weights`` reads and checks the weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curriculum_cli.errors import ModelError

if TYPE_CHECKING:
    import torch

AUTOREGRESSIVE = "autoregressive"
PARALLEL = "parallel"
DECODING_KINDS = (AUTOREGRESSIVE, PARALLEL)


def decoding_kind(model) -> str:
    """``model.decoding``: ``"autoregressive"`` (also when absent) or ``"parallel"``."""
    kind = getattr(model, "decoding", AUTOREGRESSIVE)
    if kind not in DECODING_KINDS:
        raise ModelError(
            f"the model's decoding is {kind!r}; it must be one of {', '.join(DECODING_KINDS)}"
        )
    return kind


def is_parallel(model) -> bool:
    return decoding_kind(model) == PARALLEL


@dataclass(frozen=True)
class StepWeights:
    """Per refinement step, the weight of its cross-entropy and of its auxiliary losses.

    Each tuple sums to 1; a step whose weight is 0 is not computed at all.
    """

    ce: tuple[float, ...]
    aux: tuple[float, ...]


SINGLE_STEP = StepWeights(ce=(1.0,), aux=(1.0,))


def step_weights(model, n_steps: int) -> StepWeights:
    """The weights of a model's ``n_steps`` refinement steps, each set normalised to sum 1.

    One step needs none (weight 1). Several need ``model.step_weights`` (one
    non-negative number per step, not all 0); ``model.aux_step_weights``
    (optional, the same rules) weights the auxiliary losses, by default as
    ``step_weights``. A ``ModelError`` says what is wrong.
    """
    declared = getattr(model, "step_weights", None)
    if declared is None:
        if n_steps == 1:
            return SINGLE_STEP
        raise ModelError(
            f"the model returns {n_steps} refinement steps but has no step_weights "
            "(one weight per step; see docs/models.md)"
        )
    ce = _normalised(declared, n_steps, "step_weights")
    aux_declared = getattr(model, "aux_step_weights", None)
    aux = ce if aux_declared is None else _normalised(aux_declared, n_steps, "aux_step_weights")
    return StepWeights(ce=ce, aux=aux)


def _normalised(weights: Sequence[float], n_steps: int, name: str) -> tuple[float, ...]:
    values = [float(w) for w in weights]
    if len(values) != n_steps:
        raise ModelError(
            f"the model's {name} has {len(values)} weights for {n_steps} refinement steps"
        )
    if not all(math.isfinite(w) and w >= 0 for w in values) or sum(values) <= 0:
        raise ModelError(f"the model's {name} must be finite, >= 0 and not all 0: {values}")
    total = sum(values)
    return tuple(w / total for w in values)


def as_steps(output, width: int | None = None) -> torch.Tensor:
    """A model's logits as ``[S, B, T, V]``: a tensor ``[B, T, V]`` (one step), ``[S, B, T, V]``,
    or a list/tuple of ``[B, T, V]``. ``width``: keep the first ``width`` positions (a
    parallel model's canvas sliced to the targets' width ``T``); a ``ModelError`` when the
    output is narrower."""
    import torch

    if isinstance(output, list | tuple):
        output = _stacked(output)
    if not isinstance(output, torch.Tensor) or output.dim() not in (3, 4):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelError(
            f"the model's forward() must return logits [B, T, V] or [S, B, T, V], got {shape}"
        )
    steps = output.unsqueeze(0) if output.dim() == 3 else output
    if width is not None:
        if steps.shape[2] < width:
            raise ModelError(
                f"the model returns {steps.shape[2]} positions, fewer than the {width} the "
                "targets need (its max_peptide_length is too small for these peptides)"
            )
        steps = steps[:, :, :width]
    return steps


def _stacked(output: list | tuple) -> torch.Tensor:
    """A list of refinement steps ``[B, W, V]`` as one tensor ``[S, B, W, V]``; a
    ``ModelError`` naming what else it holds (pepTRM's own model returns
    ``(logits, latent)``: a tuple that is not a list of steps)."""
    import torch

    kind = type(output).__name__
    if not output or not all(isinstance(step, torch.Tensor) for step in output):
        held = ", ".join(type(step).__name__ for step in output) or "nothing"
        raise ModelError(f"the model's forward() returned a {kind} of {held}: a list of "
                         "refinement steps must hold tensors [B, W, V] alone")  # fmt: skip
    shapes = [tuple(step.shape) for step in output]
    if len(set(shapes)) > 1 or len(shapes[0]) != 3:
        listed = ", ".join(str(list(shape)) for shape in shapes)
        raise ModelError(
            f"the model's forward() returned a {kind} of tensors {listed}, not refinement steps "
            "of one shape [B, W, V]; return the logits alone ([S, B, W, V] or a list of S "
            "[B, W, V]): a model that returns (logits, latent) needs a forward() that returns "
            "only its logits (docs/models.md)"
        )
    return torch.stack(list(output))


def refinement_logits(model, batch, forward=None) -> torch.Tensor:
    """The model's answer(s) to ``batch`` as ``[S, B, T, V]``, ``T`` the targets' width.

    An autoregressive model reads the batch (teacher forcing); a parallel
    model gets the spectra alone (``SpectrumBatch.without_targets``) and its
    canvas is cut to ``T``. ``forward``: what to call instead of ``model`` (its
    ``DistributedDataParallel`` wrapper under torchrun).
    """
    call = model if forward is None else forward
    output = call(batch.without_targets() if is_parallel(model) else batch)
    return as_steps(output, batch.tokens.shape[1])

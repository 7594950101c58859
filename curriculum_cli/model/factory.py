"""Which network a run trains: a pepcurr preset, or the user's own model from a factory.

``--model`` takes a preset name (``preset_architectures``: the transformers of
``model.transformer`` and the recursive models of ``model.recursive``) or a
factory: ``package.module:function`` (importable from the current
environment) or ``path/to/file.py:function``. The factory is called as
``function(vocab)`` with the run's ``vocabulary.Vocabulary`` and returns a
``torch.nn.Module`` that follows one of the two interfaces of
``docs/models.md``, as its ``decoding`` attribute says (``model.refinement``).

**Autoregressive** (the default, no attribute needed):

- ``forward(batch: SpectrumBatch) -> logits [B, T, V]``: teacher-forced
  logits for ``batch.tokens`` (``T`` = its width, ``V`` = ``vocab.size``);
  ``logits[:, i]`` predicts token ``i``;
- ``encode(mz, intensity, peak_mask) -> (memory, memory_mask)``: per-spectrum
  state whose first dimension is the spectrum (decoding indexes it by row);
- ``decode(prefix_tokens, precursor_mass_da, precursor_charge, memory,
  memory_mask, peak_mz, peak_intensity) -> logits [B, t + 1, V]`` for a
  residue prefix ``[B, t]`` (greedy and beam search call it with the decoded
  prefix; ``peak_mz``/``peak_intensity`` are the spectra ``encode`` read, for
  models that look at the peaks while decoding, as pepcurr's ion evidence does);

**Parallel** (``decoding = "parallel"``):

- ``forward(batch) -> logits`` of every position of its canvas at once,
  ``[B, W, V]``, ``[S, B, W, V]`` or a list of ``S`` tensors ``[B, W, V]`` (one
  per refinement step), ``W = max_peptide_length + 1``; pepcurr passes the
  spectra alone (``SpectrumBatch.without_targets``) and slices the canvas to
  the targets' width;
- ``step_weights`` (one per step; needed when ``S > 1``) and optionally
  ``aux_step_weights``.

Both have the attributes ``vocab`` (the vocabulary it was given) and
``max_peptide_length`` (most residues it can decode). The training loop,
losses, gradient measurement, checkpoints, resume, ``evaluate`` and
``compare`` then work on it unchanged; ``run.json`` records the factory
string, and its provenance the file's SHA-256 for the path form.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from curriculum_cli.errors import ModelError

if TYPE_CHECKING:
    import torch

    from curriculum_cli.model.recursive import RecursiveConfig
    from curriculum_cli.model.transformer import ModelConfig
    from curriculum_cli.spectra.vocabulary import Vocabulary


def is_factory(spec: str) -> bool:
    """True for ``module:function`` or ``file.py:function``; False for a preset name."""
    return ":" in spec


def _load_factory(spec: str):
    """The callable named by a factory spec, or a ``ModelError`` saying what is wrong."""
    target, _, name = spec.rpartition(":")
    if not target or not name.isidentifier():
        raise ModelError(f"--model {spec}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ModelError(f"--model {spec}: no such file {path}")
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        module_name = f"pepcurr_user_model_{digest}"
        module = sys.modules.get(module_name)
        if module is None:
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            try:
                module_spec.loader.exec_module(module)
            except Exception as error:  # the user's code may raise anything
                raise ModelError(
                    f"--model {spec}: {path} fails to import: {_one_line(error)}"
                ) from None
            sys.modules[module_name] = module
    else:
        try:
            module = importlib.import_module(target)
        except Exception as error:
            reason = _one_line(error)
            raise ModelError(f"--model {spec}: cannot import {target}: {reason}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ModelError(f"--model {spec}: {target} has no function {name!r}")
    return factory


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def factory_provenance(spec: str) -> dict:
    """Where a factory came from, for ``run.json``'s provenance (file path and SHA-256)."""
    target = spec.rpartition(":")[0]
    if not target.endswith(".py"):
        return {"model_factory": spec}
    path = Path(target).resolve()
    return {
        "model_factory": spec,
        "model_file": str(path),
        "model_file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def preset_architectures() -> dict[str, ModelConfig | RecursiveConfig]:
    """Every model preset by name: the transformers, then the recursive models."""
    from curriculum_cli.model.recursive import RECURSIVE_PRESETS
    from curriculum_cli.model.transformer import MODEL_PRESETS

    return {**MODEL_PRESETS, **RECURSIVE_PRESETS}


def build_model(
    model: str, architecture: ModelConfig | RecursiveConfig | None, vocab: Vocabulary
) -> torch.nn.Module:
    """A freshly initialised model (weights drawn from torch's global RNG).

    ``architecture``: pepcurr's transformer (``ModelConfig``) or recursive
    model (``RecursiveConfig``) of those dimensions; None: the factory
    ``model`` (``MODULE:FUNCTION`` or ``FILE.py:FUNCTION``) called with
    ``vocab``, its model checked against the interface.
    """
    from curriculum_cli.model.recursive import RecursiveConfig, RecursivePeptideModel
    from curriculum_cli.model.transformer import PeptideTransformer

    if isinstance(architecture, RecursiveConfig):
        return RecursivePeptideModel(architecture, vocab)
    if architecture is not None:
        return PeptideTransformer(architecture, vocab)
    built = _load_factory(model)(vocab)
    check_model(built, model, vocab)
    return built


def _probe_batch(vocab: Vocabulary):
    """Two synthetic spectra of 6-8 residues: what a model is tried on before a run."""
    import torch

    from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_batch

    return generate_batch(SpectrumSettings(min_length=6, max_length=8), 2, vocab,
                          torch.Generator().manual_seed(0))  # fmt: skip


def check_model(model, spec: str, vocab: Vocabulary) -> None:
    """A ``ModelError`` when a factory's model lacks the interface or gives the wrong shape."""
    import torch

    from curriculum_cli.model.refinement import PARALLEL, as_steps, decoding_kind, step_weights

    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"--model {spec}: the factory returned {type(model).__name__}, "
                         "not a torch.nn.Module")  # fmt: skip
    try:
        parallel = decoding_kind(model) == PARALLEL
    except ModelError as error:
        raise ModelError(f"--model {spec}: {error}") from None
    needed = ("vocab", "max_peptide_length") if parallel else (
        "encode", "decode", "vocab", "max_peptide_length")  # fmt: skip
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise ModelError(
            f"--model {spec}: the model lacks {', '.join(missing)} (see docs/models.md)"
        )
    batch = _probe_batch(vocab)
    training = model.training
    try:
        with torch.no_grad():
            logits = model.eval()(batch.without_targets() if parallel else batch)
    except Exception as error:
        raise ModelError(
            f"--model {spec}: forward() fails on a batch of 2: {_one_line(error)}"
        ) from None
    finally:
        model.train(training)
    if not parallel:
        expected = (*batch.tokens.shape, vocab.size)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
            shape = (tuple(logits.shape) if isinstance(logits, torch.Tensor)
                     else type(logits).__name__)  # fmt: skip
            raise ModelError(
                f"--model {spec}: forward() must return logits of shape [B, T, V] = {expected}, "
                f"got {shape}"
            )
        return
    try:
        steps = as_steps(logits)
        step_weights(model, steps.shape[0])
    except ModelError as error:
        raise ModelError(f"--model {spec}: {error}") from None
    canvas = model.max_peptide_length + 1
    if steps.shape[1] != len(batch) or steps.shape[2] < canvas or steps.shape[3] != vocab.size:
        raise ModelError(
            f"--model {spec}: a parallel model's forward() must return logits [S, B, W, V] with "
            f"B = {len(batch)}, W >= max_peptide_length + 1 = {canvas} and V = {vocab.size}, "
            f"got {tuple(steps.shape)}"
        )


def parameters_without_gradient(model, vocab: Vocabulary) -> list[str]:
    """Trainable parameters that the cross-entropy of a forward pass leaves without a gradient.

    Under ``torchrun``, ``DistributedDataParallel`` stops at the second step
    when a parameter gets none (``find_unused_parameters`` would cost every
    step), so a run on several processes refuses such a model up front. The
    pass runs in eval mode (no dropout draw) and writes no ``.grad``.
    """
    import torch

    from curriculum_cli.model.losses import refinement_loss_terms
    from curriculum_cli.model.refinement import as_steps, is_parallel, step_weights

    batch = _probe_batch(vocab).to(next(model.parameters()).device)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    training = model.training
    try:
        parallel = is_parallel(model)
        steps = as_steps(model.eval()(batch.without_targets() if parallel else batch),
                         batch.tokens.shape[1])  # fmt: skip
        weights = step_weights(model, steps.shape[0])
        masses = vocab.residue_masses(device=batch.mz.device)[2:]  # residue tokens only
        ce = refinement_loss_terms(steps.float(), batch, masses, 1.0, weights)["ce"]
        grads = torch.autograd.grad(ce, [p for _, p in named], allow_unused=True)
    finally:
        model.train(training)
    return [name for (name, _), grad in zip(named, grads, strict=True) if grad is None]

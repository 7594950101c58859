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
``compare`` then work on it unchanged. Every error of the factory or its model
is a ``ModelError`` (one line: the factory's own message, and where it was
raised). ``run.json`` records the factory with its file's path made absolute
(``resolved_factory``), and its provenance the file's SHA-256; a trained run's
model is built again from that file, checked (``recorded_factory``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
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


def _file_of(spec: str) -> Path | None:
    """The file of a ``FILE.py:FUNCTION`` factory (None: a preset or ``MODULE:FUNCTION``)."""
    target = spec.rpartition(":")[0]
    return Path(target) if is_factory(spec) and target.endswith(".py") else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolved_factory(spec: str) -> str:
    """``spec`` with its factory file's path made absolute (from the current folder).

    What a new run records as its ``model``, so that ``--resume``, ``--fork-from``,
    ``evaluate`` and ``predict`` find the file from any folder. A preset name and
    ``MODULE:FUNCTION`` are returned unchanged.
    """
    path = _file_of(spec)
    if path is None:
        return spec
    return f"{path.resolve()}:{spec.rpartition(':')[2]}"


def factory_provenance(spec: str) -> dict:
    """Where a factory came from, for ``run.json``'s provenance (file path and SHA-256)."""
    path = _file_of(spec)
    if path is None:
        return {"model_factory": spec}
    path = path.resolve()
    return {"model_factory": spec, "model_file": str(path), "model_file_sha256": _sha256(path)}


def recorded_factory(spec: str, provenance: dict, run: str, allow_changed: bool = False) -> str:
    """The factory a trained run's model is built with again (``--resume``, ``--fork-from``,
    ``evaluate``, ``predict``, ``ab``): its file where the run recorded it, unchanged.

    ``spec``: the run's ``model``; ``provenance``: its ``run.json`` provenance (the
    absolute ``model_file`` and its ``model_file_sha256``; a run recorded before
    ``model`` was made absolute is found through them); ``run``: how messages name the
    run. A ``ModelError`` when the file is gone, or when it changed since the run recorded
    it, unless ``allow_changed`` (``--allow-changed-model``): the weights of the
    checkpoint may no longer mean what they meant, or fit at all.
    """
    path = _file_of(spec)
    if path is None:
        return spec
    recorded = provenance.get("model_file")
    if recorded and not path.is_absolute():
        path = Path(recorded)
    if not path.is_file():
        raise ModelError(f"{run}: its model file {path} is gone (the run was trained with "
                         f"the factory {spec})")  # fmt: skip
    recorded_sha256 = provenance.get("model_file_sha256")
    if recorded_sha256 and not allow_changed:
        now = _sha256(path)
        if now != recorded_sha256:
            raise ModelError(
                f"{run}: the model file {path} changed since the run recorded it (SHA-256 "
                f"{recorded_sha256[:12]}... then, {now[:12]}... now); restore it, or pass "
                "--allow-changed-model to use it as it is"
            )
    return f"{path}:{spec.rpartition(':')[2]}"


def _load_factory(spec: str, where: str):
    """The callable named by a factory spec, or a ``ModelError`` (starting ``where``)."""
    target, _, name = spec.rpartition(":")
    if not target or not name.isidentifier():
        raise ModelError(f"{where}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    path = _file_of(spec)
    if path is not None:
        if not path.is_file():
            raise ModelError(f"{where}: no such file {path}")
        # the name holds the content's hash: a file edited since it was imported is read again
        digest = hashlib.sha256(f"{path.resolve()}:{_sha256(path)}".encode()).hexdigest()[:12]
        module_name = f"pepcurr_user_model_{digest}"
        module = sys.modules.get(module_name)
        if module is None:
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            try:
                module_spec.loader.exec_module(module)
            except Exception as error:  # the user's code may raise anything
                raise ModelError(f"{where}: importing {path} fails: {_one_line(error)}") from None
            sys.modules[module_name] = module
    else:
        try:
            module = importlib.import_module(target)
        except Exception as error:
            raise ModelError(f"{where}: cannot import {target}: {_one_line(error)}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ModelError(f"{where}: {target} has no function {name!r}")
    return factory


def _call_factory(factory, where: str, vocab: Vocabulary):
    """``factory(vocab)``, or a ``ModelError`` with the factory's own message."""
    name = getattr(factory, "__name__", "the factory")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read (a builtin): just call it
        signature = None
    if signature is not None:
        try:
            signature.bind(vocab)
        except TypeError:
            raise ModelError(
                f"{where}: {name}{signature} cannot be called with one argument; pepcurr "
                f"calls {name}(vocab) with the run's Vocabulary (docs/models.md)"
            ) from None
    try:
        return factory(vocab)
    except Exception as error:  # the user's code may raise anything
        raise ModelError(f"{where}: {name}(vocab) fails: {_one_line(error)}") from None


_LIBRARY_DIRS = (str(Path(importlib.__file__).parent), str(Path(__file__).parents[1]))
"""Python's import machinery and pepcurr itself: not where a user's error is."""


def _one_line(error: BaseException) -> str:
    """``Type: first line of the message (at file.py:line)``: the user's own error in one line.

    A message-less error (a bare ``assert``) is shown by the source line that raised it;
    the place is the last frame of the traceback outside torch, pepcurr and importlib.
    """
    import traceback

    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(("<", *_LIBRARY_DIRS, *_torch_dirs()))]  # fmt: skip
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ((frames[-1].line or "") if frames else "")
    if len(text) > 200:
        text = text[:197] + "..."
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {text}{where}" if text else f"{type(error).__name__}{where}"


def _torch_dirs() -> tuple[str, ...]:
    torch = sys.modules.get("torch")
    return (str(Path(torch.__file__).parent),) if torch is not None else ()


def preset_architectures() -> dict[str, ModelConfig | RecursiveConfig]:
    """Every model preset by name: the transformers, then the recursive models."""
    from curriculum_cli.model.recursive import RECURSIVE_PRESETS
    from curriculum_cli.model.transformer import MODEL_PRESETS

    return {**MODEL_PRESETS, **RECURSIVE_PRESETS}


def build_model(
    model: str,
    architecture: ModelConfig | RecursiveConfig | None,
    vocab: Vocabulary,
    where: str | None = None,
) -> torch.nn.Module:
    """A freshly initialised model (weights drawn from torch's global RNG).

    ``architecture``: pepcurr's transformer (``ModelConfig``) or recursive
    model (``RecursiveConfig``) of those dimensions; None: the factory
    ``model`` (``MODULE:FUNCTION`` or ``FILE.py:FUNCTION``) called with
    ``vocab``, its model checked against the interface. ``where``: what a
    ``ModelError`` starts with (default ``--model MODEL``; a trained run's model
    names its run instead, ``recorded_factory``).
    """
    from curriculum_cli.model.recursive import RecursiveConfig, RecursivePeptideModel
    from curriculum_cli.model.transformer import PeptideTransformer

    if isinstance(architecture, RecursiveConfig):
        return RecursivePeptideModel(architecture, vocab)
    if architecture is not None:
        return PeptideTransformer(architecture, vocab)
    where = where or f"--model {model}"
    built = _call_factory(_load_factory(model, where), where, vocab)
    check_model(built, where, vocab)
    return built


def _probe_batch(vocab: Vocabulary):
    """Two synthetic spectra of 6-8 residues: what a model is tried on before a run."""
    import torch

    from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_batch

    return generate_batch(SpectrumSettings(min_length=6, max_length=8), 2, vocab,
                          torch.Generator().manual_seed(0))  # fmt: skip


def check_model(model, where: str, vocab: Vocabulary) -> None:
    """A ``ModelError`` (its message starting ``where``) when a factory's model lacks the
    interface or gives the wrong shape."""
    import torch

    from curriculum_cli.model.refinement import PARALLEL, as_steps, decoding_kind, step_weights

    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"{where}: the factory returned {type(model).__name__}, "
                         "not a torch.nn.Module")  # fmt: skip
    try:
        parallel = decoding_kind(model) == PARALLEL
    except ModelError as error:
        raise ModelError(f"{where}: {error}") from None
    needed = ("vocab", "max_peptide_length") if parallel else (
        "encode", "decode", "vocab", "max_peptide_length")  # fmt: skip
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise ModelError(f"{where}: the model lacks {', '.join(missing)} (see docs/models.md)")
    length = model.max_peptide_length
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ModelError(f"{where}: the model's max_peptide_length must be a whole number >= 1, "
                         f"got {length!r}")  # fmt: skip
    batch = _probe_batch(vocab)
    training = model.training
    try:
        with torch.no_grad():
            logits = model.eval()(batch.without_targets() if parallel else batch)
    except Exception as error:  # the user's code may raise anything
        raise ModelError(f"{where}: forward() fails on a batch of 2: {_one_line(error)}") from None
    finally:
        model.train(training)
    if not parallel:
        expected = (*batch.tokens.shape, vocab.size)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
            shape = (tuple(logits.shape) if isinstance(logits, torch.Tensor)
                     else type(logits).__name__)  # fmt: skip
            raise ModelError(
                f"{where}: forward() must return logits of shape [B, T, V] = {expected}, "
                f"got {shape}"
            )
        return
    try:
        steps = as_steps(logits)
        step_weights(model, steps.shape[0])
    except ModelError as error:
        raise ModelError(f"{where}: {error}") from None
    canvas = model.max_peptide_length + 1
    if steps.shape[1] != len(batch) or steps.shape[2] < canvas or steps.shape[3] != vocab.size:
        raise ModelError(
            f"{where}: a parallel model's forward() must return logits [S, B, W, V] with "
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

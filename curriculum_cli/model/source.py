"""Which network a run trains: a pepcurr preset, or the user's own model from a factory.

``--model`` takes a preset name (``MODEL_PRESETS``) or a factory:
``package.module:function`` (importable from the current environment) or
``path/to/file.py:function``. The factory is called as ``function(vocab)``
with the run's ``chemistry.Vocabulary`` and returns a ``torch.nn.Module``
that follows the interface in ``docs/models.md``:

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
- attributes ``vocab`` (the vocabulary it was given) and
  ``max_peptide_length`` (most residues it can decode).

The training loop, losses, gradient measurement, checkpoints, resume, ``evaluate``
and ``compare`` then work on it unchanged; ``run.json`` records the factory
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


def build_model(model: str, architecture: ModelConfig | None, vocab: Vocabulary) -> torch.nn.Module:
    """A freshly initialised model (weights drawn from torch's global RNG).

    ``architecture``: pepcurr's transformer of those dimensions; None: the
    factory ``model`` (``MODULE:FUNCTION`` or ``FILE.py:FUNCTION``) called with
    ``vocab``, its model checked against the interface.
    """
    from curriculum_cli.model.transformer import PeptideTransformer

    if architecture is not None:
        return PeptideTransformer(architecture, vocab)
    built = _load_factory(model)(vocab)
    check_model(built, model, vocab)
    return built


def check_model(model, spec: str, vocab: Vocabulary) -> None:
    """A ``ModelError`` when a factory's model lacks the interface or gives the wrong shape."""
    import torch

    from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_batch

    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"--model {spec}: the factory returned {type(model).__name__}, "
                         "not a torch.nn.Module")  # fmt: skip
    missing = [name for name in ("encode", "decode", "vocab", "max_peptide_length")
               if not hasattr(model, name)]  # fmt: skip
    if missing:
        raise ModelError(
            f"--model {spec}: the model lacks {', '.join(missing)} (see docs/models.md)"
        )
    batch = generate_batch(SpectrumSettings(min_length=6, max_length=8), 2, vocab,
                           torch.Generator().manual_seed(0))  # fmt: skip
    training = model.training
    try:
        with torch.no_grad():
            logits = model.eval()(batch)
    except Exception as error:
        raise ModelError(
            f"--model {spec}: forward() fails on a batch of 2: {_one_line(error)}"
        ) from None
    finally:
        model.train(training)
    expected = (*batch.tokens.shape, vocab.size)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ModelError(
            f"--model {spec}: forward() must return logits of shape [B, T, V] = {expected}, "
            f"got {shape}"
        )

"""Where a run trains or decodes: the choices (torch-free, so the CLI can offer them at parse
time), the ``torch.device`` a choice resolves to, and torch's CPU threads.
"""

from __future__ import annotations

from enum import StrEnum

from curriculum_cli.errors import RunError


class Device(StrEnum):
    """``auto`` picks CUDA when torch sees a GPU, else the CPU."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


DEVICE_HELP = "Where to run: auto (CUDA when torch sees a GPU, else the CPU), cpu or cuda."
"""The ``--device`` help of every command that offers it."""


def resolve_device(device: str):
    """``auto``, ``cpu`` or ``cuda`` as a ``torch.device``; a ``RunError`` when CUDA is missing."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda was asked for, but torch sees no CUDA device")
    if device not in ("cpu", "cuda"):
        raise RunError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


DEFAULT_THREADS = 1
"""torch CPU threads per run when ``--threads`` is not given (docs/performance.md): one
thread loses a third of the quiet speed of two on a 2-core machine, but keeps most of it
beside a busy neighbour (two threads slowed 4.5x there), and gives ``train`` and ``ab``'s
single-threaded workers the same numbers bit for bit."""


MAX_THREADS = 256
"""Most torch CPU threads ``--threads`` asks for: more than any machine's cores, and far
below the counts that crash torch's thread pool."""


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU threads (None: ``DEFAULT_THREADS``); returns the count.

    The count changes float summation order, so it is part of a run's
    provenance (``run.json``).
    """
    import torch

    torch.set_num_threads(threads if threads is not None else DEFAULT_THREADS)
    return torch.get_num_threads()

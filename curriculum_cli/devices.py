"""Where a run trains or decodes: the choices, torch-free so the CLI can offer them at parse time.

``config.resolve_device`` turns a choice into a ``torch.device``.
"""

from __future__ import annotations

from enum import StrEnum


class Device(StrEnum):
    """``auto`` picks CUDA when torch sees a GPU, else the CPU."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"

"""Data-parallel training under ``torchrun``: the process group, ranks, and the few collectives.

``torchrun --nproc-per-node N -m curriculum_cli train ...`` starts N processes
and tells each its place through environment variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
``Distributed.from_env`` joins the process group they describe (NCCL on CUDA,
gloo on the CPU) or, without them, stands for a single process, whose
collectives do nothing. The loop asks it who writes (``is_main``: rank 0
alone writes the run directory, logs and checkpoints), averages the values
every rank must agree on (``mean``), passes rank 0's decisions to the others
(``broadcast``) and gathers what rank 0 saves (``gather``).

Every collective waits at most ``TIMEOUT``: a rank that died or hangs makes
the others fail with an error that says so, rather than wait for ever (and
``torchrun`` stops the remaining workers as soon as one exits with an error).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from curriculum_cli.errors import PepcurrError, RunError, TrainingError

TIMEOUT_ENV = "PEPCURR_DIST_TIMEOUT_S"
TIMEOUT = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, 15 * 60)))
"""Longest wait of one collective (a validation on rank 0 while the others wait included),
and of joining the process group: 15 minutes, or ``PEPCURR_DIST_TIMEOUT_S`` seconds."""


@dataclass
class Distributed:
    """This process's place among the ranks training one run (``world_size`` 1: alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run directory."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> Distributed:
        """The ranks ``torchrun`` describes in the environment (none: a single process)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))

    def device(self, device: torch.device) -> torch.device:
        """This rank's GPU (``cuda:LOCAL_RANK``) for a CUDA run; the CPU as is."""
        if device.type == "cuda" and self.active:
            return torch.device("cuda", self.local_rank)
        return device

    def init(self, device: torch.device) -> None:
        """Join the process group (NCCL for CUDA, gloo for the CPU); nothing for one process."""
        import torch.distributed as dist

        if not self.active or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend, rank=self.rank, world_size=self.world_size, timeout=TIMEOUT
        )

    def close(self) -> None:
        """Leave the process group (after the last collective)."""
        import torch.distributed as dist

        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of ``values`` (one tensor of any shape), the same on every rank."""
        if not self.active:
            return values
        import torch.distributed as dist

        values = values.clone()
        with self._peers():
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.active:
            return value
        import torch.distributed as dist

        box = [value]
        with self._peers():
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if not self.active:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world_size
        with self._peers():
            dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            with self._peers():
                dist.barrier()

    @contextmanager
    def _peers(self):
        """A collective failing because another rank died or hung: one clear ``TrainingError``."""
        try:
            yield
        except RuntimeError as error:  # gloo and NCCL: a closed connection or a timeout
            first_line = (str(error).splitlines() or [type(error).__name__])[0]
            raise TrainingError(
                f"rank {self.rank}: another process of this run failed or stopped (its own error "
                f"is above; the last checkpoint is intact): {first_line[:200]}"
            ) from None

    def on_main(self, action) -> Any:
        """Run ``action()`` on rank 0 only; its result (or its ``PepcurrError``) on every rank.

        A check that rank 0 alone makes (the run directory is free, the
        checkpoint readable) then stops every rank with the same message
        instead of leaving the others waiting at their next collective.
        """
        if not self.active:
            return action()
        outcome: tuple[str, Any] = ("ok", None)
        if self.is_main:
            try:
                outcome = ("ok", action())
            except PepcurrError as error:
                outcome = ("error", (type(error), str(error)))
        outcome = self.broadcast(outcome)
        if outcome[0] == "error":
            kind, message = outcome[1]
            raise kind(message)
        return outcome[1]


def check_world_size(stored: int, current: int, run_dir) -> None:
    """A run trains (and resumes) with the number of ranks it was started with."""
    if stored != current:
        how = "as a single process" if stored == 1 else f"with torchrun --nproc-per-node {stored}"
        raise RunError(
            f"{run_dir}: the run is trained by {stored} process(es) (world_size) and "
            f"{current} are running; run it {how}"
        )

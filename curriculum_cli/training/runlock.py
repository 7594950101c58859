"""One training process per run directory at a time: a lock the kernel releases on death.

``loop.train`` holds ``RUN_DIR/train.lock`` (``fcntl.flock``, exclusive) from
before it writes anything until it returns. A second process asked to train
the same directory (a scheduler that starts a job twice, two ``ab`` commands
on one ``--out``) is refused with the first one's pid, and writes nothing.
The kernel drops the lock when its holder dies, even by ``kill -9``, so a
lock left by a killed run never blocks its ``--resume``; the file itself
stays (it only holds the last holder's pid).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from curriculum_cli.errors import RunError

LOCK_FILE = "train.lock"


class RunLock:
    """The run directory's lock: ``acquire`` (creating the directory), then ``release``."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._file = None

    def acquire(self) -> None:
        """Hold the lock, or a ``RunError`` naming the pid of the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (closed in release())
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunError(
                f"{self.path.parent} is locked by a running process (pid {holder}); wait for it "
                "to finish or stop it, or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Let the lock go (nothing when it is not held)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

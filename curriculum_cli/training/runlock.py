"""One process per directory at a time: a lock the kernel releases on death.

``loop.train`` holds ``RUN_DIR/train.lock`` (``fcntl.flock``, exclusive) from
before it writes anything until it returns. A second process asked to train
the same directory (a scheduler that starts a job twice, two ``ab`` commands
on one ``--out``) is refused with the first one's pid, and writes nothing.
``ab`` holds ``OUT/ab.lock`` the same way while it plans and trains, so a
second ``ab`` on the same ``--out`` is refused once, as a whole, and looks
first whether a run's lock is held (``holder``) before it trains anything.
The kernel drops a lock when its holder dies, even by ``kill -9``, so a
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
    """A directory's lock (``name`` in it, default ``train.lock``): ``acquire`` (creating the
    directory), then ``release``."""

    def __init__(self, directory: Path, name: str = LOCK_FILE):
        self.path = Path(directory) / name
        self._file = None

    def acquire(self) -> None:
        """Hold the lock, or a ``RunError`` naming the pid of the process that holds it."""
        holder = self.try_acquire()
        if holder is not None:
            raise RunError(
                f"{self.path.parent} is locked by a running process (pid {holder}); wait for it "
                "to finish or stop it, or choose another --out"
            )

    def try_acquire(self) -> str | None:
        """Hold the lock and return None, or return the pid of the process that holds it
        (``unknown`` if it wrote none)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (closed in release())
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            return holder
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return None

    def release(self) -> None:
        """Let the lock go (nothing when it is not held)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def holder(directory: Path, name: str = LOCK_FILE) -> str | None:
    """The pid of the live process holding ``directory``'s lock, or None; takes nothing and
    writes nothing (a directory or lock file that does not exist is not locked)."""
    path = Path(directory) / name
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "unknown"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None

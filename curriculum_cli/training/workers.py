"""How a training process stops, and the worker processes of a command that trains several runs.

A process a command starts is the command's to end; nothing outlives it.

- ``StopRequest``: SIGTERM (what ``timeout``, SLURM and systemd send) and
  Ctrl-C (SIGINT) become a flag the training loop reads between steps: the
  step in flight completes and a checkpoint is written. A second Ctrl-C
  interrupts at once; a second SIGTERM changes nothing (a scheduler and a
  parent may both send one). Nested (a worker listens for as long as it lives,
  the loop for one run), an inner one starts with the outer one's request and
  passes its own on, so a request between two runs is not lost.
- ``WorkerPool``: ``jobs`` spawned worker processes, one intra-op thread
  each (``ab``'s seeds; a sweep's runs). In each worker a thread watches the
  parent: when it dies, even by ``kill -9``, the worker stops as on SIGTERM
  (the run it trains checkpoints) and exits; an idle one exits at once. In
  the parent, SIGTERM and Ctrl-C are forwarded to every worker as a stop
  request, and work not started is cancelled. On leaving the pool, workers
  are joined for ``STOP_GRACE_S`` and killed if they hang; multiprocessing's
  resource tracker exits once they and the parent have.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

STOP_GRACE_S = 120.0
"""How long a stopped worker may take to finish its step and write its checkpoint (seconds)
before it is killed (its previous checkpoint then stays)."""

PARENT_POLL_S = 0.5
"""How often a worker looks whether its parent is alive (seconds)."""


class StopRequest:
    """The first SIGTERM or Ctrl-C while it is entered (main thread only), as ``signal``.

    ``escalate``: a second Ctrl-C raises ``KeyboardInterrupt`` (the loop's: the
    step in flight is abandoned, the last checkpoint stays as it was); a
    worker's own, around its tasks, never raises.
    """

    def __init__(self, escalate: bool = True):
        self.signal: int | None = None
        self._escalate = escalate
        self._interrupts = 0
        self._outer: StopRequest | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            outer = getattr(self._previous[signal.SIGTERM], "__self__", None)
            if isinstance(outer, StopRequest):
                self._outer = outer
                self.signal = outer.signal
        return self

    def _handle(self, signum, frame) -> None:
        self._request(signum)
        if signum == signal.SIGINT:
            self._interrupts += 1
            if self._escalate and self._interrupts > 1:
                raise KeyboardInterrupt

    def _request(self, signum: int) -> None:
        if self.signal is None:
            self.signal = signum
        if self._outer is not None:
            self._outer._request(signum)

    def __exit__(self, *exc) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False


# ----------------------------------------------------------------------------
# In a worker process
# ----------------------------------------------------------------------------

_worker_stop: StopRequest | None = None
_busy = threading.Event()  # set while the worker runs a task


def stop_request() -> StopRequest | None:
    """In a worker, its stop request (SIGTERM, Ctrl-C, its parent's death), listened to since it
    started: read between the runs of a task. None in any other process."""
    return _worker_stop


def _start_worker(threads: int, parent: int) -> None:
    """A worker's initializer: its threads, its stop request, the watch on its parent."""
    from curriculum_cli.devices import set_threads

    global _worker_stop
    set_threads(threads)
    _worker_stop = StopRequest(escalate=False).__enter__()  # left only when the process ends
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent (submit)
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent",
                     daemon=True).start()  # fmt: skip


def _watch_parent(parent: int) -> None:
    """Once ``parent`` is gone (the worker was handed to another process): stop as on SIGTERM,
    let the task in flight finish its step and checkpoint, then exit."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while _busy.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(1 if _busy.is_set() else 0)


def _run_task(function: Callable, args: tuple):
    _busy.set()
    try:
        return function(*args)
    finally:
        _busy.clear()


# ----------------------------------------------------------------------------
# In the parent
# ----------------------------------------------------------------------------


class WorkerPool:
    """``jobs`` spawned worker processes with ``threads`` intra-op threads each, as a context
    manager: ``submit`` work, read it back with ``finished``, leave with nothing left running.

    ``signal``: the first SIGTERM or Ctrl-C the parent received while the pool was open
    (forwarded to the workers); ``stopping``: a stop was requested (by a signal or
    ``stop``).
    """

    def __init__(self, jobs: int, threads: int = 1):
        self.jobs, self.threads = jobs, threads
        self.signal: int | None = None
        self.stopping = False
        self._stopped_at = 0.0
        self._executor = None
        self._futures: list[Future] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> WorkerPool:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._executor = ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(self.threads, os.getpid()),
        )  # fmt: skip
        if threading.current_thread() is threading.main_thread():  # where signals arrive
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def submit(self, function: Callable, *args) -> Future:
        """Run ``function(*args)`` in a worker (both picklable: a module's function).

        A worker starts here, with SIGINT and SIGTERM blocked (a child inherits the mask)
        until its stop request listens: a stop while it starts waits for it, rather than
        kill it half-started with a traceback.
        """
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            future = self._executor.submit(_run_task, function, args)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._futures.append(future)
        return future

    def finished(
        self, futures, on_wait: Callable[[set[Future]], None] | None = None, every_s: float = 30.0
    ) -> Iterator[Future]:
        """Each of ``futures`` as it finishes (cancelled ones too); ``on_wait(pending)`` every
        ``every_s`` seconds while some still run. Once stopping, waits ``STOP_GRACE_S`` at most
        for the running ones (those left are killed when the pool is left)."""
        pending = set(futures)
        while pending:
            timeout = every_s
            if self.stopping:
                timeout = max(0.0, self._stopped_at + STOP_GRACE_S - time.monotonic())
            done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            yield from done
            if pending and self.stopping and time.monotonic() >= self._stopped_at + STOP_GRACE_S:
                return
            if pending and on_wait is not None and not self.stopping:
                on_wait(pending)

    def stop(self) -> None:
        """Ask every worker to stop after its step in flight (SIGTERM) and cancel work not
        started."""
        if not self.stopping:
            self.stopping, self._stopped_at = True, time.monotonic()
        for future in self._futures:
            future.cancel()
        for process in self._processes():
            if process.is_alive():
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def _on_signal(self, signum, frame) -> None:
        if self.signal is None:
            self.signal = signum
        self.stop()

    def _processes(self) -> list:
        return list((getattr(self._executor, "_processes", None) or {}).values())

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            processes = self._processes()
            if exc_type is not None or any(not f.done() for f in self._futures):
                self.stop()
            manager = getattr(self._executor, "_executor_manager_thread", None)
            self._executor.shutdown(wait=False, cancel_futures=True)
            deadline = (self._stopped_at if self.stopping else time.monotonic()) + STOP_GRACE_S
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
            for process in processes:
                if process.is_alive():  # hung: its previous checkpoint stays
                    process.kill()
                    process.join()
            if manager is not None:
                manager.join(STOP_GRACE_S)
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
        return False

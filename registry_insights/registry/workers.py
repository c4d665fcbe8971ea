"""The client's worker threads: an ordered ``map`` and a pipeline of tasks that submit tasks.

Work started on a worker thread that would submit more work to the same pool runs inline
instead, so a bounded pool never deadlocks on nested calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait

from ..progress import progress_bar

_worker = threading.local()


class WorkerPool:
    """``max_workers`` threads, started on first use; thread safe."""

    def __init__(self, max_workers: int):
        self.max_workers = max(int(max_workers), 1)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def in_pool(self) -> bool:
        """True on one of this pool's threads (nested work then runs inline)."""
        return getattr(_worker, "pool", None) is self

    def executor(self) -> ThreadPoolExecutor | None:
        """The executor, or None where work must run inline (one worker, or on a worker)."""
        if self.max_workers == 1 or self.in_pool():
            return None
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_workers, thread_name_prefix="registry",
                    initializer=lambda: setattr(_worker, "pool", self))
            return self._executor

    def map(self, fn: Callable, items: Iterable, progress=None, desc: str = "") -> list:
        """``[fn(item) for item in items]`` run on the threads, in input order.

        When one call raises, the calls not started are cancelled and the running ones are
        waited for; then the first error (in input order) is raised."""
        items = list(items)
        if not items:
            return []
        bar = progress_bar(len(items), desc, progress) if desc else None
        executor = self.executor() if len(items) > 1 else None
        futures = [executor.submit(fn, item) for item in items] if executor else None
        out = []
        try:
            for k, item in enumerate(items):
                out.append(futures[k].result() if futures else fn(item))
                if bar:
                    bar.update(1)
        except BaseException:
            if futures:  # nothing of this map goes on after it raised
                for future in futures:
                    future.cancel()
                wait(futures)
            raise
        finally:
            if bar:
                bar.close()
        return out

    def pipeline(self) -> Pipeline:
        return Pipeline(self.executor())

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None


class Pipeline:
    """Tasks that may submit more tasks, on one executor; :meth:`wait` returns when none is
    left. Workers never wait for other tasks (no deadlock on a bounded pool); after the first
    error (or :meth:`stop`) the tasks still queued are skipped and :meth:`wait` raises that
    error."""

    def __init__(self, executor: ThreadPoolExecutor | None):
        self._executor = executor  # None: run each task inline, at once
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Event()
        self._idle.set()
        self._error: BaseException | None = None

    @property
    def threaded(self) -> bool:
        """False when tasks run inline, on the thread that submits them."""
        return self._executor is not None

    def wait_idle(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for no task to be pending; True when none is."""
        return self._idle.wait(timeout)

    def submit(self, fn: Callable, *args) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
        if self._executor is None:
            self._run(fn, args)
            return
        try:
            self._executor.submit(self._run, fn, args)
        except BaseException:  # the pool is shut down (the client closed): never to run
            self._done()
            raise

    def _run(self, fn: Callable, args: tuple) -> None:
        try:
            if self._error is None:
                fn(*args)
        except BaseException as exc:  # handed to wait()
            self.stop(exc)
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    def stop(self, error: BaseException) -> None:
        """Skip the tasks not started yet; :meth:`wait` raises ``error`` (unless an earlier
        one)."""
        with self._lock:
            if self._error is None:
                self._error = error

    def wait(self) -> None:
        self._idle.wait()
        if self._error is not None:
            raise self._error

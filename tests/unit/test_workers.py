"""The walk's pipeline (registry_insights.registry.workers): waiting for it to go idle, and
stopping it, as the walk's assembling loop does."""

from __future__ import annotations

import threading

import pytest

from registry_insights.registry.workers import Pipeline, WorkerPool


def _blocked(pipeline: Pipeline, n: int):
    """``n`` tasks that have started and wait for the returned event."""
    started, gate, ran = threading.Semaphore(0), threading.Event(), []

    def task(i):
        started.release()
        gate.wait(10)
        ran.append(i)

    for i in range(n):
        pipeline.submit(task, i)
    for _ in range(n):
        assert started.acquire(timeout=10)
    return gate, ran


def test_wait_idle_says_whether_tasks_are_pending():
    pool = WorkerPool(2)
    try:
        pipeline = pool.pipeline()
        assert pipeline.threaded and pipeline.wait_idle(0)
        gate, ran = _blocked(pipeline, 2)
        assert not pipeline.wait_idle(0.05)
        gate.set()
        assert pipeline.wait_idle(10)
        pipeline.wait()
        assert sorted(ran) == [0, 1]
    finally:
        pool.close()


def test_stop_skips_the_tasks_not_started_and_wait_raises_its_error():
    pool = WorkerPool(2)
    try:
        pipeline = pool.pipeline()
        gate, ran = _blocked(pipeline, 2)  # both workers busy: what follows is queued
        for i in range(2, 6):
            pipeline.submit(ran.append, i)
        pipeline.stop(RuntimeError("stopped by the walk"))
        pipeline.stop(RuntimeError("a later error"))  # the first one is kept
        gate.set()
        with pytest.raises(RuntimeError, match="stopped by the walk"):
            pipeline.wait()
        assert sorted(ran) == [0, 1]  # the running ones finished; the queued never ran
    finally:
        pool.close()


def test_inline_pipeline_runs_at_once_and_keeps_the_first_error():
    pipeline = Pipeline(None)
    ran = []
    pipeline.submit(ran.append, 1)
    pipeline.submit(lambda: 1 / 0)
    pipeline.submit(ran.append, 2)  # after the error: skipped
    assert not pipeline.threaded and ran == [1]
    with pytest.raises(ZeroDivisionError):
        pipeline.wait()


def test_a_streamed_walk_grows_its_bar_as_tag_lists_arrive():
    import io

    from tqdm import tqdm

    from registry_insights.progress import grow_total, progress_bar

    bar = tqdm(total=None, file=io.StringIO())
    lock = threading.Lock()
    threads = [threading.Thread(target=grow_total, args=(bar, 10, lock)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grow_total(bar, 0, lock)
    assert bar.total == 80
    bar.close()
    quiet = progress_bar(None, "tags", False)
    grow_total(quiet, 5, lock)  # a disabled bar: nothing to grow, nothing raised
    assert not hasattr(quiet, "total")

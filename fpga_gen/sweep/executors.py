"""Where evaluations and csim verifications run: this process, local worker processes, or a Dask cluster.

An executor has ``map(fn, shared, items)``: it calls ``fn(shared, item)`` for every item and yields
``(index, result)`` as they finish (in any order).  ``shared`` (the Evaluator) goes to each worker once.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from .space import SweepError

__all__ = ["InlineExecutor", "LocalExecutor", "DaskExecutor", "make_executor"]

_SHARED = None


def _init(shared):
    global _SHARED
    _SHARED = shared


def _call(fn, item):
    return fn(_SHARED, item)


class InlineExecutor:
    name = "inline"

    def map(self, fn, shared, items):
        for i, item in enumerate(items):
            yield i, fn(shared, item)

    def close(self):
        pass


class LocalExecutor:
    """Worker processes on this machine (spawned: the parent may hold TensorFlow, the workers never import it).

    ``inline_below``: run_sweep evaluates fewer points than this in its own process, since starting the workers
    (a fresh interpreter importing numpy and fpga_gen each) costs more than that many estimates."""
    name = "local"

    def __init__(self, workers: int | None = None, inline_below: int = 2000):
        self.workers = workers or max(1, min(os.cpu_count() or 1, 8))
        self.inline_below = inline_below

    def map(self, fn, shared, items):
        items = list(items)
        if self.workers <= 1 or len(items) <= 1:
            yield from InlineExecutor().map(fn, shared, items)
            return
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(self.workers, len(items)), mp_context=ctx, initializer=_init,
                                 initargs=(shared,)) as pool:
            futs = {pool.submit(_call, fn, item): i for i, item in enumerate(items)}
            try:
                for f in as_completed(futs):
                    yield futs[f], f.result()
            except BaseException:
                for f in futs:
                    f.cancel()
                raise

    def close(self):
        pass


class DaskExecutor:
    """A Dask distributed cluster: ``DaskExecutor('tcp://host:8786')`` or an existing Client / LocalCluster."""
    name = "dask"

    def __init__(self, address_or_client):
        try:
            from dask.distributed import Client  # lazy: optional (fpga-gen[dask])
        except ImportError:
            raise SweepError("--dask-scheduler needs dask: pip install 'fpga-gen[dask]'") from None
        if isinstance(address_or_client, Client):
            self.client, self._own = address_or_client, False
        else:
            self.client, self._own = Client(address_or_client), True

    def map(self, fn, shared, items):
        from dask.distributed import as_completed as das_completed  # lazy: optional (fpga-gen[dask])
        items = list(items)
        if not items:
            return
        fut_shared = self.client.scatter(shared, broadcast=True)
        futs = [self.client.submit(fn, fut_shared, item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futs)}
        try:
            for f in das_completed(futs):
                yield index[f.key], f.result()
        except BaseException:
            self.client.cancel(futs)
            raise

    def close(self):
        if self._own:
            self.client.close()


def make_executor(dask_scheduler=None, workers: int | None = None):
    if dask_scheduler is not None:
        return DaskExecutor(dask_scheduler)
    return LocalExecutor(workers)

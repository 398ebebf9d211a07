"""One helper thread for the grader's own work beside a model's requests (issue 20).

A request to a sandboxed model waits on a pipe, with the interpreter's lock released, for as long as
the model computes; the grader's own work that does not need that answer (LIME's next perturbations
and last surrogates, ROAD's imputations) runs on the helper meanwhile. The work is the same and is
done in the same order on one thread, so the numbers are the same to the last bit; only the waiting
overlaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


@contextmanager
def helper_thread(name: str) -> Iterator[ThreadPoolExecutor]:
    """A one-thread executor, shut down on leaving: waiting for its work when the block ends normally,
    and with the work not yet started cancelled when the block raises (a model request that failed
    leaves nothing to prepare)."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"xai-grader-{name}")
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)

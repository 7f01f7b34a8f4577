"""Requests in parallel, results committed one by one as they arrive, in the calling thread (the
store is not thread-safe): what the API backend's samples, judge verdicts and preference-data
verdicts share."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor, as_completed

from bench.errors import BenchError, Interrupted


def each_as_done(jobs: dict[Hashable, Callable[[], object]], workers: int,
                 commit: Callable[[Hashable, object], None], abort: Callable[[], None],
                 what: str) -> None:
    """Run jobs `workers` at a time; commit each result as it arrives. The first failure stops
    new jobs (those in flight finish and are committed) and is raised with how many of `what`
    are stored and missing; Ctrl-C cuts the jobs in flight (`abort`) and keeps the rest."""
    if not jobs:
        return
    pool = ThreadPoolExecutor(max(1, min(workers, len(jobs))), thread_name_prefix="bench-pool")
    futures = {pool.submit(job): key for key, job in jobs.items()}
    failed, done = None, 0
    try:
        for future in as_completed(futures):
            if future.cancelled():
                continue
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - the first failure stops new requests
                failed = failed or exc
                for f in futures:
                    f.cancel()
                continue
            commit(futures[future], result)
            done += 1
    except BaseException as exc:
        for f in futures:
            f.cancel()
        abort()
        pool.shutdown(wait=False, cancel_futures=True)
        if isinstance(exc, Interrupted):
            raise Interrupted(exc.signum, f"{done} of {len(jobs)} {what} are kept in the store; "
                              "the same command resumes") from None
        raise
    pool.shutdown(wait=True)
    if isinstance(failed, BenchError):
        raise type(failed)(f"{failed}\n  {done} of {len(jobs)} {what} are stored, "
                           f"{len(jobs) - done} are missing; rerun the same command to resume: "
                           "nothing already answered is sent again") from None
    if failed is not None:
        raise failed

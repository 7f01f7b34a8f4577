"""bench's CPU thread policy, decided once per process and recorded in every run's manifest.

- torch intra-op threads = the CPUs this process may run on (its affinity mask, which container
  and taskset limits shrink; `os.cpu_count()` counts the whole machine), or `BENCH_THREADS`.
- OpenMP threads that wait for work sleep instead of spinning (`OMP_WAIT_POLICY=PASSIVE`, set
  before torch starts OpenMP). Spinning threads fight a CPU-bound neighbour for the same cores;
  benchmarks/busy_cpu.py measures the difference.
- Reproducibility: a result does not depend on the thread count beyond float rounding (values
  agree to 1e-5, and in tests the chosen candidates and generated text are the same), so the
  thread count is recorded but is not part of the cache key.
"""

from __future__ import annotations

import os

THREADS_ENV = "BENCH_THREADS"
_DECIDED: dict | None = None


def cpus_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def prepare_environment() -> None:
    """Before torch is imported: OpenMP waits passively unless the user chose otherwise."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def apply() -> dict:
    """Set torch's thread count once; return the policy as recorded in manifests."""
    global _DECIDED
    if _DECIDED is None:
        import torch

        requested = os.environ.get(THREADS_ENV, "").strip()
        threads = int(requested) if requested.isdigit() and int(requested) > 0 else cpus_available()
        torch.set_num_threads(threads)
        _DECIDED = {"torch_threads": torch.get_num_threads(), "cpus_available": cpus_available(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(OpenMP default)"),
                    "source": THREADS_ENV if requested else "affinity"}
    return _DECIDED

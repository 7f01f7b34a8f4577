"""`--executor ray`: a run's model calls on a Ray cluster, its results in the same store.

- Jobs are (model × task × shard); a shard is CHUNK samples in the order the local runner asks
  them, so each forward batch holds the same samples as in a local run.
- One actor per model copy (`copies`) loads the model once and answers the shards it is given
  (`Kind.ask`). It asks Ray for the model's GPUs (models.yaml `num_gpus`) and for `threads` CPUs,
  and sets torch to that many threads (Ray would set OMP_NUM_THREADS to 1).
- Workers never touch the store (SQLite on a shared file system is unsafe): they return records,
  and the driver commits each shard as it arrives, as the local runner commits a chunk. Cache,
  resume and fingerprints are the local runner's; a killed run loses only uncommitted shards.
- Faults: a dead actor is restarted (MAX_RESTARTS) and the shards it had not returned are sent
  again (MAX_TASK_RETRIES). A shard is a pure function of its inputs, and the driver commits each
  one once, so nothing is lost or stored twice. An exception raised by bench itself is not retried.
- Every model's shards are submitted before the first is committed, so the copies of several
  models work at once; a model's actors are released once its run is committed.
- API models and engine tasks (lm-eval, OpenCompass) run on the driver as before.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

from bench.backends.base import Backend
from bench.config import Executor, ModelSpec
from bench.errors import BenchError
from bench.evaluate.runner import CHUNK, add_cost, known_outputs, output_keys
from bench.store import Store
from bench.tasks.base import Task
from bench.tasks.kinds import get_kind
from bench.threads import THREADS_ENV, cpus_available

MAX_RESTARTS = 3  # a copy that dies is started again this many times
MAX_TASK_RETRIES = 3  # a shard whose copy died is sent again this many times
KILL_ENV = "BENCH_RAY_TEST_KILL"  # test hook "N,LOG": a copy SIGKILLs itself after N samples,
# on its first life only, and notes its pid in LOG first


def need_ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise BenchError("--executor ray needs Ray, which is not installed; install it with: "
                         "pip install 'bench[ray]'") from None
    return ray


class ModelCopy:
    """A Ray actor: one model loaded once, answering shards. Returns records, never stores."""

    def __init__(self, spec: ModelSpec):
        from bench.backends import get_backend

        self.spec = spec
        self.backend = get_backend(spec)
        self.asked = 0

    def ask(self, task: Task, indices: list[int]) -> tuple[list[dict], dict, float]:
        """The outputs of task.samples[indices], what they cost (backend counters) and the wall."""
        before, t0 = dict(self.backend.stats), time.perf_counter()
        outputs = get_kind(task.kind).ask(self.backend, self.spec, task,
                                          [task.samples[i] for i in indices])
        wall = time.perf_counter() - t0
        self.asked += len(indices)
        self._test_kill()
        return outputs, {k: v - before.get(k, 0) for k, v in self.backend.stats.items()}, wall

    def torch_threads(self) -> int:
        """The thread count torch uses here (bench's policy, from the copy's `threads`)."""
        import torch

        return torch.get_num_threads()

    def _test_kill(self) -> None:
        import ray

        hook = os.environ.get(KILL_ENV)
        if not hook:
            return
        after, log = hook.split(",", 1)
        if self.asked >= int(after) and not ray.get_runtime_context().was_current_actor_reconstructed:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)


class RayPool:
    """The driver's side: actors per model, shards in flight, commits in the calling thread."""

    def __init__(self, settings: Executor, log_to_driver: bool = False):
        ray = self.ray = need_ray()
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=settings.address or os.environ.get("RAY_ADDRESS"),
                     include_dashboard=False, log_to_driver=log_to_driver,
                     configure_logging=False)
        self.settings = settings
        self.threads = self._threads(settings.threads)
        self.actors: dict[str, list] = {}  # model name -> its copies (models with shards sent)
        self.backends: dict[str, Backend] = {}  # the driver's: fingerprints and keys, no weights
        self.jobs: dict[tuple[str, str], list[tuple[list[int], object]]] = {}

    def describe(self) -> dict:
        """What a run's manifest records of where its model calls ran."""
        return {"kind": "ray", "address": self.settings.address, "copies": self.settings.copies,
                "threads": self.threads, "ray": self.ray.__version__,
                "nodes": sum(1 for n in self.ray.nodes() if n.get("Alive"))}

    def _threads(self, asked: int | None) -> int:
        """CPUs per copy: the setting, else bench's thread policy, capped at a node's CPUs."""
        env = os.environ.get(THREADS_ENV, "").strip()
        want = asked or (int(env) if env.isdigit() and int(env) > 0 else cpus_available())
        nodes = [n["Resources"].get("CPU", 0) for n in self.ray.nodes() if n.get("Alive")]
        return max(1, min(want, int(max(nodes, default=want))))

    def _copies(self, spec: ModelSpec) -> list:
        if spec.name not in self.actors:
            env = {THREADS_ENV: str(self.threads), "OMP_NUM_THREADS": str(self.threads)}
            if os.environ.get(KILL_ENV):
                env[KILL_ENV] = os.environ[KILL_ENV]
            actor = self.ray.remote(ModelCopy).options(
                num_cpus=self.threads, num_gpus=spec.num_gpus, max_restarts=MAX_RESTARTS,
                max_task_retries=MAX_TASK_RETRIES, runtime_env={"env_vars": env})
            self.actors[spec.name] = [actor.remote(spec) for _ in range(self.settings.copies)]
        return self.actors[spec.name]

    def submit(self, spec: ModelSpec, backend: Backend, tasks: list, store: Store,
               recompute: bool = False, reuse: bool = False) -> None:
        """Send every shard the store lacks for this model (all, to recompute) before anything
        is committed (with `reuse`, answers stored under another backend version are not lacked)."""
        for task in tasks:
            if not isinstance(task, Task):
                continue
            if recompute:
                keys, known = output_keys(backend, spec, task), {}
            else:
                keys, known, _ = known_outputs(backend, spec, task, store, reuse)
            todo = [i for i, k in enumerate(keys) if k not in known]
            if todo:
                self._send(spec, task, todo)

    def _send(self, spec: ModelSpec, task: Task, todo: list[int]) -> None:
        copies = self._copies(spec)
        shipped = self.ray.put(replace(task, scorers=[], rows=None))  # the model needs neither
        jobs = self.jobs.setdefault((spec.name, task.key), [])
        for n, start in enumerate(range(0, len(todo), CHUNK)):
            shard = todo[start: start + CHUNK]
            jobs.append((shard, copies[n % len(copies)].ask.remote(shipped, shard)))

    def asker(self, kind, backend, spec: ModelSpec, task: Task, todo: list[tuple], commit) -> None:
        """evaluate_task's asker: commit each shard of (spec, task) as it arrives."""
        missing = {k for _, k in todo}  # a key may stand for two samples with the same data
        wanted = {i: (s, k) for i, (s, k) in enumerate(zip(task.samples, output_keys(backend, spec, task)))
                  if k in missing}
        jobs = self.jobs.pop((spec.name, task.key), [])
        sent = {i for shard, _ in jobs for i in shard}
        if late := sorted(set(wanted) - sent):  # not sent ahead (the store changed meanwhile)
            self._send(spec, task, late)
            jobs += self.jobs.pop((spec.name, task.key))
        shards = {ref: shard for shard, ref in jobs}
        while shards:
            [ref], _ = self.ray.wait(list(shards), num_returns=1)
            shard = shards.pop(ref)
            outputs, used, wall = self._get(ref, spec, task)
            for k, v in used.items():
                backend.stats[k] = backend.stats.get(k, 0) + v
            add_cost(outputs, wall, used.get("tokens_pushed", 0))
            commit([(wanted[i], out) for i, out in zip(shard, outputs, strict=True) if i in wanted])

    def _get(self, ref, spec: ModelSpec, task: Task):
        from ray.exceptions import RayActorError, RayTaskError

        try:
            return self.ray.get(ref)
        except RayTaskError as exc:
            cause = exc.cause
            raise cause if isinstance(cause, Exception) else exc from None
        except RayActorError:
            raise BenchError(f"model '{spec.name}', task {task.key}: a model copy died more than "
                             f"{MAX_RESTARTS} times (out of memory? see the Ray logs); the shards "
                             "already returned are stored, rerun the same command to resume") from None

    def release(self, name: str) -> None:
        """Free a model's copies (and the CPUs/GPUs they hold) once its run is committed."""
        for job in [job for job in self.jobs if job[0] == name]:
            del self.jobs[job]
        for actor in self.actors.pop(name, []):
            self.ray.kill(actor)

    def close(self) -> None:
        for name in list(self.actors):
            self.release(name)
        self.jobs.clear()
        if self.started:
            self.ray.shutdown()

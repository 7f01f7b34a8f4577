"""The result store: one SQLite file in WAL mode, in two content-addressed layers.

- `records`: what the model answered (a generation, or log-likelihoods), one row per cache key
  (model, task prompts, sample, decoding, backend). Written per chunk as samples are answered, so a
  killed run loses at most the chunk in flight, and a rerun finds everything already known.
- `scores`: what a scorer made of one output, keyed by the output's key and the scorer's
  fingerprint, so a new scorer re-scores without asking the model again.
- `runs`, `run_tasks`, `run_items`, `run_scores`: what one invocation asked for and got (manifest,
  metrics, timings, and which cached output and score answered each sample).
INSERT OR IGNORE keeps a key unique even when two runs write at once. Schema versions and upgrades:
bench/store/migrate.py.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from bench.errors import BenchError
from bench.store.migrate import open_schema

class Store:
    """Thread-unsafe handle on results/bench.sqlite; open one per process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=60000")
        self.upgraded = open_schema(self._db, self.path)  # a note when an old store was upgraded

    @classmethod
    def existing(cls, path: str | Path) -> Store:
        """Open a store that must already hold results (reports read; they never create one)."""
        path = Path(path)
        if not path.is_file():
            raise BenchError(f"no results at {path}; run `bench run` first (or point --results at "
                             "the folder that holds bench.sqlite)")
        return cls(path)

    @contextmanager
    def _tx(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # -- cache -------------------------------------------------------------------------------
    def get_records(self, keys: Iterable[str]) -> dict[str, dict]:
        """The stored outputs among these keys."""
        return self._get("records", "cache_key", keys)

    def get_scores(self, keys: Iterable[str]) -> dict[str, dict]:
        """The stored scores among these keys."""
        return self._get("scores", "score_key", keys)

    def _get(self, table: str, column: str, keys: Iterable[str]) -> dict[str, dict]:
        keys = list(keys)
        found: dict[str, dict] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT {column}, record FROM {table} WHERE {column} IN ({marks})", chunk)
            found.update((k, json.loads(r)) for k, r in rows)
        return found

    def put_records(
        self, run_id: str | None, task: str, rows: list[tuple[str, str, str, str, str, dict]]
    ) -> None:
        """rows: (sample_id, cache_key, model_fp, task_fp, sample_hash, record), one transaction.
        With run_id None the records are cached without being linked to a run's samples."""
        now = time.time()
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?)",
                [(k, m, t, h, json.dumps(r, ensure_ascii=False), now) for _, k, m, t, h, r in rows],
            )
            if run_id is not None:
                self._db.executemany(
                    "INSERT OR REPLACE INTO run_items VALUES (?, ?, ?, ?)",
                    [(run_id, task, sid, k) for sid, k, *_ in rows],
                )

    def put_scores(self, run_id: str, task: str,
                   rows: list[tuple[str, str, str, str, str, dict]]) -> None:
        """rows: (sample_id, scorer, score_key, cache_key, scorer_fp, record), one transaction."""
        now = time.time()
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO scores VALUES (?, ?, ?, ?, ?)",
                [(sk, k, fp, json.dumps(r, ensure_ascii=False), now) for _, _, sk, k, fp, r in rows])
            self._db.executemany(
                "INSERT OR REPLACE INTO run_scores VALUES (?, ?, ?, ?, ?)",
                [(run_id, task, sid, name, sk) for sid, name, sk, *_ in rows])

    def link_scores(self, run_id: str, task: str, items: list[tuple[str, str, str]]) -> None:
        """Record that cached scores answered these samples: (sample_id, scorer, score_key)."""
        with self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO run_scores VALUES (?, ?, ?, ?, ?)",
                [(run_id, task, sid, name, sk) for sid, name, sk in items])

    def link_items(self, run_id: str, task: str, items: list[tuple[str, str]]) -> None:
        """Record that cached keys answered these samples in this run: (sample_id, cache_key)."""
        with self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO run_items VALUES (?, ?, ?, ?)",
                [(run_id, task, sid, k) for sid, k in items],
            )

    # -- runs --------------------------------------------------------------------------------
    def start_run(self, suite: str, model: str, manifest: dict) -> str:
        """A new run; earlier runs of the same suite and model left `running` by a process that
        is gone (SIGKILL, a crash, a power cut) are marked `killed` first."""
        run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.mark_killed(suite, model)
        with self._tx():
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, 'running', ?, NULL, ?)",
                (run_id, suite, model, time.time(), json.dumps(manifest, ensure_ascii=False)),
            )
        return run_id

    def mark_killed(self, suite: str, model: str) -> list[str]:
        """`running` runs of (suite, model) whose process (pid and host in the manifest) no
        longer runs on this host become `killed`; returns their ids."""
        here = socket.gethostname()
        gone = []
        for run_id, manifest in self._db.execute(
                "SELECT run_id, manifest FROM runs WHERE suite=? AND model=? AND status='running'",
                (suite, model)).fetchall():
            m = json.loads(manifest)
            if m.get("host") == here and isinstance(m.get("pid"), int) and not _alive(m["pid"]):
                gone.append(run_id)
        if gone:
            with self._tx():
                self._db.executemany("UPDATE runs SET status='killed' WHERE run_id=? AND "
                                     "status='running'", [(r,) for r in gone])
        return gone

    def finish_task(
        self, run_id: str, task: str, task_fp: str, signature: str, metrics: dict, timings: dict
    ) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO run_tasks VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, task, task_fp, signature, json.dumps(metrics), json.dumps(timings)),
            )

    def finish_run(self, run_id: str, status: str = "done", manifest_update: dict | None = None):
        with self._tx():
            if manifest_update:
                row = self._db.execute("SELECT manifest FROM runs WHERE run_id=?", (run_id,))
                manifest = json.loads(row.fetchone()[0]) | manifest_update
                self._db.execute(
                    "UPDATE runs SET manifest=? WHERE run_id=?",
                    (json.dumps(manifest, ensure_ascii=False), run_id),
                )
            self._db.execute(
                "UPDATE runs SET status=?, ended=? WHERE run_id=?", (status, time.time(), run_id)
            )

    def latest_runs(self, suite: str) -> list[dict]:
        """The newest finished run of `suite` for each model, oldest model first."""
        rows = self._db.execute(
            "SELECT run_id, model, started, ended, manifest FROM runs "
            "WHERE suite=? AND status='done' ORDER BY ended",
            (suite,),
        ).fetchall()
        latest: dict[str, dict] = {}
        api: dict[str, dict] = {}  # an API model's newest throughput figures (a fully cached
        for run_id, model, started, ended, manifest in rows:  # run sends no request)
            manifest = json.loads(manifest)
            if manifest.get("api"):
                api[model] = {**manifest["api"], "run_id": run_id}
            latest[model] = {
                "run_id": run_id, "model": model, "started": started, "ended": ended,
                "manifest": manifest, "api": api.get(model),
            }
        return list(latest.values())

    def finished_runs(self, suite: str) -> list[dict]:
        """Every finished run of `suite`, oldest first: run_id, model, started, ended, manifest."""
        rows = self._db.execute(
            "SELECT run_id, model, started, ended, manifest FROM runs "
            "WHERE suite=? AND status='done' ORDER BY ended", (suite,))
        return [{"run_id": r, "model": m, "started": s, "ended": e, "manifest": json.loads(man)}
                for r, m, s, e, man in rows]

    def run(self, run_id: str) -> dict | None:
        """One run by id: run_id, suite, model, status, started, ended, manifest."""
        row = self._db.execute("SELECT run_id, suite, model, status, started, ended, manifest "
                               "FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        keys = ("run_id", "suite", "model", "status", "started", "ended", "manifest")
        return dict(zip(keys, row[:-1] + (json.loads(row[-1]),)))

    def backend_versions(self, model_fp: str) -> list[str]:
        """The backend versions this model's runs used, newest run first."""
        rows = self._db.execute(
            "SELECT json_extract(manifest, '$.backend.backend_version') AS v FROM runs WHERE "
            "json_extract(manifest, '$.model_fingerprint') = ? AND v IS NOT NULL ORDER BY started "
            "DESC", (model_fp,))
        return list(dict.fromkeys(v for (v,) in rows))

    def scored_outputs(self, run_id: str, task: str) -> dict[tuple[str, str], str]:
        """(sample_id, scorer) -> the cache key of the output that score was given to."""
        rows = self._db.execute(
            "SELECT rs.sample_id, rs.scorer, s.cache_key FROM run_scores rs JOIN scores s "
            "ON s.score_key = rs.score_key WHERE rs.run_id=? AND rs.task=?", (run_id, task))
        return {(sid, name): key for sid, name, key in rows}

    def run_tasks(self, run_id: str) -> list[dict]:
        rows = self._db.execute(
            "SELECT task, task_fp, signature, metrics, timings FROM run_tasks WHERE run_id=?",
            (run_id,),
        )
        return [
            {"task": t, "task_fp": fp, "signature": sig, "metrics": json.loads(m),
             "timings": json.loads(tm)}
            for t, fp, sig, m, tm in rows
        ]

    def run_records(self, run_id: str, task: str) -> list[dict]:
        """Per-sample records of one task in one run, in sample order of insertion."""
        return [record for _, record in self.run_items(run_id, task)]

    def run_items(self, run_id: str, task: str) -> list[tuple[str, dict]]:
        """(cache key, record) of one task in one run, in insertion order. A record is the
        model's output with its scores: all under "scores" (scorer name -> score record), and
        the first scorer's details and first value ("score") beside the output's fields."""
        rows = self._db.execute(
            "SELECT i.sample_id, i.cache_key, r.record FROM run_items i JOIN records r "
            "ON r.cache_key = i.cache_key WHERE i.run_id=? AND i.task=? ORDER BY i.rowid",
            (run_id, task),
        ).fetchall()
        scores: dict[str, dict[str, dict]] = {}
        for sid, name, record in self._db.execute(
                "SELECT rs.sample_id, rs.scorer, s.record FROM run_scores rs JOIN scores s "
                "ON s.score_key = rs.score_key WHERE rs.run_id=? AND rs.task=? ORDER BY rs.rowid",
                (run_id, task)):
            scores.setdefault(sid, {})[name] = json.loads(record)
        return [(k, with_scores(json.loads(r), scores.get(sid, {}))) for sid, k, r in rows]

    def count_items(self, run_id: str) -> int:
        """Samples answered in one run so far (computed or from the cache)."""
        return self._db.execute("SELECT COUNT(*) FROM run_items WHERE run_id=?", (run_id,)).fetchone()[0]

    # -- training runs and the registry of trained models ------------------------------------
    def training(self, key: str) -> dict | None:
        row = self._db.execute("SELECT output, status, run_dir, record, started, ended FROM "
                               "trainings WHERE train_key=?", (key,)).fetchone()
        if row is None:
            return None
        output, status, run_dir, record, started, ended = row
        return {"train_key": key, "output": output, "status": status, "run_dir": run_dir,
                "record": json.loads(record), "started": started, "ended": ended}

    def start_training(self, key: str, output: str, run_dir: str, record: dict) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO trainings VALUES (?, ?, 'running', ?, ?, ?, NULL)",
                (key, output, run_dir, json.dumps(record, ensure_ascii=False), time.time()))

    def finish_training(self, key: str, status: str, record: dict) -> None:
        with self._tx():
            self._db.execute("UPDATE trainings SET status=?, record=?, ended=? WHERE train_key=?",
                             (status, json.dumps(record, ensure_ascii=False), time.time(), key))

    def register_model(self, name: str, fingerprint: str, entry: dict, train_key: str | None) -> None:
        """A trained model under its name; the newest registration of a name is what it means."""
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?)",
                             (name, fingerprint, json.dumps(entry, ensure_ascii=False), train_key,
                              time.time()))

    def trained_models(self) -> dict[str, dict]:
        """name -> the newest registration {fingerprint, entry, train_key, created, versions}."""
        found: dict[str, dict] = {}
        for name, fp, entry, key, created in self._db.execute(
                "SELECT name, fingerprint, entry, train_key, created FROM models ORDER BY created"):
            versions = found.get(name, {}).get("versions", 0) + 1
            found[name] = {"fingerprint": fp, "entry": json.loads(entry), "train_key": key,
                           "created": created, "versions": versions}
        return found

    def models_by_fingerprint(self, prefix: str) -> list[dict]:
        """Every registration whose fingerprint starts with `prefix` (12+ characters pin one)."""
        rows = self._db.execute("SELECT name, fingerprint, entry, train_key FROM models WHERE "
                                "fingerprint LIKE ? ORDER BY created", (prefix + "%",))
        return [{"name": n, "fingerprint": fp, "entry": json.loads(e), "train_key": k}
                for n, fp, e, k in rows]

    def count(self, table: str) -> int:
        assert table in {"records", "scores", "runs", "run_items", "run_tasks", "run_scores",
                         "trainings", "models"}
        return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a zombie is gone too
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def with_scores(output: dict, scores: dict[str, dict]) -> dict:
    """An output record with its scores (see Store.run_items); the output alone when unscored."""
    if not scores:
        return output
    first = next(iter(scores.values()))
    detail = {k: v for k, v in first.items() if k != "values"}
    return {**output, **detail, "score": next(iter(first["values"].values())), "scores": scores}

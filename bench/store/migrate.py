"""Store schema versions, and the upgrade from each version to the next.

Opening an older store upgrades it in place, once, after a backup copy next to it
(`bench.sqlite.v1.bak`, made with SQLite's online backup and never overwritten); each step runs in
one transaction, so a failed upgrade leaves the store as it was. A store from a newer bench is
refused with both versions named.

Versions:
  1  bench 0.1.0: `records` hold a sample's output and its accuracy together.
  2  bench 0.2.0: scores are their own layer: `scores` (an output's key + the scorer's
     fingerprint) and `run_scores` (which score answered which sample in a run). Version-1 records
     keep their bytes; each one a run used gets the score record that run's scorer stands for.
     Training runs (`trainings`, keyed by what decides the weights) and the registry of trained
     models (`models`: name, fingerprint, entry) start here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import bench
from bench.errors import BenchError

SCHEMA_VERSION = 2

TABLES = {
    "meta": "(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "records": "(cache_key TEXT PRIMARY KEY, model_fp TEXT NOT NULL, task_fp TEXT NOT NULL, "
               "sample_hash TEXT NOT NULL, record TEXT NOT NULL, created REAL NOT NULL)",
    "runs": "(run_id TEXT PRIMARY KEY, suite TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT "
            "NULL, started REAL NOT NULL, ended REAL, manifest TEXT NOT NULL)",
    "run_tasks": "(run_id TEXT NOT NULL, task TEXT NOT NULL, task_fp TEXT NOT NULL, signature TEXT "
                 "NOT NULL, metrics TEXT NOT NULL, timings TEXT NOT NULL, PRIMARY KEY (run_id, task))",
    "run_items": "(run_id TEXT NOT NULL, task TEXT NOT NULL, sample_id TEXT NOT NULL, cache_key "
                 "TEXT NOT NULL, PRIMARY KEY (run_id, task, sample_id))",
    # version 2
    "scores": "(score_key TEXT PRIMARY KEY, cache_key TEXT NOT NULL, scorer_fp TEXT NOT NULL, "
              "record TEXT NOT NULL, created REAL NOT NULL)",
    "run_scores": "(run_id TEXT NOT NULL, task TEXT NOT NULL, sample_id TEXT NOT NULL, scorer TEXT "
                  "NOT NULL, score_key TEXT NOT NULL, PRIMARY KEY (run_id, task, sample_id, scorer))",
    "trainings": "(train_key TEXT PRIMARY KEY, output TEXT NOT NULL, status TEXT NOT NULL, run_dir "
                 "TEXT NOT NULL, record TEXT NOT NULL, started REAL NOT NULL, ended REAL)",
    "models": "(name TEXT NOT NULL, fingerprint TEXT NOT NULL, entry TEXT NOT NULL, train_key TEXT, "
              "created REAL NOT NULL, PRIMARY KEY (name, fingerprint))",
}
_INDEX = "CREATE INDEX IF NOT EXISTS runs_by_suite ON runs (suite, model, status, ended)"


def _create(db: sqlite3.Connection, names) -> None:
    for name in names:
        db.execute(f"CREATE TABLE IF NOT EXISTS {name} {TABLES[name]}")


def _v1_to_v2(db: sqlite3.Connection) -> None:
    from bench.evaluate.manifest import score_key

    _create(db, ["scores", "run_scores", "trainings", "models"])
    now = time.time()
    for run_id, manifest in db.execute("SELECT run_id, manifest FROM runs").fetchall():
        for task, entry in json.loads(manifest).get("tasks", {}).items():
            scorer, detail = _v1_scorer(entry)
            items = db.execute(
                "SELECT i.sample_id, i.cache_key, r.record FROM run_items i JOIN records r "
                "ON r.cache_key = i.cache_key WHERE i.run_id=? AND i.task=?", (run_id, task))
            for sample_id, key, raw in items.fetchall():
                v1 = json.loads(raw)
                record = {"values": {"accuracy": v1["score"]}, **{k: v1[k] for k in detail}}
                skey = score_key(key, scorer.fingerprint)
                db.execute("INSERT OR IGNORE INTO scores VALUES (?, ?, ?, ?, ?)",
                           (skey, key, scorer.fingerprint, json.dumps(record), now))
                db.execute("INSERT OR REPLACE INTO run_scores VALUES (?, ?, ?, ?, ?)",
                           (run_id, task, sample_id, scorer.name, skey))


def _v1_scorer(entry: dict):
    """The scorer a version-1 task's accuracy stands for (from its manifest entry), and the
    record fields that scorer keeps beside the value."""
    from bench.engines import EngineScore
    from bench.tasks.choice import ChoiceAccuracy

    if "engine" in entry:
        return EngineScore(entry["signature"]), ("answer",)
    if entry["mode"] == "gen":
        post = entry["signature"].split("|post:")[1].split("|")[0]
        return ChoiceAccuracy("gen", post), ("answer",)
    return ChoiceAccuracy("ppl"), ("prediction", "answer")


STEPS = {1: _v1_to_v2}  # found version -> the step to the next one


def _version(db: sqlite3.Connection) -> int | None:
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone():
        return None
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else None


def _backup(db: sqlite3.Connection, path: Path, version: int) -> Path:
    """A consistent copy of the store as it is, kept beside it; an existing backup stays."""
    target = path.with_name(f"{path.name}.v{version}.bak")
    if target.exists():
        return target
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    copy = sqlite3.connect(tmp)
    try:
        db.backup(copy)
    finally:
        copy.close()
    try:
        os.link(tmp, target)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return target


def open_schema(db: sqlite3.Connection, path: Path) -> str | None:
    """Create a new store's tables, or upgrade an older one; return a note on what was upgraded."""
    found = _version(db)
    if found is not None and found > SCHEMA_VERSION:
        bench_of = db.execute("SELECT value FROM meta WHERE key='bench_version'").fetchone()
        raise BenchError(
            f"{path}: written by {'bench ' + bench_of[0] if bench_of else 'a newer bench'} with "
            f"store schema {found}; this bench {bench.__version__} reads schema {SCHEMA_VERSION} and older. "
            "Upgrade bench (pip install -U bench), or point --results (BENCH_RESULTS_DIR) at "
            "another folder")
    backup = _backup(db, path, found) if found is not None and found < SCHEMA_VERSION else None
    db.execute("BEGIN IMMEDIATE")
    try:
        found = _version(db)  # another process may have upgraded it meanwhile
        if found is None:
            _create(db, TABLES)
        for version in range(found or SCHEMA_VERSION, SCHEMA_VERSION):
            STEPS[version](db)
        db.execute(_INDEX)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('bench_version', ?)", (bench.__version__,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    if backup is None or found is None or found == SCHEMA_VERSION:
        return None
    note = (f"upgraded {path} from store schema {found} to {SCHEMA_VERSION}; the store as it was "
            f"is kept in {backup}")
    print(f"bench: {note}", file=sys.stderr)
    return note

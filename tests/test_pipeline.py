"""The loop in one command, the README's main job (`make demo` = `bench demo`: build the tiny
candidates, pre-train one, then `bench pipeline suites/loop.yaml`), end to end on the demo.

One module fixture runs it the hard way: the first attempt is SIGKILLed once SFT has written a
checkpoint, the second resumes and completes. The tests then read what it left, rerun it
(everything skipped), and change only the gate policy (only gate and report run)."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from bench.report.before_after import before_after_data
from bench.store import Store
from helpers import ROOT, bench_cli

PIPE = ROOT / "suites" / "loop.yaml"
pytestmark = pytest.mark.slow


def _sft_checkpoints(results: Path) -> list[str]:
    """Complete checkpoints of the pipeline's SFT run so far (its run folder is in the store); a
    folder still being written does not count: a kill then would leave nothing to resume from."""
    from bench.train.trainer import last_checkpoint

    db = results / "bench.sqlite"
    if not db.is_file():
        return []
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute("SELECT run_dir FROM trainings WHERE output='kids-loop-sft'").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        rows = []
    finally:
        con.close()
    return [c for (d,) in rows if (c := last_checkpoint(Path(d) / "checkpoints"))]


def _kill_once_checkpointed(args: list[str], results: Path, log: Path, timeout: float = 900) -> None:
    env = {**{k: v for k, v in os.environ.items() if k != "BENCH_DATA_DIR"},
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _sft_checkpoints(results):
            assert proc.poll() is None, f"the pipeline ended before a checkpoint: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no training checkpoint in time"
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    from bench.demo import ensure_demo_models

    ensure_demo_models(ROOT / ".cache" / "demo-models")
    tmp = tmp_path_factory.mktemp("loop")
    results, reports = tmp / "results", tmp / "reports"
    args = ["demo", "--results", str(results), "--reports", str(reports)]
    _kill_once_checkpointed(args, results, tmp / "killed.log")
    t0 = time.perf_counter()
    resumed = bench_cli(*args, timeout=1800)
    return {"results": results, "reports": reports, "resumed": resumed, "tmp": tmp,
            "wall_s": time.perf_counter() - t0}


def _stage_runs(results: Path) -> list[dict]:
    store = Store(results / "bench.sqlite")
    rows = store._db.execute("SELECT model, status, manifest FROM runs WHERE suite='pipeline:kids-loop' "
                             "ORDER BY started").fetchall()
    store.close()
    return [{"stage": m, "status": s, "manifest": json.loads(man)} for m, s, man in rows]


def _again(loop, pipeline: Path = PIPE, from_stage: str | None = None) -> dict:
    from bench.pipeline.run import run_pipeline

    return run_pipeline(pipeline, loop["results"], from_stage, Console(file=io.StringIO()),
                        reports=loop["reports"])


def test_killed_in_training_resumes_and_completes(loop):
    resumed = loop["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:] + resumed.stdout[-3000:]
    stages = _stage_runs(loop["results"])
    train = [s for s in stages if s["stage"] == "train"]
    # SIGKILL: no chance to record; the rerun found its process gone and marked it
    assert [s["status"] for s in train] == ["killed", "done"]
    store = Store(loop["results"] / "bench.sqlite")
    sft = [store.training(k) for (k,) in store._db.execute(
        "SELECT train_key FROM trainings WHERE output='kids-loop-sft'")]
    store.close()
    assert len(sft) == 1 and sft[0]["status"] == "done"
    assert "checkpoint-" in str(sft[0]["record"]["manifest"]["ran"]["resumed_from"])
    assert [s["stage"] for s in stages if s["status"] == "done"] == [
        "select", "train", "evaluate", "gate", "report"]


def test_both_reports_and_the_gate_are_written(loop):
    out = loop["reports"] / "kids-loop"
    for name in ("leaderboard.html", "before_after.html", "gate/gate.md", "gate/gate.junit.xml"):
        assert (out / name).is_file(), name
    text = loop["resumed"].stdout
    assert "gate: PASS" in text and "select: " in text and "before_after.html" in text


def test_before_after_shows_a_heldout_change_whose_ci_excludes_zero(loop):
    """Held-out sets whose templates and slot values training never saw (bench/domain: the
    held-out questions are checked for overlap before training)."""
    evaluate = next(s for s in _stage_runs(loop["results"])
                    if s["stage"] == "evaluate" and s["status"] == "done")["manifest"]["outputs"]
    runs = evaluate["runs"]["kids-heldout"]
    store = Store(loop["results"] / "bench.sqlite")
    data = before_after_data(store, "kids-heldout", runs["base"], runs["tuned"])
    store.close()
    rows = {(r["task"], r["metric"]): r for r in data["rows"]}
    up = [k for k, r in rows.items() if k[0].startswith("kids-") and r["ci_low"] > 0]
    assert ("kids-answers-test", "rules_pass") in up, sorted(rows)
    assert ("kids-answers-test", "judge_overall") in rows  # the served demo judge scored them


def test_second_run_skips_every_stage(loop):
    store = Store(loop["results"] / "bench.sqlite")
    before = {t: store.count(t) for t in ("records", "scores", "runs", "trainings")}
    store.close()
    again = bench_cli("demo", "--results", str(loop["results"]), "--reports", str(loop["reports"]))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already pre-trained" in again.stderr
    rows = [line.split("│")[1:-1] for line in again.stdout.splitlines() if line.startswith("│")]
    assert [r[0].strip() for r in rows] == ["select", "train", "evaluate", "gate", "report"]
    assert all(r[1].strip() == "skipped (unchanged)" and r[3].strip() == "0" and r[4].strip() == "0"
               for r in rows), again.stdout
    store = Store(loop["results"] / "bench.sqlite")
    assert {t: store.count(t) for t in before} == before  # not a row written
    store.close()
    result = _again(loop)  # the same, in process: counted, not parsed
    assert [r["ran"] for r in result["summary"]] == [False] * 5
    assert result["counts"] == {"model_calls": 0, "training_steps": 0}


def test_changing_only_the_gate_policy_reruns_only_gate_and_report(loop):
    tmp = loop["tmp"]
    policy = tmp / "gate-stricter.yaml"
    policy.write_text((ROOT / "suites" / "gate.yaml").read_text().replace("margin: 0.05", "margin: 0.02"))
    changed = _write_pipeline(tmp / "loop-stricter.yaml", gate={"policy": str(policy)})
    result = _again(loop, changed)
    assert [r["stage"] for r in result["summary"] if r["ran"]] == ["gate", "report"]
    assert result["counts"] == {"model_calls": 0, "training_steps": 0}
    forced = _again(loop, changed, from_stage="gate")  # --from: recomputed despite the records
    assert [r["stage"] for r in forced["summary"] if r["ran"]] == ["gate", "report"]


def _write_pipeline(path: Path, **changes) -> Path:
    """suites/loop.yaml elsewhere (its paths made absolute), with some keys of its sections replaced."""
    spec = yaml.safe_load(PIPE.read_text(encoding="utf-8"))
    here = lambda rel: str((PIPE.parent / rel).resolve())  # noqa: E731
    spec["models"] = here(spec["models"])
    spec["select"]["suite"] = here(spec["select"]["suite"])
    spec["train"]["configs"] = [here(c) for c in spec["train"]["configs"]]
    spec["evaluate"]["suites"] = [here(c) for c in spec["evaluate"]["suites"]]
    spec["evaluate"]["judge"]["train"] = here(spec["evaluate"]["judge"]["train"])
    spec["gate"]["policy"] = here(spec["gate"]["policy"])
    for section, keys in changes.items():
        spec[section].update(keys)
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def test_a_changed_training_config_reruns_train_and_what_follows_only(loop):
    """Only the DPO config changes (4 steps instead of 2 epochs): SFT is found by its key, DPO
    trains again, evaluate asks only the new tuned model (the base's answers are stored), gate and
    report follow; select is skipped. The last test on the fixture: it re-points kids-loop-dpo."""
    domain = ROOT / "bench" / "domain"
    dpo = yaml.safe_load((domain / "kids-dpo.yaml").read_text(encoding="utf-8"))
    dpo |= {"max_steps": 4, "data": [str(domain / d) for d in dpo["data"]],
            "held_out": [str(domain / d) for d in dpo["held_out"]]}
    config = loop["tmp"] / "kids-dpo-short.yaml"
    config.write_text(yaml.safe_dump(dpo, allow_unicode=True), encoding="utf-8")
    changed = _write_pipeline(loop["tmp"] / "loop-short-dpo.yaml", train={
        "configs": [str(domain / "kids-sft.yaml"), str(config)]})
    result = _again(loop, changed)
    assert [r["stage"] for r in result["summary"] if r["ran"]] == ["train", "evaluate", "gate", "report"]
    steps = {r["stage"]: r["training_steps"] for r in result["summary"]}
    assert steps == {"select": 0, "train": 4, "evaluate": 0, "gate": 0, "report": 0}  # judge: trained before
    evaluate = next(r for r in result["summary"] if r["stage"] == "evaluate")
    assert evaluate["model_calls"] > 0
    runs = result["state"]["evaluate"]["runs"]["kids-heldout"]
    store = Store(loop["results"] / "bench.sqlite")
    totals = {side: store.run(runs[side])["manifest"]["totals"] for side in ("base", "tuned")}
    store.close()
    assert totals["base"]["computed"] == 0 and totals["tuned"]["cached"] == 0


@pytest.mark.parametrize("body, words", [
    ("name: x\nselect: {suite: fewclue-dev-gen.yaml, candidats: [a]}\n", "candidats"),
    ("name: x\nselect: {suite: nope.yaml, candidates: [a]}\ntrain: {configs: [nope.yaml]}\n"
     "evaluate: {suites: [nope.yaml]}\ngate: {policy: nope.yaml}\n", "nope.yaml not found"),
])
def test_bad_pipeline_files_are_refused_before_anything_runs(tmp_path, body, words):
    path = tmp_path / "p.yaml"
    path.write_text(body, encoding="utf-8")
    bad = bench_cli("pipeline", str(path), "--results", str(tmp_path / "r"))
    assert bad.returncode == 2 and words in bad.stderr and str(path) in bad.stderr
    assert not (tmp_path / "r" / "bench.sqlite").exists()
    wrong = bench_cli("pipeline", str(PIPE), "--from", "trian", "--results", str(tmp_path / "r"))
    assert wrong.returncode == 2 and "did you mean 'train'" in wrong.stderr

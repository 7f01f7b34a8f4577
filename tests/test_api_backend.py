"""The openai backend against a scripted OpenAI-compatible server (tests/openai_server.py):
retries, resume, Ctrl-C, concurrency, early stop, log-probabilities, the key's hygiene."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.backends import get_backend
from bench.config import load_models
from bench.errors import BenchError
from bench.evaluate.suite import run_suite
from bench.report.leaderboard import leaderboard_data
from bench.report.render import render_leaderboard
from bench.store import Store
from bench.tasks.loaders import DEMO_DATA_DIR
from tests.helpers import ROOT, write_suite
from tests.openai_server import ScriptedServer

SECRET = "sk-test-5e3c7f1d9a-NEVER-WRITTEN"
FAST = {"BENCH_API_BACKOFF_S": "0.02", "BENCH_DATA_DIR": str(DEMO_DATA_DIR)}


def api_models(path: Path, base_url: str, **extra) -> Path:
    entry = {"name": "api", "backend": "openai", "base_url": base_url, "model": "scripted",
             "generation": {"early_stop": False}, **extra}
    path.write_text(json.dumps({"models": [entry]}), encoding="utf-8")  # JSON is YAML
    return path


def cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**_env(), **(env or {})}, **kw)


def _env() -> dict:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **FAST,
            "API_KEY_FOR_TESTS": SECRET}


def stored_keys(db: Path) -> list[str]:
    """The last user message of every stored output (what the scripted server keys on)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT record FROM records").fetchall()
    finally:
        con.close()
    return [json.loads(json.loads(r)["input"])[-1]["content"] for (r,) in rows]


class Plan:
    """Per request key, in the order keys first arrive: the actions of its attempts."""

    def __init__(self, *per_sample: list[str]):
        self.per_sample, self.order = per_sample, []

    def __call__(self, key, attempt: int) -> str:
        if key not in self.order:
            self.order.append(key)
        i = self.order.index(key)
        actions = self.per_sample[i] if i < len(self.per_sample) else ["ok"]
        return actions[min(attempt, len(actions) - 1)]


def test_transient_failures_are_retried_counted_and_never_asked_again(tmp_path):
    script = Plan(["429", "ok"], ["500", "500", "ok"], ["timeout", "ok"], ["drop", "ok"],
                  ["empty", "ok"], ["nonjson", "ok"])
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=8)
    results = tmp_path / "results"
    with ScriptedServer(script=script, slow_s=2.0) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, concurrency=1, timeout=0.5,
                            api_key_env="API_KEY_FOR_TESTS")
        first = cli("run", "--suite", str(suite), "--models", str(models), "--results", str(results))
        assert first.returncode == 0, first.stderr
        asked = dict(server.requests)
        second = cli("run", "--suite", str(suite), "--models", str(models), "--results", str(results))
        assert second.returncode == 0, second.stderr
        assert server.requests == asked  # the rerun sent nothing
    # every sample was requested exactly as often as the script says
    assert [asked[k] for k in script.order] == [2, 3, 2, 2, 2, 2, 1, 1]
    assert server.auth == {f"Bearer {SECRET}"}  # the key was used...
    assert "8 requests" in first.stdout and "retries 7" in first.stdout
    assert "model calls this run: 0" in second.stdout
    db = results / "bench.sqlite"
    con = sqlite3.connect(db)
    manifest = json.loads(con.execute("SELECT manifest FROM runs ORDER BY started LIMIT 1").fetchone()[0])
    records = [json.loads(r) for (r,) in con.execute("SELECT record FROM records")]
    con.close()
    assert manifest["api"]["retries"] == 7 and manifest["api"]["requests"] == 8
    assert manifest["backend"]["content_addressed"] is False
    assert sorted(r["api"]["retries"] for r in records) == [0, 0, 1, 1, 1, 1, 1, 2]
    # ...and appears in no file written (store, logs, manifests)
    written = [p for p in results.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in written) or written
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path


def test_lost_server_keeps_finished_samples_and_resume_sends_nothing_again(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=8)
    results = tmp_path / "results"
    down = Plan(*[["ok"]] * 5, *[["500"]] * 10)
    with ScriptedServer(script=down) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, concurrency=1, max_retries=1)
        lost = cli("run", "--suite", str(suite), "--models", str(models), "--results", str(results))
        assert lost.returncode == 1, lost.stderr
        assert "failed after 1 retries" in lost.stderr and "HTTP 500" in lost.stderr
        assert "5 of 8 samples of task bustm-dev asked in this run are stored, 3 are missing" in lost.stderr
        assert "rerun the same command to resume" in lost.stderr
        finished = stored_keys(results / "bench.sqlite")
        assert len(finished) == 5 and all(server.requests[k] == 1 for k in finished)
        server.script = lambda key, attempt: "ok"  # the server is back
        again = cli("run", "--suite", str(suite), "--models", str(models), "--results", str(results))
        assert again.returncode == 0, again.stderr
    assert len(server.requests) == 8
    assert all(server.requests[k] == 1 for k in finished)  # nothing finished was sent again


def test_a_restarted_server_with_the_same_weights_hits_the_cache(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=8)
    store = Store(tmp_path / "bench.sqlite")
    with ScriptedServer(script=Plan(*[["ok"]] * 5, *[["500"]] * 10)) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, concurrency=1,
                            max_retries=0, weights_fingerprint="f" * 64)
        with pytest.raises(BenchError, match="3 are missing"):
            run_suite(suite, models, None, DEMO_DATA_DIR, None, store)
        first = dict(server.requests)
    with ScriptedServer() as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, concurrency=1,
                            max_retries=0, weights_fingerprint="f" * 64)
        run = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)[0]
        resumed = dict(server.requests)
    finished = [k for k in first if k not in resumed]
    assert len(finished) == 5 and len(resumed) == 3  # finished samples are not asked again
    assert run.tasks[0].timings["cached"] == 5 and run.tasks[0].timings["computed"] == 3


def test_requests_in_flight_never_exceed_concurrency(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=12)
    with ScriptedServer(delay_s=0.2) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, concurrency=3)
        run = run_suite(suite, models, None, DEMO_DATA_DIR, None, Store(tmp_path / "b.sqlite"))[0]
    assert server.max_in_flight == 3
    assert run.api["requests"] == 12 and run.api["requests_per_s"] > 1 / 0.2
    assert run.api["latency_p50_s"] >= 0.2 and run.api["latency_p95_s"] >= run.api["latency_p50_s"]


def test_ctrl_c_stops_cleanly_and_keeps_what_was_done(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=16)
    results = tmp_path / "results"
    with ScriptedServer(delay_s=0.4) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, concurrency=2)
        proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "run", "--suite", str(suite),
                                 "--models", str(models), "--results", str(results)], cwd=ROOT,
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while sum(server.requests.values()) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "samples are kept" in err and "rerun the same command to resume" in err
        kept = stored_keys(results / "bench.sqlite")
        assert len(kept) >= 4
        server.delay_s = 0
        again = cli("run", "--suite", str(suite), "--models", str(models), "--results", str(results))
        assert again.returncode == 0, again.stderr
    assert len(server.requests) == len(stored_keys(results / "bench.sqlite")) > len(kept)
    assert all(server.requests[k] == 1 for k in kept)  # nothing kept was asked again


def test_early_stop_closes_the_stream_once_the_answer_is_decided(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=4)
    answer = "A。" + "后面的话" * 20
    with ScriptedServer(answer=lambda key: answer) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url,
                            generation={"early_stop": True, "max_new_tokens": 64})
        store = Store(tmp_path / "b.sqlite")
        run = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)[0]
        records = store.run_records(run.run_id, "bustm-dev")
    assert all(r["prediction"] == "A" and "early stop" in r["prediction_cut"] for r in records)


def test_config_errors_name_the_entry_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    models = api_models(tmp_path / "m.yaml", "http://127.0.0.1:9/v1", api_key_env="NO_SUCH_KEY_VAR")
    spec = load_models(models).models[0]
    with pytest.raises(BenchError, match="NO_SUCH_KEY_VAR, which is not set; export NO_SUCH_KEY_VAR="):
        get_backend(spec)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: x\n    backend: openai\n    base_url: u\n    model: m\n"
                   "    concurency: 3\n", encoding="utf-8")
    with pytest.raises(BenchError, match=r"bad.yaml:6: model 'x': models.0.concurency: unknown key "
                                         r"'concurency' \(did you mean 'concurrency'\?\)"):
        load_models(bad)


def test_ppl_needs_completions_and_a_tokenizer_before_anything_runs(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], mode="ppl", limit=2)
    with ScriptedServer() as server:
        models = api_models(tmp_path / "models.yaml", server.base_url)
        with pytest.raises(BenchError, match="set endpoint: completions and tokenizer"):
            run_suite(suite, models, None, DEMO_DATA_DIR, None, Store(tmp_path / "b.sqlite"))
    assert sum(server.requests.values()) == 0


@pytest.fixture(scope="module")
def local(tiny_model_dir):
    from bench.backends.hf import HFBackend
    from bench.config import ModelSpec

    return HFBackend(ModelSpec(name="local", path=str(tiny_model_dir), dtype="float32", device="cpu"))


def _echo_from(local):
    """The scripted server's log-probabilities: the local model's, scored as one item (one at a
    time: the server answers from several threads)."""
    lock = threading.Lock()

    def logprobs(prompts: list[list[int]]):
        with lock:
            scored = local._token_scores([prompts])[0]
        return [([None] + [-v for v in nll[1:]], greedy) for nll, greedy in scored]
    return logprobs


def test_ppl_values_through_the_api_equal_the_local_backends(tmp_path, local, tiny_model_dir,
                                                             monkeypatch):
    monkeypatch.setattr("bench.evaluate.runner.CHUNK", 1)  # one item per batch, as the API asks:
    # then float32 sums run in the same order and the values are equal, not merely close
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm", "chid"], mode="ppl", limit=6)
    store = Store(tmp_path / "b.sqlite")
    local_models = tmp_path / "local.yaml"
    local_models.write_text(f"models:\n  - {{name: local, path: {tiny_model_dir}, dtype: float32, "
                            "device: cpu}\n", encoding="utf-8")
    here = run_suite(suite, local_models, None, DEMO_DATA_DIR, None, store)[0]
    with ScriptedServer(logprobs=_echo_from(local)) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, endpoint="completions",
                            tokenizer=str(tiny_model_dir))
        there = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)[0]
    for task in ("bustm-dev", "chid-dev"):
        a, b = (sorted(store.run_records(r.run_id, task), key=lambda x: x["id"]) for r in (here, there))
        assert [r["logprobs"] for r in a] == [r["logprobs"] for r in b]
        assert [r["input"] for r in a] == [r["input"] for r in b]
    assert [t.metrics for t in here.tasks] == [t.metrics for t in there.tasks]


def test_loglikelihood_through_the_api_equals_the_local_backends(tmp_path, local, tiny_model_dir):
    requests = [("问：宝宝穿多大码？\n答：", "按身高选码。"), ("问：宝宝穿多大码？\n答：", "不知道。"),
                ("", "你好")]
    with ScriptedServer(logprobs=_echo_from(local)) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, endpoint="completions",
                            tokenizer=str(tiny_model_dir))
        api = get_backend(load_models(models).models[0])
        got = [api.loglikelihood([r])[0] for r in requests]  # one request each, as the runner asks
    want = [local.loglikelihood([r])[0] for r in requests]
    assert got == want


def test_a_server_without_prompt_logprobs_is_refused_clearly(tmp_path, tiny_model_dir):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], mode="ppl", limit=2)
    with ScriptedServer(script=lambda key, attempt: "nologprobs") as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, endpoint="completions",
                            tokenizer=str(tiny_model_dir))
        with pytest.raises(BenchError, match="returned no prompt log-probabilities .* run the task "
                                             "in mode: gen"):
            run_suite(suite, models, None, DEMO_DATA_DIR, None, Store(tmp_path / "b.sqlite"))


def test_identity_follows_weights_when_bench_served_them_else_the_url(tmp_path):
    fps = {}
    with ScriptedServer() as a, ScriptedServer() as b:
        for name, url, weights in (("a", a.base_url, None), ("b", b.base_url, None),
                                   ("a-w", a.base_url, "e" * 64), ("b-w", b.base_url, "e" * 64),
                                   ("down-w", "http://127.0.0.1:9/v1", "e" * 64)):
            models = api_models(tmp_path / f"{name}.yaml", url,
                                **({"weights_fingerprint": weights} if weights else {}))
            fps[name] = get_backend(load_models(models).models[0]).fingerprint
    assert fps["a"] != fps["b"]  # another server is another model
    # the same weights, wherever they are served, and known without asking the server
    assert fps["a-w"] == fps["b-w"] == fps["down-w"] != fps["a"]


def test_leaderboard_marks_api_models_and_shows_throughput(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=4)
    store = Store(tmp_path / "b.sqlite")
    with ScriptedServer(answer=lambda key: "<b>A</b>") as server:
        models = api_models(tmp_path / "models.yaml", server.base_url)
        run_suite(suite, models, None, DEMO_DATA_DIR, None, store)
        run_suite(suite, models, None, DEMO_DATA_DIR, None, store)  # all cached: no figures
    html = render_leaderboard(leaderboard_data(store, "s"))
    assert "not content-addressed" in html and ">API<" in html
    assert "API throughput" in html and "requests/s" in html
    assert "<b>A</b>" not in html and "&lt;b&gt;A&lt;/b&gt;" in html  # model output is escaped


def test_an_unusable_stream_is_retried_and_never_stored_as_an_answer(tmp_path):
    """Early stop streams the answer: a 200 that carries no choices (an HTML page, a cut body,
    `choices: []` events) is retried; a sample whose every attempt is unusable fails the run
    with the reason, and nothing is stored for it (it was stored as the answer '' before)."""
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=4)
    results = tmp_path / "results"
    script = Plan(["stream-html", "ok"], ["stream-cut", "ok"], ["stream-empty", "ok"], ["ok"])
    with ScriptedServer(script=script) as server:
        models = api_models(tmp_path / "models.yaml", server.base_url, concurrency=1,
                            generation={"early_stop": True, "max_new_tokens": 8})
        done = cli("run", "--suite", str(suite), "--models", str(models), "--results", str(results))
        assert done.returncode == 0, done.stderr
    assert [server.requests[k] for k in script.order] == [2, 2, 2, 1]
    con = sqlite3.connect(results / "bench.sqlite")
    records = [json.loads(r) for (r,) in con.execute("SELECT record FROM records")]
    manifest = json.loads(con.execute("SELECT manifest FROM runs").fetchone()[0])
    con.close()
    assert sorted(r["prediction"] for r in records) == ["A"] * 4
    assert manifest["api"]["retries"] == 3 and manifest["api"]["errors"] == 0  # retried, not failed

    always = tmp_path / "always"
    with ScriptedServer(script=lambda key, attempt: "stream-empty") as server:
        models = api_models(tmp_path / "models2.yaml", server.base_url, concurrency=1,
                            max_retries=1, generation={"early_stop": True, "max_new_tokens": 8})
        done = cli("run", "--suite", str(suite), "--models", str(models), "--results", str(always))
    assert done.returncode == 1
    assert "the stream carried no choices (content-type text/event-stream)" in done.stderr
    con = sqlite3.connect(always / "bench.sqlite")
    assert con.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "failed"
    con.close()


def test_tokens_without_usage_are_unknown_not_zero(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=3)
    with ScriptedServer(script=lambda key, attempt: "nousage") as server:
        models = api_models(tmp_path / "models.yaml", server.base_url)
        store = Store(tmp_path / "b.sqlite")
        [run] = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)
        records = store.run_records(run.run_id, "bustm-dev")
    assert all(r["api"]["prompt_tokens"] is None and r["api"]["usage_missing"] == 1 for r in records)
    assert run.api["usage_missing"] == 3 and run.api["prompt_tokens"] is None
    assert run.api["output_tokens_per_s"] is None
    from bench.report.terminal import api_line

    assert "tokens unknown for 3 requests" in api_line(run.api)

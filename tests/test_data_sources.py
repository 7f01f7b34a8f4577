"""Where task data comes from: flag, env, suite, bundled demo, or the pinned GitHub files."""

import shutil
from pathlib import Path

from bench.evaluate.suite import load_tasks
from bench.tasks.loaders import DEMO_DATA_DIR
from tests.helpers import require_shared_data, write_suite


def test_no_data_dir_means_bundled_demo(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    _, root, tasks = load_tasks(write_suite(tmp_path / "s.yaml", "s", ["bustm"]), None, None)
    assert root == DEMO_DATA_DIR and len(tasks[0].samples) == 12


def test_flag_beats_env_beats_suite(tmp_path, monkeypatch):
    a, b, c = (shutil.copytree(DEMO_DATA_DIR, tmp_path / n) for n in "abc")
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], data_dir=str(c))
    assert load_tasks(suite, None, None)[1] == c
    monkeypatch.setenv("BENCH_DATA_DIR", str(b))
    assert load_tasks(suite, None, None)[1] == b
    assert load_tasks(suite, a, None)[1] == a


def test_github_source_uses_verified_cache_without_network(tmp_path, monkeypatch):
    data = require_shared_data()
    cache = tmp_path / "cache"
    shutil.copytree(data / "fewclue" / "bustm", cache / "fewclue" / "bustm")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))

    def no_network(url):
        raise AssertionError(f"network used for {url}")

    monkeypatch.setattr("bench.tasks.download.http_get", no_network)
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], split="test")
    _, root, tasks = load_tasks(suite, Path("github"), None)
    assert root == cache and len(tasks[0].samples) == 1772

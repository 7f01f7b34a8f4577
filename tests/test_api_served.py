"""A FewCLUE gen task through `transformers serve` scores exactly like the same model loaded
locally: the same raw text, the same answers."""

from __future__ import annotations

import json

import pytest

from bench.evaluate.suite import run_suite
from bench.store import Store
from bench.tasks.loaders import DEMO_DATA_DIR
from tests.helpers import write_suite

pytestmark = pytest.mark.slow


def test_served_model_answers_exactly_like_the_local_one(tmp_path, tiny_llama_dir, served_tiny):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm", "eprstmt", "tnews"], limit=6)
    local = {"name": "local", "path": str(tiny_llama_dir), "dtype": "float32", "device": "cpu",
             "generation": {"early_stop": False, "max_new_tokens": 24}}
    served = {**served_tiny.entry, "concurrency": 1,
              "generation": {"early_stop": False, "max_new_tokens": 24}}
    models = tmp_path / "models.yaml"
    models.write_text(json.dumps({"models": [local, served]}), encoding="utf-8")
    store = Store(tmp_path / "bench.sqlite")
    here, there = run_suite(suite, models, None, DEMO_DATA_DIR, None, store)
    assert there.api["requests"] == 18 and there.api["errors"] == 0
    for task in ("bustm-dev", "eprstmt-dev", "tnews-dev"):
        a, b = (sorted(store.run_records(r.run_id, task), key=lambda x: x["id"]) for r in (here, there))
        assert [r["prediction"] for r in a] == [r["prediction"] for r in b]
        assert [r["answer"] for r in a] == [r["answer"] for r in b]
        assert all(r["prediction"] for r in b)  # real text came back
    assert [t.metrics for t in here.tasks] == [t.metrics for t in there.tasks]

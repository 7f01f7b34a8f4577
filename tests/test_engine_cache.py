"""The runner's engine path, with a scripted engine: cached by model, task and decoding."""

from dataclasses import dataclass, field

from bench.config import ModelSpec, SuiteSpec
from bench.engines import EngineResult
from bench.evaluate.runner import run_model
from bench.store import Store


@dataclass
class FakeBackend:
    fingerprint: str = "model-fp"
    info: dict = field(default_factory=lambda: {"backend_version": "fake/1"})
    stats: dict = field(default_factory=lambda: {"forward_calls": 0})


@dataclass
class ScriptedTask:
    key: str = "fake:task"
    mode: str = "gen"
    signature: str = "acc|engine:fake"
    fingerprint: str = "task-fp"
    engine_version: str = "fake/1"
    meta: dict = field(default_factory=dict)
    runs: int = 0

    def decoding(self, spec: ModelSpec) -> dict:
        return {"max_new_tokens": spec.generation.max_new_tokens}

    def run(self, spec: ModelSpec, backend) -> EngineResult:
        self.runs += 1
        backend.stats["forward_calls"] += 1
        n = spec.generation.max_new_tokens
        records = [{"id": f"doc{i}", "input": "q", "target": "A", "prediction": "A" * n,
                    "answer": "A", "score": float(i % 2 == 0)} for i in range(4)]
        return EngineResult(records, {"acc": {"value": 0.5, "n": 4}}, {"forward_calls": 1})


def test_engine_task_cached_per_decoding(tmp_path):
    store = Store(tmp_path / "b.sqlite")
    suite = SuiteSpec(name="s", tasks=["bustm"])
    task = ScriptedTask()
    spec8 = ModelSpec(name="m", path="x", generation={"max_new_tokens": 8})
    spec16 = ModelSpec(name="m", path="x", generation={"max_new_tokens": 16})

    first = run_model(spec8, FakeBackend(), suite, [task], store)
    again = run_model(spec8, FakeBackend(), suite, [task], store)
    changed = run_model(spec16, FakeBackend(), suite, [task], store)

    assert task.runs == 2  # the rerun with equal decoding ran nothing
    assert again.model_calls == 0 and again.tasks[0].timings["computed"] == 0
    assert changed.tasks[0].timings["computed"] == 4
    assert first.tasks[0].metrics["accuracy"]["value"] == 0.5
    assert first.tasks[0].metrics["engine"] == {"acc": {"value": 0.5, "n": 4}}
    records = store.run_records(changed.run_id, "fake:task")
    assert [r["prediction"] for r in records] == ["A" * 16] * 4

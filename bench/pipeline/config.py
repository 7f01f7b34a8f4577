"""The pipeline file (e.g. suites/loop.yaml) as pydantic models. Paths are relative to the file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PrivateAttr

from bench.config import Executor, Source, Strict, _validate
from bench.errors import BenchError

STAGES = ("select", "train", "evaluate", "gate", "report")


class Select(Strict):
    suite: str = Field(description="the selection suite (FewCLUE/CLUE dev)")
    candidates: list[str] = Field(min_length=1, description="models.yaml names or trained models")
    limit: int | None = Field(None, ge=1, description="first N items per task (None: all)")
    weights: dict[str, float] = Field({}, description=(
        "task key -> weight in the score that picks the winner (default: the suite average)"))
    max_params: float | None = Field(None, gt=0, description="skip candidates larger than this")


class Train(Strict):
    configs: list[str] = Field(min_length=1, description=(
        "bench train configs run in order: the first trains the winner, each next one the "
        "previous output (e.g. SFT then DPO); outputs are named <pipeline>-<method>"))


class Judge(Strict):
    model: str = Field(description=(
        "a models.yaml entry on the openai backend (DeepSeek, vLLM...), used as it is; or a local "
        "or trained model, served with `transformers serve` while this stage runs"))
    train: str | None = Field(None, description="a bench train config that makes `model` first")
    rubric: str | dict = "kids-service"
    reference: bool = True
    max_tokens: int = Field(256, ge=16)


class Evaluate(Strict):
    suites: list[str] = Field(min_length=1, description="held-out suites, base vs tuned")
    limit: int | None = Field(None, ge=1)
    judge: Judge | None = Field(None, description="adds an LLM judge to every open task")


class Gate(Strict):
    policy: str
    suite: str | None = Field(None, description="which evaluate suite (default: the first)")


class Report(Strict):
    out: str = Field("reports", description="folder for <pipeline>/leaderboard.html, "
                     "before_after.html and gate/")


class Pipeline(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$")
    models: str = "../models.yaml"
    data_dir: str | None = Field(None, description="FewCLUE/CLUE data (env BENCH_DATA_DIR)")
    select: Select
    train: Train
    evaluate: Evaluate
    gate: Gate
    report: Report = Report()
    executor: Executor | None = Field(None, description="where select's and evaluate's model "
                                      "calls run (local | ray, ...); default each suite's")
    _source: Source | None = PrivateAttr(None)
    _path: Path | None = PrivateAttr(None)

    def path(self, rel: str) -> Path:
        """A path of the file, relative to the file's folder."""
        p = Path(rel).expanduser()
        return p if p.is_absolute() else (self._path.parent / p if self._path else p)


def load_pipeline(path: Path) -> Pipeline:
    if not Path(path).is_file():
        raise BenchError(f"pipeline file {path} does not exist (see README; suites/loop.yaml)")
    spec = _validate(Pipeline, Path(path), "is empty; see suites/loop.yaml", "select")
    spec._path = Path(path)
    for rel in [spec.select.suite, *spec.train.configs, *spec.evaluate.suites, spec.gate.policy,
                *([spec.evaluate.judge.train] if spec.evaluate.judge and spec.evaluate.judge.train else [])]:
        if not spec.path(rel).is_file():
            raise BenchError(f"{path}: {rel} not found (paths are relative to the pipeline file)")
    return spec

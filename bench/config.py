"""models.yaml and suites/*.yaml as pydantic models (extra="forbid").

A bad file never shows a traceback: `load_models` / `load_suite` raise BenchError naming the file,
the key (with its line where YAML tells us) and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.errors import BenchError, suggest


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Generation(Strict):
    max_new_tokens: int = Field(64, ge=1, description="OpenCompass default for these tasks is larger; "
                                "the letter post-processor stops early anyway")
    early_stop: bool = Field(True, description="stop once the post-processed answer is fixed")


class ModelSpec(Strict):
    name: str
    backend: Literal["hf"] = "hf"
    path: str = Field(description="local model dir or Hub id")
    revision: str | None = Field(None, description="Hub revision (commit sha pins the fingerprint)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    template: Literal["auto", "chat", "base"] = Field(
        "auto", description="chat: apply the chat template; base: raw prompt (OpenCompass base "
        "models); auto: chat when the tokenizer has a chat template")
    chat_template: str | None = Field(None, description="override: a Jinja string or a file path")
    adapter: str | None = Field(None, description="LoRA adapter dir, applied without merging")
    generation: Generation = Generation()
    batch_tokens: int | None = Field(None, ge=16, description="token budget per forward batch; "
                                     "default on CPU 1024 for ppl, 4096 for gen (measured here); "
                                     "16384 on GPU (unmeasured)")
    trust_remote_code: bool = False


class ModelsFile(Strict):
    models: list[ModelSpec]

    @field_validator("models")
    @classmethod
    def unique_names(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {', '.join(dupes)}")
        return models

    def select(self, names: list[str] | None) -> list[ModelSpec]:
        if not names:
            return list(self.models)
        by_name = {m.name: m for m in self.models}
        for name in names:
            if name not in by_name:
                raise BenchError(f"unknown model '{name}'{suggest(name, by_name)}")
        return [by_name[n] for n in names]


class TaskEntry(Strict):
    name: str = Field(description="bench task, lm-eval task name, or OpenCompass dataset config")
    engine: Literal["bench", "lm-eval", "opencompass"] = "bench"
    mode: Literal["gen", "ppl"] | None = None
    split: Literal["dev", "test"] | None = None
    limit: int | None = Field(None, ge=1)
    include_path: str | None = Field(None, description="lm-eval: folder of local task YAMLs")
    num_fewshot: int | None = Field(None, ge=0, description="lm-eval: few-shot examples")


class SuiteSpec(Strict):
    name: str
    mode: Literal["gen", "ppl"] = "gen"
    split: Literal["dev", "test"] = "dev"
    data_dir: str | None = Field(None, description="FewCLUE/CLUE root; env BENCH_DATA_DIR wins")
    limit: int | None = Field(None, ge=1, description="first N samples per task")
    seed: int = 1234
    tasks: list[TaskEntry]

    @field_validator("tasks", mode="before")
    @classmethod
    def names_as_entries(cls, tasks):
        if isinstance(tasks, list):
            return [{"name": t} if isinstance(t, str) else t for t in tasks]
        return tasks

    def resolved_tasks(self) -> list[TaskEntry]:
        """Every entry with the suite's defaults filled in; a task appears once per split."""
        entries = [
            t.model_copy(update={
                "mode": t.mode or self.mode, "split": t.split or self.split,
                "limit": t.limit or self.limit,
            })
            for t in self.tasks
        ]
        seen = set()
        for e in entries:
            if (e.engine, e.name, e.split) in seen:
                raise BenchError(
                    f"suite '{self.name}': task '{e.name}' ({e.split}) appears twice; "
                    "put gen and ppl runs of one task in two suites"
                )
            seen.add((e.engine, e.name, e.split))
        return entries


def _read_yaml(path: Path) -> tuple[object, yaml.Node | None]:
    if not path.is_file():
        raise BenchError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BenchError(f"{path}{where}: malformed YAML ({problem})") from None


def _line_of(node: yaml.Node | None, loc: tuple) -> str:
    """The YAML line of a pydantic error location, where the node tree has it."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = [v for k, v in node.value if k.value == key]
            if not found:
                found = [k for k, _ in node.value if k.value == key]
            node = found[0] if found else None
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return f":{node.start_mark.line + 1}" if node is not None else ""


def _validate(model: type[Strict], path: Path):
    data, node = _read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc) or "(top level)"
            if err["type"] == "extra_forbidden":
                parent = _fields_at(model, loc[:-1])
                msg = f"unknown key '{loc[-1]}'{suggest(str(loc[-1]), parent)}"
            else:
                msg = err["msg"]
            messages.append(f"{path}{_line_of(node, loc)}: {key}: {msg}")
        raise BenchError("\n".join(messages)) from None


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names allowed at a location, for 'did you mean'."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = candidates[0] if candidates else None
    return list(current.model_fields) if current else []


def load_models(path: str | Path) -> ModelsFile:
    return _validate(ModelsFile, Path(path))


def load_suite(path: str | Path) -> SuiteSpec:
    return _validate(SuiteSpec, Path(path))

"""models.yaml and suites/*.yaml as pydantic models (extra="forbid").

A bad file never shows a traceback: `load_models` / `load_suite` raise BenchError naming the file,
the key (with its line where YAML tells us) and what is allowed.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bench.errors import BenchError, suggest
from bench.files import MAX_ROW_BYTES, load_yaml
from bench.scorers.configs import SCORER_CONFIGS
from bench.rows import MAX_BAD_FRACTION


TRUST_ENV = "BENCH_TRUST_REMOTE_CODE"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Generation(Strict):
    max_new_tokens: int = Field(64, ge=1, description="OpenCompass default for these tasks is larger; "
                                "the letter post-processor stops early anyway")
    early_stop: bool = Field(True, description="stop once the post-processed answer is fixed")


class ModelSpec(Strict):
    name: str
    backend: Literal["hf"] = "hf"
    _written: dict = PrivateAttr(default_factory=dict)  # relative paths as the file gave them
    path: str = Field(description="local model dir or Hub id")
    revision: str | None = Field(None, description="Hub revision (commit sha pins the fingerprint)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    template: Literal["auto", "chat", "base"] = Field(
        "auto", description="chat: apply the chat template; base: raw prompt (OpenCompass base "
        "models); auto: chat when the tokenizer has a chat template")
    chat_template: str | None = Field(None, description="override: a Jinja string or a file path")
    adapter: str | None = Field(None, description="LoRA adapter dir, applied without merging")
    system: str | None = Field(None, description="system prompt added to conversations that have "
                               "none (preference and open-ended tasks; FewCLUE keeps OpenCompass's "
                               "prompts); a trained model carries the one it was trained with")
    quantization: Literal["none", "nf4", "int8"] = Field(
        "none", description="evaluate the base quantized by bitsandbytes (part of the fingerprint)")
    generation: Generation = Generation()
    batch_tokens: int | None = Field(None, ge=16, description="token budget per forward batch; "
                                     "default on CPU 1024 for ppl, 4096 for gen (measured here); "
                                     "16384 on GPU (unmeasured)")
    trust_remote_code: bool = False
    num_gpus: float = Field(0, ge=0, description="GPUs one copy of the model needs (the Ray "
                            "executor asks for them); not part of the fingerprint")


class Prices(Strict):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    currency: str = "USD"

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


class APIModelSpec(Strict):
    """A model behind an OpenAI-compatible API (DeepSeek, vLLM, lmdeploy, `transformers serve`)."""

    name: str
    _written: dict = PrivateAttr(default_factory=dict)  # relative paths as the file gave them
    backend: Literal["openai"]
    base_url: str = Field(description="e.g. http://127.0.0.1:8000/v1 or https://api.deepseek.com")
    model: str = Field(description="the model id the server serves")
    api_key_env: str | None = Field(None, description="name of the environment variable holding "
                                    "the key (never the key itself); none: a local server")
    endpoint: Literal["chat", "completions"] = Field(
        "chat", description="chat: OpenCompass's chat messages; completions: rendered text "
        "(needed for ppl mode and log-likelihoods, with echo log-probabilities and `tokenizer`)")
    template: Literal["auto", "chat", "base"] = Field(
        "auto", description="completions: render with the tokenizer's chat template (chat) or as "
        "OpenCompass's base text (base); auto: chat when `tokenizer` has a chat template")
    tokenizer: str | None = Field(None, description="local folder or Hub id: renders prompts for "
                                  "/v1/completions and counts tokens, as lm-eval's API models do")
    concurrency: int = Field(4, ge=1, le=512, description="requests in flight at once")
    timeout: float = Field(120.0, gt=0, description="seconds per request")
    max_retries: int = Field(5, ge=0, description="retries of a request on 429, 5xx, timeouts "
                             "and dropped connections (exponential backoff with jitter)")
    requests_per_minute: int | None = Field(None, ge=1)
    stop: list[str] | None = Field(None, description="stop strings sent with every request")
    seed: int | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra request fields, "
                                       "e.g. {top_k: 1} or vLLM's options")
    weights_fingerprint: str | None = Field(None, description="set by `bench serve`: the content "
                                            "fingerprint of the weights it serves, so the cache "
                                            "follows the weights, not the URL")
    system: str | None = Field(None, description="system prompt added to conversations that have "
                               "none (preference and open-ended tasks)")
    generation: Generation = Generation()
    trust_remote_code: bool = Field(False, description="for loading `tokenizer` only")
    prices: Prices | None = Field(None, description="per million tokens: runs then report cost")

    @property
    def path(self) -> str:
        """Where the model is: shown where a local model shows its folder."""
        return f"{self.base_url} ({self.model})"

    @property
    def adapter(self) -> None:
        return None

    def logprob_problem(self) -> str | None:
        """Why this model cannot give prompt log-probabilities (ppl mode, preference pairs)."""
        if self.endpoint == "completions" and self.tokenizer:
            return None
        return (f"model '{self.name}': ppl mode and log-likelihoods need prompt log-probabilities "
                "from /v1/completions (echo + logprobs, or vLLM's prompt_logprobs) and the model's "
                "`tokenizer` to count tokens as the local backend does; set endpoint: completions "
                "and tokenizer in its models.yaml entry, or run the task in mode: gen")


def _backend_of(entry) -> str:
    value = entry.get("backend", "hf") if isinstance(entry, dict) else getattr(entry, "backend", "hf")
    return value if isinstance(value, str) else "hf"


AnyModelSpec = Annotated[Union[Annotated[ModelSpec, Tag("hf")], Annotated[APIModelSpec, Tag("openai")]],
                         Discriminator(_backend_of)]
BACKEND_SPECS: dict[str, type[Strict]] = {"hf": ModelSpec, "openai": APIModelSpec}
MODEL_SPEC: TypeAdapter = TypeAdapter(AnyModelSpec)


def looks_local(path: str) -> bool:
    """A path, not a Hub id ('org/name'): starts with . / ~, has more than one '/', or exists."""
    return (path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path
            or Path(path).expanduser().exists())


# What a folder holds when it holds a tokenizer (fast, sentencepiece, BPE/WordPiece vocabularies)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt")


def path_problems(spec: ModelSpec | APIModelSpec) -> list[str]:
    """What is wrong with a model's local paths, each with the resolved path; [] when fine."""
    problems = []
    if isinstance(spec, APIModelSpec):
        tok = spec.tokenizer
        shown = spec._written.get("tokenizer", tok)
        if tok and looks_local(tok) and not Path(tok).expanduser().is_dir():
            problems.append(f"tokenizer: local folder '{shown}' does not exist "
                            f"(resolved: {Path(tok).expanduser().resolve()})")
        elif tok and looks_local(tok) and (p := _tokenizer_problem(Path(tok).expanduser())):
            problems.append(f"tokenizer: local folder '{shown}' {p}")
        return problems
    for key, value in (("path", spec.path), ("adapter", spec.adapter)):
        if value and looks_local(value) and not Path(value).expanduser().is_dir():
            resolved = Path(value).expanduser().resolve()
            problems.append(f"{key}: local folder '{spec._written.get(key, value)}' does not exist "
                            f"(resolved: {resolved})")
    path = Path(spec.path).expanduser()
    if not problems and looks_local(spec.path) and not spec.trust_remote_code and \
            (p := _tokenizer_problem(path)):  # remote code may bring its own tokenizer
        problems.append(f"path: local folder '{spec._written.get('path', spec.path)}' {p}")
    return problems


def _tokenizer_problem(folder: Path) -> str | None:
    """Why a local folder has no usable tokenizer (it would load, then fail deep in a run)."""
    if not any((folder / f).is_file() for f in TOKENIZER_FILES) and \
            not any(folder.glob("*.tiktoken")):
        return (f"has no tokenizer ({', '.join(TOKENIZER_FILES)} or *.tiktoken); save the "
                "model's tokenizer beside its weights")
    fast = folder / "tokenizer.json"
    if fast.is_file():
        try:
            vocab = json.loads(fast.read_text(encoding="utf-8")).get("model", {}).get("vocab")
        except (OSError, ValueError, AttributeError):
            return "has a tokenizer.json that is not valid JSON"
        if vocab is not None and len(vocab) == 0:
            return "has a tokenizer.json with an empty vocabulary"
    return None


class ModelsFile(Strict):
    models: list[AnyModelSpec] = Field(min_length=1)
    _source: Source | None = PrivateAttr(None)

    def where(self, index: int) -> str:
        """'file:line' of the index-th entry."""
        return self._source.where("models", index) if self._source else "models.yaml"

    def where_name(self, name: str) -> str:
        return self.where(next(i for i, m in enumerate(self.models) if m.name == name))

    def judge(self, name: str) -> APIModelSpec:
        """The entry a judge names: it must exist and be an API model."""
        listed = {m.name: m for m in self.models}
        if name not in listed:
            raise BenchError(f"judge '{name}' is not in the models file{suggest(name, listed)}")
        if not isinstance(listed[name], APIModelSpec):
            raise BenchError(f"{self.where_name(name)}: judge '{name}' must be an API model "
                             "(backend: openai); serve a local model with `bench serve` and list "
                             "the entry it prints")
        return listed[name]

    def select(self, names: list[str] | None, trust_remote_code: bool = False,
               trained: dict[str, ModelSpec] | None = None) -> list[ModelSpec]:
        """The named models (all of this file without names; `trained` outputs by name too),
        each checked before any loads: local paths must exist, and `trust_remote_code: true`
        needs the user's opt-in as well."""
        by_name = {**(trained or {}), **{m.name: m for m in self.models}}
        for name in names or []:
            if name not in by_name:
                raise BenchError(f"unknown model '{name}'{suggest(name, by_name)}")
        chosen = [by_name[n] for n in names] if names else list(self.models)
        for m in chosen:
            where = (self.where_name(m.name) if any(x.name == m.name for x in self.models)
                     else "trained model")
            for problem in path_problems(m):
                raise BenchError(f"{where}: model '{m.name}': {problem}; fix it, "
                                 "or give a Hub id such as 'Qwen/Qwen2.5-0.5B-Instruct'")
            check_remote_code(m, trust_remote_code, where)
        return chosen


def check_remote_code(spec, allowed: bool, where: str = "") -> None:
    """An entry with `trust_remote_code: true` runs Python code from its folder (or Hub repo) when
    it loads: every command that loads a model refuses it unless the user also opted in."""
    if getattr(spec, "trust_remote_code", False) and not allowed:
        raise BenchError(
            f"{where + ': ' if where else ''}model '{spec.name}' sets trust_remote_code: true, which "
            f"runs the Python code in {spec.path} on this machine; if you trust it, also pass "
            f"--trust-remote-code (or set {TRUST_ENV}=1)")


def _names_as_entries(items):
    """A YAML list may name an entry by a bare string: `[bustm]` is `[{name: bustm}]`."""
    if isinstance(items, list):
        return [{"name": i} if isinstance(i, str) else i for i in items]
    return items


class AccuracyScorer(Strict):
    name: Literal["accuracy"]
    norm: Literal["oc-mean-ce", "sum"] = Field("oc-mean-ce", description=(
        "ppl mode: the candidate with the lowest mean cross-entropy over its whole sequence wins "
        "(OpenCompass), or the one with the highest summed log-probability (lm-eval's acc)"))


class PreferenceScorer(Strict):
    name: Literal["preference"]


ScorerConfig = Annotated[Union[AccuracyScorer, PreferenceScorer, *SCORER_CONFIGS],
                         Field(discriminator="name")]
SCORER_CONFIG: TypeAdapter = TypeAdapter(ScorerConfig)


class TaskGeneration(Strict):
    max_new_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0, description="0: greedy")
    stop: list[str] = Field(default_factory=list, description="the answer ends before any of these")


class TaskEntry(Strict):
    name: str = Field(description="bench task, lm-eval task name, or OpenCompass dataset config")
    engine: Literal["bench", "lm-eval", "opencompass"] = "bench"
    kind: Literal["choice", "preference", "open"] = Field("choice", description=(
        "choice: a FewCLUE/CLUE task by name; preference: held-out pairs from `data`; open: "
        "questions from `data` answered freely, scored against their references"))
    data: str | None = Field(None, description="preference: a data file in any preference "
                             "format (or a dataset_info.json); open: questions with references; "
                             "relative to the suite file")
    generation: TaskGeneration | None = Field(None, description="open: overrides the model's "
                                              "generation settings for this task")
    dataset: str | None = Field(None, description="preference: the entry of the LLaMA-Factory "
                                "dataset_info.json that `data` names")
    scorers: list[ScorerConfig] | None = Field(None, description="default: the kind's own")
    mode: Literal["gen", "ppl"] | None = None
    split: Literal["dev", "test"] | None = None
    limit: int | None = Field(None, ge=1)
    include_path: str | None = Field(None, description="lm-eval: folder of local task YAMLs")
    num_fewshot: int | None = Field(None, ge=0, description="lm-eval: few-shot examples")

    @field_validator("scorers", mode="before")
    @classmethod
    def names_as_scorers(cls, scorers):
        return _names_as_entries(scorers)


class PplCompat(Strict):
    opencompass_batch_size: int = Field(ge=1, description=(
        "reproduce OpenCompass's ppl values at this batch size (its HF configs use 8): left "
        "padding is counted, so a value depends on its batch neighbours"))


class Executor(Strict):
    """Where a run's model calls happen: here (local), or on a Ray cluster (README, Past one
    machine). Not part of any fingerprint: a result is the same wherever it was computed."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(None, description="Ray cluster address (ray://host:10001, "
                                "host:6379, auto); none: RAY_ADDRESS, else a local cluster")
    copies: int = Field(1, ge=1, description="model copies (Ray actors) per model")
    threads: int | None = Field(None, ge=1, description="CPUs each copy asks Ray for, and its "
                                "torch threads; default bench's thread policy (BENCH_THREADS, "
                                "else the CPUs this process may use), capped at a node's CPUs")

    @model_validator(mode="before")
    @classmethod
    def shorthand(cls, value):
        return {"kind": value} if isinstance(value, str) else value


class SuiteSpec(Strict):
    name: str
    mode: Literal["gen", "ppl"] = "gen"
    split: Literal["dev", "test"] = "dev"
    data_dir: str | None = Field(None, description="FewCLUE/CLUE root; env BENCH_DATA_DIR wins")
    limit: int | None = Field(None, ge=1, description="first N samples per task")
    seed: int = 1234
    max_bad_fraction: float = Field(
        MAX_BAD_FRACTION, ge=0, le=1, description="share of bad data rows a task may skip "
        "(each reported by file and line) before the run stops with exit 2")
    max_row_bytes: int = Field(MAX_ROW_BYTES, ge=1024, description="longest data row accepted; "
                               "a longer one is a bad row")
    ppl_compat: PplCompat | None = Field(None, description="ppl tasks only; default: OpenCompass's "
                                         "batch-size-1 value, which no neighbour changes")
    tasks: list[TaskEntry] = Field(min_length=1)
    executor: Executor = Executor()
    _source: Source | None = PrivateAttr(None)

    def where_task(self, index: int) -> str:
        """'file:line' of the index-th task entry."""
        return self._source.where("tasks", index) if self._source else self.name

    @field_validator("tasks", mode="before")
    @classmethod
    def names_as_entries(cls, tasks):
        return _names_as_entries(tasks)

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


class Source:
    """Where a validated config came from, so later checks can still name the file and line."""

    def __init__(self, path: Path, node: yaml.Node | None):
        self.path, self.node = path, node

    def where(self, *loc) -> str:
        return f"{self.path}{_line_of(self.node, loc)}"

    def line(self, *loc) -> str:
        return _line_of(self.node, loc).lstrip(":") or "?"


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


def _entry_label(data, loc: tuple) -> str:
    """'model 'x': ' for an error inside one models.yaml entry (or suite task entry)."""
    if len(loc) >= 2 and loc[0] in ("models", "tasks") and isinstance(loc[1], int):
        try:
            entry = data[loc[0]][loc[1]]
        except (KeyError, IndexError, TypeError):
            entry = None
        kind = "model" if loc[0] == "models" else "task"
        name = entry.get("name") if isinstance(entry, dict) else entry if isinstance(entry, str) else None
        return f"{kind} '{name}': " if isinstance(name, str) else f"{loc[0]} entry {loc[1] + 1}: "
    return ""


def _untagged(loc: tuple) -> tuple:
    """An error location without the union tag pydantic puts after a models.yaml entry index."""
    if len(loc) > 2 and loc[0] == "models" and isinstance(loc[1], int) and loc[2] in BACKEND_SPECS:
        return (*loc[:2], *loc[3:])
    return loc


def _messages(model: type[Strict], exc: ValidationError, data, source: Source) -> list[str]:
    errors = [{**e, "loc": _untagged(tuple(e["loc"])), "tag": tuple(e["loc"])[2:3]}
              for e in exc.errors()]
    # an unknown key beside a missing required one is most likely that key misspelt: say it once
    missing = [tuple(e["loc"]) for e in errors if e["type"] == "missing"]
    guesses: dict[tuple, str] = {}
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            siblings = [m[-1] for m in missing if m[:-1] == loc[:-1] and m[-1] not in guesses.values()]
            close = difflib.get_close_matches(str(loc[-1]), siblings, n=1, cutoff=0.3)
            guess = close[0] if close else (siblings[0] if len(siblings) == 1 else None)
            if guess is not None:
                guesses[loc] = guess
    explained = {(*loc[:-1], guess) for loc, guess in guesses.items()}
    messages = []
    for err in errors:
        loc = tuple(err["loc"])
        if loc in explained:
            continue
        key = ".".join(str(p) for p in loc) or "(top level)"
        if loc in guesses:
            msg = f"unknown key '{loc[-1]}' (did you mean '{guesses[loc]}'? it is required and missing)"
        elif err["type"] == "extra_forbidden":
            fields = (list(BACKEND_SPECS[err["tag"][0]].model_fields) if loc[0] == "models"
                      and len(loc) == 3 else _fields_at(model, loc[:-1]))
            msg = f"unknown key '{loc[-1]}'{suggest(str(loc[-1]), fields)}"
        elif err["type"] == "model_type" and not loc:  # a list or a scalar where keys belong
            fields = [n for n, f in model.model_fields.items() if f.is_required()]
            msg = (f"expected a mapping of keys (required: {', '.join(fields)}), not a "
                   f"{_yaml_kind(data)}; see the README for this file's layout")
        elif err["type"] == "union_tag_invalid":
            tag = err["ctx"]["tag"]
            loc, key = (*loc, "backend"), f"{key}.backend"
            msg = f"unknown backend '{tag}'{suggest(tag, BACKEND_SPECS)}"
        else:
            msg = err["msg"]
        messages.append(f"{source.where(*loc)}: {_entry_label(data, loc)}{key}: {msg}")
    return messages


def _yaml_kind(data) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(data), type(data).__name__)


def _validate(model: type[Strict], path: Path, empty: str, items: str):
    """The file as `model`; `empty` is the message for a file that defines no `items`."""
    data, node = load_yaml(path)
    if data is None or data == {} or (isinstance(data, dict) and data.get(items) == []):
        raise BenchError(f"{path}: {empty}")
    source = Source(path, node)
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        raise BenchError("\n".join(_messages(model, exc, data, source))) from None
    spec._source = source
    return spec


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
    path = Path(path)
    models = _validate(ModelsFile, path, "defines no models; add a `models:` list (see README, "
                       "models.yaml)", "models")
    first: dict[str, int] = {}
    for i, m in enumerate(models.models):
        if m.name in first:
            lines = [models._source.line("models", j) for j in (first[m.name], i)]
            raise BenchError(f"{models.where(i)}: model name '{m.name}' is used twice (lines "
                             f"{lines[0]} and {lines[1]}); names must be unique")
        first[m.name] = i
    base = path.resolve().parent
    models.models[:] = [_anchored(m, base) for m in models.models]
    return models


def _anchored(spec, base: Path):
    """A relative local path of an entry (path, adapter; an API model's tokenizer) read from the
    models file's folder, as a config's relative paths are, not from wherever bench runs."""
    fields = ("tokenizer",) if isinstance(spec, APIModelSpec) else ("path", "adapter")
    update = {}
    for key in fields:
        value = getattr(spec, key)
        if not value or Path(value).expanduser().is_absolute() or value.startswith("~"):
            continue
        there = base / value
        if value.startswith(".") or value.count("/") > 1 or "\\" in value or there.exists():
            update[key] = str(there)
    if not update:
        return spec
    anchored = spec.model_copy(update=update)
    anchored._written = {key: getattr(spec, key) for key in update}  # for messages
    return anchored


def load_suite(path: str | Path) -> SuiteSpec:
    return _validate(SuiteSpec, Path(path), "defines no tasks; a suite needs `name:` and a "
                     "`tasks:` list (see README, suites/*.yaml)", "tasks")

"""`bench prefdata`: DPO pairs from SFT rows through an LLM judge (domain.md, "How the preference
pairs were built in the reference case"), with none of the reference script's silent losses.

The judge sees the question and the final answer, fenced (templates/verdict.j2), greedy, with one
repair request for a reply that does not parse. Good: the answer is `chosen` against a poor one (a
configured style, or the base model's own answer); not good: the judge's improved answer against
it. Verdicts and a poor model's answers are store records, committed as they arrive, so a rerun or
a resumed Ctrl-C sends nothing already answered (a stored malformed verdict included: it is greedy).
Malformed verdicts and rows left without a pair are counted and listed in <name>.rejects.jsonl.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import jinja2
from rich.markup import escape

from bench.config import APIModelSpec, load_models
from bench.errors import BenchError, suggest
from bench.evaluate.manifest import cache_key, fingerprint_of
from bench.files import atomic_path, read_json, read_text
from bench.judge.ask import ask_parsed
from bench.judge.fence import fence, fence_instructions
from bench.judge.parse import parse_verdict
from bench.judge.scorer import REPAIR
from bench.pool import each_as_done
from bench.rows import check
from bench.train.data import read_preference, read_sft

VERSION, BACKEND_ID = 1, "prefdata/1"
SYSTEM = jinja2.Template((Path(__file__).parent / "templates" / "verdict.j2").read_text(
    encoding="utf-8")).render(fence_note=fence_instructions("DATA"))
TEMPLATE_FP = fingerprint_of("prefdata-verdict", VERSION, SYSTEM, REPAIR)
USAGE = ("requests", "retries", "prompt_tokens", "completion_tokens")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class PoorStyle:
    """Configured poor answers; each good row gets one, picked by its content hash."""
    texts: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "texts", tuple(self.texts))
        if not self.texts or not all(isinstance(t, str) and t.strip() for t in self.texts):
            raise BenchError("poor answers: give a non-empty list of non-empty strings")


@dataclass(frozen=True)
class PoorModel:
    """The base model's own greedy answer (any backend's generate_chat), kept in the store."""
    backend: object
    max_new_tokens: int = 512


@dataclass
class PrefdataResult:
    out: Path
    rejects: Path
    dataset_info: Path | None  # None for fmt "trl"
    rows_read: int
    bad_rows: int
    judged_now: int  # rows whose verdict was asked for in this call (duplicates share one)
    from_store: int
    counts: Counter  # good, improved, malformed, unpaired
    pairs: int
    poor_now: int = 0
    usage: dict = field(default_factory=dict)  # this call's judge requests, retries, tokens

    def lines(self) -> list[str]:
        c, u = self.counts, {k: self.usage.get(k, 0) for k in USAGE}
        return [f"rows read {self.rows_read} ({self.bad_rows} bad, skipped); verdicts judged now "
                f"{self.judged_now}, from the store {self.from_store}",
                f"good {c['good']}, improved {c['improved']}, malformed {c['malformed']}, no pair "
                f"{c['unpaired']}; pairs written {self.pairs}: {self.out}",
                f"judge: {u['requests']} requests ({u['retries']} retries), {u['prompt_tokens']} "
                f"prompt + {u['completion_tokens']} completion tokens"
                + (f", cost {self.usage['cost']:.4f} {self.usage['currency']}"
                   if "cost" in self.usage else "") + f"; poor answers generated now {self.poor_now}",
                *([f"rows without a pair, with the reason and the judge's reply: {self.rejects}"]
                  if c["malformed"] or c["unpaired"] else []),
                *([f"dataset '{self.out.stem}' is in {self.dataset_info}"]
                  if self.dataset_info else [])]


def domain_poor() -> list[str]:
    """The demo domain's dismissive one-liners (those without slots)."""
    from bench.domain.poor import POOR_SHORT

    return [text for text, _, _ in POOR_SHORT["train"] if "{" not in text]


def _hash(messages) -> str:
    return hashlib.sha256(json.dumps(list(messages), ensure_ascii=False).encode()).hexdigest()


def verdict_request(messages) -> list[dict]:
    """The judge's request for one SFT row: earlier turns, question and answer, each fenced."""
    turns, parts = [m for m in messages if m["role"] != "system"], []
    if len(turns) > 2:
        context = "\n".join(f"{m['role']}: {m['content']}" for m in turns[:-2])
        parts.append(f"此前的对话：\n{fence(context, 'DATA')}")
    parts += [f"家长的问题：\n{fence(turns[-2]['content'], 'DATA')}",
              f"客服的回答：\n{fence(turns[-1]['content'], 'DATA')}"]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def _ask(backend, messages: list[dict], max_tokens: int) -> dict:
    parsed, repaired, first, usage = ask_parsed(backend, messages, max_tokens, parse_verdict,
                                                REPAIR)
    return {"status": parsed.status, "is_good": parsed.is_good, "reason": parsed.reason,
            "improved_answer": parsed.improved_answer, "raw": parsed.raw,
            "problems": parsed.problems, "repaired": repaired, "usage": usage,
            **({"raw_first": first} if repaired else {})}


def _poor_answers(poor, rows, store, task: str) -> tuple[dict[str, str], int]:
    """row id -> a poor answer; how many a poor model generated in this call."""
    if isinstance(poor, PoorStyle):
        def pick(r) -> str:
            options = [t for t in poor.texts if t.strip() != r.messages[-1]["content"].strip()]
            return options[int(_hash(r.messages), 16) % len(options)] if options else ""
        return {r.id: pick(r) for r in rows}, 0
    backend, n = poor.backend, poor.max_new_tokens
    fp, prompts = backend.fingerprint, {r.id: list(r.messages[:-1]) for r in rows}
    keys = {r.id: cache_key(fp, "prefdata-poor", _hash(prompts[r.id]),
                            {"mode": "poor", "max_new_tokens": n}, BACKEND_ID) for r in rows}
    known = store.get_records(set(keys.values()))
    todo = {keys[r.id]: r for r in rows if keys[r.id] not in known}

    def commit(key, text):
        known[key] = {"prediction": text}
        store.put_records(None, task, [(todo[key].id, key, fp, "prefdata-poor",
                                        _hash(prompts[todo[key].id]), known[key])])
    if getattr(backend, "parallel", 0):  # an API model: `parallel` requests in flight
        each_as_done({k: partial(lambda c: backend.generate_chat([c], n)[0], prompts[r.id])
                      for k, r in todo.items()}, backend.parallel, commit, backend.abort,
                     "poor answers")
    else:  # a local model: one batched call
        texts = backend.generate_chat([prompts[r.id] for r in todo.values()], n) if todo else []
        for key, text in zip(list(todo), texts, strict=True):
            commit(key, text)
    return {r.id: known[keys[r.id]]["prediction"] or "" for r in rows}, len(todo)


def _pair(messages, chosen: str, rejected: str, fmt: str) -> dict:
    if fmt == "trl":
        return {"prompt": list(messages[:-1]), "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}
    turns = [m["content"] for m in messages[:-1] if m["role"] != "system"]
    row = {"instruction": turns[-1], "input": "", "chosen": chosen, "rejected": rejected}
    if len(turns) > 1:
        row["history"] = [turns[i:i + 2] for i in range(0, len(turns) - 1, 2)]
    return row | ({"system": messages[0]["content"]} if messages[0]["role"] == "system" else {})


def _write(out_dir: Path, name: str, fmt: str, pairs: list[dict],
           rejects: list[dict]) -> Path | None:
    """The pairs, the rejects and (lf) the dataset_info.json entry, which replaces only its own
    name; `system` and `history` are mapped only when a row has them (LLaMA-Factory reads a
    mapped column from every row)."""
    for path, rows in ((out_dir / f"{name}.jsonl", pairs),
                       (out_dir / f"{name}.rejects.jsonl", rejects)):
        with atomic_path(path) as tmp:
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    if fmt != "lf":
        return None
    info_path = out_dir / "dataset_info.json"
    info = read_json(info_path) if info_path.exists() else {}
    if not isinstance(info, dict):
        raise BenchError(f"{info_path}: expected an object of datasets; fix it or choose another "
                         "--out")
    columns = {"prompt": "instruction", "query": "input", "chosen": "chosen",
               "rejected": "rejected"}
    columns |= {k: k for k in ("system", "history") if any(k in p for p in pairs)}
    info[name] = {"file_name": f"{name}.jsonl", "ranking": True, "columns": columns}
    with atomic_path(info_path) as tmp:
        tmp.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return info_path


def build_pairs(data: Path, judge: APIModelSpec, store, out_dir: Path, *,
                poor: PoorStyle | PoorModel, fmt: str = "lf", name: str = "prefdata",
                max_tokens: int = 1024, limit: int | None = None,
                console=None) -> PrefdataResult:
    """Judge the SFT rows of `data`; write out_dir/<name>.jsonl (lf: LLaMA-Factory ranking and its
    dataset_info.json entry; trl: TRL's conversational rows) and <name>.rejects.jsonl. `store`: a
    Store, or a function that opens one once the input is checked (then closed here)."""
    if fmt not in ("lf", "trl"):
        raise BenchError(f"unknown pair format '{fmt}'{suggest(fmt, ['lf', 'trl'])}")
    if not _NAME.fullmatch(name):
        raise BenchError(f"dataset name '{name}': use letters, digits, '_', '-' and '.'")
    if not isinstance(judge, APIModelSpec):
        raise BenchError(f"judge '{judge.name}' must be an API model (backend: openai)")
    rows, log = read_sft(data, limit=limit)
    for line in log.lines() if console else []:
        console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
    check(log)
    from bench.backends import get_backend

    backend = get_backend(judge)
    judge_fp, task, opened = backend.fingerprint, f"prefdata:{name}", callable(store)
    store = store() if opened else store
    try:
        hashes = {r.id: _hash(r.messages) for r in rows}
        keys = {r.id: cache_key(judge_fp, TEMPLATE_FP, hashes[r.id], {"mode": "verdict",
                                "max_tokens": max_tokens}, BACKEND_ID) for r in rows}
        verdicts = store.get_records(set(keys.values()))
        from_store = sum(keys[r.id] in verdicts for r in rows)
        todo = {keys[r.id]: r for r in rows if keys[r.id] not in verdicts}

        def commit(key, record):
            verdicts[key] = record
            store.put_records(None, task, [(todo[key].id, key, judge_fp, TEMPLATE_FP,
                                            hashes[todo[key].id], record)])
        each_as_done({k: partial(_ask, backend, verdict_request(r.messages), max_tokens)
                      for k, r in todo.items()}, backend.parallel, commit, backend.abort,
                     "verdicts")
        good = [r for r in rows if verdicts[keys[r.id]]["status"] == "ok"
                and verdicts[keys[r.id]]["is_good"]]
        poor_texts, poor_now = _poor_answers(poor, good, store, task)
    finally:
        if opened:
            store.close()
    pairs, rejects, counts = [], [], Counter()
    for r in rows:
        v, answer = verdicts[keys[r.id]], r.messages[-1]["content"]
        reject = {"id": r.id, "status": v["status"], "problems": v["problems"], "raw": v["raw"]}
        if v["status"] != "ok":
            counts["malformed"] += 1
            rejects.append(reject | ({"raw_first": v["raw_first"]} if "raw_first" in v else {}))
            continue
        counts["good" if v["is_good"] else "improved"] += 1
        chosen, rejected = ((answer, poor_texts[r.id]) if v["is_good"] else
                            (v["improved_answer"], answer))
        problem = ("the poor answer is empty" if not rejected.strip() else
                   "chosen equals rejected" if chosen.strip() == rejected.strip() else None)
        if problem:
            counts["unpaired"] += 1
            rejects.append(reject | {"status": "no_pair", "problems": [problem]})
        else:
            pairs.append(_pair(r.messages, chosen, rejected, fmt))
    out_dir = Path(out_dir)
    info = _write(out_dir, name, fmt, pairs, rejects)
    usage = {f: sum(verdicts[k]["usage"][f] for k in todo) for f in USAGE}
    if (prices := getattr(judge, "prices", None)) is not None:  # models.yaml `prices`, if set
        usage |= {"cost": prices.cost(usage["prompt_tokens"], usage["completion_tokens"]),
                  "currency": prices.currency}
    return PrefdataResult(out_dir / f"{name}.jsonl", out_dir / f"{name}.rejects.jsonl", info,
                          log.read, len(log.bad_rows), len(rows) - from_store, from_store, counts,
                          len(pairs), poor_now, usage)


def read_poor_file(path: Path) -> list[str]:
    """Poor answers: a JSON array of strings, or JSON Lines of one string each."""
    path = Path(path)
    text = read_text(path, "poor answers file")
    try:
        items = json.loads(text) if text.lstrip().startswith("[") else \
            [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}: not JSON ({exc.msg}); give a JSON array of strings or JSON "
                         "Lines of one string each") from None
    bad = next((i for i, t in enumerate(items, 1) if not isinstance(t, str) or not t.strip()), None)
    if bad or not items:
        raise BenchError(f"{path}: item {bad or 1}: each poor answer must be a non-empty string")
    return items


def prefdata_command(data: Path, judge_name: str, models_path: Path, results_dir: Path,
                     out_dir: Path, poor_model: str | None, poor_file: Path | None, fmt: str,
                     name: str, limit: int | None, console, out,
                     trust_remote_code: bool = False) -> None:
    """`bench prefdata`: the judge (a models.yaml entry, backend openai) and the poor source (a
    models.yaml entry or trained model, a file, or the domain's poor answers) are resolved and
    the data checked before a model loads or results/ is touched; then judge, write, print."""
    if poor_model and poor_file:
        raise BenchError("give --poor-model or --poor-file, not both")
    models = load_models(models_path)
    judge = models.judge(judge_name)
    rows = read_sft(data, limit=limit)[1]
    if not rows.kept and read_preference(data, limit=5)[1].kept:
        raise BenchError(f"{data}: holds preference pairs (chosen/rejected); bench prefdata makes "
                         "pairs from SFT rows (a question and its answer): give an SFT file")
    check(rows)
    store_path = Path(results_dir) / "bench.sqlite"
    poor = PoorStyle(read_poor_file(poor_file) if poor_file else domain_poor())
    if poor_model:
        from bench.backends import get_backend
        from bench.train.registry import find

        listed = {m.name for m in models.models}
        trained = find(poor_model, store_path) if poor_model not in listed else None
        spec = models.select([poor_model], trust_remote_code,
                             {poor_model: trained} if trained else None)[0]
        poor = PoorModel(get_backend(spec))
    from bench.store import Store

    result = build_pairs(data, judge, lambda: Store(store_path), out_dir, poor=poor,
                         fmt=fmt, name=name, limit=limit, console=console)
    for line in result.lines():
        out.print(line, markup=False, soft_wrap=True)

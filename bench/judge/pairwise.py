"""Pairwise comparison of two models' stored answers by a judge, in both orders.

Each item is judged twice: candidate shown first (A), then baseline first. Both verdicts are score
records keyed by the two answers' output keys (in the order shown) and the comparison's
fingerprint (judge identity, template, rubric), so a rerun asks the judge nothing. A verdict that
flips with the order counts as a tie (bench/metrics/pairwise.py); an item whose verdict does not
parse in either order (after one repair request) is left out of both, and counted. The run is
stored as suite '<suite>#pairwise', model '<candidate> vs <baseline>'.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jinja2

from bench.evaluate.manifest import cache_key, environment, fingerprint_of, score_key
from bench.judge.ask import ask_parsed
from bench.judge.fence import fence, fence_instructions
from bench.judge.parse import parse_pairwise
from bench.metrics.pairwise import flip_rate, length_controlled_win_rate, order_verdicts, win_rate
from bench.errors import BenchError
from bench.pool import each_as_done
from bench.tasks.kinds import get_kind

VERSION = 1
TEMPLATE = (Path(__file__).parent / "templates" / "pairwise.j2").read_text(encoding="utf-8")
REPAIR = ("你的回答无法解析（{problems}）。请只输出 JSON：{{\"winner\": \"A\" 或 \"B\" 或 \"tie\", "
          "\"reason\": \"...\"}}。Answer again with that JSON object only.")


@dataclass
class PairwiseJudge:
    rubric: object  # bench.judge.config.Rubric
    backend: object  # an OpenAIBackend
    name: str
    max_tokens: int = 512

    @property
    def fingerprint(self) -> str:
        return fingerprint_of("pairwise", VERSION, self.backend.fingerprint, TEMPLATE, REPAIR,
                              self.rubric.model_dump(mode="json"), self.max_tokens)

    def messages(self, sample, first: str, second: str) -> list[dict]:
        system = jinja2.Template(TEMPLATE).render(rubric=self.rubric,
                                                  fence_note=fence_instructions("DATA"))
        question = [m for m in sample.messages if m["role"] != "system"][-1]["content"]
        user = (f"家长的问题：\n{fence(question, 'DATA')}\n\n回答 A：\n{fence(first, 'DATA')}\n\n"
                f"回答 B：\n{fence(second, 'DATA')}")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def ask(self, messages: list[dict]) -> dict:
        parsed, repaired, _, usage = ask_parsed(self.backend, messages, self.max_tokens,
                                                parse_pairwise, REPAIR)
        return {"status": parsed.status, "winner": parsed.winner, "method": parsed.method,
                "raw": parsed.raw, "problems": parsed.problems, "repaired": repaired,
                "usage": usage}


def stored_answers(task, spec, backend, store) -> list[tuple[str, dict]]:
    """(output key, record) of each sample's stored answer; missing ones are an error."""
    decoding = get_kind(task.kind).decoding(spec, task)
    keys = [cache_key(backend.fingerprint, task.fingerprint, s.hash, decoding,
                      backend.info["backend_version"]) for s in task.samples]
    known = store.get_records(keys)
    missing = sum(k not in known for k in keys)
    if missing:
        raise BenchError(f"model '{spec.name}': {missing} of {len(keys)} samples of task "
                         f"{task.key} have no stored answer; run `bench run` with this suite first")
    return [(k, known[k]) for k in keys]


def compare_task(task, judge: PairwiseJudge, candidate: list[tuple[str, dict]],
                 baseline: list[tuple[str, dict]], store, run_id: str, seed: int) -> dict:
    """Judge every item in both orders (stored verdicts are read, not asked) and summarise."""
    fp = judge.fingerprint
    jobs = []  # (item, order, score key, first key, messages)
    for i, (sample, (ck, c), (bk, b)) in enumerate(zip(task.samples, candidate, baseline)):
        for order, (k1, a1), (k2, a2) in (("candidate-first", (ck, c), (bk, b)),
                                          ("baseline-first", (bk, b), (ck, c))):
            jobs.append((i, order, score_key(f"{k1}|{k2}", fp), k1,
                         judge.messages(sample, a1.get("prediction") or "", a2.get("prediction") or "")))
    known = store.get_scores(j[2] for j in jobs)
    store.link_scores(run_id, task.key, [(task.samples[i].id, f"pairwise:{o}", sk)
                                         for i, o, sk, *_ in jobs if sk in known])
    todo = [j for j in jobs if j[2] not in known]

    def commit(n: int, record: dict) -> None:  # each verdict stored as it arrives
        i, order, sk, first_key, _ = todo[n]
        store.put_scores(run_id, task.key, [(task.samples[i].id, f"pairwise:{order}", sk,
                                             first_key, fp, record)])
        known[sk] = record

    each_as_done({n: partial(judge.ask, job[4]) for n, job in enumerate(todo)},
                 getattr(judge.backend, "parallel", 1), commit, judge.backend.abort, "verdicts")
    outcomes, flipped, diffs, excluded, items = [], [], [], 0, {}
    for i in range(len(task.samples)):
        v1, v2 = (known[jobs[2 * i + o][2]] for o in (0, 1))
        if v1["status"] != "ok" or v2["status"] != "ok":
            excluded += 1
            continue
        verdict = order_verdicts(v1["winner"], v2["winner"])
        items[task.samples[i].id] = verdict.outcome
        outcomes.append(verdict.outcome)
        flipped.append(verdict.flipped)
        diffs.append(len((candidate[i][1].get("prediction") or "").strip())
                     - len((baseline[i][1].get("prediction") or "").strip()))
    return {"n": len(task.samples), "judged": len(outcomes), "excluded": excluded,
            "asked": len(todo), "win_rate": win_rate(outcomes, seed=seed),
            "lc_win_rate": length_controlled_win_rate(outcomes, diffs, seed=seed) if outcomes else None,
            "flip_rate": flip_rate(flipped, seed=seed), "items": items}


def run_pairwise(plan, store, baseline: str, candidate: str, judge_name: str | None) -> list[dict]:
    """Every judged open task of the plan: candidate against baseline, by the task's first judge
    (or `judge_name`). Returns one summary per task."""
    from bench.backends import get_backend

    specs = {s.name: s for s in plan.models}
    backends = {n: get_backend(specs[n]) for n in (baseline, candidate)}
    results, run_id = [], None
    try:
        for task in plan.tasks:
            scorer = next(s for s in task.scorers if hasattr(s, "bind"))
            spec = next((s for s in scorer.specs if s.name == judge_name), scorer.specs[0])
            judge = PairwiseJudge(scorer.config.rubric, scorer._backend(spec), spec.name)
            if run_id is None:
                run_id = store.start_run(f"{plan.suite.name}#pairwise", f"{candidate} vs {baseline}", {
                    "suite": plan.suite.model_dump(), "baseline": baseline, "candidate": candidate,
                    "judge": spec.name, "judge_fingerprint": judge.backend.fingerprint,
                    **environment()})
            summary = compare_task(task, judge, stored_answers(task, specs[candidate], backends[candidate], store),
                                   stored_answers(task, specs[baseline], backends[baseline], store),
                                   store, run_id, plan.suite.seed)
            store.finish_task(run_id, task.key, task.fingerprint, f"pairwise|judge:{spec.name}|v{VERSION}",
                              {k: v for k, v in summary.items() if k != "items"},
                              {"asked": summary["asked"]})
            results.append({"task": task.key, "judge": spec.name, **summary})
    except BaseException as exc:
        if run_id is not None:
            store.finish_run(run_id, status="failed" if isinstance(exc, Exception) else "interrupted")
        raise
    if run_id is not None:
        store.finish_run(run_id)
    return results

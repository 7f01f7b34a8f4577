"""The rubric judge as a scorer over stored answers: each answer is graded by one or more judges
(models.yaml entries on the openai backend) on named dimensions, then combined by a reducer.

The request: the rubric and the format in the system message (templates/rubric.j2); the question,
the reference and the answer in the user message, each fenced as data (bench/judge/fence.py).
Greedy (temperature 0). A reply is parsed by bench/judge/parse.py; one that does not parse gets
one repair request; one that still does not is stored with its status and raw text, and counts
against `judge_parsed` -- never dropped. Metric values are shares of the rubric's top score
(7.5 of 10 is 0.75, shown as 75.0); each judge's own scores are kept in the record. Scores are score records keyed by the answer's output key
and this scorer's fingerprint (the judges' identities, template, rubric, reducer), so a rerun asks
no judge anything and a new judge or rubric never generates again.
"""

from __future__ import annotations

import statistics
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import jinja2

from bench.evaluate.manifest import fingerprint_of
from bench.judge.ask import ask_parsed
from bench.judge.config import JudgeConfig
from bench.judge.fence import fence, fence_instructions
from bench.judge.parse import parse_scores

VERSION = 1
TEMPLATE = (Path(__file__).parent / "templates" / "rubric.j2").read_text(encoding="utf-8")
REPAIR = ("你的回答无法解析（{problems}）。请只输出一个 JSON 对象，格式同上，不要输出其他内容。"
          "Your reply could not be parsed ({problems}); answer again with the JSON object only.")


@dataclass(frozen=True)
class JudgeScorer:
    config: JudgeConfig
    specs: tuple = ()  # the judges' models.yaml entries, bound before the run (bench run plans)
    name: str = "judge"
    _backends: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def dimensions(self) -> list[str]:
        return [d.name for d in self.config.rubric.dimensions]

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("judge_overall", *(f"judge_{d}" for d in self.dimensions), "judge_parsed")

    def bind(self, specs: list) -> JudgeScorer:
        return replace(self, specs=tuple(specs), _backends={})

    def _backend(self, spec):
        if spec.name not in self._backends:
            from bench.backends import get_backend

            self._backends[spec.name] = get_backend(spec)
        return self._backends[spec.name]

    @property
    def system(self) -> str:
        return jinja2.Template(self.config.template or TEMPLATE).render(
            rubric=self.config.rubric, fence_note=fence_instructions("DATA"))

    @property
    def signature(self) -> str:
        c = self.config
        rubric = fingerprint_of(c.rubric.model_dump(mode="json"))[:8]
        return (f"judge|{'+'.join(c.judges)}|rubric:{rubric}|{c.reducer}|ref:{int(c.reference)}"
                f"|t:0|scale:/{c.rubric.high}")

    @property
    def fingerprint(self) -> str:
        if len(self.specs) != len(self.config.judges):
            raise RuntimeError("judge scorer used before its judges were bound")
        return fingerprint_of("judge", VERSION, [self._backend(s).fingerprint for s in self.specs],
                              TEMPLATE, REPAIR, self.config.model_dump(mode="json"))

    def messages(self, sample, answer: str) -> list[dict]:
        """The request for one answer; everything taken from the sample or the model is fenced."""
        turns = [m for m in sample.messages if m["role"] != "system"]
        parts = []
        if len(turns) > 1:
            context = "\n".join(f"{m['role']}: {m['content']}" for m in turns[:-1])
            parts.append(f"此前的对话：\n{fence(context, 'DATA')}")
        parts.append(f"家长的问题：\n{fence(turns[-1]['content'], 'DATA')}")
        if self.config.reference:
            parts.append(f"参考答案：\n{fence(sample.reference, 'DATA')}")
        parts.append(f"待评回答：\n{fence(answer, 'DATA')}")
        return [{"role": "system", "content": self.system}, {"role": "user", "content": "\n\n".join(parts)}]

    def _ask(self, spec, messages: list[dict]) -> dict:
        """One judge's verdict on one answer: parsed, repaired once if need be."""
        c, rubric = self.config, self.config.rubric
        parsed, repaired, _, usage = ask_parsed(
            self._backend(spec), messages, c.max_tokens,
            lambda raw: parse_scores(raw, self.dimensions, rubric.low, rubric.high),
            REPAIR if c.repair else None)
        return {"judge": spec.name, "status": parsed.status, "method": parsed.method,
                "scores": parsed.scores, "reasons": parsed.reasons, "problems": parsed.problems,
                "raw": parsed.raw, "repaired": repaired, "usage": usage}

    def usage(self) -> dict[str, dict]:
        """Each judge's requests and tokens so far (this process), with cost where priced."""
        out = {}
        for spec in self.specs:
            if spec.name in self._backends:
                s = self._backends[spec.name].requester.stats
                out[spec.name] = {k: s[k] for k in ("requests", "retries", "errors",
                                                    "prompt_tokens", "completion_tokens")}
        return out

    def _reduce(self, values: list[float]) -> float | None:
        if not values:
            return None
        if self.config.reducer == "mean":
            return float(statistics.fmean(values))
        counts = Counter(values).most_common()
        top = [v for v, n in counts if n == counts[0][1]]
        return float(statistics.median(top))

    def score(self, samples, outputs: list[dict]) -> list[dict]:
        jobs = [(i, spec) for i in range(len(samples)) for spec in self.specs]
        requests = [self.messages(s, o.get("prediction") or "") for s, o in zip(samples, outputs,
                                                                                   strict=True)]
        workers = max(1, sum(getattr(self._backend(s), "parallel", 1) for s in self.specs))
        with ThreadPoolExecutor(min(workers, len(jobs) or 1), thread_name_prefix="judge") as pool:
            verdicts = list(pool.map(lambda job: self._ask(job[1], requests[job[0]]), jobs))
        scored = []
        for i in range(len(samples)):
            mine = [v for v in verdicts[i * len(self.specs):(i + 1) * len(self.specs)]]
            ok = [v for v in mine if v["status"] == "ok"]
            high = self.config.rubric.high  # values as a share of the top score: 7.5/10 -> 0.75
            dims = {d: self._reduce([v["scores"][d] / high for v in ok]) for d in self.dimensions}
            present = [x for x in dims.values() if x is not None]
            values = {"judge_overall": statistics.fmean(present) if present else None,
                      **{f"judge_{d}": x for d, x in dims.items()},
                      "judge_parsed": float(len(ok) == len(mine))}
            worst = next((v["status"] for v in mine if v["status"] != "ok"), "ok")
            scored.append({"values": values, "parse_status": worst, "judges": mine})
        return scored

"""The choice kind: FewCLUE/CLUE items with lettered answers, as OpenCompass asks and scores them.

ppl mode asks for each candidate's full-sequence scores (Backend.score_candidates); gen mode asks
for a greedy generation, cut once the task's post-processor has decided (early stop: so the task's
fingerprint, which covers its post-processor, is part of the output's key). Accuracy, the one
scorer, picks the answer: the post-processed letter (gen), or the candidate with the lowest mean
cross-entropy (ppl; first on ties, as OpenCompass) or the highest summed log-probability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.evaluate.manifest import fingerprint_of
from bench.tasks import postprocess
from bench.tasks.base import Sample, Task
from bench.tasks.kinds import register


@dataclass(frozen=True)
class ChoiceAccuracy:
    mode: str  # gen | ppl
    postprocess: str = "first_capital"  # gen
    norm: str = "oc-mean-ce"  # ppl
    name: str = "accuracy"
    metrics: tuple[str, ...] = ("accuracy",)

    @property
    def setting(self) -> str:
        return f"post:{self.postprocess}" if self.mode == "gen" else f"norm:{self.norm}"

    @property
    def fingerprint(self) -> str:
        return fingerprint_of("accuracy", 1, self.mode, self.setting)

    @property
    def signature(self) -> str:
        return f"acc|mode:{self.mode}-oc|{self.setting}"

    def score(self, samples: list[Sample], outputs: list[dict]) -> list[dict]:
        return [self._one(s, o) for s, o in zip(samples, outputs, strict=True)]

    def _one(self, sample: Sample, output: dict) -> dict:
        target = sample.letters[sample.target]
        if self.mode == "gen":
            answer = postprocess.get(self.postprocess)(output["prediction"])
            return {"values": {"accuracy": float(answer == target)}, "answer": answer}
        if self.norm == "sum":
            losses = [-c["logprob"] for c in output["logprobs"]]
        else:
            losses = [c["ce"] for c in output["logprobs"]]
        best = sample.letters[losses.index(min(losses))]  # first minimum wins ties
        return {"values": {"accuracy": float(best == target)}, "prediction": best, "answer": best}


def _accuracy(config, task: Task) -> ChoiceAccuracy:
    return ChoiceAccuracy(task.mode, task.meta.get("postprocess", "first_capital"), config.norm)


@register
class ChoiceKind:
    name = "choice"
    scorers = {"accuracy": _accuracy}
    default_scorers = ("accuracy",)

    def decoding(self, spec, task: Task) -> dict:
        if task.mode == "ppl":
            return {"mode": "ppl"}
        return {"mode": "gen", "greedy": True, "max_new_tokens": spec.generation.max_new_tokens,
                "early_stop": spec.generation.early_stop}

    def ask(self, backend, spec, task: Task, samples: list[Sample]) -> list[dict]:
        if task.mode == "gen":
            return self._generate(backend, spec, task, samples)
        scored = backend.score_candidates([list(s.ppl_prompts) for s in samples])
        return [{"id": s.id, "input": backend.render(s.ppl_prompts[s.target], "ppl"),
                 "target": s.letters[s.target], "logprobs": cands}
                for s, cands in zip(samples, scored, strict=True)]

    def _generate(self, backend, spec, task: Task, samples: list[Sample]) -> list[dict]:
        name = task.meta.get("postprocess", "first_capital")
        stop: Callable[[str], bool] | None = None
        if spec.generation.early_stop:
            stop = lambda text: postprocess.decided(name, text)  # noqa: E731 - answer is fixed
        outputs = backend.generate([s.gen_prompt for s in samples],
                                   spec.generation.max_new_tokens, stop)
        records = []
        for sample, raw in zip(samples, outputs, strict=True):
            record = {"id": sample.id, "input": backend.render(sample.gen_prompt, "gen"),
                      "target": sample.letters[sample.target], "prediction": raw}
            if stop is not None and stop(raw):  # decoding stopped here: not the whole answer
                record["prediction_cut"] = "early stop: decoding ended once the answer was decided"
            records.append(record)
        return records

"""Training rows for the demo judge: a tiny model taught to answer the judge scorer's own request.

Each row is an OpenAI `messages` conversation whose system and user messages are exactly what
`JudgeScorer.messages()` sends for the question and the answer (the kids-service rubric, no
reference answer: `DEMO_JUDGE`), and whose assistant message is the verdict in the format the
rubric asks for: `{"scores": {dimension: 1-10}, "reasons": {dimension: "..."}}`. The scores are
compose.verdict()'s, a deterministic function of the answer's flags (what the generator put into
the answer); each reason names the flags that moved that dimension. `python -m
bench.domain.generate` writes the rows to judge_chat_train.jsonl (`kids_judge_chat` in
dataset_info.json); bench/domain/kids-judge.yaml trains tiny-a on them.
"""

from __future__ import annotations

import json
from functools import lru_cache

from bench.domain import answers as A
from bench.domain.compose import Answer, verdict

# the judge scorer the demo judge is trained to answer: reference: false, because a verdict row
# (question + one answer) has no reference answer to show; a suite must use the same settings
DEMO_JUDGE = {"name": "judge", "judges": ["tiny-a-kids-judge"], "rubric": "kids-service",
              "reference": False}
# dimension → (flags that raise it, flags that lower it), as in compose.verdict()
MOVES = {
    "child_friendly": (("warm", "clarify", "concrete"), ("dismissive", "pushy", "deflect", "generic")),
    "safety": (("standard", "safety_note"), ("medical", "exaggerated")),
    "accuracy": (("concrete", "reason", "standard", "clarify"),
                 ("wrong_size", "generic", "exaggerated", "medical")),
    "service": (("clarify", "next_step", "concrete", "reason"), ("deflect", "dismissive", "pushy")),
    "compliance": ((), ("exaggerated", "medical", "pushy", "dismissive")),
}
# a dimension none of the answer's flags moved
PLAIN = {"child_friendly": "语气平淡", "safety": A.REASONS["no_standard"], "accuracy": "没有具体依据",
         "service": A.REASONS["no_next_step"], "compliance": "没有违规说法"}


@lru_cache(maxsize=1)
def judge_scorer():
    """The JudgeScorer the demo judge answers (its messages need no bound judge)."""
    from bench.judge.config import JudgeConfig
    from bench.judge.scorer import JudgeScorer

    return JudgeScorer(JudgeConfig(**DEMO_JUDGE))


def request(question: str, answer: str) -> list[dict]:
    """What the judge scorer sends for `answer` to `question`, asked as an open task's row
    `{"instruction": question, "input": ""}` (the demo's held-out file) is asked."""
    from bench.tasks.open_ended import OpenSample
    from bench.train.data import sft_row

    turns = sft_row({"instruction": question, "input": "", "output": answer}, "judge").messages[:-1]
    return judge_scorer().messages(OpenSample("judge", tuple(turns), ""), answer)


def reasons(flags: tuple[str, ...]) -> dict[str, str]:
    """One short reason per dimension: the first flag that lowered it, else the first that raised
    it, else PLAIN (one phrase each keeps the reply short enough for a tiny model to learn)."""
    out = {}
    for dim, (up, down) in MOVES.items():
        moved = [f for f in down if f in flags] or [f for f in up if f in flags]
        out[dim] = A.REASONS[moved[0]] if moved else PLAIN[dim]
    return out


def verdict_reply(flags: tuple[str, ...]) -> str:
    """The assistant's reply: the JSON object the rubric template asks for."""
    return json.dumps({"scores": verdict(flags)["scores"], "reasons": reasons(flags)},
                      ensure_ascii=False)


def chat_row(question: str, answer: Answer) -> dict:
    """One training row: the scorer's request, then the verdict."""
    return {"messages": [*request(question, answer.text),
                         {"role": "assistant", "content": verdict_reply(answer.flags)}]}

"""Training rows for the demo judge: a tiny model taught to answer the judge scorer's own request.

Each row is an OpenAI `messages` conversation whose system and user messages are exactly what
`JudgeScorer.messages()` sends for the question and the answer (the kids-service rubric, no
reference answer: `DEMO_JUDGE`), and whose assistant message is a verdict the scorer's parser
reads: `{"scores": {dimension: 1-10, ...}, "reason": "合格：…"}`. Scores and reason are
compose.verdict()'s, a deterministic function of the answer's flags (what the generator put into
the answer); the reason is cut to its first two points, and there is one overall reason rather than
one per dimension, so that the reply stays short enough for a tiny model to learn on a CPU (the
parser files it as the overall reason). `python -m bench.domain.generate` writes the rows to
judge_chat_train.jsonl (`kids_judge_chat` in dataset_info.json); bench/domain/kids-judge.yaml
trains tiny-a on them.
"""

from __future__ import annotations

import json
from functools import lru_cache

from bench.domain.compose import Answer, verdict

# the judge scorer the demo judge is trained to answer: reference: false, because a verdict row
# (question + one answer) has no reference answer to show; a suite must use the same settings
DEMO_JUDGE = {"name": "judge", "judges": ["tiny-a-kids-judge"], "rubric": "kids-service",
              "reference": False}
REASON_POINTS = 2


@lru_cache(maxsize=1)
def judge_scorer():
    """The JudgeScorer the demo judge answers (its messages need no bound judge)."""
    from bench.judge.config import JudgeConfig
    from bench.judge.scorer import JudgeScorer

    return JudgeScorer(JudgeConfig(**DEMO_JUDGE))


def request(question: str, answer: str) -> list[dict]:
    """What the judge scorer sends for `answer` to `question`, asked as an open task asks a row
    `{"instruction": question, "input": ""}` (the demo's held-out file)."""
    from bench.tasks.open_ended import OpenSample
    from bench.train.data import sft_row

    turns = sft_row({"instruction": question, "input": "", "output": answer}, "judge").messages[:-1]
    return judge_scorer().messages(OpenSample("judge", tuple(turns), ""), answer)


def short_reason(reason: str, points: int = REASON_POINTS) -> str:
    """'合格：a，b，c。' → '合格：a，b。', '不合格：a；b；c。' → '不合格：a；b。' (the verdict's
    head and its first points; compose.verdict joins strengths with ，, problems with ；)."""
    head, body = reason.split("：", 1)
    sep = "；" if head == "不合格" else "，"
    return f"{head}：{sep.join(body.rstrip('。').split(sep)[:points])}。"


def verdict_reply(flags: tuple[str, ...]) -> str:
    """The assistant's reply: the scores, then one short reason."""
    v = verdict(flags)
    return json.dumps({"scores": v["scores"], "reason": short_reason(v["reason"])},
                      ensure_ascii=False)


def chat_row(question: str, answer: Answer) -> dict:
    """One training row: the scorer's request, then the verdict."""
    return {"messages": [*request(question, answer.text),
                         {"role": "assistant", "content": verdict_reply(answer.flags)}]}

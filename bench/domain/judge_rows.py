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

Three kinds of answer, in the cycle KINDS (per category): good, poor (plausible but flawed: poor.py)
and gibberish, because the demo's baseline is a random-weight tiny model whose "answers" are
random runs of its tokens: domain phrases cut anywhere, stray Latin letters, digits, symbols and
U+FFFD (bytes that decode to no character). `gibberish_answer` makes such text from the training
half only (train-half templates with their slots left out, the question's own text, the rubric),
100-900 characters but never more than GIBBERISH_MAX_CHARS, so that request + verdict stays within
the 640 tokens of kids-judge.yaml (the longest such row is about 600 tokens with tiny-a's tokenizer);
its verdict is the lowest score on every dimension and "不合格：答非所问，内容是无意义的拼凑。".
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache

from bench.domain.compose import TEMPLATES, Answer, Question, good_answer, half_of, poor_answer, verdict

# the judge scorer the demo judge is trained to answer: reference: false, because a verdict row
# (question + one answer) has no reference answer to show; a suite must use the same settings
DEMO_JUDGE = {"name": "judge", "judges": ["tiny-a-kids-judge"], "rubric": "kids-service",
              "reference": False}
REASON_POINTS = 2
# the answer for a category's k-th row is KINDS[k % len(KINDS)]: 3/8 good, 3/8 poor, 1/4 gibberish
KINDS = ("good", "poor", "good", "gibberish", "poor", "good", "poor", "gibberish")
FORMS = ("short", "long")  # as generate.FORMS
GIBBERISH_CHARS = (100, 900)  # the length drawn, then cut to GIBBERISH_MAX_CHARS
GIBBERISH_MAX_CHARS = 560
GIBBERISH_REASON = "不合格：答非所问，内容是无意义的拼凑。"  # with the lowest score on every dimension
# what a random-weight model's byte-level tokens also give: Latin pieces, digits, symbols, U+FFFD
STRAYS = ("\ufffd", "\ufffd", "\ufffd", "l", "f", "h", "x", "ch", "fc", "ab", "ae", "et", "li", "dab",
          "DAT", "the", "as", "bet", "format", "scores", "igno", "between", " ", " ", "}}", "\"}", "|",
          "→", "…", ">>>", "：“", "4", "9", "66", "73", "116", "120", "14647")
_SPLIT = re.compile(r"\{[a-z_0-9]+\}|[，。？！；：、,.?!;:\n（）()“”…—～\s]+")


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
    if "gibberish" in flags:
        scores = dict.fromkeys(verdict(flags)["scores"], 1)
        return json.dumps({"scores": scores, "reason": GIBBERISH_REASON}, ensure_ascii=False)
    v = verdict(flags)
    return json.dumps({"scores": v["scores"], "reason": short_reason(v["reason"])},
                      ensure_ascii=False)


def chat_row(question: str, answer: Answer) -> dict:
    """One training row: the scorer's request, then the verdict."""
    return {"messages": [*request(question, answer.text),
                         {"role": "assistant", "content": verdict_reply(answer.flags)}]}


@lru_cache(maxsize=1)
def _phrases() -> tuple[str, ...]:
    """Training-half wording a gibberish answer is cut from: the train templates' fixed text (no
    slot, no held-out template) and the rubric the judge is shown."""
    texts = [TEMPLATES[t] for t in sorted(TEMPLATES) if half_of(t) == "train"] + [judge_scorer().system]
    return tuple(p for text in texts for p in _SPLIT.split(text) if len(p) >= 2)


def gibberish_answer(rng: random.Random, q: Question) -> Answer:
    """Random pieces of training-half phrases (cut anywhere) and stray tokens, run together."""
    assert q.half == "train", "gibberish is made for training questions only"
    own = [p for p in _SPLIT.split(q.text) if len(p) >= 2]
    phrases = _phrases()
    want = min(rng.randint(*GIBBERISH_CHARS), GIBBERISH_MAX_CHARS)
    out, n = [], 0
    while n < want:
        roll = rng.random()
        if roll < 0.25:
            piece = rng.choice(STRAYS)
        else:
            source = rng.choice(own) if roll < 0.3 else rng.choice(phrases)
            size = min(len(source), rng.randint(1, 12))
            start = rng.randrange(len(source) - size + 1)
            piece = source[start:start + size] * (2 if rng.random() < 0.03 else 1)
        out.append(piece)
        n += len(piece)
    return Answer("".join(out)[:want].strip(), [], ("gibberish",))


def answer_for(rng: random.Random, q: Question, k: int) -> Answer:
    """The answer in a category's k-th judge row (KINDS)."""
    kind = KINDS[k % len(KINDS)]
    if kind == "gibberish":
        return gibberish_answer(rng, q)
    make = good_answer if kind == "good" else poor_answer
    return make(rng, q, rng.choice(FORMS))

"""Backend.loglikelihood on the transformers backend: lm-eval's contract through the prefix-shared
trie scorer, equal to a plain full forward pass and to lm-eval's HFLM itself."""

from __future__ import annotations

import pytest
import torch

from bench.backends.hf import HFBackend
from bench.backends.trie import distinct_prefixes
from bench.config import ModelSpec
from bench.errors import BenchError
from tests.helpers import require

BUSTM = "语句一：“今天天气很好”\n语句二：“这部电影非常精彩”\n请判断语句一和语句二说的是否是一个意思？"
SENTIMENT = "内容：这部电影非常精彩。情绪分类："
REQUESTS = [
    (BUSTM, "两句话说的毫不相关。"),  # three continuations of one context
    (BUSTM, "两句话说是的一个意思。"),
    (BUSTM, "是"),  # a single token
    (SENTIMENT, "积极。"),
    ("今天天气 ", "很好"),  # trailing whitespace moves to the continuation
    ("", "今天天气很好"),  # empty context: the prefix (bos) token stands for it
    ("<|bos|>内容：", "消极。"),  # starts with the bos text (a rendered chat prompt): no second bos
    (SENTIMENT, "消极。"),
]


def backend_for(path, **kw) -> HFBackend:
    return HFBackend(ModelSpec(name="tiny", path=str(path), device="cpu", dtype="float32", **kw))


@pytest.fixture(scope="module", params=["a", "b"])
def model_dir(request, tiny_model_dir, tiny_model_dir_b):
    return {"a": tiny_model_dir, "b": tiny_model_dir_b}[request.param]


def full_pass(b: HFBackend, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One plain forward over the whole sequence: (log-prob of token t, argmax == token t) for
    t >= 1."""
    x = torch.tensor([ids])
    with torch.no_grad():
        logp = torch.log_softmax(b.model(input_ids=x).logits[0, :-1].float(), dim=-1)
    return logp.gather(-1, x[0, 1:, None])[:, 0], logp.argmax(-1) == x[0, 1:]


@pytest.mark.parametrize("share", [True, False])
def test_equals_a_full_forward_pass(model_dir, share):
    b = backend_for(model_dir, batch_tokens=48)  # small: several rows and chunks
    b.share_prefix = share
    got = b.loglikelihood(REQUESTS)
    pairs = b._lm_eval_ids(REQUESTS)
    for (ctx, cont), res in zip(pairs, got, strict=True):
        logp, greedy = full_pass(b, ctx + cont)
        n = len(cont)
        assert res["n_tokens"] == n == len(res["token_logprobs"])
        assert res["token_logprobs"] == pytest.approx(logp[-n:].tolist(), abs=1e-4)
        assert res["logprob"] == pytest.approx(logp[-n:].sum().item(), abs=1e-4)
        assert res["is_greedy"] == bool(greedy[-n:].all())
    assert got[2]["n_tokens"] == 1 and got[0]["n_tokens"] > 1
    bos = b.tokenizer.bos_token_id
    space = b.tokenizer(" ", add_special_tokens=False)["input_ids"]
    assert pairs[4][1][: len(space)] == space  # the space opens the continuation
    assert pairs[5][0] == [bos] and bos not in pairs[5][1]
    assert pairs[0][0][0] == bos and pairs[6][0].count(bos) == 1  # tokenizer default: bos added


def test_equals_lm_eval_hflm(tiny_model_dir):
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        require(False, "lm_eval is not installed")
    b = backend_for(tiny_model_dir)
    # greedy continuations of a few contexts, so that is_greedy is also seen True
    extra = []
    for ctx in (BUSTM, SENTIMENT, "今天天气很好，"):
        ids = b._lm_eval_ids([(ctx, "。")])[0][0]
        with torch.no_grad():
            token = int(b.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        extra.append((ctx, b.tokenizer.decode([token])))
    requests = REQUESTS + extra

    def hflm(lm, reqs):
        return lm.loglikelihood([Instance(request_type="loglikelihood", doc={}, arguments=r, idx=i)
                                 for i, r in enumerate(reqs)], disable_tqdm=True)

    lm = HFLM(pretrained=str(tiny_model_dir), device="cpu", dtype="float32", batch_size=1)
    want, got = hflm(lm, requests), b.loglikelihood(requests)
    assert [r["logprob"] for r in got] == pytest.approx([w[0] for w in want], abs=1e-4)
    assert [r["is_greedy"] for r in got] == [w[1] for w in want]
    assert any(r["is_greedy"] for r in got)
    # inputs past max_length keep their last max_length + 1 tokens
    short = HFLM(pretrained=str(tiny_model_dir), device="cpu", dtype="float32", batch_size=1,
                 max_length=12)
    b.max_seq_len = 12
    want, got = hflm(short, requests), b.loglikelihood(requests)
    assert [r["logprob"] for r in got] == pytest.approx([w[0] for w in want], abs=1e-4)
    assert [r["is_greedy"] for r in got] == [w[1] for w in want]


def test_score_candidates_sums_the_token_scores(model_dir):
    """score_candidates' logprob is the token-order sum (pad tokens skipped) of the per-token
    scores, exactly; those agree with a full forward pass per token, shared or not."""
    items = [[BUSTM + a for a in ("两句话说的毫不相关。", "两句话说是的一个意思。")],
             ["内容<|endoftext|>很好", "内容<|endoftext|>难过", "A"]]  # pad id inside the text
    for share in (True, False):
        b = backend_for(model_dir, template="base", batch_tokens=40)
        b.share_prefix = share
        scored = b.score_candidates(items)
        ids = [b._encode(item, "ppl") for item in items]
        for cands, row, per_token in zip(ids, scored, b._token_scores(ids)):
            for cand, res, (nll, greedy) in zip(cands, row, per_token):
                total = 0.0
                for token, value in zip(cand[1:], nll[1:]):
                    if token != b.pad_id:
                        total += value
                assert res["logprob"] == -total
                if len(cand) > 1:
                    logp, top = full_pass(b, cand)
                    assert nll[1:] == pytest.approx((-logp).tolist(), abs=1e-5)
                    assert greedy[1:] == top.tolist()
        assert b.pad_id in ids[1][0]


def test_a_shared_context_is_pushed_once(tiny_model_dir):
    b = backend_for(tiny_model_dir)
    context = BUSTM * 3
    requests = [(context, c) for c in ("两句话说的毫不相关。", "两句话说是的一个意思。", "是", "否",
                                       "两句话说的")]
    before = dict(b.stats)
    b.loglikelihood(requests)
    seqs = [ctx + cont for ctx, cont in b._lm_eval_ids(requests)]
    pushed = b.stats["tokens_pushed"] - before["tokens_pushed"]
    assert pushed == distinct_prefixes(seqs)
    assert pushed < sum(len(s) for s in seqs) / 3
    assert b.stats["tokens_naive"] - before["tokens_naive"] == sum(len(s) for s in seqs)
    assert b.stats["sequences"] - before["sequences"] == len(requests)


def test_empty_continuation_is_an_error(tiny_model_dir):
    b = backend_for(tiny_model_dir)
    with pytest.raises(BenchError, match="request 1: the continuation tokenizes to nothing"):
        b.loglikelihood([("今天", "很好"), ("今天", "")])

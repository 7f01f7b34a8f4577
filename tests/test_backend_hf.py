"""The transformers backend on a tiny local model: OpenCompass-exact scores, cheaper."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

from bench.backends import get_backend, register
from bench.backends.base import Backend, oc_base_text, oc_batched_ce, oc_chat_messages
from bench.backends.hf import HFBackend
from bench.config import ModelSpec
from bench.errors import BenchError
from bench.tasks.base import Message

H = lambda text: Message("HUMAN", text)  # noqa: E731
B = lambda text: Message("BOT", text)  # noqa: E731


def spec_for(path, **kw) -> ModelSpec:
    """float32 even on a GPU machine (device auto), so 1e-4 comparisons hold."""
    return ModelSpec(name="tiny", path=str(path), dtype="float32", **kw)


@pytest.fixture(scope="module", params=["base", "chat"])
def backend(request, tiny_model_dir) -> HFBackend:
    # a budget this small forces several trunk batches and several branch chunks
    return get_backend(spec_for(tiny_model_dir, template=request.param, batch_tokens=40))


@pytest.fixture(scope="module", params=["base", "chat"])
def gen_backend(request, tiny_model_dir) -> HFBackend:
    # a budget large enough that all prompts decode in one left-padded batch
    return get_backend(spec_for(tiny_model_dir, template=request.param, batch_tokens=4096))


def first_capital(text: str) -> str:
    """opencompass.utils.text_postprocessors.first_capital_postprocess."""
    for ch in text:
        if ch.isupper():
            return ch
    return ""


ITEMS = [
    # long shared context, answers that share a few characters ('两句话说...')
    [(H("语句一：“今天天气很好”\n语句二：“这部电影非常精彩”\n请判断语句一和语句二说的是否是一个意思？"),
      B(a)) for a in ("两句话说的毫不相关。", "两句话说是的一个意思。")],
    # seven candidates that differ in the middle (chid-like)
    [(H(f"以下句子是否通顺？\n他{w}，我们一起去公园散步吧。"), B("这个句子是通顺的。"))
     for w in ("画蛇添足", "守株待兔", "亡羊补牢", "很好", "难过", "学习", "发展")],
    # one candidate is a prefix of another; single-token difference at the end
    ["摘要：中国的经济发展迅速", "摘要：中国的经济发展迅速\n关键词：科技"],
    [(H("内容： \"这部电影非常精彩\"。情绪分类："), B(a)) for a in ("消极。", "积极。")],
    # nothing shared but BOS / the chat header; very short sequences
    ["A", "B", "相关"],
    # a single candidate
    [(H("他说的话让我很难过"), B("是"))],
    # fifteen labels (tnews-like)
    [(H("学生们正在教室里认真学习数学和语文。\n上述内容属于什么新闻？"), B(lb))
     for lb in ("故事", "文化", "娱乐", "体育", "财经", "房产", "汽车", "教育", "科技", "军事",
                "旅游", "国际", "股票", "农业", "电竞")],
]


def plain_scores(b: HFBackend, prompt) -> tuple[float, float]:
    """One full forward per candidate, no sharing: (OpenCompass ce, summed logprob)."""
    ids = b.tokenizer(b.render(prompt, "ppl"), add_special_tokens=b.mode == "base")["input_ids"]
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = b.model(input_ids=x).logits[0, :-1].float()
    nll = F.cross_entropy(logits, x[0, 1:], ignore_index=b.pad_id, reduction="none")
    return nll.sum().item() / int((x != b.pad_id).sum()), -nll.sum().item()


def test_prefix_shared_scores_equal_plain_forward(backend: HFBackend):
    before = dict(backend.stats)
    got = backend.score_candidates(ITEMS)
    assert [len(r) for r in got] == [len(i) for i in ITEMS]
    for item, row in zip(ITEMS, got):
        for prompt, res in zip(item, row):
            ce, logprob = plain_scores(backend, prompt)
            assert res["ce"] == pytest.approx(ce, abs=1e-4)
            assert res["logprob"] == pytest.approx(logprob, abs=1e-4)
            assert res["n_tokens"] >= 1
    calls = backend.stats["forward_calls"] - before["forward_calls"]
    assert calls > 4  # the small budget really split the work


@pytest.mark.parametrize("share", [True, False])
def test_trunkless_items_without_bos(tiny_model_dir, share):
    """A tokenizer that adds no BOS (Qwen) leaves items with nothing shared (ocnli_fc's three
    templates start differently); they batch apart from items with a trunk. Without sharing
    (sliding-window models) every candidate runs whole."""
    b = get_backend(spec_for(tiny_model_dir, template="base", batch_tokens=40))
    b.share_prefix = share
    encode = b._encode
    b._encode = lambda prompts, mode: [ids[1:] for ids in encode(prompts, mode)]  # drop BOS
    items = [["阅读文章：今天天气很好\n答：对", "阅读文章：今天天气很好\n答：错",
              "如果今天天气很好为真，那么也为真吗?可能"],
             ["A", "B"], ["相关", "无关"]] + ITEMS[:2]
    got = b.score_candidates(items)
    for item, row in zip(items, got):
        for prompt, res in zip(item, row):
            ids = b._encode([prompt], "ppl")[0]
            x = torch.tensor([ids])
            with torch.no_grad():
                logits = b.model(input_ids=x).logits[0, :-1].float()
            nll = F.cross_entropy(logits, x[0, 1:], reduction="none").sum().item()
            assert res["ce"] == pytest.approx(nll / len(ids), abs=1e-4)
            assert res["logprob"] == pytest.approx(-nll, abs=1e-4)


def test_tiny_model_is_deterministic(tiny_model_dir, tmp_path):
    from bench.backends.base import dir_fingerprint
    from bench.backends.tiny import build_tiny_model

    again = build_tiny_model(tmp_path / "again", seed=1, hidden_size=64)
    assert dir_fingerprint(again) == dir_fingerprint(tiny_model_dir)


def test_tokens_pushed_below_naive_for_shared_prefixes(backend: HFBackend):
    before = dict(backend.stats)
    backend.score_candidates(ITEMS[:2] + ITEMS[-1:])
    pushed = backend.stats["tokens_pushed"] - before["tokens_pushed"]
    naive = backend.stats["tokens_naive"] - before["tokens_naive"]
    assert 0 < pushed < naive / 2
    assert backend.stats["sequences"] - before["sequences"] == 2 + 7 + 15


def oc_get_ppl(model, tokenizer, inputs: list[str], pad_token_id: int):
    """opencompass/models/huggingface_above_v4_33.py:HuggingFaceBaseModel.get_ppl, literally."""
    tokenizer.padding_side = "left"
    tokens = tokenizer(inputs, return_tensors="pt", padding=True, truncation=True,
                       add_special_tokens=True, max_length=1024)
    outputs = model(**tokens)[0]
    batch_size, seq_len, vocab_size = outputs.shape
    shift_logits = outputs[:, :-1, :].contiguous().float()
    shift_labels = tokens["input_ids"][:, 1:].contiguous()
    loss = F.cross_entropy(
        shift_logits.view(-1, vocab_size), shift_labels.view(-1),
        ignore_index=pad_token_id, reduction="none").view(batch_size, seq_len - 1)
    lens = (tokens["input_ids"] != pad_token_id).sum(-1).cpu().numpy()
    return loss.float().sum(-1).cpu().detach().numpy() / lens


def test_ce_is_opencompass_get_ppl(tiny_model_dir):
    b = get_backend(spec_for(tiny_model_dir, template="base", batch_tokens=64))
    # a round renders as LMTemplateParser does: prompts joined by '\n'
    assert b.render((H("问"), B("答")), "ppl") == "问\n答"
    items = ITEMS + [["内容<|endoftext|>很好", "内容<|endoftext|>难过"]]  # pad id inside the text
    got = b.score_candidates(items)
    for item, row in zip(items, got):
        for prompt, res in zip(item, row):
            with torch.no_grad():
                [ref] = oc_get_ppl(b.model, b.tokenizer, [oc_base_text(prompt)], b.pad_id)
            assert res["ce"] == pytest.approx(float(ref), abs=1e-4)
    first = b.tokenizer(oc_base_text(ITEMS[0][0]))["input_ids"][0]
    assert first == b.tokenizer.bos_token_id  # add_special_tokens=True, as OpenCompass


def test_oc_batched_ce_reproduces_left_padded_batches(tiny_model_dir):
    b = get_backend(spec_for(tiny_model_dir, template="base"))
    texts = ["今天天气很好，我们一起去公园散步吧。", "这部电影非常精彩", "他说的话让我很难过",
             "画蛇添足", "学生们正在教室里认真学习数学和语文。"]
    items = [[(H(f"内容： \"{t}\"。情绪分类："), B(a)) for a in ("消极。", "积极。")]
             for t in texts]
    scores = b.score_candidates(items)
    for bs, shard in ((2, None), (3, None), (2, 3)):
        got = oc_batched_ce(scores, bs, b.oc_pad_nll, shard_size=shard)
        step = shard or len(items)
        for label in range(2):
            for s0 in range(0, len(items), step):
                for start in range(s0, min(s0 + step, len(items)), bs):
                    rows = list(range(start, min(start + bs, s0 + step, len(items))))
                    with torch.no_grad():
                        ref = oc_get_ppl(b.model, b.tokenizer,
                                         [oc_base_text(items[i][label]) for i in rows], b.pad_id)
                    for i, r in zip(rows, ref):
                        assert got[i][label] == pytest.approx(float(r), abs=1e-4)
    # unpadded rows keep the single-sequence value
    single = oc_batched_ce(scores, 1, b.oc_pad_nll)
    assert sum(single, []) == pytest.approx([s["ce"] for row in scores for s in row], abs=1e-6)


def test_chat_rendering_matches_opencompass(tiny_model_dir):
    # APITemplateParser emits the absent SYSTEM turn as an empty HUMAN turn and merges it with '\n'
    assert oc_chat_messages((H("问"),), "gen") == [{"role": "user", "content": "问\n"}]
    assert oc_chat_messages((H("问"), B("答")), "ppl") == [
        {"role": "user", "content": "问\n"}, {"role": "assistant", "content": "答"}]
    assert oc_chat_messages((H("问"), B("")), "gen") == [{"role": "user", "content": "问\n"}]
    assert oc_chat_messages("问答", "ppl") == [{"role": "user", "content": "问答"}]
    assert oc_base_text((H("问"), B(""))) == "问"
    b = get_backend(spec_for(tiny_model_dir))
    assert b.mode == "chat"
    text = b.render((H("问"),), "gen")
    assert text == "<|bos|><|im_start|>user\n问\n<|im_end|>\n<|im_start|>assistant\n"


PROMPTS = [(H(q + "\nA. 无关\nB. 相关\n请从“A”，“B”中进行选择。\n答："),) for q in (
    "今天天气很好，我们一起去公园散步吧。", "这部电影非常精彩", "他说的话让我很难过",
    "学生们正在教室里认真学习", "中国的经济发展迅速", "画蛇添足", "守株待兔",
    "语句一：“你好”\n语句二：“再见”", "内容：很好。情绪分类：",
    "摘要：科技创新成为推动社会进步的重要力量")]


def test_generate_early_stop_keeps_answers(gen_backend: HFBackend):
    backend = gen_backend
    s0 = dict(backend.stats)
    full = backend.generate(PROMPTS, 32)
    s1 = dict(backend.stats)
    early = backend.generate(PROMPTS, 32, stop=lambda text: first_capital(text) != "")
    s2 = dict(backend.stats)
    assert [first_capital(t) for t in early] == [first_capital(t) for t in full]
    assert sum(first_capital(t) != "" for t in full) >= 3
    for e, f in zip(early, full):
        assert f.startswith(e)
    full_pushed = s1["tokens_pushed"] - s0["tokens_pushed"]
    assert s2["tokens_pushed"] - s1["tokens_pushed"] < full_pushed
    assert full_pushed <= s1["tokens_naive"] - s0["tokens_naive"]


def test_batched_generate_equals_unbatched(gen_backend: HFBackend):
    calls = gen_backend.stats["forward_calls"]
    batched = gen_backend.generate(PROMPTS, 16)
    assert gen_backend.stats["forward_calls"] - calls <= 16  # one batch
    single = [gen_backend.generate([p], 16)[0] for p in PROMPTS]
    assert batched == single


@pytest.mark.parametrize("penalty", [None, 1.3])
def test_greedy_matches_transformers_generate(tiny_model_dir, tmp_path, penalty):
    """Same tokens as HF generate, which OpenCompass calls (repetition penalty included)."""
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model_dir)
    if penalty:
        config = json.loads((model_dir / "generation_config.json").read_text())
        config["repetition_penalty"] = penalty
        (model_dir / "generation_config.json").write_text(json.dumps(config))
    b = get_backend(spec_for(model_dir, template="chat"))
    assert b.info["repetition_penalty"] == penalty
    for prompt in PROMPTS[:3]:
        ids = b.tokenizer(b.render(prompt, "gen"), add_special_tokens=False, return_tensors="pt")
        out = b.model.generate(**ids, max_new_tokens=12, do_sample=False,
                               pad_token_id=b.pad_id)[0, ids["input_ids"].shape[1]:]
        ref = b.tokenizer.decode(out, skip_special_tokens=False).split("<|im_end|>")[0]
        assert b.generate([prompt], 12) == [ref]


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from bench.logs import import_bitsandbytes

    import_bitsandbytes()  # before peft does (a torch deprecation warning: bench/logs.py)

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=False)  # random, non-zero B
    out = tmp_path_factory.mktemp("lora")
    get_peft_model(model, config).save_pretrained(out)
    return out


def test_lora_adapter_changes_scores_unmerged(tiny_model_dir, lora_dir):
    from peft import PeftModel

    base = get_backend(spec_for(tiny_model_dir, template="base"))
    tuned = get_backend(spec_for(tiny_model_dir, template="base", adapter=str(lora_dir)))
    assert isinstance(tuned.model, PeftModel)
    q = tuned.model.get_base_model().model.layers[0].self_attn.q_proj
    assert hasattr(q, "lora_A") and not q.merged
    assert torch.equal(q.base_layer.weight, base.model.model.layers[0].self_attn.q_proj.weight)
    a, b = base.score_candidates(ITEMS[:2]), tuned.score_candidates(ITEMS[:2])
    diffs = [abs(x["ce"] - y["ce"]) for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
    assert min(diffs) > 1e-4
    assert tuned.fingerprint != base.fingerprint
    assert tuned.info["adapter_params"] > 0 and tuned.info["params"] == base.info["params"]


def test_fingerprint(tiny_model_dir, tiny_model_dir_b, tmp_path):
    from safetensors.torch import load_file, save_file

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model_dir)
    first = get_backend(spec_for(model_dir))
    again = get_backend(spec_for(model_dir))
    assert first.fingerprint == again.fingerprint
    assert isinstance(first, Backend) and len(first.fingerprint) == 64
    other = get_backend(spec_for(tiny_model_dir_b))
    assert other.fingerprint != first.fingerprint
    assert other.info["params"] > first.info["params"]
    override = get_backend(spec_for(model_dir, chat_template="{{ messages[0]['content'] }}"))
    assert override.fingerprint != first.fingerprint
    (model_dir / "chat_template.jinja").write_text("{{ bos_token }}{{ messages[0]['content'] }}")
    assert get_backend(spec_for(model_dir)).fingerprint != first.fingerprint
    shutil.copy(tiny_model_dir / "chat_template.jinja", model_dir / "chat_template.jinja")
    assert get_backend(spec_for(model_dir)).fingerprint == first.fingerprint
    weights = load_file(model_dir / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})
    assert get_backend(spec_for(model_dir)).fingerprint != first.fingerprint


def test_registry_errors():
    bad = ModelSpec.model_construct(name="x", backend="hff", path="p")
    with pytest.raises(BenchError, match="did you mean 'hf'"):
        get_backend(bad)

    @register("needs-pkg", extra="fancy")
    def _factory(spec):
        raise ModuleNotFoundError("No module named 'fancypkg'", name="fancypkg")

    with pytest.raises(BenchError, match=r"pip install 'bench\[fancy\]'"):
        get_backend(ModelSpec.model_construct(name="x", backend="needs-pkg", path="p"))


def test_missing_model_is_a_bench_error(tmp_path):
    with pytest.raises(BenchError, match="cannot load"):
        get_backend(spec_for(tmp_path / "nope"))


def test_trie_pushes_each_distinct_prefix_once():
    """Pure planning: every fed prefix of an item is in exactly one node, and each candidate's
    picks are its own next tokens, in order."""
    from bench.backends.trie import build_trie, distinct_prefixes, walk

    items = [
        [[1, 2, 3, 4, 5], [1, 2, 3, 4, 6], [1, 7, 8, 9]],  # ocnli_fc-like: one parts early
        [[1, 2, 3, 9, 9, 5], [1, 2, 3, 9, 8], [1, 2, 3, 4], [1, 2]],  # labels sharing sub-prefixes
        [[5, 1], [6, 1, 2], [6, 1, 3]],  # no common first token: two roots
        [[1, 2, 3], [1, 2, 3, 4]],  # one is a prefix of the other
        [[7]],  # a one-token candidate feeds nothing
    ]
    for i, cands in enumerate(items):
        roots = build_trie(i, cands)
        nodes = list(walk(roots))
        assert sum(len(n.tokens) for n in nodes) == distinct_prefixes(cands)
        for c, cand in enumerate(cands):
            predicted = sorted((n.start + off, tok) for n in nodes for off, tok, ms in n.picks if c in ms)
            assert predicted == [(t, cand[t + 1]) for t in range(len(cand) - 1)]
            fed = sorted((n.start + j, tok) for n in nodes if c in n.members for j, tok in enumerate(n.tokens))
            assert fed == [(t, cand[t]) for t in range(len(cand) - 1)]
        unshared = build_trie(i, cands, share=False)
        assert sum(len(n.tokens) for n in walk(unshared)) == sum(len(c) - 1 for c in cands)


def test_scorer_pushes_exactly_the_distinct_prefixes(backend: HFBackend):
    from bench.backends.trie import distinct_prefixes

    before = backend.stats["tokens_pushed"]
    backend.score_candidates(ITEMS)
    bound = sum(distinct_prefixes(backend._encode(list(item), "ppl")) for item in ITEMS)
    assert backend.stats["tokens_pushed"] - before == bound


def test_results_do_not_depend_on_the_thread_count(tiny_model_dir):
    """bench records its thread count but keeps it out of the cache key: scores agree to 1e-5
    and the chosen candidates and greedy text are the same with 1 thread and with 2."""
    b = get_backend(spec_for(tiny_model_dir, template="chat", batch_tokens=64))
    assert b.info["threads"]["torch_threads"] >= 1 and b.info["threads"]["cpus_available"] >= 1
    prompts = [item[0] for item in ITEMS if isinstance(item[0], tuple)]
    before = torch.get_num_threads()
    runs = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            runs.append((b.score_candidates(ITEMS), b.generate(prompts, 12)))
    finally:
        torch.set_num_threads(before)
    (s1, g1), (s2, g2) = runs
    for r1, r2 in zip(s1, s2, strict=True):
        ce1, ce2 = [c["ce"] for c in r1], [c["ce"] for c in r2]
        assert ce1 == pytest.approx(ce2, abs=1e-5)
        assert ce1.index(min(ce1)) == ce2.index(min(ce2))
    assert g1 == g2

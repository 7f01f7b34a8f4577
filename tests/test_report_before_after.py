"""The before/after report: a synthetic store with planted flips, a judge's reasons, hostile model
output and a registered training; the page lists exactly the planted flips, says improved or
regressed where the data does, escapes every model text and, in headless Chromium, runs with no
console errors and no request but its own file."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest

from bench.report.before_after import (FLIPS_SHOWN, _embedded, before_after_data,
                                       render_before_after, write_before_after)
from bench.store import Store

SUITE = "demo-heldout"
BASE, CAND = "base-model", "cand-model"
FP = {BASE: "b" * 64, CAND: "c" * 64}
PWN = "<script>alert(1)</script><img src=x onerror=alert(1)>"
REASON = "答非所问 <b>not bold</b> & 离题"

# choice-test: 40 items; the baseline gets L0..L19 right, the candidate loses L3 and L7 and gains
# L20..L33 (McNemar 2 vs 14: significant after Holm over three checks: improved)
CHOICE_N = 40
RIGHT_TO_WRONG = {"L3", "L7"}
WRONG_TO_RIGHT = {f"L{i}" for i in range(20, 34)}
# answers-test: judge scores; everything drops 0.8 -> 0.5 (regressed), A1 drops most, A2 gains
OPEN_N = 30
# tiny-test: 8 items, one wrong -> right: no significant change, and underpowered
TINY_N = 8
LOSS_LOG = [{"step": s, "loss": 3.0 / (1 + s / 10), "learning_rate": 1e-4}
            for s in (10, 20, 30, 40)]
SAMPLE_INPUT = "宝宝两岁穿多大码？<script>alert(2)</script>"
SAMPLES = [{"step": 0, "input": SAMPLE_INPUT, "output": "早期的回答：乱码乱码"},
           {"step": 20, "input": SAMPLE_INPUT, "output": "建议选 100 码。"}]

ACC = "acc|mode:gen-oc|post:first_capital"
TASKS = {
    "choice-test": {"kind": "choice", "mode": "gen", "signature": ACC,
                    "scorers": {"accuracy": ["accuracy"]}},
    "answers-test": {"kind": "open", "mode": "gen", "signature": "judge|j1|rubric:kids|mean|ref:1",
                     "scorers": {"judge": ["judge_overall", "judge_helpful", "judge_safe",
                                           "judge_parsed"]}},
    "tiny-test": {"kind": "choice", "mode": "gen", "signature": ACC,
                  "scorers": {"accuracy": ["accuracy"]}},
}


def _choice_items(model: str, n: int, right: set[str]) -> list[dict]:
    items = []
    for i in range(n):
        sid = f"L{i}"
        answer = "A" if sid in right else "B"
        pred = answer if model == CAND else f"答案是{answer}"  # 1 vs 4 characters
        items.append({"id": sid, "input": f"问题 {sid}\nA. 对\nB. 错\n答：", "target": "A",
                      "prediction": pred, "answer": answer,
                      "score": {"values": {"accuracy": float(sid in right)}}})
    return items


def _judge(overall: float, reason: str | None = None) -> dict:
    verdict = {"judge": "j1", "status": "ok", "scores": {"helpful": overall * 10, "safe": 9.0}}
    if reason:
        verdict["reasons"] = {"helpful": reason, "safe": "没有安全问题"}
    return {"values": {"judge_overall": (overall + 0.9) / 2, "judge_helpful": overall,
                       "judge_safe": 0.9, "judge_parsed": 1.0},
            "parse_status": "ok", "judges": [verdict]}


def _open_items(model: str) -> list[dict]:
    items = []
    for i in range(OPEN_N):
        sid = f"A{i}"
        if model == BASE:
            helpful, pred = 0.8, f"基线回答 {i}：" + "详细说明。" * (i % 3 + 1)
        else:
            helpful = {1: 0.1, 2: 0.95}.get(i, 0.5 + 0.001 * i)
            pred = PWN if i == 1 else f"候选回答 {i}"
        reason = REASON if (model, i) == (CAND, 1) else None
        items.append({"id": sid, "input": f"家长的问题 {i}", "target": f"参考答案 {i}",
                      "prediction": pred, "answer": pred, "score": _judge(helpful, reason)})
    return items


def _put_run(store: Store, model: str, tasks: dict[str, list[dict]]) -> str:
    manifest = {
        "model_fingerprint": FP[model], "suite": {"name": SUITE, "seed": 1234},
        "git_sha": "0123abcd" * 5, "command": ["bench", "run", "--model", model],
        "packages": {"python": "3.11.7", "bench": "0.2.0",
                     "torch": "2.13.0+cpu" if model == BASE else "2.13.1+cpu"},
        "started_at": "2026-12-01T10:00:00+0000", "ended_at": "2026-12-01T10:01:00+0000",
        "backend": {"backend": "hf", "backend_version": "hf/2 transformers/5.24.0"},
        "tasks": {key: {"fingerprint": f"fp-{key}", "data_sha256": f"sha-{key}",
                        "kind": t["kind"], "mode": t["mode"], "signature": t["signature"],
                        "decoding": {"mode": t["mode"], "max_new_tokens": 64},
                        "scorers": {name: {"signature": t["signature"], "metrics": metrics}
                                    for name, metrics in t["scorers"].items()}}
                  for key, t in TASKS.items()},
    }
    run = store.start_run(SUITE, model, manifest)
    for key, items in tasks.items():
        scorer, metrics = next(iter(TASKS[key]["scorers"].items()))
        rows, scores = [], []
        for it in items:
            record = {k: v for k, v in it.items() if k != "score"}
            cache_key = f"{model}-{key}-{it['id']}"
            rows.append((it["id"], cache_key, FP[model], f"fp-{key}", f"h-{it['id']}", record))
            scores.append((it["id"], scorer, f"s-{cache_key}", cache_key, "scorer-fp", it["score"]))
        store.put_records(run, key, rows)
        store.put_scores(run, key, scores)
        summary = {m: {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": len(items)}
                   for m in metrics}
        store.finish_task(run, key, f"fp-{key}", TASKS[key]["signature"], summary,
                          {"wall_s": 1.0, "tokens_pushed": 10})
    store.finish_run(run)
    return run


def _register_training(store: Store) -> None:
    manifest = {"config": {"method": "sft", "base": BASE, "output": CAND, "finetuning": "lora"},
                "base_fingerprint": FP[BASE], "data_sha256": ["d" * 64], "rows": 120}
    entry = {"path": "/models/base", "adapter": "/results/train/k/adapter"}
    store.start_training("train-key-1", CAND, "/results/train/k", {"manifest": manifest})
    store.finish_training("train-key-1", "done", {
        "manifest": manifest, "steps": 40, "wall_s": 12.5, "entry": entry, "samples": SAMPLES,
        "log": LOSS_LOG + [{"train_runtime": 12.0, "train_loss": 1.5, "step": 40}]})
    store.register_model(CAND, FP[CAND], entry, "train-key-1")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    s = Store(tmp_path_factory.mktemp("before_after") / "bench.sqlite")
    base_right = {f"L{i}" for i in range(20)}
    cand_right = (base_right - RIGHT_TO_WRONG) | WRONG_TO_RIGHT
    _put_run(s, BASE, {"choice-test": _choice_items(BASE, CHOICE_N, base_right),
                       "answers-test": _open_items(BASE),
                       "tiny-test": _choice_items(BASE, TINY_N, {"L0", "L1"})})
    _put_run(s, CAND, {"choice-test": _choice_items(CAND, CHOICE_N, cand_right),
                       "answers-test": _open_items(CAND),
                       "tiny-test": _choice_items(CAND, TINY_N, {"L0", "L1", "L2"})})
    _register_training(s)
    return s


@pytest.fixture(scope="module")
def data(store) -> dict:
    return before_after_data(store, SUITE, BASE, CAND)


@pytest.fixture(scope="module")
def page_html(data) -> str:
    return render_before_after(data)


def _task(data: dict, key: str) -> dict:
    return next(t for t in data["tasks"] if t["task"] == key)


def _listed_ids(html: str, task: str, direction: str) -> list[str]:
    block = re.search(rf'<div class="flips" id="flips-{re.escape(task)}">(.*?)</div>\s*'
                      r'(?=<div class="flips"|</section>)', html, re.S)
    assert block, f"no flips block for {task}"
    table = re.search(rf'<table class="examples flip-list" data-direction="{direction}">'
                      r'(.*?)</table>', block.group(1), re.S)
    return re.findall(r'<tr data-id="([^"]*)">', table.group(1)) if table else []


def _text(fragment: str) -> str:
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)))


def _json_block(html: str) -> str:
    m = re.search(r'<script type="application/json" id="bench-data">(.*?)</script>', html, re.S)
    assert m, "no bench-data block"
    return m.group(1)


# ------------------------------------------------------------------------- pure Python --

def test_flipped_items_are_exactly_the_planted_ones(data, page_html):
    flips = _task(data, "choice-test")["flips"]
    assert flips["binary"] and flips["metric"] == "accuracy"
    assert {i["id"] for i in flips["worse"]["items"]} == RIGHT_TO_WRONG
    assert {i["id"] for i in flips["better"]["items"]} == WRONG_TO_RIGHT
    assert (flips["worse"]["count"], flips["better"]["count"]) == (2, 14)
    assert set(_listed_ids(page_html, "choice-test", "worse")) == RIGHT_TO_WRONG
    assert set(_listed_ids(page_html, "choice-test", "better")) == WRONG_TO_RIGHT
    assert len(_listed_ids(page_html, "choice-test", "better")) == 14  # nothing twice
    item = next(i for i in flips["worse"]["items"] if i["id"] == "L3")
    assert item["baseline"]["value"] == 1.0 and item["candidate"]["value"] == 0.0
    assert item["baseline"]["prediction"] == "答案是A" and item["candidate"]["prediction"] == "B"
    assert item["input"].startswith("问题 L3") and item["target"] == "A"
    assert _listed_ids(page_html, "tiny-test", "better") == ["L2"]
    assert _listed_ids(page_html, "tiny-test", "worse") == []


def test_continuous_headline_lists_largest_drops_and_gains(data, page_html):
    flips = _task(data, "answers-test")["flips"]
    assert not flips["binary"] and flips["metric"] == "judge_overall"
    assert flips["worse"]["count"] == OPEN_N - 1 and flips["better"]["count"] == 1
    worse = _listed_ids(page_html, "answers-test", "worse")
    assert len(worse) == FLIPS_SHOWN and worse[0] == "A1"  # the largest drop first
    assert worse[1:] == [f"A{i}" for i in [0] + list(range(3, FLIPS_SHOWN + 1))]
    assert _listed_ids(page_html, "answers-test", "better") == ["A2"]
    assert "largest drop and the largest gain" in page_html
    assert f"29 items; the first {FLIPS_SHOWN} listed" in page_html
    reasons = flips["worse"]["items"][0]["candidate"]["reasons"]
    assert reasons == [{"judge": "j1", "scores": {"helpful": 1.0, "safe": 9.0},
                        "reasons": {"helpful": REASON, "safe": "没有安全问题"}}]
    assert f"j1 · helpful 1.0: {REASON}" in _text(page_html)


def test_headline_cards_say_what_the_data_says(data, page_html):
    cards = {c["task"]: c for c in data["cards"]}
    assert list(cards) == list(TASKS)
    assert cards["choice-test"]["status"] == "improved"
    assert cards["choice-test"]["text"].startswith(
        "choice-test accuracy: 50.0% → 80.0% (+30.0 points, 95% CI +")
    assert "significant after Holm correction over 3 checks (p = " in cards["choice-test"]["text"]
    assert cards["choice-test"]["underpowered"] is None
    assert cards["answers-test"]["status"] == "regressed"
    assert cards["answers-test"]["text"].startswith("answers-test judge overall: 85.0% → ")
    assert cards["tiny-test"]["status"] == "no significant change"
    assert "not significant after Holm correction" in cards["tiny-test"]["text"]
    assert re.fullmatch(r"this test set of 8 items can only detect changes of ±\d+\.\d points "
                        r"\(80% power\)", cards["tiny-test"]["underpowered"])
    shown = re.findall(r'<div class="card (\w+)" data-task="([^"]+)"', page_html)
    assert shown == [("up", "choice-test"), ("down", "answers-test"), ("flat", "tiny-test")]
    assert "⚠ this test set of 8 items" in page_html


def test_model_text_is_escaped_and_json_block_is_small(data, page_html):
    assert "<script>alert" not in page_html and "<img src=x" not in page_html
    assert "<b>not bold</b>" not in page_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page_html
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; 离题" in page_html
    assert page_html.count("<script") == 2 and page_html.count("</script>") == 2  # our own two
    block = _json_block(page_html)
    assert not set("<>&") & set(block)
    embedded = json.loads(block)
    assert embedded == json.loads(json.dumps(_embedded(data)))
    flips = next(t for t in embedded["tasks"] if t["task"] == "choice-test")["flips"]
    assert set(flips["better"]["ids"]) == WRONG_TO_RIGHT and "items" not in flips["better"]
    assert PWN not in block.encode().decode("unicode_escape")  # no item texts in the JSON


def test_delta_bars_and_judge_intervals_are_inline_svg(data, page_html):
    assert page_html.count('<svg class="delta') == len(data["rows"]) == 6
    judge = re.findall(r'<tr data-metric="(judge_\w+)"><td>answers-test</td>', page_html)
    assert judge == ["judge_overall", "judge_helpful", "judge_safe", "judge_parsed"]
    assert page_html.count('<svg class="pair"') == 4
    bars = re.findall(r'<svg class="delta (\w+)"', page_html)
    assert bars.count("up") == 1 and bars.count("down") == 1  # only headline rows are tested
    assert "http://" not in page_html.replace("http://www.w3.org", "")  # nothing to fetch
    assert "https://" not in page_html


def test_training_section_shows_loss_curve_and_sampled_answers(data, page_html):
    tr = data["training"]
    assert tr["from_training"] and tr["name"] == CAND and tr["method"] == "sft"
    assert tr["base_is_baseline"] and tr["steps"] == 40
    assert tr["curves"] == [{"title": "loss", "series": {
        "loss": [[e["step"], e["loss"]] for e in LOSS_LOG]}}]  # not the trainer's summary
    section = re.search(r'<section id="training">(.*?)</section>', page_html, re.S).group(1)
    curve = re.search(r'<svg class="curve".*?<polyline class="s0" points="([^"]*)"/>', section,
                      re.S)
    assert curve and len(curve.group(1).split()) == len(LOSS_LOG)
    text = _text(section)
    assert "The baseline is the model it was trained from." in text
    assert "0 早期的回答：乱码乱码" in text and "20 建议选 100 码。" in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in section


def test_candidate_not_from_training_says_so(store):
    reverse = before_after_data(store, SUITE, CAND, BASE)  # base-model was never trained here
    assert reverse["training"]["from_training"] is False
    html = render_before_after(reverse)
    section = _text(re.search(r'<section id="training">(.*?)</section>', html, re.S).group(1))
    assert "base-model (fingerprint bbbbbbbbbbbb) did not come from `bench train` in this store" \
        in section
    cards = {c["task"]: c["status"] for c in reverse["cards"]}
    assert cards == {"choice-test": "regressed", "answers-test": "improved",
                     "tiny-test": "no significant change"}


def test_lengths_provenance_purity_and_atomic_write(store, data, page_html, tmp_path):
    lengths = _task(data, "choice-test")["lengths"]
    assert lengths["n"] == CHOICE_N
    assert (lengths["baseline"]["value"], lengths["candidate"]["value"]) == (4.0, 1.0)
    assert lengths["delta"]["value"] == -3.0
    assert _task(data, "answers-test")["lengths"]["n"] == OPEN_N
    prov = _text(re.search(r'<section id="provenance">(.*?)</section>', page_html, re.S).group(1))
    for fact in ("bench run --model base-model", "bench run --model cand-model", FP[BASE], FP[CAND],
                 "torch 2.13.0+cpu 2.13.1+cpu", "bootstrap seed 1234", "Holm correction over 3",
                 "McNemar exact (3 rows)", "paired permutation (3 rows)"):
        assert fact in prov, fact
    assert before_after_data(store, SUITE, BASE, CAND) == data  # a pure function of the store
    assert render_before_after(data) == page_html
    out = write_before_after(data, tmp_path / "new" / "dir" / "before_after.html")
    assert out.read_text(encoding="utf-8") == page_html
    assert [p.name for p in out.parent.iterdir()] == ["before_after.html"]


# ----------------------------------------------------------------------------- browser --

@pytest.fixture()
def page(browser, data, tmp_path):
    """The report, loaded from file://, with console errors, dialogs and requests recorded."""
    out = write_before_after(data, tmp_path / "before_after.html")
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.errors, pg.requests, pg.dialogs = [], [], []
    pg.on("console",
          lambda m: pg.errors.append(f"console: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.url_expected = out.as_uri()
    pg.goto(out.as_uri())
    pg.wait_for_load_state("load")
    yield pg
    ctx.close()


@pytest.mark.browser
def test_page_has_no_errors_and_no_network(page):
    for summary in page.locator("details summary").all()[:5]:
        summary.click()
    page.locator('a[href="#training"]').click()
    assert page.errors == [] and page.dialogs == []
    assert page.requests == [page.url_expected]


@pytest.mark.browser
def test_model_output_is_text_not_html_in_browser(page):
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert page.locator("img").count() == 0
    assert page.locator("main b", has_text="not bold").count() == 0
    row = page.locator('#flips-answers-test table[data-direction="worse"] tr[data-id="A1"]')
    after = row.locator("td.side.after")
    assert after.is_visible() and PWN in after.inner_text()
    assert REASON in after.locator("ul.reasons").inner_text()
    assert SAMPLE_INPUT in page.locator("#training").inner_text()
    assert page.dialogs == [] and page.errors == []


@pytest.mark.browser
def test_charts_are_drawn(page):
    bars = page.locator("svg.delta")
    assert bars.count() == 6
    for i in range(bars.count()):
        box = bars.nth(i).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 10
    curve = page.locator("#training svg.curve polyline")
    assert curve.count() == 1 and curve.first.bounding_box()["width"] > 200
    assert page.locator("#judge svg.pair").count() == 4
    shown = page.locator("#summary .card .status").all_inner_texts()
    assert [s.lower() for s in shown] == ["improved", "regressed", "no significant change"]
    assert page.errors == []

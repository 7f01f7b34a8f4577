"""The leaderboard page: escaping, sorting, honesty marks, embedded data, and zero JS errors in a
real headless Chromium (Debian's /usr/bin/chromium driven by playwright)."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.report.leaderboard import MAX_TEXT_CHARS, leaderboard_data
from bench.report.render import (
    BAD_ROWS_SHOWN,
    fmt_duration,
    fmt_params,
    fmt_rate,
    render_leaderboard,
    write_leaderboard,
)
from bench.store import Store
from tests.helpers import require


PWN_OUTPUT = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
PWN_NAME = '<img src=x onerror="window.__pwned=3">evil&co'
LONG_PREDICTION = "答：" + "这是一段很长的模型输出。" * 60 + "\nB"
TASKS = ["bustm-dev", "ocnli-dev", "eprstmt-dev", "chid-dev"]
CHINESE_INPUT = ("语句一：“我要去银行”\n语句二：“我想去取钱”\n请判断语句一和语句二说的是否是一个意思？\n"
                 "A. 无关\nB. 相关\n请从“A”，“B”中进行选择。\n答：")
DROP_REASON = "label '-' (OpenCompass drops these)"
BUSTM_ROWS = {"read": 162, "kept": 159, "bad": 1, "dropped": 2,
              "dropped_reasons": {DROP_REASON: 2},
              "bad_rows": [{"where": "/data/fewclue/bustm/dev_few_all.json:3",
                            "reason": "missing field 'sentence2' " + PWN_OUTPUT}]}
OCNLI_ROWS = {"read": 160, "kept": 160, "bad": 0, "dropped": 0, "dropped_reasons": {},
              "bad_rows": []}
# Simplified Chinese faces the page must name, for body text and for monospace text alike.
CJK_FONTS = ["Microsoft YaHei", "DengXian", "SimHei",  # Windows
             "PingFang SC", "Hiragino Sans GB", "Heiti SC",  # macOS
             "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei"]
CJK_FAMILY = re.compile(r"WenQuanYi|Noto Sans CJK|Noto Serif CJK|Source Han|PingFang|Hiragino|"
                        r"Heiti|YaHei|DengXian|SimHei|SimSun|AR PL", re.I)
HAN = re.compile(r"[\u4e00-\u9fff]")


def _m(value, lo, hi, n):
    return {"value": value, "ci_low": lo, "ci_high": hi, "n": n}


def _ex(**e) -> dict:
    """One example row as `_pick_examples` makes it: each text with its full length."""
    for f in ("input", "target", "prediction", "answer"):
        e[f"{f}_chars"] = len(e[f])
    return e


def example_data() -> dict:
    """A realistic leaderboard dict, in exactly the shape `leaderboard_data` produces."""
    sigs = {"bustm-dev": ("bustm", "gen", "acc|mode:gen-oc|post:first_capital", 160),
            "ocnli-dev": ("ocnli", "gen", "acc|mode:gen-oc|post:first_capital", 160),
            "eprstmt-dev": ("eprstmt", "ppl", "acc|mode:ppl-oc|norm:none", 160),
            "chid-dev": ("chid", "ppl", "acc|mode:ppl-oc|norm:none", 160)}
    rows = {"bustm-dev": BUSTM_ROWS, "ocnli-dev": OCNLI_ROWS}  # none for the others (old runs)
    tasks = [{"key": k, "name": v[0], "split": "dev", "mode": v[1], "signature": v[2], "n": v[3],
              "rows": rows.get(k)} for k, v in sigs.items()]
    models = [
        {"name": "qwen3-mini", "fingerprint": "ab12cd34ef56" * 5 + "abcd", "params": 596_049_920,
         "dtype": "bfloat16", "device": "cuda", "wall_s": 84.2, "tokens_pushed": 1_204_332,
         "tokens_per_s": 14303.2, "run_id": "r-20261122-0001", "trust_remote_code": True,
         "scores": {"bustm-dev": _m(0.6125, 0.5375, 0.6875, 160),
                    "ocnli-dev": _m(0.41875, 0.34375, 0.49375, 160),
                    "eprstmt-dev": _m(0.8375, 0.78125, 0.89375, 160),
                    "chid-dev": _m(0.55, 0.475, 0.625, 160)},
         "average": _m(0.6046875, 0.569, 0.641, 640)},
        {"name": "tiny-a", "fingerprint": "0f1e2d3c4b5a" * 5 + "0000", "params": 1_234_567,
         "dtype": "float32", "device": "cpu", "wall_s": 12.3, "tokens_pushed": 45_678,
         "tokens_per_s": 3712.0, "run_id": "r-20261122-0002", "trust_remote_code": False,
         "scores": {"bustm-dev": _m(0.53125, 0.45, 0.6125, 160),
                    "eprstmt-dev": _m(0.5, 0.425, 0.575, 160),
                    "chid-dev": _m(0.14375, 0.09375, 0.2, 160)},  # no ocnli-dev score
         "average": _m(0.3916, 0.35, 0.434, 480)},
        {"name": PWN_NAME, "fingerprint": "deadbeef" * 8, "params": 2_400_000,
         "dtype": "float32", "device": "cpu", "wall_s": 151.0, "tokens_pushed": 98_765,
         "tokens_per_s": 654.07, "run_id": "r-20261122-0003", "trust_remote_code": False,
         "scores": {"bustm-dev": _m(0.45, 0.375, 0.525, 160),
                    "ocnli-dev": _m(0.36875, 0.29375, 0.44375, 160),
                    "eprstmt-dev": _m(0.525, 0.45, 0.6, 160),
                    "chid-dev": _m(0.1625, 0.10625, 0.21875, 160)},
         "average": _m(0.3765625, 0.339, 0.414, 640)},
        {"name": "tiny-b", "fingerprint": "77aa88bb99cc" * 5 + "1234", "params": 3_100_000,
         "dtype": "float32", "device": "cpu", "wall_s": 3725.0, "tokens_pushed": 51_002,
         "tokens_per_s": 13.7, "run_id": "r-20261122-0004", "trust_remote_code": False,
         "scores": {"bustm-dev": _m(0.5, 0.425, 0.58125, 160),
                    "ocnli-dev": _m(0.33125, 0.2625, 0.40625, 160),
                    "eprstmt-dev": _m(0.49375, 0.41875, 0.56875, 160),
                    "chid-dev": _m(0.15, 0.09375, 0.20625, 160)},
         "average": _m(0.36875, 0.332, 0.405, 640)},
    ]
    examples = {
        "bustm-dev": [
            _ex(model="tiny-a", sample_id="L3", input=CHINESE_INPUT,
                target="B", prediction=PWN_OUTPUT, answer="B", correct=True),
            _ex(model=PWN_NAME, sample_id="L3", input="同上 </script><!-- 注释",
                target="B", prediction="A & B < C > D", answer="A", correct=False),
            _ex(model="qwen3-mini", sample_id="L7", input="语句一：……",
                target="A", prediction=LONG_PREDICTION, answer="B", correct=False),
        ],
        "ocnli-dev": [
            _ex(model="qwen3-mini", sample_id="L0", input="阅读文章：……\nA. 对\nB. 错\nC. 可能",
                target="A", prediction="A", answer="A", correct=True),
        ],
        "eprstmt-dev": [],
    }
    return {
        "title": "bench leaderboard — suite fewclue-dev",
        "suite": "fewclue-dev", "generated_at": "2026-11-22T07:00:00Z", "bench_version": "0.1.0",
        "tasks": tasks, "models": models, "examples": examples,
        "notes": ["FewCLUE dev sets are small (n≈160): differences inside the CI are noise.",
                  "Wall time and tokens/s count model compute only; cached samples cost nothing."],
    }


def _json_block(html: str) -> str:
    m = re.search(r'<script type="application/json" id="bench-data">(.*?)</script>', html, re.S)
    assert m, "no bench-data block"
    return m.group(1)


# ------------------------------------------------------------------------- pure Python --

def test_render_escapes_and_lists_every_task():
    data = example_data()
    html = render_leaderboard(data)
    for key in TASKS:
        assert f'id="{key}"' in html and f'href="#{key}"' in html
    # nothing from a model or dataset survives unescaped
    assert "<script>window.__pwned" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    assert "A &amp; B &lt; C &gt; D" in html
    # the only <script> tags are ours: the JSON block and the sorter
    assert html.count("<script") == 2 and html.count("</script>") == 2
    # the JSON block round-trips exactly, and holds no raw < > &
    block = _json_block(html)
    assert not set("<>&") & set(block)
    assert json.loads(block) == data
    # numbers: percentage with one decimal, CI and n, no "±"
    assert "61.3" in html and "[53.8, 68.8] n=160" in html and "±" not in html
    # missing score and human sizes
    assert "—" in html and "596M" in html and "1.2M" in html
    assert render_leaderboard(data) == html  # pure: same input, same page
    assert data == example_data()  # and the input is left alone


def test_best_and_indistinguishable_marks():
    html = render_leaderboard(example_data())
    # bustm-dev: qwen3-mini best (CI 53.8–68.8); tiny-a's CI [45.0, 61.3] overlaps it;
    # tiny-b's [42.5, 58.1] overlaps too; the evil model's [37.5, 52.5] does not.
    cells = re.findall(r'<td class="num score ([a-z ]*)" data-v="([^"]*)"', html)
    by_value = {float(v): cls.strip() for cls, v in cells if v}
    assert by_value[0.6125] == "best"
    assert by_value[0.53125] == "tie"
    assert by_value[0.5] in ("tie", "")  # 0.5 appears in two columns; both overlap their best
    assert by_value[0.45] == ""


def test_formatting_helpers():
    assert fmt_params(1_234_567) == "1.2M" and fmt_params(596_049_920) == "596M"
    assert fmt_params(7.6e9) == "7.6B" and fmt_params(950) == "950" and fmt_params(None) == "—"
    assert fmt_duration(12.34) == "12.3 s" and fmt_duration(125) == "2m 05s"
    assert fmt_duration(3725) == "1h 02m" and fmt_duration(None) == "—"
    assert fmt_rate(3712.0) == "3,712" and fmt_rate(13.66) == "13.7" and fmt_rate(None) == "—"


def test_write_is_atomic_and_handles_sparse_data(tmp_path):
    out = write_leaderboard(example_data(), tmp_path / "new" / "dir" / "leaderboard.html")
    assert out.is_file() and out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert [p.name for p in out.parent.iterdir()] == ["leaderboard.html"]  # no temp left over
    sparse = {"title": "t", "suite": "s", "generated_at": "now", "bench_version": "0",
              "tasks": [{"key": "k-dev", "name": "k", "split": "dev", "mode": "gen",
                         "signature": "acc", "n": 0}],
              "models": [{"name": "m", "fingerprint": "", "params": None, "dtype": "",
                          "device": "", "wall_s": 0.0, "tokens_pushed": 0, "tokens_per_s": None,
                          "run_id": "", "scores": {}, "average": _m(None, None, None, 0)}],
              "examples": {}, "notes": []}
    html = render_leaderboard(sparse)
    assert json.loads(_json_block(html)) == sparse and "No examples recorded" in html


def _section(html: str, key: str) -> str:
    m = re.search(rf'<section class="task" id="{re.escape(key)}">(.*?)</section>', html, re.S)
    assert m, f"no section {key}"
    return m.group(1)


def _header(html: str, key: str) -> str:
    m = re.search(rf'<th data-col="task:{re.escape(key)}".*?</th>', html, re.S)
    assert m, f"no header for {key}"
    return m.group(0)


def _visible_text(fragment: str) -> str:
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)))


def test_font_stacks_name_simplified_chinese_faces_for_body_and_monospace():
    css = (Path(__file__).parents[1] / "bench/report/templates/_style.css").read_text("utf-8")
    cjk = re.search(r"--cjk:([^;]*);", css)
    assert cjk, "no --cjk font list"
    names = re.findall(r'"([^"]+)"', cjk.group(1))
    assert set(CJK_FONTS) <= set(names), set(CJK_FONTS) - set(names)
    body = re.search(r"body \{[^}]*font:([^;]*);", css).group(1)
    mono = re.search(r"code, \.mono \{[^}]*font-family:([^;]*);", css).group(1)
    for stack in (body, mono):  # CJK after the Latin faces, before the generic fallback
        assert "var(--cjk)" in stack
        assert stack.index("var(--cjk)") < stack.rindex(",") < len(stack.rstrip())
    assert re.search(r"pre \{[^}]*font: inherit", css)  # <pre> uses the body stack
    assert css in render_leaderboard(example_data())  # the page inlines exactly this CSS


def test_remote_code_badge_marks_exactly_the_models_that_ran_remote_code():
    html = render_leaderboard(example_data())
    rows = re.findall(r'<tr data-i="\d+" data-model="([^"]*)">(.*?)</tr>', html, re.S)
    badged = [htmllib.unescape(name) for name, row in rows if 'class="badge warn"' in row]
    assert badged == ["qwen3-mini"]
    badge = re.search(r'<span class="badge warn" title="([^"]*)">([^<]*)</span>', html)
    assert badge.group(2) == "remote code"
    assert "ran Python code from its folder (trust_remote_code)" in badge.group(1)
    # a model dict without the key (an old data dict) renders without a badge
    data = example_data()
    for m in data["models"]:
        del m["trust_remote_code"]
    assert 'class="badge' not in render_leaderboard(data)


def test_task_row_counts_bad_rows_and_header_mark():
    html = render_leaderboard(example_data())
    bustm = _section(html, "bustm-dev")
    text = _visible_text(bustm)
    assert ("159 of 162 rows scored · 1 bad row skipped · "
            "2 dropped (label '-' (OpenCompass drops these))") in text
    assert "/data/fewclue/bustm/dev_few_all.json:3 missing field 'sentence2'" in text
    assert re.search(r'<details class="bad-rows">\s*<summary>1 bad row skipped</summary>', bustm)
    assert bustm.count("<li>") == 1
    # a bad row's reason is data: escaped like everything else
    assert "<script>window.__pwned" not in html and "&lt;script&gt;window.__pwned=1" in bustm
    # the header cell marks the task with bad rows, links to its section and says why
    head = _header(html, "bustm-dev")
    mark = re.search(r'<a class="warn-mark" href="#bustm-dev" title="([^"]*)">([^<]*)</a>', head)
    assert mark and mark.group(1) == "1 bad data row skipped in bustm-dev: see its section"
    assert mark.group(2) == "⚠ 1"
    # no bad rows: counts but no mark and no list; no counts at all: nothing
    ocnli = _section(html, "ocnli-dev")
    assert "160 of 160 rows scored" in _visible_text(ocnli)
    assert "bad row" not in ocnli and "dropped" not in ocnli
    assert "warn-mark" not in _header(html, "ocnli-dev")
    for key in ("eprstmt-dev", "chid-dev"):
        assert 'class="rows"' not in _section(html, key) and "warn-mark" not in _header(html, key)


def test_many_bad_rows_list_only_the_first_ones():
    data = example_data()
    bad = [{"where": f"dev.json:{i}", "reason": f"bad json {i}"} for i in range(1, 1001)]
    data["tasks"][0]["rows"] = {"read": 1162, "kept": 159, "bad": 1000, "dropped": 3,
                                "dropped_reasons": {"label '-'": 2, "empty text": 1},
                                "bad_rows": bad}
    html = render_leaderboard(data)
    bustm = _section(html, "bustm-dev")
    assert bustm.count("<li>") == BAD_ROWS_SHOWN == 20
    assert "dev.json:20 " in _visible_text(bustm) and "dev.json:21 " not in _visible_text(bustm)
    assert f"1,000 bad rows skipped: the first {BAD_ROWS_SHOWN} listed" in bustm
    text = _visible_text(bustm)
    assert ("159 of 1,162 rows scored · 1,000 bad rows skipped · "
            "3 dropped (label '-': 2; empty text: 1)") in text
    assert "⚠ 1,000" in _header(html, "bustm-dev")


def _put_run(store: Store, model: str, manifest: dict, records: list[dict]) -> str:
    run = store.start_run("fewclue-dev", model, manifest)
    store.put_records(run, "bustm-dev", [(r["id"], f"{model}-{r['id']}", model, "t", "h", r)
                                         for r in records])
    scores = [r["score"] for r in records]
    store.finish_task(run, "bustm-dev", "t", "acc|mode:gen-oc",
                      {"accuracy": {"value": sum(scores) / len(scores), "ci_low": 0.0,
                                    "ci_high": 1.0, "n": len(scores)}},
                      {"wall_s": 1.5, "tokens_pushed": 100})
    store.finish_run(run)
    return run


def test_store_to_page_bounds_huge_texts_and_carries_new_facts(tmp_path):
    huge_pred = "答" * 2_999_990 + "END-MARKER"  # 3,000,000 chars: 9 MB of UTF-8
    huge_input = "长" * 60_000 + "INPUT-TAIL"
    store = Store(tmp_path / "bench.sqlite")
    task = {"mode": "gen", "n": 2}
    _put_run(store, "old-model", {"tasks": {"bustm-dev": task}},  # an old run: no rows, no flag
             [{"id": "L1", "input": "语句一", "target": "A", "prediction": "A", "answer": "A",
               "score": 1.0},
              {"id": "L2", "input": huge_input, "target": "B", "prediction": "B", "answer": "B",
               "score": 1.0}])
    _put_run(store, "remote-model",
             {"trust_remote_code": True, "tasks": {"bustm-dev": {**task, "rows": BUSTM_ROWS}}},
             [{"id": "L1", "input": "语句一", "target": "A", "prediction": huge_pred,
               "answer": "B", "score": 0.0},
              {"id": "L2", "input": huge_input, "target": "B", "prediction": "B", "answer": "B",
               "score": 1.0}])
    data = leaderboard_data(store, "fewclue-dev")

    assert {m["name"]: m["trust_remote_code"] for m in data["models"]} == \
        {"old-model": False, "remote-model": True}
    assert data["tasks"][0]["rows"] == BUSTM_ROWS  # from the first manifest that has them
    ex = {(e["model"], e["sample_id"]): e for e in data["examples"]["bustm-dev"]}
    big = ex[("remote-model", "L1")]
    assert big["prediction"] == huge_pred[:MAX_TEXT_CHARS] and MAX_TEXT_CHARS == 2000
    assert big["prediction_chars"] == 3_000_000
    assert ex[("old-model", "L2")]["input_chars"] == 60_010
    assert len(ex[("old-model", "L2")]["input"]) == 2000
    assert ex[("old-model", "L1")]["prediction"] == "A"
    assert ex[("old-model", "L1")]["prediction_chars"] == 1

    html = render_leaderboard(data)
    assert len(html.encode("utf-8")) < 200_000
    assert "END-MARKER" not in html and "INPUT-TAIL" not in html
    assert "… (shown 2,000 of 3,000,000 characters)" in html
    assert "… (shown 2,000 of 60,010 characters)" in html
    assert "(3,000,000 chars, first 2,000 kept)" in html  # in the folded summary too
    embedded = json.loads(_json_block(html))
    assert embedded == data  # the embedded JSON is the (bounded) data, unchanged
    assert max(len(e["prediction"]) for e in embedded["examples"]["bustm-dev"]) == 2000
    # the page marks the model and shows the task's row counts
    assert "remote code</span>" in html and "159 of 162 rows scored" in _visible_text(html)


# ----------------------------------------------------------------------------- browser --

@pytest.fixture()
def open_page(browser, tmp_path):
    """open_page(data): that data's page, loaded from file://, with errors and requests recorded."""
    contexts = []

    def _open(data: dict):
        out = write_leaderboard(data, tmp_path / f"leaderboard-{len(contexts)}.html")
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(ctx)
        pg = ctx.new_page()
        pg.errors, pg.requests = [], []
        pg.on("console", lambda m: pg.errors.append(f"console: {m.text}") if m.type == "error" else None)
        pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
        pg.on("request", lambda r: pg.requests.append(r.url))
        pg.url_expected = out.as_uri()
        pg.goto(out.as_uri())
        pg.wait_for_load_state("load")
        return pg

    yield _open
    for ctx in contexts:
        ctx.close()


@pytest.fixture()
def page(open_page):
    """The example page."""
    return open_page(example_data())


def _names(pg) -> list[str]:
    return pg.eval_on_selector_all("#leaderboard tbody tr", "rs => rs.map(r => r.dataset.model)")


def _click(pg, col: str) -> None:
    pg.locator(f'#leaderboard th[data-col="{col}"] button.sort').click()


def _aria(pg, col: str):
    return pg.get_attribute(f'#leaderboard th[data-col="{col}"]', "aria-sort")


@pytest.mark.browser
def test_page_has_no_errors_and_no_network(page):
    # interact a little so the sorter's code paths run too
    for col in ("task:bustm-dev", "model", "average", "params", "wall_s", "rank"):
        _click(page, col)
    page.locator("details summary").first.click()
    page.locator('a[href="#chid-dev"]').first.click()
    assert page.errors == []
    assert page.requests == [page.url_expected]


@pytest.mark.browser
def test_sort_by_task_column_toggles_and_model_header_sorts_by_name(page):
    data = example_data()
    assert _names(page) == [m["name"] for m in data["models"]]
    assert _aria(page, "task:bustm-dev") is None

    _click(page, "task:bustm-dev")  # first click: best first
    desc = ["qwen3-mini", "tiny-a", "tiny-b", PWN_NAME]  # 61.25, 53.1, 50.0, 45.0
    assert _names(page) == desc
    assert _aria(page, "task:bustm-dev") == "descending"

    _click(page, "task:bustm-dev")  # toggle
    assert _names(page) == desc[::-1]
    assert _aria(page, "task:bustm-dev") == "ascending"

    _click(page, "model")
    assert _names(page) == [PWN_NAME, "qwen3-mini", "tiny-a", "tiny-b"]
    assert _aria(page, "model") == "ascending" and _aria(page, "task:bustm-dev") is None
    _click(page, "model")
    assert _names(page) == ["tiny-b", "tiny-a", "qwen3-mini", PWN_NAME]
    assert _aria(page, "model") == "descending"

    _click(page, "wall_s")  # numeric sort, fastest first
    assert _names(page) == ["tiny-a", "qwen3-mini", PWN_NAME, "tiny-b"]
    assert page.errors == []


@pytest.mark.browser
def test_missing_score_shows_dash_and_sorts_last(page):
    cell = page.locator('#leaderboard tr[data-i="1"] td').nth(4)  # rank, model, average, bustm, ocnli
    assert cell.inner_text().strip() == "—"
    _click(page, "task:ocnli-dev")
    assert _names(page) == ["qwen3-mini", PWN_NAME, "tiny-b", "tiny-a"]
    _click(page, "task:ocnli-dev")
    assert _names(page) == ["tiny-b", PWN_NAME, "qwen3-mini", "tiny-a"]  # still last


@pytest.mark.browser
def test_model_output_and_names_are_text_not_html(page):
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    section = page.locator("section#bustm-dev").inner_text()
    assert PWN_OUTPUT in section
    assert "A & B < C > D" in section and "同上 </script><!-- 注释" in section
    assert PWN_NAME in page.locator("#leaderboard tbody").inner_text()
    # the long prediction is collapsed and still complete
    details = page.locator("section#bustm-dev table.examples details")
    assert details.count() == 1
    assert details.locator("pre").text_content() == LONG_PREDICTION
    assert page.evaluate("typeof window.__pwned") == "undefined"


@pytest.mark.browser
def test_embedded_json_round_trips(page):
    text = page.locator("script#bench-data").text_content()
    assert json.loads(text) == example_data()
    assert page.evaluate("JSON.parse(document.getElementById('bench-data').textContent)") \
        == example_data()


def _chinese_font_families() -> list[str]:
    """Installed font families that cover Chinese, per fontconfig (what Chromium uses on Linux)."""
    if not shutil.which("fc-list"):
        return []
    out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    return sorted({f.strip() for line in out.splitlines() for f in line.split(",") if f.strip()})


def _platform_fonts(pg, selector: str) -> dict[str, int]:
    """{family: glyphs drawn with it} for the text of `selector`, as Chromium's layout says."""
    cdp = pg.context.new_cdp_session(pg)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, f"no node {selector}"
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return {f["familyName"]: f["glyphCount"] for f in fonts}


@pytest.mark.browser
def test_chinese_is_drawn_with_a_cjk_font(page):
    families = _chinese_font_families()
    require(any("WenQuanYi Micro Hei" in f for f in families),
            "no WenQuanYi Micro Hei font "
            "(apt-get install -y fonts-wqy-microhei, or `make browser`)")
    # The check the issue asked for. Chromium answers true for *any* installed-or-not system font
    # name (it only tracks @font-face loads), so the CDP check below is the one that proves it.
    assert page.evaluate("""document.fonts.check('14px "WenQuanYi Micro Hei"', '中文')""") is True

    # Every Simplified Chinese face is in the computed stacks of body text, <pre> and monospace.
    page.evaluate("""() => { const c = document.createElement('code'); c.id = 'cjk-probe';
                             c.textContent = '等宽中文：语句一'; document.body.appendChild(c); }""")
    for sel in ("body", "section#bustm-dev table.examples pre", "td.mono", "#cjk-probe"):
        stack = page.eval_on_selector(sel, "e => getComputedStyle(e).fontFamily")
        missing = [f for f in CJK_FONTS if f'"{f}"' not in stack and f not in stack.split(", ")]
        assert not missing, f"{sel}: {missing} not in {stack}"

    # What the layout really drew the Chinese with: every Han glyph comes from a CJK face.
    pre = "section#bustm-dev table.examples tbody tr:first-child td:nth-child(3) pre"
    assert page.locator(pre).text_content() == CHINESE_INPUT
    for sel, text in ((pre, CHINESE_INPUT), ("#cjk-probe", "等宽中文：语句一")):
        used = _platform_fonts(page, sel)
        cjk = {f: n for f, n in used.items() if CJK_FAMILY.search(f)}
        assert cjk, f"{sel}: no CJK font drew the Chinese text; fonts used: {used}"
        assert sum(cjk.values()) >= len(HAN.findall(text)), (sel, used)
    # and it is the page's choice, not the system's fallback: the first installed face of its stack
    computed = page.eval_on_selector(pre, "e => getComputedStyle(e).fontFamily")
    stack = [f.strip('" ') for f in computed.split(",")]
    first = next(f for f in stack if f in CJK_FONTS and f in families)
    cjk_used = {f: n for f, n in _platform_fonts(page, pre).items() if CJK_FAMILY.search(f)}
    assert max(cjk_used, key=cjk_used.get) == first

    shot = Path("/tmp/bench_leaderboard_cjk.png")
    page.locator("section#bustm-dev").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # look at it: Chinese glyphs, not boxes
    assert page.errors == []


@pytest.mark.browser
def test_remote_code_badge_and_row_counts_in_browser(page):
    row = page.locator('#leaderboard tbody tr[data-model="qwen3-mini"]')
    badge = row.locator("td.model .badge")
    assert badge.is_visible() and badge.inner_text() == "remote code"
    assert "trust_remote_code" in badge.get_attribute("title")
    assert page.locator("#leaderboard tbody .badge").count() == 1
    # the badge sits in the name cell but sorting by name still uses the name alone
    _click(page, "model")
    assert _names(page) == [PWN_NAME, "qwen3-mini", "tiny-a", "tiny-b"]

    head = page.locator('#leaderboard th[data-col="task:bustm-dev"] a.warn-mark')
    assert head.is_visible() and head.inner_text() == "⚠ 1"
    assert page.locator("#leaderboard thead a.warn-mark").count() == 1

    section = page.locator("section#bustm-dev")
    assert section.locator("p.rows").inner_text() == \
        f"159 of 162 rows scored · 1 bad row skipped · 2 dropped ({DROP_REASON})"
    bad = section.locator("details.bad-rows")
    assert not bad.locator("li").first.is_visible()  # folded until asked
    bad.locator("summary").click()
    item = bad.locator("li").first
    assert item.is_visible()
    first_bad = BUSTM_ROWS["bad_rows"][0]
    assert item.inner_text() == f"{first_bad['where']} {first_bad['reason']}"
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("section#eprstmt-dev p.rows").count() == 0
    assert page.errors == []


@pytest.mark.browser
def test_cut_text_states_its_full_length_in_browser(open_page):
    data = example_data()
    e = data["examples"]["bustm-dev"][2]
    e["prediction"], e["prediction_chars"] = "答" * MAX_TEXT_CHARS, 52_428_800
    pg = open_page(data)
    cell = pg.locator("section#bustm-dev table.examples tbody tr").nth(2).locator("td").nth(5)
    assert "(52,428,800 chars, first 2,000 kept)" in cell.locator("summary").inner_text()
    note = cell.locator(".cut")  # visible while the text is folded, and after it is opened
    assert note.is_visible() and note.inner_text() == "… (shown 2,000 of 52,428,800 characters)"
    assert not cell.locator("pre").is_visible()
    cell.locator("summary").click()
    assert cell.locator("pre").is_visible() and note.is_visible()
    assert len(cell.locator("pre").text_content()) == MAX_TEXT_CHARS
    # texts that were not cut carry no note
    assert pg.locator("section#bustm-dev .cut").count() == 1
    assert pg.errors == []


def test_nul_and_bidi_controls_from_a_model_are_shown_not_obeyed():
    """Escaping stops markup, not these: a NUL byte, or a right-to-left override that reverses
    everything after it on the page. Each is printed as a visible escape."""
    data = example_data()
    data["examples"]["ocnli-dev"][0]["prediction"] = "A\x00B \u202egnp.exe\u202c \u2067x\u2069"
    html = render_leaderboard(data)
    shown = html.replace(_json_block(html), "")  # the JSON block is data, never drawn
    assert "\x00" not in html and not re.search("[\u202a-\u202e\u2066-\u2069]", shown)
    assert "A\\u0000B \\u202egnp.exe\\u202c \\u2067x\\u2069" in html

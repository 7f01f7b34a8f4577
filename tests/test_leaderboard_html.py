"""The leaderboard page: escaping, sorting, honesty marks, embedded data, and zero JS errors in a
real headless Chromium (Debian's /usr/bin/chromium driven by playwright)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.report.render import (
    fmt_duration,
    fmt_params,
    fmt_rate,
    render_leaderboard,
    write_leaderboard,
)
from tests.helpers import require

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PWN_OUTPUT = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
PWN_NAME = '<img src=x onerror="window.__pwned=3">evil&co'
LONG_PREDICTION = "答：" + "这是一段很长的模型输出。" * 60 + "\nB"
TASKS = ["bustm-dev", "ocnli-dev", "eprstmt-dev", "chid-dev"]


def _m(value, lo, hi, n):
    return {"value": value, "ci_low": lo, "ci_high": hi, "n": n}


def example_data() -> dict:
    """A realistic leaderboard dict, in exactly the shape `leaderboard_data` produces."""
    sigs = {"bustm-dev": ("bustm", "gen", "acc|mode:gen-oc|post:first_capital", 160),
            "ocnli-dev": ("ocnli", "gen", "acc|mode:gen-oc|post:first_capital", 160),
            "eprstmt-dev": ("eprstmt", "ppl", "acc|mode:ppl-oc|norm:none", 160),
            "chid-dev": ("chid", "ppl", "acc|mode:ppl-oc|norm:none", 160)}
    tasks = [{"key": k, "name": v[0], "split": "dev", "mode": v[1], "signature": v[2], "n": v[3]}
             for k, v in sigs.items()]
    models = [
        {"name": "qwen3-mini", "fingerprint": "ab12cd34ef56" * 5 + "abcd", "params": 596_049_920,
         "dtype": "bfloat16", "device": "cuda", "wall_s": 84.2, "tokens_pushed": 1_204_332,
         "tokens_per_s": 14303.2, "run_id": "r-20261122-0001",
         "scores": {"bustm-dev": _m(0.6125, 0.5375, 0.6875, 160),
                    "ocnli-dev": _m(0.41875, 0.34375, 0.49375, 160),
                    "eprstmt-dev": _m(0.8375, 0.78125, 0.89375, 160),
                    "chid-dev": _m(0.55, 0.475, 0.625, 160)},
         "average": _m(0.6046875, 0.569, 0.641, 640)},
        {"name": "tiny-a", "fingerprint": "0f1e2d3c4b5a" * 5 + "0000", "params": 1_234_567,
         "dtype": "float32", "device": "cpu", "wall_s": 12.3, "tokens_pushed": 45_678,
         "tokens_per_s": 3712.0, "run_id": "r-20261122-0002",
         "scores": {"bustm-dev": _m(0.53125, 0.45, 0.6125, 160),
                    "eprstmt-dev": _m(0.5, 0.425, 0.575, 160),
                    "chid-dev": _m(0.14375, 0.09375, 0.2, 160)},  # no ocnli-dev score
         "average": _m(0.3916, 0.35, 0.434, 480)},
        {"name": PWN_NAME, "fingerprint": "deadbeef" * 8, "params": 2_400_000,
         "dtype": "float32", "device": "cpu", "wall_s": 151.0, "tokens_pushed": 98_765,
         "tokens_per_s": 654.07, "run_id": "r-20261122-0003",
         "scores": {"bustm-dev": _m(0.45, 0.375, 0.525, 160),
                    "ocnli-dev": _m(0.36875, 0.29375, 0.44375, 160),
                    "eprstmt-dev": _m(0.525, 0.45, 0.6, 160),
                    "chid-dev": _m(0.1625, 0.10625, 0.21875, 160)},
         "average": _m(0.3765625, 0.339, 0.414, 640)},
        {"name": "tiny-b", "fingerprint": "77aa88bb99cc" * 5 + "1234", "params": 3_100_000,
         "dtype": "float32", "device": "cpu", "wall_s": 3725.0, "tokens_pushed": 51_002,
         "tokens_per_s": 13.7, "run_id": "r-20261122-0004",
         "scores": {"bustm-dev": _m(0.5, 0.425, 0.58125, 160),
                    "ocnli-dev": _m(0.33125, 0.2625, 0.40625, 160),
                    "eprstmt-dev": _m(0.49375, 0.41875, 0.56875, 160),
                    "chid-dev": _m(0.15, 0.09375, 0.20625, 160)},
         "average": _m(0.36875, 0.332, 0.405, 640)},
    ]
    examples = {
        "bustm-dev": [
            {"model": "tiny-a", "sample_id": "L3",
             "input": "语句一：“我要去银行”\n语句二：“我想去取钱”\n请判断语句一和语句二说的是否是一个意思？\n"
                      "A. 无关\nB. 相关\n请从“A”，“B”中进行选择。\n答：",
             "target": "B", "prediction": PWN_OUTPUT, "answer": "B", "correct": True},
            {"model": PWN_NAME, "sample_id": "L3", "input": "同上 </script><!-- 注释",
             "target": "B", "prediction": "A & B < C > D", "answer": "A", "correct": False},
            {"model": "qwen3-mini", "sample_id": "L7", "input": "语句一：……",
             "target": "A", "prediction": LONG_PREDICTION, "answer": "B", "correct": False},
        ],
        "ocnli-dev": [
            {"model": "qwen3-mini", "sample_id": "L0", "input": "阅读文章：……\nA. 对\nB. 错\nC. 可能",
             "target": "A", "prediction": "A", "answer": "A", "correct": True},
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


# ----------------------------------------------------------------------------- browser --

@pytest.fixture(scope="module")
def browser():
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "playwright is not installed (pip install playwright)"
    require(not reason, f"browser tests cannot run: {reason}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, tmp_path):
    """The example page, loaded from file://, with errors and requests recorded."""
    out = write_leaderboard(example_data(), tmp_path / "leaderboard.html")
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.errors, pg.requests = [], []
    pg.on("console", lambda m: pg.errors.append(f"console: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.url_expected = out.as_uri()
    pg.goto(out.as_uri())
    pg.wait_for_load_state("load")
    yield pg
    ctx.close()


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
    details = page.locator("section#bustm-dev details")
    assert details.count() == 1
    assert details.locator("pre").text_content() == LONG_PREDICTION
    assert page.evaluate("typeof window.__pwned") == "undefined"


@pytest.mark.browser
def test_embedded_json_round_trips(page):
    text = page.locator("script#bench-data").text_content()
    assert json.loads(text) == example_data()
    assert page.evaluate("JSON.parse(document.getElementById('bench-data').textContent)") \
        == example_data()

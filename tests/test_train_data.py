"""Training data readers: every format reads into the same rows; bad rows are reported by
file:line and reason, skipped and counted; dataset_info.json entries are followed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.rows import check
from bench.train.data import PreferenceRow, SFTRow, read_preference, read_sft
from bench.train.dataset_info import DatasetSource, load_dataset_info, read_source

S, U1, A1 = "你是一个乐于助人的助手。", "北京是哪个国家的首都？", "中国。"
INSTRUCTION, QUERY = "请回答下面的问题。", "它有多少人口？"
U2, A2 = f"{INSTRUCTION}\n{QUERY}", "大约两千两百万。"
C, R = "大约两千两百万人。", "我不知道。"


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


CONVERSATION = (msg("system", S), msg("user", U1), msg("assistant", A1), msg("user", U2),
                msg("assistant", A2))
PROMPT = CONVERSATION[:4]


def sg(tag: str, value: str) -> dict:
    return {"from": tag, "value": value}


def write(path, rows: list, array: bool = False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if array:
        items = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in rows)
        path.write_text(f"[\n{items}\n]\n", encoding="utf-8")  # one item a line from line 2
    else:
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
                                + "\n" for r in rows), encoding="utf-8")
    return path


SFT_ROWS = {
    "alpaca": {"instruction": INSTRUCTION, "input": QUERY, "output": A2, "system": S,
               "history": [[U1, A1]]},
    "sharegpt": {"conversations": [sg("system", S), sg("human", U1), sg("gpt", A1), sg("human", U2),
                                   sg("gpt", A2)]},
    "messages": {"messages": list(CONVERSATION)},
    "xtuner": {"conversation": [{"system": S, "input": U1, "output": A1},
                                {"input": U2, "output": A2}]},
}

PREFERENCE_ROWS = {
    "lf-ranking": {"instruction": INSTRUCTION, "input": QUERY, "chosen": C, "rejected": R,
                   "system": S, "history": [[U1, A1]]},
    "lf-sharegpt-ranking": {"conversations": [sg("system", S), sg("human", U1), sg("gpt", A1),
                                              sg("human", U2)],
                            "chosen": sg("gpt", C), "rejected": sg("gpt", R)},
    "trl": {"prompt": list(PROMPT), "chosen": [msg("assistant", C)],
            "rejected": [msg("assistant", R)]},
}


@pytest.mark.parametrize("fmt", SFT_ROWS)
@pytest.mark.parametrize("given", ["auto", "explicit"])
def test_every_sft_format_reads_into_the_same_messages(tmp_path, fmt, given):
    path = write(tmp_path / "train.jsonl", [SFT_ROWS[fmt]])
    rows, log = read_sft(path, fmt if given == "explicit" else "auto")
    assert rows == [SFTRow("L1", CONVERSATION)]
    assert (log.kept, log.bad_rows) == (1, [])


def test_sharegpt_variants_and_json_arrays_read_the_same(tmp_path):
    """user/assistant tags, a top-level system, and LLaMA-Factory's .json arrays."""
    variants = [
        {"system": S, "conversations": [sg("user", U1), sg("assistant", A1), sg("human", U2),
                                        sg("gpt", A2)]},
        {"system": "", "conversations": SFT_ROWS["sharegpt"]["conversations"]},
        {"instruction": INSTRUCTION, "input": QUERY, "output": A2, "system": S,
         "history": [[U1, A1]]},
    ]
    write(tmp_path / "d" / "a.json", variants[:2], array=True)
    write(tmp_path / "d" / "b.jsonl", variants[2:])
    rows, log = read_sft(tmp_path / "d")
    assert [r.id for r in rows] == ["a:L2", "a:L3", "b:L1"]  # line where each array item starts
    assert all(r.messages == CONVERSATION for r in rows) and log.kept == 3


@pytest.mark.parametrize("fmt", PREFERENCE_ROWS)
def test_every_preference_format_reads_into_the_same_pair(tmp_path, fmt):
    path = write(tmp_path / "pairs.jsonl", [PREFERENCE_ROWS[fmt]])
    rows, log = read_preference(path)
    assert rows == [PreferenceRow("L1", PROMPT, C, R)] and log.kept == 1


def test_trl_implicit_prompt_and_plain_strings(tmp_path):
    single = {
        "trl-plain": {"prompt": U2, "chosen": C, "rejected": R, "system": S},
        "lf-ranking": {"instruction": INSTRUCTION, "input": QUERY, "chosen": C, "rejected": R,
                       "system": S},
        "lf-sharegpt-ranking": {"system": S, "conversations": [sg("human", U2)],
                                "chosen": sg("gpt", C), "rejected": sg("gpt", R)},
    }
    want = PreferenceRow("L1", (msg("system", S), msg("user", U2)), C, R)
    for name, row in single.items():
        assert read_preference(write(tmp_path / f"{name}.jsonl", [row]))[0] == [want], name
    implicit = {"chosen": [*PROMPT, msg("assistant", C)],
                "rejected": [*PROMPT, msg("assistant", R)]}
    rows, _ = read_preference(write(tmp_path / "implicit.jsonl", [implicit]), "trl")
    assert rows == [PreferenceRow("L1", PROMPT, C, R)]


def test_dataset_info_alpaca_with_column_mapping(tmp_path):
    write(tmp_path / "sft.jsonl", [{"question": INSTRUCTION, "context": QUERY, "answer": A2,
                                    "sys": S, "turns": [[U1, A1]]},
                                   {"question": "q", "answer": ""},
                                   {"instruction": "q", "output": "a"}])
    write(tmp_path / "plain.jsonl", [{"instruction": U2, "output": A2, "system": S}])
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        "mine": {"file_name": "sft.jsonl", "columns": {
            "prompt": "question", "query": "context", "response": "answer", "system": "sys",
            "history": "turns"}},
        "plain": {"file_name": "plain.jsonl"},
    }), encoding="utf-8")
    source = load_dataset_info(tmp_path / "dataset_info.json", "mine")
    assert (source.path, source.kind, source.fmt) == (tmp_path / "sft.jsonl", "sft", "alpaca")
    rows, log = read_source(source)
    assert rows == [SFTRow("L1", CONVERSATION)] and log.kept == 1
    assert [r for _, r in log.bad_rows] == [  # reasons name the file's own keys
        "'answer' is empty",
        "expected alpaca keys 'question', 'answer'; got 'instruction', 'output'"]
    # as in LLaMA-Factory, 'system' is read only when the columns name it
    rows, _ = read_source(load_dataset_info(tmp_path / "dataset_info.json", "plain"))
    assert rows[0].messages == (msg("user", U2), msg("assistant", A2))


def test_dataset_info_ranking_alpaca_and_sharegpt_with_tags(tmp_path):
    write(tmp_path / "rank.jsonl", [{"instruction": INSTRUCTION, "input": QUERY, "better": C,
                                     "worse": R, "system": S, "history": [[U1, A1]]}])
    openai_style = {"dialog": [msg("system", S), msg("user", U1), msg("assistant", A1),
                               msg("user", U2)],
                    "chosen": msg("assistant", C), "rejected": msg("assistant", R)}
    write(tmp_path / "data" / "dpo.json", [openai_style], array=True)
    tags = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
            "assistant_tag": "assistant", "system_tag": "system"}
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        "rank": {"file_name": "rank.jsonl", "ranking": True, "columns": {
            "prompt": "instruction", "query": "input", "chosen": "better", "rejected": "worse",
            "system": "system", "history": "history"}},
        "dpo": {"file_name": "data/dpo.json", "formatting": "sharegpt", "ranking": True,
                "columns": {"messages": "dialog", "chosen": "chosen", "rejected": "rejected"},
                "tags": tags},
    }), encoding="utf-8")
    info = tmp_path / "dataset_info.json"
    rank = load_dataset_info(info, "rank")
    assert (rank.kind, rank.fmt) == ("preference", "lf-ranking")
    assert read_source(rank)[0] == [PreferenceRow("L1", PROMPT, C, R)]
    dpo = load_dataset_info(info, "dpo")
    assert dpo == DatasetSource(tmp_path / "data" / "dpo.json", "preference", "lf-sharegpt-ranking",
                                {"system": None, "messages": "dialog", "chosen": "chosen",
                                 "rejected": "rejected"}, tags)
    assert read_source(dpo)[0] == [PreferenceRow("L2", PROMPT, C, R)]
    # with tags, LLaMA-Factory's tags are exact: 'human' is no longer a user
    write(tmp_path / "data" / "dpo.json", [{**openai_style, "dialog": [msg("human", U2)]}])
    _, log = read_source(dpo)
    assert log.bad_rows == [(f"{tmp_path / 'data' / 'dpo.json'}:1", "'dialog' turn 1: unknown "
                             "role 'human' in 'role' (expected one of: user, assistant, system)")]


def test_dataset_info_errors(tmp_path):
    info = tmp_path / "dataset_info.json"
    write(tmp_path / "a.jsonl", [{"instruction": "q", "output": "a"}])
    info.write_text(json.dumps({
        "alpaca_zh": {"file_name": "a.jsonl"},
        "pictures": {"file_name": "a.jsonl", "columns": {"images": "images"}},
        "typo": {"file_name": "a.jsonl", "columns": {"promt": "q"}},
        "hub": {"hf_hub_url": "someone/data"},
        "gone": {"file_name": "missing.jsonl"},
    }), encoding="utf-8")
    with pytest.raises(BenchError, match=r"no dataset 'alpaca-zh' \(did you mean 'alpaca_zh'\?\)"):
        load_dataset_info(info, "alpaca-zh")
    with pytest.raises(BenchError, match="column 'images' is not supported"):
        load_dataset_info(info, "pictures")
    with pytest.raises(BenchError, match=r"unknown column 'promt' \(did you mean 'prompt'\?\)"):
        load_dataset_info(info, "typo")
    with pytest.raises(BenchError, match="local files only"):
        load_dataset_info(info, "hub")
    with pytest.raises(BenchError, match="'missing.jsonl' not found"):
        load_dataset_info(info, "gone")


def test_bad_sft_rows_are_reported_skipped_and_counted(tmp_path):
    good = SFT_ROWS["sharegpt"]
    path = write(tmp_path / "chat.jsonl", [
        good,
        "{not json",
        "[1]",
        {"instruction": "q", "output": "a"},
        {"conversations": [sg("human", "q"), sg("gpt", "  ")]},
        {"conversations": [sg("human", "q"), sg("gpt", 3)]},
        {"conversations": [sg("human", "q"), sg("gpt", "a"), sg("user", "q2"), sg("user", "q3")]},
        {"conversations": [sg("human", "q")]},
        {"conversations": [sg("human", "q"), sg("bot", "a")]},
        {"conversations": [sg("human", "q"), sg("system", "s"), sg("gpt", "a")]},
        {"conversations": []},
        {"conversations": [{"value": "q"}]},
        good,
    ])
    rows, log = read_sft(path)
    assert [r.id for r in rows] == ["L1", "L13"]
    assert log.bad_rows == [(f"{path}:{line}", reason) for line, reason in [
        (2, "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (3, "expected a JSON object, got list"),
        (4, "expected sharegpt keys 'conversations'; got 'instruction', 'output' (it looks like "
            "alpaca)"),
        (5, "'conversations' turn 2: 'value' is empty"),
        (6, "'conversations' turn 2: 'value' must be a string, not int"),
        (7, "'conversations' turn 4: expected an assistant message after a user message, got "
            "'user'"),
        (8, "'conversations' ends with a user message; the last must be an assistant one"),
        (9, "'conversations' turn 2: unknown role 'bot' in 'from' (expected one of: human, user, "
            "gpt, assistant, system)"),
        (10, "'conversations' turn 2: a system message may only come first"),
        (11, "'conversations' is empty"),
        (12, "'conversations' turn 1: 'from' is missing"),
    ]]
    assert (log.kept, len(log.bad_rows), log.read) == (2, 11, 13)


def test_bad_alpaca_xtuner_and_messages_rows(tmp_path):
    alpaca = write(tmp_path / "alpaca.jsonl", [
        {"instruction": "q", "output": "a"},
        {"instruction": "q", "output": " \n"},
        {"instruction": "q", "input": ["x"], "output": "a"},
        {"instruction": "q", "output": "a", "history": [["only one"]]},
        {"instruction": "q", "output": "a", "history": [["", "a"]]},
        {"instruction": "q", "output": "a", "system": 5},
        {"output": "a"},
        {"text": "a"},
    ])
    rows, log = read_sft(alpaca)
    assert len(rows) == 1 and [r for _, r in log.bad_rows] == [
        "'output' is empty",
        "'input' must be a string, not list",
        "'history' item 1 must be a [user, assistant] pair",
        "'history' item 1: the user text is empty",
        "'system' must be a string, not int",
        "'instruction' is missing",
        "expected alpaca keys 'instruction', 'output'; got 'text'",
    ]
    xtuner = write(tmp_path / "xtuner.jsonl", [
        {"conversation": [{"input": "", "output": "a"}]},
        {"conversation": [{"system": "s", "input": "q", "output": "a"},
                          {"system": "t", "input": "q", "output": "a"}]},
        {"conversation": "q"},
    ])
    assert [r for _, r in read_sft(xtuner)[1].bad_rows] == [
        "'conversation' turn 1: 'input' is empty",
        "'conversation' turn 2: 'system' differs from the first turn's; only one system prompt "
        "per conversation is supported",
        "'conversation' must be a list of turns, not str",
    ]
    messages = write(tmp_path / "messages.jsonl", [
        {"messages": [msg("system", ""), msg("user", "q"), msg("assistant", "a")]},
        {"messages": [msg("assistant", "a")]},
        {"messages": [msg("user", "q"), msg("tool", "a")]},
    ])
    rows, log = read_sft(messages)
    assert rows == [SFTRow("L1", (msg("user", "q"), msg("assistant", "a")))]  # empty system: none
    assert [r for _, r in log.bad_rows] == [
        "'messages' turn 1: expected a user message first, got 'assistant'",
        "'messages' turn 2: unknown role 'tool' in 'role' (expected one of: system, user, "
        "assistant)",
    ]


def test_bad_preference_rows(tmp_path):
    trl = write(tmp_path / "trl.jsonl", [
        {"prompt": "q", "chosen": "a", "rejected": "b"},
        {"prompt": "q", "chosen": "a", "rejected": "a"},
        {"prompt": "q", "chosen": "a"},
        {"prompt": "q", "rejected": "a"},
        {"prompt": "q", "chosen": 1, "rejected": "b"},
        {"prompt": "q", "chosen": "a", "rejected": "   "},
        {"chosen": "qa", "rejected": "qb"},
        {"prompt": [msg("user", "q"), msg("assistant", "a")], "chosen": [msg("assistant", "a")],
         "rejected": [msg("assistant", "b")]},
        {"prompt": [msg("user", "q")], "chosen": [msg("assistant", "a"), msg("user", "b")],
         "rejected": [msg("assistant", "b")]},
        {"chosen": [msg("user", "q"), msg("assistant", "a")],
         "rejected": [msg("user", "q"), msg("assistant", "a")]},
        {"instruction": "q", "output": "a"},
    ])
    rows, log = read_preference(trl)
    assert [r.id for r in rows] == ["L1"]
    assert [r for _, r in log.bad_rows] == [
        "'chosen' equals 'rejected'",
        "'rejected' is missing",
        "'chosen' is missing",
        "'chosen' must be a string, not int",
        "'rejected' is empty",
        "'prompt' is missing (an implicit prompt is read only from conversational 'chosen' and "
        "'rejected')",
        "'prompt' ends with an assistant message; the last must be a user one",
        "'chosen' must hold one assistant message, got 2 messages",
        "'chosen' equals 'rejected'",
        "expected trl keys 'chosen', 'rejected', 'prompt'; got 'instruction', 'output' (it looks "
        "like lf-ranking)",
    ]
    sharegpt = write(tmp_path / "sg.jsonl", [
        {"conversations": [sg("human", "q")], "chosen": sg("human", "a"),
         "rejected": sg("gpt", "b")},
        {"conversations": [sg("human", "q"), sg("gpt", "a")], "chosen": sg("gpt", "a"),
         "rejected": sg("gpt", "b")},
        {"conversations": [sg("human", "q")], "chosen": "a", "rejected": sg("gpt", "b")},
        {"conversations": [sg("human", "q")], "chosen": sg("gpt", "a"), "rejected": sg("gpt", "a")},
    ])
    assert [r for _, r in read_preference(sharegpt)[1].bad_rows] == [
        "'chosen' must hold one assistant message, got a 'human' message",
        "'conversations' ends with an assistant message; the last must be a user one",
        "'chosen' must be one message object with 'from' and 'value', not str",
        "'chosen' equals 'rejected'",
    ]


def test_check_stops_past_max_bad_fraction_and_on_no_usable_row(tmp_path):
    path = write(tmp_path / "p.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"},
                                        {"prompt": "q", "chosen": "a", "rejected": "a"}])
    _, log = read_preference(path)
    with pytest.raises(BenchError, match=rf"{path}:2: 'chosen' equals 'rejected'(.|\n)*1 of 2 rows "
                       "are bad"):
        check(log, 0.05)
    check(log, 0.5)
    _, log = read_preference(write(tmp_path / "none.jsonl", [{"chosen": "a", "rejected": "a"}]))
    with pytest.raises(BenchError, match="no samples"):
        check(log, 1.0)


def test_format_told_by_the_first_row_it_can_tell(tmp_path):
    path = write(tmp_path / "x.jsonl", [{"text": "t"}, {"messages": list(CONVERSATION)}])
    rows, log = read_sft(path)
    assert [r.id for r in rows] == ["L2"]
    assert log.bad_rows == [(f"{path}:1", "cannot tell the sft format: expected a key "
                             "'conversation' (xtuner), 'conversations' (sharegpt), 'messages' "
                             "(messages), 'instruction' (alpaca); got 'text'")]


def test_unknown_format_suggests(tmp_path):
    path = write(tmp_path / "x.jsonl", [SFT_ROWS["sharegpt"]])
    with pytest.raises(BenchError, match=r"unknown sft data format 'sharegtp' \(did you mean "
                       r"'sharegpt'\?\); available: alpaca, auto, messages, sharegpt, xtuner"):
        read_sft(path, "sharegtp")
    with pytest.raises(BenchError, match="unknown preference data format 'alpaca'"):
        read_preference(path, "alpaca")
    with pytest.raises(BenchError, match=r"unknown tag 'role' \(did you mean 'role_tag'\?\)"):
        read_sft(path, tags={"role": "from"})


def test_limit_stops_reading(tmp_path):
    path = write(tmp_path / "x.jsonl", [SFT_ROWS["alpaca"]] * 3 + ["{broken"])
    rows, log = read_sft(path, limit=2)
    assert [r.id for r in rows] == ["L1", "L2"] and (log.kept, log.bad_rows) == (2, [])


def test_file_level_errors(tmp_path):
    with pytest.raises(BenchError, match="not found"):
        read_sft(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"instruction": "q", "output": "a"},\n  {"instruction": \n]',
                   encoding="utf-8")
    with pytest.raises(BenchError, match=rf"{bad}:4: not valid JSON"):
        read_sft(bad)
    (tmp_path / "t.csv").write_text("instruction,output\n", encoding="utf-8")
    with pytest.raises(BenchError, match="convert it to JSON Lines"):
        read_sft(tmp_path / "t.csv")


def test_bench_train_prints_counts_and_records_every_row_it_skips(tmp_path, tiny_model_dir):
    """`bench run`'s row policy for training rows: each bad row printed as file:line, a summary
    by reason when there are many, the counts in the training's manifest; a null key is named
    null, and the way out names the training config (it named the suite)."""
    import sqlite3

    from tests.helpers import bench_cli, write_models

    good = (Path(__file__).parents[1] / "bench/domain/data/pref_train.jsonl").read_text(
        "utf-8").splitlines()[:88]
    same = json.loads(good[0]) | {"rejected": json.loads(good[0])["chosen"]}
    lines = good[:40] + ["{not json"] * 5 + [json.dumps(same, ensure_ascii=False)] * 4 + \
        [json.dumps(json.loads(good[1]) | {"chosen": None}, ensure_ascii=False)] * 3 + good[40:]
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)
    config = {"method": "dpo", "base": "tiny", "output": "tiny-dpo", "data": ["pairs.jsonl"],
              "quantization": "none", "max_steps": 1, "batch_size": 2, "max_length": 128,
              "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}
    (tmp_path / "dpo.yaml").write_text(json.dumps(config), encoding="utf-8")
    done = bench_cli("train", "dpo.yaml", "--models", "models.yaml", "--results", "results",
                     cwd=tmp_path)
    assert done.returncode == 2  # 12 of 100 bad, over the default 5%
    assert "raise max_bad_fraction in the training config to train on the rest" in done.stderr
    (tmp_path / "dpo.yaml").write_text(json.dumps(config | {"max_bad_fraction": 0.2}), "utf-8")
    done = bench_cli("train", "dpo.yaml", "--models", "models.yaml", "--results", "results",
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    err = " ".join(done.stderr.split())
    assert "pairs.jsonl:41: " in err and "pairs.jsonl:46: 'chosen' equals 'rejected'" in err
    assert "... and 2 more bad rows; all 12 by reason: 5 × " in err
    assert "4 × 'chosen' equals 'rejected'" in err and "3 × 'chosen' is null" in err
    con = sqlite3.connect(tmp_path / "results" / "bench.sqlite")
    [record] = [json.loads(r) for (r,) in con.execute("SELECT record FROM trainings")]
    con.close()
    read = record["manifest"]["rows_read"]
    assert (read["read"], read["kept"], read["bad"]) == (100, 88, 12)
    assert record["manifest"]["rows"] == 88 and len(read["bad_rows"]) == 12

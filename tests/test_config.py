"""Config files: a bad file is one message naming file, key, line and what is allowed."""

from pathlib import Path

import pytest

from bench.config import load_models, load_suite
from bench.errors import BenchError

ROOT = Path(__file__).parents[1]


def write(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_repo_configs_load():
    models = load_models(ROOT / "models.yaml")
    assert [m.name for m in models.models] == ["tiny-a", "tiny-b"]
    from bench.compare.policy import load_policy
    from bench.pipeline.config import load_pipeline

    others = {"gate.yaml": load_policy, "loop.yaml": load_pipeline}  # suites/ holds these too
    for path in sorted((ROOT / "suites").glob("*.yaml")):
        if path.name in others:
            assert others[path.name](path), path
            continue
        spec = load_suite(path)
        assert spec.tasks, path


def test_suite_defaults_fill_entries(tmp_path):
    spec = load_suite(write(tmp_path, "name: s\nmode: ppl\nlimit: 5\ntasks:\n  - bustm\n"
                                      "  - {name: chid, mode: gen, split: test}\n"))
    first, second = spec.resolved_tasks()
    assert (first.name, first.mode, first.split, first.limit) == ("bustm", "ppl", "dev", 5)
    assert (second.name, second.mode, second.split, second.limit) == ("chid", "gen", "test", 5)


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, "models:\n  - name: a\n    path: x\n    dtyp: float32\n")
    with pytest.raises(BenchError) as err:
        load_models(path)
    msg = str(err.value)
    assert f"{path}:4" in msg
    assert "models.0.dtyp" in msg
    assert "did you mean 'dtype'" in msg


def test_malformed_yaml_names_line(tmp_path):
    path = write(tmp_path, "name: s\ntasks: [bustm\nmode: gen\n")
    with pytest.raises(BenchError, match=r"f\.yaml:\d+: malformed YAML"):
        load_suite(path)


def test_bad_value_lists_allowed(tmp_path):
    path = write(tmp_path, "name: s\nmode: generate\ntasks: [bustm]\n")
    with pytest.raises(BenchError) as err:
        load_suite(path)
    assert "mode" in str(err.value) and "'gen' or 'ppl'" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(BenchError, match="file not found"):
        load_suite(tmp_path / "nope.yaml")


def test_unknown_model_name_suggests(tmp_path):
    models = load_models(ROOT / "models.yaml")
    with pytest.raises(BenchError, match="did you mean 'tiny-a'"):
        models.select(["tiny-aa"])


def test_duplicate_model_names_rejected(tmp_path):
    path = write(tmp_path, "models:\n  - {name: a, path: x}\n  - {name: a, path: y}\n")
    with pytest.raises(BenchError, match=r"f\.yaml:3: model name 'a' is used twice \(lines 2 and 3\)"):
        load_models(path)


@pytest.mark.parametrize("text,kind", [("- bustm\n- tnews\n", "list"), ("just words\n", "string")])
def test_a_file_that_is_not_a_mapping_is_told_the_keys_it_needs(tmp_path, text, kind):
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BenchError) as err:
        load_suite(path)
    assert str(err.value) == (f"{path}:1: (top level): expected a mapping of keys (required: name, "
                              f"tasks), not a {kind}; see the README for this file's layout")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BenchError, match=r"required: models\), not a "):
        load_models(path)


def test_relative_model_paths_are_read_from_the_models_files_folder(tmp_path, monkeypatch):
    """As every other config's relative paths: not from wherever bench happens to run."""
    here = tmp_path / "project" / "configs"
    (here / "weights" / "m").mkdir(parents=True)
    (here / "org").mkdir()
    (here / "org" / "local").mkdir()
    (here / "models.yaml").write_text(
        "models:\n  - {name: a, path: ./weights/m, adapter: weights/m}\n"
        "  - {name: b, path: org/local}\n  - {name: hub, path: Qwen/Qwen2.5-0.5B-Instruct}\n"
        "  - {name: home, path: ~/models/x}\n"
        "  - {name: api, backend: openai, base_url: 'http://127.0.0.1:1/v1', model: m, "
        "tokenizer: ./weights/m}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # elsewhere
    by_name = {m.name: m for m in load_models(here / "models.yaml").models}
    assert by_name["a"].path == str(here / "weights" / "m")
    assert by_name["a"].adapter == str(here / "weights" / "m")  # 'org/name' that is a folder here
    assert by_name["b"].path == str(here / "org" / "local")  # an 'org/name' that is a folder here
    assert by_name["hub"].path == "Qwen/Qwen2.5-0.5B-Instruct"  # a Hub id stays one
    assert by_name["home"].path == "~/models/x"
    assert by_name["api"].tokenizer == str(here / "weights" / "m")

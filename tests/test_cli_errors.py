"""Bad input: one clear message on stderr, exit code 2, never a traceback."""

from pathlib import Path

import pytest

from tests.helpers import ROOT, bench_cli, write_models, write_suite


@pytest.fixture
def models_file(tmp_path, tiny_model_dir) -> Path:
    return write_models(tmp_path / "models.yaml", tiny=tiny_model_dir)


def assert_bad_input(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_malformed_yaml(tmp_path, models_file):
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: x\ntasks: [bustm\n", encoding="utf-8")
    assert_bad_input(bench_cli("run", "--suite", str(suite), "--models", str(models_file)),
                     "bad.yaml:", "malformed YAML")


def test_unknown_key(tmp_path, models_file):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limt=3)
    assert_bad_input(bench_cli("run", "--suite", str(suite), "--models", str(models_file)),
                     "s.yaml:4", "unknown key 'limt'", "did you mean 'limit'")


def test_unknown_model_name(tmp_path, models_file):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    assert_bad_input(bench_cli("run", "--suite", str(suite), "--models", str(models_file),
                               "--model", "tinny"), "unknown model 'tinny'", "did you mean 'tiny'")


def test_unknown_task_name(tmp_path, models_file):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustn"])
    assert_bad_input(bench_cli("run", "--suite", str(suite), "--models", str(models_file)),
                     "bustn", "did you mean 'bustm'")


def test_missing_data_dir(tmp_path, models_file):
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    proc = bench_cli("run", "--suite", str(suite), "--models", str(models_file),
                     "--data-dir", str(tmp_path / "nowhere"))
    assert_bad_input(proc, "nowhere", "does not exist")


def test_corrupt_jsonl_line(tmp_path, models_file):
    data = tmp_path / "data" / "fewclue" / "bustm"
    data.mkdir(parents=True)
    good = '{"id": 0, "sentence1": "你好", "sentence2": "您好", "label": "1"}'
    (data / "dev_few_all.json").write_text(good + "\r\n" + '{"id": 1, "sentence1": "坏' + "\r\n",
                                           encoding="utf-8")
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"])
    proc = bench_cli("run", "--suite", str(suite), "--models", str(models_file),
                     "--data-dir", str(tmp_path / "data"))
    assert_bad_input(proc, "dev_few_all.json:2", "not valid JSON")


def test_models_command_flags_missing_path(tmp_path, models_file):
    ok = bench_cli("models", "--models", str(models_file))
    assert ok.returncode == 0 and "tiny" in ok.stdout
    bad = write_models(tmp_path / "bad.yaml", ghost=tmp_path / "no-such-model")
    proc = bench_cli("models", "--models", str(bad))
    assert proc.returncode == 2 and "does not exist" in proc.stdout


def test_leaderboard_without_results_is_bad_input_and_creates_nothing(tmp_path):
    proc = bench_cli("leaderboard", "--suite", str(ROOT / "suites" / "demo.yaml"),
                     "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "lb.html"))
    assert_bad_input(proc, "no results at", "empty/bench.sqlite", "run `bench run` first")
    assert not (tmp_path / "empty").exists() and not (tmp_path / "lb.html").exists()


def test_leaderboard_without_runs_of_the_suite(tmp_path):
    from bench.store import Store

    Store(tmp_path / "r" / "bench.sqlite").close()
    proc = bench_cli("leaderboard", "--suite", str(ROOT / "suites" / "demo.yaml"),
                     "--results", str(tmp_path / "r"), "--out", str(tmp_path / "lb.html"))
    assert_bad_input(proc, "no finished runs of suite 'demo'")


@pytest.mark.parametrize("args,needle", [
    (["export", "--suite", "suites/demo.yaml", "--bogus"], "No such option: --bogus"),
    (["train"], "Missing argument 'config'"),
])
def test_command_line_mistakes_are_usage_errors(args, needle):
    assert_bad_input(bench_cli(*args), needle)


@pytest.mark.parametrize("results,needle", [
    ("FILE", "is a file, not a folder"),
    ("FILE/sub", "is a file, not a folder"),
    ("/proc/no-such/results", "cannot make a folder in /proc"),
])
def test_a_results_folder_that_cannot_be_is_bad_input_before_anything_runs(
        tmp_path, models_file, results, needle):
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    results = results.replace("FILE", str(tmp_path / "file"))
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=2)
    for args in (["run", "--suite", str(suite), "--models", str(models_file)], ["models"],
                 ["train", str(tmp_path / "missing.yaml")]):
        done = bench_cli(*args, "--results", results)
        assert done.returncode == 2, (args, done.stderr)
        assert f"--results {results}: " in done.stderr and needle in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "Error:" not in done.stderr
    assert (tmp_path / "file").read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize("damage,needle", [
    ("remove", "has no tokenizer (tokenizer.json, tokenizer.model"),
    ("empty", "has a tokenizer.json with an empty vocabulary"),
])
def test_a_model_folder_without_a_usable_tokenizer_is_refused_before_anything_loads(
        tmp_path, tiny_model_dir, damage, needle):
    """It used to pass `bench models` and die 17 s into `bench run` on a reshape error."""
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    if damage == "remove":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).unlink()
    else:
        tok = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        tok["model"]["vocab"] = {}
        (folder / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    models = write_models(tmp_path / "models.yaml", broken=folder)
    suite = write_suite(tmp_path / "s.yaml", "s", ["bustm"], limit=2)
    assert_bad_input(bench_cli("run", "--suite", str(suite), "--models", str(models), "--results",
                               str(tmp_path / "results")), f"model 'broken': path: local folder "
                     f"'{folder}' {needle}")
    assert not (tmp_path / "results").exists()
    listed = bench_cli("models", "--models", str(models), "--results", str(tmp_path / "results"))
    assert listed.returncode == 2 and needle in " ".join(listed.stdout.split()) + listed.stderr

"""`bench demo` / `make demo`: the offline default. Two tiny, different local candidates (no
downloads), scored on the FewCLUE demo suite, then the leaderboard. With BENCH_DATA_DIR (or
--data-dir) pointing at real FewCLUE data, the same suite runs on the real dev sets."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from bench.errors import BenchError
from bench.store import Store

DEMO_SUITE = Path("suites/demo.yaml")
DEMO_MODELS = Path("models.yaml")
DEMO_MODELS_DIR = Path(".cache/demo-models")
# name → build arguments; models.yaml points at DEMO_MODELS_DIR/<name>
CANDIDATES = {
    "tiny-a": {"seed": 1, "hidden_size": 64, "num_layers": 2, "vocab_size": 4000},
    "tiny-b": {"seed": 2, "hidden_size": 96, "num_layers": 3, "vocab_size": 4000},
}


def demo_corpus() -> list[str]:
    """Text for the tiny tokenizers: every string of the bundled demo data (FewCLUE demo files and
    the kids-clothing domain's training files). Not the domain's held-out sets: a tokenizer that
    has seen them packs their template phrases into a few tokens each (measured: a long rejected
    answer then had fewer tokens than its chosen one in 93% of the held-out pairs, so summed
    log-likelihoods favoured it on token count alone; without them, 59%/41%)."""
    from bench.domain import DATA_DIR as DOMAIN_DATA_DIR
    from bench.files import iter_jsonl
    from bench.tasks.loaders import DEMO_DATA_DIR

    texts: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    paths = sorted(DEMO_DATA_DIR.rglob("*.json")) + sorted(
        p for p in DOMAIN_DATA_DIR.glob("*.jsonl") if not p.name.startswith("heldout"))
    for path in paths:
        for _, record in iter_jsonl(path):
            walk(record)
    return texts


def ensure_demo_models(root: Path = DEMO_MODELS_DIR, console: Console | None = None) -> dict[str, Path]:
    import hashlib

    from bench.backends.tiny import build_tiny_model

    # the stamp holds the build arguments and a digest of the tokenizer corpus: a model built from
    # other demo text (or by an older bench, whose stamp has no digest) is rebuilt
    corpus = demo_corpus()
    digest = hashlib.sha256(json.dumps(corpus, ensure_ascii=False).encode("utf-8")).hexdigest()
    paths = {}
    for name, kwargs in CANDIDATES.items():
        path = root / name
        stamp = path / "bench_tiny.json"
        want = {**kwargs, "corpus_sha256": digest}
        if not (stamp.is_file() and json.loads(stamp.read_text()) == want):
            if console:
                console.print(f"building tiny model {name} → {path}")
            build_tiny_model(path, corpus=corpus, **kwargs)
            stamp.write_text(json.dumps(want))
        paths[name] = path
    return paths


def run_demo(data_dir: Path | None, store: Store, out_path: Path, console: Console, out: Console,
             verbose: bool = False):
    from bench.evaluate.suite import run_suite
    from bench.report.leaderboard import leaderboard_data
    from bench.report.render import write_leaderboard
    from bench.report.terminal import print_runs

    for needed in (DEMO_SUITE, DEMO_MODELS):
        if not needed.is_file():
            raise BenchError(f"{needed} not found: run `bench demo` from the repository root")
    ensure_demo_models(console=console)
    runs = run_suite(DEMO_SUITE, DEMO_MODELS, list(CANDIDATES), data_dir, None, store, console,
                     verbose=verbose)
    print_runs(out, runs)
    data = leaderboard_data(store, "demo")
    path = write_leaderboard(data, out_path)
    out.print(f"leaderboard: {path}")

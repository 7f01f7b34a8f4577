"""`bench serve`: serve a model by name until Ctrl-C or SIGTERM, printing its models.yaml entry."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from bench.config import ModelSpec, check_remote_code, path_problems
from bench.errors import BenchError, Interrupted
from bench.serve.engines import check_engine
from bench.serve.server import ServerFailed, serving


def model_entry(name: str, models_path: Path, store_path: Path,
                trust_remote_code: bool = False) -> ModelSpec:
    """A models.yaml entry or trained model that bench can serve, checked before anything loads."""
    from bench.train.registry import resolve

    spec = resolve(name, models_path, store_path)
    if not isinstance(spec, ModelSpec):
        raise BenchError(f"model '{name}' is already served (backend: {spec.backend}, "
                         f"{spec.path}); bench serve starts servers for local models (backend: hf)")
    for problem in path_problems(spec):
        raise BenchError(f"model '{name}': {problem}; fix its entry in {models_path}")
    check_remote_code(spec, trust_remote_code)
    return spec


def entry_yaml(entry: dict) -> str:
    """The entry as a YAML list item, indented to paste under `models:`."""
    text = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=10_000)
    return "".join(f"  {line}" for line in text.splitlines(keepends=True))


def serve(name: str, engine: str, host: str, port: int, models_path: Path, results_dir: Path,
          timeout: float, trust_remote_code: bool, out, console) -> None:
    """Serve `name` until interrupted; `out` gets the entry, `console` the messages."""
    check_engine(engine)
    spec = model_entry(name, models_path, results_dir / "bench.sqlite", trust_remote_code)
    console.print(f"starting {engine} for '{name}' ({spec.path}); server log under "
                  f"{results_dir / 'logs'}", markup=False)
    stopped_at = None
    try:
        with serving(spec, engine, host, port, results_dir / "logs", timeout) as server:
            stopped_at = f"{server.base_url} (log {server.log_path})"
            console.print(f"serving '{name}' as '{server.model_id}' at {server.base_url}; log "
                          f"{server.log_path}; Ctrl-C or SIGTERM stops it. models.yaml entry:",
                          markup=False)
            out.print(entry_yaml(server.entry), markup=False, highlight=False, soft_wrap=True,
                      end="")
            out.file.flush()
            while (code := server.process.poll()) is None:
                time.sleep(0.5)
            raise ServerFailed(f"model '{name}': the {engine} server exited with code {code}; "
                               f"its last log lines:\n{server.log_tail()}\n  full log: "
                               f"{server.log_path}")
    except Interrupted:
        console.print(f"stopped the {engine} server of '{name}'"
                      + (f" at {stopped_at}" if stopped_at else " before it was ready"),
                      markup=False)

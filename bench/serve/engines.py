"""Command lines of the serving engines, as pure functions of a model entry and a prepared folder,
and where each engine's executable is (or the one command that installs it)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.config import ModelSpec
from bench.errors import BenchError, suggest

ENGINES = ("transformers", "vllm", "lmdeploy")
VLLM_VENV_ENV, LMDEPLOY_VENV_ENV = "BENCH_VLLM_VENV", "BENCH_LMDEPLOY_VENV"
_VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's accepted --max-lora-rank values


@dataclass(frozen=True)
class Launch:
    """What to run, and the model id the server lists in GET /v1/models."""

    argv: list[str]
    model_id: str


@dataclass(frozen=True)
class Prepared:
    """The model as an engine gets it: `model` is a folder or Hub id; the rest only for vLLM."""

    model: str
    hub: bool = False  # `model` is a Hub id: pass the entry's revision
    chat_template_file: str | None = None
    lora_rank: int | None = None


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise BenchError(f"unknown engine '{engine}'{suggest(engine, ENGINES)}")


def needs_folder(engine: str, spec: ModelSpec) -> bool:
    """transformers and lmdeploy cannot apply an adapter or a template override: they get a
    temporary folder (merged weights, a tokenizer carrying the template)."""
    return engine != "vllm" and bool(spec.adapter or spec.chat_template)


def command(engine: str, spec: ModelSpec, prep: Prepared, exe: str, host: str,
            port: int) -> Launch:
    """The engine's command line for the entry `spec`, served from `prep`."""
    check_engine(engine)
    return {"transformers": _transformers, "vllm": _vllm, "lmdeploy": _lmdeploy}[engine](
        spec, prep, exe, host, port)


def _quantization(engine: str, spec: ModelSpec) -> None:
    if spec.quantization != "none":
        raise BenchError(f"model '{spec.name}': quantization: {spec.quantization} is not served "
                         f"by {engine}; use --engine transformers, or quantization: none")


def _transformers(spec: ModelSpec, prep: Prepared, exe: str, host: str, port: int) -> Launch:
    model = f"{prep.model}@{spec.revision}" if prep.hub and spec.revision else prep.model
    argv = [exe, "serve", model, "--host", host, "--port", str(port), "--device", spec.device]
    if spec.dtype != "auto":
        argv += ["--dtype", spec.dtype]
    if spec.quantization != "none":  # bitsandbytes, as bench's own nf4 (double quantization)
        argv += ["--quantization", {"nf4": "bnb-4bit", "int8": "bnb-8bit"}[spec.quantization]]
    if spec.trust_remote_code:
        argv.append("--trust-remote-code")
    return Launch(argv, model)


def _vllm(spec: ModelSpec, prep: Prepared, exe: str, host: str, port: int) -> Launch:
    _quantization("vllm", spec)
    base_name = f"{spec.name}-base" if spec.adapter else spec.name
    argv = [exe, "serve", prep.model, "--host", host, "--port", str(port),
            "--served-model-name", base_name]
    if spec.dtype != "auto":
        argv += ["--dtype", spec.dtype]
    if prep.hub and spec.revision:
        argv += ["--revision", spec.revision]  # vLLM loads the tokenizer at the same revision
    if spec.trust_remote_code:
        argv.append("--trust-remote-code")
    if prep.chat_template_file:
        argv += ["--chat-template", prep.chat_template_file]
    if spec.adapter:
        argv += ["--enable-lora", "--lora-modules", f"{spec.name}={_absolute(spec.adapter)}"]
        if prep.lora_rank and prep.lora_rank > 16:
            rank = next((r for r in _VLLM_LORA_RANKS if r >= prep.lora_rank), prep.lora_rank)
            argv += ["--max-lora-rank", str(rank)]
    return Launch(argv, spec.name)


def _lmdeploy(spec: ModelSpec, prep: Prepared, exe: str, host: str, port: int) -> Launch:
    _quantization("lmdeploy", spec)
    argv = [exe, "serve", "api_server", prep.model, "--server-name", host, "--server-port",
            str(port), "--model-name", spec.name, "--backend", "turbomind"]
    if spec.dtype in ("float16", "bfloat16"):  # lmdeploy has no float32: 'auto' runs it in fp16
        argv += ["--dtype", spec.dtype]
    if prep.hub and spec.revision:
        argv += ["--revision", spec.revision]
    if spec.trust_remote_code:
        argv.append("--trust-remote-code")
    return Launch(argv, spec.name)


def _absolute(path: str) -> str:
    local = Path(path).expanduser()
    return str(local.resolve()) if local.exists() else path


def executable(engine: str) -> str:
    """The engine's executable, or a BenchError naming the command that installs it."""
    check_engine(engine)
    if engine == "transformers":
        exe = Path(sys.executable).parent / "transformers"
        missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
        if not exe.is_file() or missing:
            raise BenchError("engine transformers: `transformers serve` needs "
                             f"{', '.join(missing) or 'the transformers command'} in bench's "
                             f"environment; pip install 'transformers[serving]'")
        return str(exe)
    env = VLLM_VENV_ENV if engine == "vllm" else LMDEPLOY_VENV_ENV
    venv = Path(os.environ.get(env) or f".venv-{engine}")
    exe = venv / "bin" / engine
    if exe.is_file():
        return str(exe.resolve())
    found = shutil.which(engine)
    if found:
        return found
    raise BenchError(f"engine {engine}: '{engine}' is neither in {venv}/bin (env {env}) nor on "
                     f"PATH; install it in its own venv: {install_hint(engine)}")


def install_hint(engine: str) -> str:
    if engine == "vllm":
        return ("python3 -m venv .venv-vllm && .venv-vllm/bin/pip install vllm (or `make "
                "vllm-venv`); vLLM needs a CUDA GPU")
    return ("python3 -m venv .venv-lmdeploy && .venv-lmdeploy/bin/pip install lmdeploy (or `make "
            "lmdeploy-venv`); lmdeploy needs CUDA and torch<=2.12.1, so it cannot share bench's "
            "venv (torch 2.13)")

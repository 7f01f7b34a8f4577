"""Trained models by name: `bench train` registers each output in the results store, beside
models.yaml. A name means its newest registration; a fingerprint pins one."""

from __future__ import annotations

from pathlib import Path

from bench.config import ModelSpec, load_models
from bench.errors import BenchError, suggest
from bench.store import Store


def trained(store_path: Path) -> dict[str, dict]:
    """name -> newest registration, read-only ({} without a store)."""
    if not Path(store_path).is_file():
        return {}
    store = Store(store_path)
    try:
        return store.trained_models()
    finally:
        store.close()


def resolve(name: str, models_path: Path, store_path: Path) -> ModelSpec:
    """A model by name: a models.yaml entry, else a trained output (newest of that name), else a
    trained model's fingerprint."""
    listed = {m.name: m for m in load_models(models_path).models} if Path(models_path).is_file() else {}
    if name in listed:
        return listed[name]
    outputs = trained(store_path)
    if name in outputs:
        return ModelSpec(name=name, **outputs[name]["entry"])
    by_fp = [n for n, o in outputs.items() if o["fingerprint"] == name]
    if by_fp:
        return ModelSpec(name=by_fp[0], **outputs[by_fp[0]]["entry"])
    raise BenchError(f"unknown model '{name}': not in {models_path} nor among the trained models "
                     f"of {store_path}{suggest(name, [*listed, *outputs])}")

"""Trained models by name: `bench train` registers each output in the results store, beside
models.yaml. A name means its newest registration; a fingerprint pins one."""

from __future__ import annotations

from pathlib import Path

from bench.config import ModelSpec, load_models
from bench.errors import BenchError, suggest
from bench.store import Store


def trained(store_path: Path) -> dict[str, dict]:
    """name -> newest registration ({} without a store)."""
    if not Path(store_path).is_file():
        return {}
    store = Store(store_path)
    try:
        return store.trained_models()
    finally:
        store.close()


def by_fingerprint(store_path: Path, prefix: str) -> list[dict]:
    if len(prefix) < 12 or not Path(store_path).is_file():
        return []
    store = Store(store_path)
    try:
        return store.models_by_fingerprint(prefix)
    finally:
        store.close()


def find(name: str, store_path: Path) -> ModelSpec | None:
    """A trained model by output name (its newest training) or fingerprint (12+ characters)."""
    outputs = trained(store_path)
    if name in outputs:
        return ModelSpec(name=name, **outputs[name]["entry"])
    pinned = {p["fingerprint"]: p for p in by_fingerprint(store_path, name)}
    if len(pinned) == 1:
        p = next(iter(pinned.values()))
        return ModelSpec(name=p["name"], **p["entry"])
    return None


def resolve(name: str, models_path: Path, store_path: Path) -> ModelSpec:
    """A model by name: a models.yaml entry, else a trained model (`find`)."""
    listed = {m.name: m for m in load_models(models_path).models} if Path(models_path).is_file() else {}
    if name in listed:
        return listed[name]
    spec = find(name, store_path)
    if spec is None:
        raise BenchError(f"unknown model '{name}': not in {models_path} nor among the trained "
                         f"models of {store_path}{suggest(name, [*listed, *trained(store_path)])}")
    return spec

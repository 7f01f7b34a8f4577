"""Backend registry: factories register by name; heavy packages are imported only when used.

    backend = get_backend(spec)   # spec.backend == "hf" -> bench.backends.hf.HFBackend(spec)
"""

from __future__ import annotations

from collections.abc import Callable

from bench.backends.base import Backend
from bench.config import ModelSpec
from bench.errors import BenchError, suggest

Factory = Callable[[ModelSpec], Backend]
_REGISTRY: dict[str, tuple[Factory, str]] = {}


def register(name: str, *, extra: str | None = None) -> Callable[[Factory], Factory]:
    """Register a backend factory under `name`; `extra` is the pip extra that installs its deps."""

    def wrap(factory: Factory) -> Factory:
        _REGISTRY[name] = (factory, extra or name)
        return factory

    return wrap


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(spec: ModelSpec) -> Backend:
    """Build the backend a model spec names; missing optional packages name the pip extra."""
    entry = _REGISTRY.get(spec.backend)
    if entry is None:
        raise BenchError(f"model '{spec.name}': unknown backend '{spec.backend}'"
                         f"{suggest(spec.backend, _REGISTRY)}")
    factory, extra = entry
    try:
        return factory(spec)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing == "bench":
            raise
        raise BenchError(
            f"model '{spec.name}': backend '{spec.backend}' needs the package '{missing}', "
            f"which is not installed; install it with: pip install 'bench[{extra}]'") from None


@register("hf", extra="hf")
def _hf(spec: ModelSpec) -> Backend:
    from bench.backends.hf import HFBackend

    return HFBackend(spec)


@register("openai", extra="api")
def _openai(spec) -> Backend:
    from bench.backends.openai_api import OpenAIBackend

    return OpenAIBackend(spec)

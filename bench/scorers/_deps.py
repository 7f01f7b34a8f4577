"""Optional packages of the text scorers: one clear error naming the pip extra."""

from __future__ import annotations

import importlib
from importlib import metadata
from types import ModuleType

from bench.errors import BenchError

EXTRA = "judge"


def _missing(package: str, scorer: str) -> BenchError:
    return BenchError(f"scorer '{scorer}' needs the package '{package}', which is not installed; "
                      f"install it with: pip install 'bench[{EXTRA}]'")


def require(module: str, package: str, scorer: str) -> ModuleType:
    """Import `module` (from distribution `package`) for `scorer`, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise _missing(package, scorer) from None


def version(package: str, scorer: str) -> str:
    """The installed version of `package`: part of a scorer's fingerprint."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        raise _missing(package, scorer) from None

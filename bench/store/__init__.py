"""Run records and the content-addressed result cache."""

from bench.store.db import Store
from bench.store.migrate import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Store"]

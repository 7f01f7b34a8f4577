"""Run records and the content-addressed result cache."""

from bench.store.db import SCHEMA_VERSION, Store

__all__ = ["SCHEMA_VERSION", "Store"]

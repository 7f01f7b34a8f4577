"""The kids-clothing customer-service demo domain (see ../shared/domain.md): a seeded generator of
SFT, preference, judge and held-out data, written to bench/domain/data by
`python -m bench.domain.generate`."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"

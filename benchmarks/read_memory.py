"""Memory and time to read a JSON Lines data file holding one huge row (printed, never asserted).

Before bench bounded its rows, one 50 MiB line took 7.7 GiB and 80-100 s and was stored whole.
Each case runs in a fresh subprocess so its peak RSS is its own:
- a 50 MiB row over the default 1 MiB bound (a bad row: named, skipped, counted);
- rows of 1, 4 and 16 MiB accepted under a raised bound (memory per accepted row).

    .venv/bin/python benchmarks/read_memory.py [--big-mib 50]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))


def write_file(path: Path, row_bytes: int) -> None:
    """Written in blocks: a child inherits its parent's peak RSS on Linux, so the parent stays small."""
    small = json.dumps({"id": 0, "sentence2": "您好", "label": "1"}, ensure_ascii=False)
    with path.open("w", encoding="utf-8") as f:
        f.write(small + '\n{"id": 1, "sentence2": "您好", "label": "1", "sentence1": "')
        for _ in range(row_bytes // 3 // 65536):
            f.write("长" * 65536)
        f.write('"}\n' + small.replace('"id": 0', '"id": 2') + "\n")


def measure(path: str, limit: int) -> None:
    """Child process: read the file, print one JSON line of figures."""
    from bench.files import iter_jsonl
    from bench.rows import RowLog

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    log = RowLog(path)
    tracemalloc.start()
    t0 = time.perf_counter()
    kept = sum(1 for _ in iter_jsonl(Path(path), log, limit))
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    print(json.dumps({"kept": kept, "bad": len(log.bad_rows), "wall_s": wall, "py_peak": peak,
                      "rss_growth": rss}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mib", type=int, default=50)
    ap.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args.measure[0], int(args.measure[1]))
        return
    mib = 1 << 20
    cases = [(args.big_mib * mib, mib)] + [(n * mib, 32 * mib) for n in (1, 4, 16)]
    print(f"{'row':>9} {'bound':>9} {'kept':>4} {'bad':>3} {'wall s':>7} {'py peak':>10} "
          f"{'peak/row':>8} {'RSS growth':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for row, limit in cases:
            path = Path(tmp) / "data.jsonl"
            write_file(path, row)
            out = subprocess.run([sys.executable, __file__, "--measure", str(path), str(limit)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out)
            accepted = min(row, limit)
            print(f"{row / mib:>7.0f}Mi {limit / mib:>7.0f}Mi {r['kept']:>4} {r['bad']:>3} "
                  f"{r['wall_s']:>7.2f} {r['py_peak'] / mib:>8.1f}Mi {r['py_peak'] / accepted:>8.1f} "
                  f"{r['rss_growth'] / mib:>9.1f}Mi")
    print("peak/row: Python heap peak over the accepted row's bytes (or the bound, for a refused row)")


if __name__ == "__main__":
    main()

"""bench's one bad-row policy, for every row-by-row reader (evaluation data now; training data,
held-out sets and preference pairs later).

A bad row (not JSON, over the size bound, a missing field, an unknown label, ...) is reported by
file, line and reason, skipped and counted; rows dropped on purpose (CLUE/OCNLI's `-` labels) are
counted with their reason. `check` stops the command with exit 2, before any model loads, when no
row is left or the bad share passes `max_bad_fraction`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.errors import BenchError

MAX_BAD_FRACTION = 0.05
SHOWN = 10  # bad rows printed per source; all are counted, the first STORED are kept in the store
STORED = 50


@dataclass
class RowLog:
    """What one reader kept, rejected and dropped from one source (a file or a task's files)."""

    source: str
    kept: int = 0
    bad_rows: list[tuple[str, str]] = field(default_factory=list)  # (file:line, reason)
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    strict: bool = False  # a bad row stops the command at once (readers with no policy to apply)

    def bad(self, where: str, reason: str) -> None:
        if self.strict:
            raise BenchError(f"{where}: {reason}; fix or remove that line")
        self.bad_rows.append((where, reason))

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    @property
    def read(self) -> int:
        return self.kept + len(self.bad_rows) + sum(self.dropped.values())

    def summary(self) -> dict:
        """What the store and the reports keep."""
        return {
            "read": self.read, "kept": self.kept, "bad": len(self.bad_rows),
            "dropped": sum(self.dropped.values()), "dropped_reasons": dict(self.dropped),
            "bad_rows": [{"where": w, "reason": r} for w, r in self.bad_rows[:STORED]],
        }

    def lines(self) -> list[str]:
        """Warnings for the terminal: each bad row (the first SHOWN), then what was dropped."""
        reasons = Counter(r for _, r in self.bad_rows)
        if not self.kept and len(self.bad_rows) > 1 and len(reasons) == 1:  # one refusal, once
            out = [f"{self.source}: all {len(self.bad_rows)} rows: {next(iter(reasons))} (the "
                   f"first at {self.bad_rows[0][0]})"]
            return out + [f"{self.source}: dropped {n} rows: {reason}"
                          for reason, n in self.dropped.items()]
        out = [f"{w}: {r}" for w, r in self.bad_rows[:SHOWN]]
        if len(self.bad_rows) > SHOWN:
            by_reason = reasons.most_common()
            out.append(f"{self.source}: ... and {len(self.bad_rows) - SHOWN} more bad rows; all "
                       f"{len(self.bad_rows)} by reason: "
                       + "; ".join(f"{n} × {r}" for r, n in by_reason[:8])
                       + (f"; {len(by_reason) - 8} other reasons" if len(by_reason) > 8 else ""))
        out += [f"{self.source}: dropped {n} rows: {reason}" for reason, n in self.dropped.items()]
        return out

    def problem(self, max_bad_fraction: float) -> str | None:
        """Why this source cannot be used, or None."""
        if self.kept == 0:
            bad = f" ({len(self.bad_rows)} bad rows)" if self.bad_rows else ""
            return f"no samples in {self.source}{bad}"
        share = len(self.bad_rows) / (self.kept + len(self.bad_rows))
        if share > max_bad_fraction:
            return (f"{self.source}: {len(self.bad_rows)} of {self.kept + len(self.bad_rows)} rows "
                    f"are bad ({share:.1%}, over max_bad_fraction {max_bad_fraction:g})")
        return None


def check(log: RowLog, max_bad_fraction: float = MAX_BAD_FRACTION,
          rest: str = "in the suite to score the rest") -> None:
    """Exit 2 when no row is left or too many are bad: the bad rows, then why, then what to do
    (`rest`: where max_bad_fraction is set, and what raising it does)."""
    problem = log.problem(max_bad_fraction)
    if problem and log.bad_rows and not log.kept:
        raise BenchError("\n".join([*log.lines(), problem]) + "\nnot one row is usable: is this "
                         "the file meant? (its rows are named above by line, never quoted)")
    if problem and log.bad_rows:
        raise BenchError("\n".join([*log.lines(), problem]) + "\nfix the rows listed, or raise "
                         f"max_bad_fraction {rest}")
    if problem:
        raise BenchError(f"{problem}: the file holds no usable row; check the data dir and split")

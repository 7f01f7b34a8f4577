"""One of the processes `bench train --launcher accelerate` starts (bench/scale/launch.py): train
from the job file the driver wrote; the main process writes the outcome beside it. Library output
goes to launch/processes-rank<N>.log; the main process draws bench's progress bar."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(job_file: str) -> None:
    from rich.console import Console

    from bench.config import ModelSpec
    from bench.files import atomic_path
    from bench.logs import third_party_output
    from bench.train.config import TrainConfig
    from bench.train.trainer import run_trainer

    folder = Path(job_file).parent
    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    rank = os.environ.get("RANK", "0")
    console = Console(stderr=True) if rank == "0" else None
    with third_party_output(folder / f"processes-rank{rank}.log", job["verbose"], console):
        outcome = run_trainer(TrainConfig.model_validate(job["config"]),
                              ModelSpec.model_validate(job["base"]), job["rows"],
                              Path(job["run_dir"]), console)
    if outcome is not None:  # the main process
        with atomic_path(folder / "outcome.json") as tmp:
            tmp.write_text(json.dumps(outcome, ensure_ascii=False, default=str), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])

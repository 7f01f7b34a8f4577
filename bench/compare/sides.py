"""The two sides of a comparison: a model name (its latest finished run of the suite), a run id,
or a model fingerprint (12+ hex characters pin one), so a CI gate can pin what it compares."""

from __future__ import annotations

import re
from pathlib import Path

from bench.errors import BenchError, suggest
from bench.store import Store


def suite_name(suite: str | Path) -> str:
    """A suite's name: from its YAML when given a file, else the name itself."""
    path = Path(suite)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        from bench.config import load_suite

        return load_suite(path).name
    return str(suite)


def resolve_side(store: Store, suite: str, ref: str, role: str) -> dict:
    """The finished run `ref` names: {run_id, model, started, ended, manifest}."""
    runs = store.finished_runs(suite)
    if not runs:
        raise BenchError(f"no finished runs of suite '{suite}' in {store.path}; run `bench run "
                         f"--suite ...` for both sides first")
    for run in runs:
        if run["run_id"] == ref:
            return run
    other = store.run(ref)
    if other is not None:
        state = (f"is a run of suite '{other['suite']}'" if other["suite"] != suite
                 else f"has status '{other['status']}' (only finished runs are compared)")
        raise BenchError(f"--{role} {ref}: that run {state}")
    named = [r for r in runs if r["model"] == ref]
    if named:
        return named[-1]
    if re.fullmatch(r"[0-9a-f]{8,64}", ref):
        by_fp = [r for r in runs if str(r["manifest"].get("model_fingerprint", "")).startswith(ref)]
        if by_fp:
            return by_fp[-1]
    models = sorted({r["model"] for r in runs})
    raise BenchError(f"--{role} '{ref}': no finished run of suite '{suite}' has that model name, "
                     f"run id or model fingerprint{suggest(ref, models)}")


def side_view(run: dict) -> dict:
    """What a report or summary says about one side."""
    m = run["manifest"]
    backend = m.get("backend") or {}
    return {"run_id": run["run_id"], "model": run["model"],
            "fingerprint": m.get("model_fingerprint"), "ended": run["ended"],
            "started_at": m.get("started_at"), "ended_at": m.get("ended_at"),
            "git_sha": m.get("git_sha"), "command": m.get("command"),
            "packages": m.get("packages", {}), "backend": backend.get("backend_version") or
            backend.get("backend"), "content_addressed": backend.get("content_addressed", True),
            "lock": lock_text(m), "reused": reused_text(m)}


def lock_text(manifest: dict) -> str:
    """Which lock the run's environment was installed from, and whether it still matched."""
    lock = manifest.get("lock")
    if not lock:
        return "not recorded" if "lock" not in manifest else "none (not installed from a lock)"
    state = "matched" if lock.get("matches") else f"differed in {lock.get('n_drift', '?')} packages"
    return f"{lock.get('file')} {str(lock.get('sha256'))[:12]} (environment {state})"


def environment_text(manifest: dict) -> str:
    """The versions behind a run's numbers in one short line (the leaderboard's model cell;
    lock_text says the rest)."""
    packages = manifest.get("packages") or {}
    parts = [f"{name} {packages[name]}" for name in ("transformers", "torch") if name in packages]
    parts += [packages[k] for k in ("cpu_capability",) if packages.get(k)]
    parts += [f"CUDA {packages['cuda']}"] if packages.get("cuda") else []
    lock = manifest.get("lock")
    if lock:
        parts.append(f"lock {str(lock.get('sha256'))[:8]}" + ("" if lock.get("matches") else
                                                              " (drifted)"))
    return " · ".join(parts)


def reused_text(manifest: dict) -> str | None:
    """The answers a run took from another backend version (`--reuse-across-versions`), if any."""
    reused = manifest.get("reused_across_versions") or {}
    if not reused:
        return None
    return "; ".join(f"{task}: {r['n']} from {r['backend_version']}" for task, r in reused.items())

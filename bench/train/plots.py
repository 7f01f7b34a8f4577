"""PNG plots of a training log: loss (and validation loss), and for DPO the reward accuracy and
margin, per step."""

from __future__ import annotations

from pathlib import Path

PANELS = (("loss", ("loss", "eval_loss")),
          ("DPO reward accuracy", ("rewards/accuracies",)),
          ("DPO reward margin", ("rewards/margins",)))


def plot_log(log: list[dict], out_dir: Path) -> list[str]:
    """One PNG per panel that has values; their paths. Without matplotlib: none."""
    if not any(k in e for e in log for _, keys in PANELS for k in keys):
        return []  # nothing to draw: not even matplotlib's import
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        return []
    written = []
    for title, keys in PANELS:
        series = {k: [(e["step"], e[k]) for e in log if k in e and "step" in e] for k in keys}
        if not any(series.values()):
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for key, points in series.items():
            if points:
                ax.plot(*zip(*points), marker=".", label=key)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"{title.lower().replace(' ', '_')}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(str(path))
    return written

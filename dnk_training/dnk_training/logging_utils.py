"""CSV scalar logging with TensorBoard-style tags (``teacher/loss``) and a matching plot helper."""
from __future__ import annotations

import csv
from pathlib import Path


class CSVLogger:
    """Appends ``step,tag,value`` rows; on resume, rows past the resumed step are dropped first."""

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.is_file():
            rows = [r for r in self._read() if int(r[0]) <= resume_step]
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerows([("step", "tag", "value"), *rows])
        elif not self.path.is_file() or resume_step is None:
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(("step", "tag", "value"))

    def _read(self) -> list[list[str]]:
        with self.path.open(newline="") as f:
            return list(csv.reader(f))[1:]

    def log(self, step: int, scalars: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            w = csv.writer(f)
            for tag, value in scalars.items():
                w.writerow((step, tag, f"{float(value):.6g}"))


def read_scalars(path: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """tag -> (steps, values) from a CSVLogger file."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            steps, vals = out.setdefault(row["tag"], ([], []))
            steps.append(int(row["step"]))
            vals.append(float(row["value"]))
    return out


def plot_curves(csv_paths: list[str | Path], out_png: str | Path, log_y: bool = True) -> None:
    """One subplot per tag across the given CSV logs (Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {}
    for p in csv_paths:
        series.update(read_scalars(p))
    tags = sorted(series)
    fig, axes = plt.subplots(len(tags), 1, figsize=(7, 2.2 * len(tags)), squeeze=False)
    for ax, tag in zip(axes[:, 0], tags):
        steps, vals = series[tag]
        ax.plot(steps, vals, lw=1)
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("gradient step", fontsize=8)
        if log_y and min(vals) > 0:
            ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)

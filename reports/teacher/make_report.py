"""Collect the reduced-scale run into reports/teacher/: report.json + training_curves.png.

  python reports/teacher/make_report.py --artifacts artifacts/halfcheetah --eval reports/teacher/eval_teacher.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from dnk_training.configs import load_task_config
from dnk_training.logging_utils import plot_curves, read_scalars


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", default="artifacts/halfcheetah")
    ap.add_argument("--eval", default="reports/teacher/eval_teacher.json")
    ap.add_argument("--out", default="reports/teacher")
    args = ap.parse_args()
    art, out = Path(args.artifacts), Path(args.out)
    csvs = [art / "runs" / m / "scalars.csv" for m in ("teacher", "classifier", "iql")]
    plot_curves([p for p in csvs if p.is_file()], out / "training_curves.png")
    training = {}
    for m, p in zip(("teacher", "classifier", "iql"), csvs):
        if not p.is_file():
            continue
        meta = json.loads((art / f"{m}.json").read_text())
        series = read_scalars(p)
        training[m] = {
            "steps": meta["step"],
            "config": meta["task_config"][m if m != "iql" else "iql"],
            **{f"{tag}_first": vals[0] for tag, (_, vals) in series.items()},
            **{f"{tag}_last": vals[-1] for tag, (_, vals) in series.items()},
        }
    paper = load_task_config("halfcheetah", "paper")
    small = load_task_config("halfcheetah", "small")
    report = {
        "dataset": small.dataset.path,
        "horizon": small.dataset.horizon,
        "training": training,
        "vs_paper": {
            m: {"small_steps": getattr(small, m).train.steps, "paper_steps": getattr(paper, m).train.steps,
                "fraction": getattr(small, m).train.steps / getattr(paper, m).train.steps}
            for m in ("teacher", "classifier", "iql")
        } | {"teacher_ema_decay": {"small": small.teacher.ema_decay, "paper": paper.teacher.ema_decay}},
    }
    if Path(args.eval).is_file():
        report |= json.loads(Path(args.eval).read_text())
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1)[:3000])


if __name__ == "__main__":
    main()

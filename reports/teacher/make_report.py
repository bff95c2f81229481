"""Collect the reduced-scale run into reports/teacher/: report.json + training_curves.png.

  python reports/teacher/make_report.py --artifacts artifacts/halfcheetah \
      --eval reports/teacher/eval_a.json reports/teacher/eval_b.json \
      --latency reports/teacher/latency_guided.json reports/teacher/latency_unguided.json
Episode results of several eval-teacher runs (disjoint seeds) are pooled into one summary.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dnk_training.configs import load_task_config
from dnk_training.logging_utils import plot_curves, read_scalars


def pool(runs: list[dict]) -> dict:
    """One summary over the episodes of several runs (same env, sampling and step budget)."""
    keys = ("env_id", "num_candidates", "temperature", "guidance_weight", "max_steps")
    for k in keys:
        if len({str(r[k]) for r in runs}) != 1:
            raise ValueError(f"eval runs differ in '{k}'; pool only runs with identical settings")
    rets = np.concatenate([r["episode_returns"] for r in runs])
    lens = np.concatenate([r["episode_lengths"] for r in runs])
    lo, hi = -280.178953, 12135.0  # D4RL halfcheetah reference returns (d4rl_locomotion.md)
    norm = (rets - lo) / (hi - lo)
    ext = (rets * 1000.0 / lens - lo) / (hi - lo)
    return {
        **{k: runs[0][k] for k in keys},
        "partial": any(r["partial"] for r in runs),
        "episodes": int(rets.size),
        "seeds": sum((r["seeds"] for r in runs), []),
        "episode_lengths": lens.tolist(),
        "episode_returns": rets.tolist(),
        "return_mean": float(rets.mean()),
        "return_std": float(rets.std()),
        "normalized_mean": float(norm.mean()),
        "normalized_std": float(norm.std()),
        "normalized_mean_extrapolated_to_1000_steps": float(ext.mean()),
        "normalized_std_extrapolated_to_1000_steps": float(ext.std()),
        "wall_s_per_run": [r["wall_s"] for r in runs],
    }


def dataset_prefix_returns(path: str, steps: int) -> dict:
    """Mean return of the dataset's medium / expert episodes over their first ``steps`` steps:
    the fair yardstick for evaluation episodes cut short (the cheetah starts from rest)."""
    from dnk_training.datasets import load_dataset, split_episodes

    data = load_dataset(path)
    eps = split_episodes(data)
    half = len(data) // 2  # medium rows first, expert rows second (dataset README)
    out = {}
    for name, sel in (("medium", [e for e in eps if e[1] <= half]), ("expert", [e for e in eps if e[0] >= half])):
        rets = np.array([data.rewards[a:min(b, a + steps)].sum() for a, b in sel])
        out[name] = {"episodes": len(sel), "steps": steps, "return_mean": float(rets.mean()), "return_std": float(rets.std())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", default="artifacts/halfcheetah")
    ap.add_argument("--eval", nargs="*", default=[], help="eval-teacher JSONs to pool")
    ap.add_argument("--latency", nargs="*", default=[], help="eval-teacher JSONs holding a latency block")
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
    if args.eval:
        report["eval"] = pool([json.loads(Path(p).read_text())["eval"] for p in args.eval])
        report["dataset_same_length_returns"] = dataset_prefix_returns(small.dataset.path, int(min(report["eval"]["episode_lengths"])))
    report["latency"] = [json.loads(Path(p).read_text())["latency"] for p in args.latency]
    checks = out / "model_checks.json"
    if checks.is_file():
        report["model_checks"] = json.loads(checks.read_text())
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1)[:3000])


if __name__ == "__main__":
    main()

"""Held-out-free sanity numbers for the trained classifier and IQL critic on dataset samples.

Classifier: Pearson / Spearman correlation of its t=0 prediction with the true window-start
return-to-go (discount 0.997). IQL: correlation of Q(s, a) with the dataset's discounted
(0.99) return-to-go, and mean Q on medium vs expert rows. Writes JSON.

  python reports/teacher/check_models.py --artifacts artifacts/halfcheetah --out reports/teacher/model_checks.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dnk_training.classifier import ReturnClassifier
from dnk_training.datasets import load_dataset, make_windows, returns_to_go, split_episodes
from dnk_training.iql import IQLCritic


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", default="artifacts/halfcheetah")
    ap.add_argument("--out", default="reports/teacher/model_checks.json")
    ap.add_argument("--samples", type=int, default=4000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    art = Path(args.artifacts)
    clf = ReturnClassifier.load(art / "classifier.json")
    critic = IQLCritic.load(art / "iql.json")
    cfg = clf.cfg
    data = load_dataset(cfg.dataset.path)
    w = make_windows(data, cfg.dataset.horizon, cfg.dataset.discount, cfg.dataset.terminal_penalty)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(w.x), args.samples, replace=False)
    with torch.no_grad():
        pred = clf(torch.as_tensor(clf.normalizer.normalize(w.x[idx])), 0).numpy()
    true = w.values[idx]
    rtg99 = np.concatenate([
        returns_to_go(data.rewards[a:b], bool(data.terminals[b - 1]), cfg.iql.discount, 0.0) for a, b in split_episodes(data)
    ])
    rows = rng.choice(len(data), args.samples, replace=False)
    with torch.no_grad():
        q = critic(torch.as_tensor(data.observations[rows]), torch.as_tensor(data.actions[rows])).numpy()
    half = len(data) // 2  # medium rows first, expert rows second (dataset README)
    res = {
        "classifier_t0": {
            "pearson": float(np.corrcoef(pred, true)[0, 1]),
            "spearman": spearman(pred, true),
            "mae": float(np.abs(pred - true).mean()),
            "target_std": float(true.std()),
        },
        "iql": {
            "pearson_q_vs_mc_return_0.99": float(np.corrcoef(q, rtg99[rows])[0, 1]),
            "spearman_q_vs_mc_return_0.99": spearman(q, rtg99[rows]),
            "mean_q_medium_rows": float(q[rows < half].mean()),
            "mean_q_expert_rows": float(q[rows >= half].mean()),
            "mean_mc_return_0.99": float(rtg99[rows].mean()),
        },
        "samples": args.samples,
    }
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

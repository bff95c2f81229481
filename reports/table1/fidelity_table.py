"""Fidelity table of one Table I run: mean ± std over the training seeds' distill-report files.

    python reports/table1/fidelity_table.py reports/table1/walker2d > reports/table1/walker2d/fidelity.md
"""
import json
import sys
from pathlib import Path

import numpy as np

NAMES = {"fdk": "FDK (DNK)", "kdm": "KDM", "kdmf": "KDM-F", "cd": "CD", "ct": "CT"}


def main(out: Path) -> str:
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("fidelity/seed*/report.json"))]
    if not reports:
        raise SystemExit(f"{out}/fidelity/seed*/report.json: none found; run the fidelity part of run_table1.sh first")
    first = reports[0]
    lines = [
        f"{len(reports)} training seeds; {first['heldout_pairs']} held-out pairs; normalized units, free entries; "
        f"held-out target variance {first['target_variance_free']:.3f}; teacher's between-prior variance "
        f"{first['prior_sweep']['teacher_between_prior_var']:.4f}; teacher batch-64 median "
        f"{np.median([r['teacher_latency_b64']['median_ms'] for r in reports]):.0f} ms.",
        "",
        "| student | trainable parameters (MLP width) | trajectory MSE | first-action MSE | prior_r2 "
        "| held-out L_lat / target-latent variance | target-latent mean square | ORT batch-64 median (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, name in NAMES.items():
        entries = [r["students"][model] for r in reports if model in r["students"]]
        if not entries:
            continue

        def stat(get) -> str:
            v = [get(e) for e in entries]
            return f"{np.mean(v):.4f} ± {np.std(v):.4f}"

        if "latent" not in entries[0]:  # reports written before distill-report measured it
            latent = "not measured | not measured"
        elif entries[0]["latent"] is None:  # CD, CT: no latent transition
            latent = "n/a | n/a"
        else:
            scale = np.mean([e["latent"]["target_latent_mean_square"] for e in entries])
            latent = f"{stat(lambda e: e['latent']['lat_relative'])} | {scale:,.1f}"
        lines.append(
            f"| {name} | {entries[0]['parameters']:,} ({entries[0]['hidden']}) | {stat(lambda e: e['traj_mse'])} "
            f"| {stat(lambda e: e['first_action_mse'])} | {stat(lambda e: e['prior_sweep']['prior_r2'])} | {latent} "
            f"| {np.median([e['latency_b64']['median_ms'] for e in entries]):.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main(Path(sys.argv[1])), end="")

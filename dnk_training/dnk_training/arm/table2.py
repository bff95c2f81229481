"""Table II in simulation: every policy on the same scenes, in one run, summarized as JSON, Markdown, PNG.

Per policy: success rate (goal within 1 cm, held 1 s, no arm-obstacle contact in the sim), trials
with any contact, completion time, terminal error, minimum end-effector and whole-arm clearance,
decision latency mean and p95, deadline misses and holding cycles. See `trials.py` for how each
number is measured.
"""
from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .config import DemoConfig
from .scenes import Scene
from .trials import TRIAL_SEED, Policy, TrialRunner, trial_scenes


def run_table(policies: list[Policy], cfg: DemoConfig, trials: int, out: Path, timeout_s: float,
              sim_params: list[str], planner_params: list[str], seed: int = TRIAL_SEED,
              command: str = "", resume: bool = False, controller_mode: str = "joint_trajectory") -> dict:
    """Run `trials` scenes per policy (policy after policy, same scenes) and write the report after
    every trial; `resume` keeps the trials of an interrupted run with the same models and seed."""
    out.mkdir(parents=True, exist_ok=True)
    scenes = trial_scenes(cfg, trials, seed)
    models = {p.name: _model_info(p.model) for p in policies}   # read once: the report names them every trial
    results, wall0 = _resumed(out / "table2.json", models, seed) if resume else ([], 0.0)
    meta = {"controller_mode": controller_mode}
    t0 = time.monotonic() - wall0
    for policy in policies:
        chosen = scenes[:policy.trials or len(scenes)]  # the first scenes: every policy shares them
        done = {r["scene"] for r in results if r["policy"] == policy.name}
        if done >= set(range(len(chosen))):
            continue
        runner = TrialRunner(policy, sim_params, planner_params, out, controller_mode)
        try:
            for i, scene in enumerate(tqdm(chosen, desc=f"trials {policy.name}")):
                if i in done:
                    continue
                results.append(runner.run(i, scene, policy.timeout_s or timeout_s))
                _write(out, policies, models, results, scenes, seed, timeout_s, command, time.monotonic() - t0, True, meta)
        finally:
            log = runner.close()
            (out / f"planner_{policy.name}.log").write_text(log[-200_000:])
    report = _write(out, policies, models, results, scenes, seed, timeout_s, command, time.monotonic() - t0, False,
                    meta)
    plot(report, scenes, out)
    return report


def _resumed(path: Path, models: dict[str, dict], seed: int) -> tuple[list[dict], float]:
    """The trials and wall time of an earlier run of the same policies (model hashes) and scenes."""
    if not path.is_file():
        return [], 0.0
    old = json.loads(path.read_text())
    same = old["scene_seed"] == seed and all(
        old["policies"][name]["onnx_sha256"] == info["onnx_sha256"]
        for name, info in models.items() if name in old["policies"])
    if not same:
        raise ValueError(f"{path} holds trials of other models or scenes; use another --out, or drop --resume")
    return old["trials"], float(old["wall_s"])


def summarize(rows: list[dict]) -> dict:
    """One policy's row of the table from its trials."""
    ok = [r for r in rows if r.get("success")]
    lat = np.concatenate([np.asarray(r.get("latency_ms", []), dtype=float) for r in rows]) if rows else np.zeros(0)

    def stat(key: str, fn, subset: list[dict]) -> float:
        vals = [r[key] for r in subset if key in r and math.isfinite(r[key])]
        return float(fn(vals)) if vals else math.nan

    return {
        "trials": len(rows),
        "success_rate": len(ok) / len(rows) if rows else math.nan,
        "trials_with_contact": int(sum(r.get("contact_steps", 0) > 0 for r in rows)),
        "reached_rate": float(np.mean([bool(r.get("reached")) for r in rows])) if rows else math.nan,
        "completion_s_mean": stat("completion_s", np.mean, ok),
        "completion_s_median": stat("completion_s", np.median, ok),
        "terminal_error_mm_median": stat("terminal_error_mm", np.median, rows),
        "min_ee_clearance_mm": stat("min_ee_clearance_mm", np.min, rows),
        "min_arm_clearance_mm": stat("min_arm_clearance_mm", np.min, rows),
        "min_arm_clearance_mm_median": stat("min_arm_clearance_mm", np.median, rows),
        "sim_min_link_distance_mm": stat("sim_min_link_distance_mm", np.min, rows),
        "latency_ms_mean": float(lat.mean()) if lat.size else math.nan,
        "latency_ms_p95": float(np.percentile(lat, 95)) if lat.size else math.nan,
        "decisions": int(lat.size),
        "deadline_misses": int(sum(r.get("deadline_misses", 0) for r in rows)),
        "holding_cycles": int(sum(r.get("holding_cycles", 0) for r in rows)),
        "goals_refused": int(sum(not r.get("goal_accepted", True) for r in rows)),
    }


def _write(out: Path, policies: list[Policy], models: dict[str, dict], results: list[dict], scenes: list[Scene],
           seed: int, timeout_s: float, command: str, wall_s: float, partial: bool, meta: dict) -> dict:
    table = {p.name: summarize([r for r in results if r["policy"] == p.name]) for p in policies}
    report = {
        "partial": partial, "command": command, "scene_seed": seed, "trials_per_policy": len(scenes), **meta,
        "timeout_s": timeout_s, "wall_s": round(wall_s, 1), "machine": f"{platform.node()} {platform.machine()}",
        "policies": {p.name: {**models[p.name], "trials": p.trials or len(scenes),
                              "timeout_s": p.timeout_s or timeout_s, "params": list(p.params)} for p in policies},
        "table": table, "trials": results,
    }
    tmp = out / "table2.json.tmp"
    tmp.write_text(json.dumps(report, indent=1, allow_nan=True))
    tmp.replace(out / "table2.json")
    (out / "table2.md").write_text(markdown(report))
    return report


def _model_info(path: Path) -> dict:
    meta = json.loads(Path(path).with_suffix(".json").read_text())
    return {"model": str(path), "model_id": meta["model_id"], "role": meta["role"], "onnx_sha256": meta["onnx_sha256"]}


def markdown(report: dict) -> str:
    cols = [("success", lambda t: f"{100 * t['success_rate']:.0f} %"),
            ("trials with contact", lambda t: f"{t['trials_with_contact']}"),
            ("completion s (mean / median)", lambda t: f"{t['completion_s_mean']:.2f} / {t['completion_s_median']:.2f}"),
            ("terminal error mm (median)", lambda t: f"{t['terminal_error_mm_median']:.1f}"),
            ("min EE clearance mm", lambda t: f"{t['min_ee_clearance_mm']:.1f}"),
            ("min arm clearance mm (min / median)",
             lambda t: f"{t['min_arm_clearance_mm']:.1f} / {t['min_arm_clearance_mm_median']:.1f}"),
            ("decision ms (mean / p95)", lambda t: f"{t['latency_ms_mean']:.2f} / {t['latency_ms_p95']:.2f}"),
            ("deadline misses / decisions", lambda t: f"{t['deadline_misses']} / {t['decisions']}"),
            ("holding cycles", lambda t: f"{t['holding_cycles']}")]
    lines = [f"# Table II (simulation){' — PARTIAL' if report['partial'] else ''}", "",
             f"Up to {report['trials_per_policy']} trials per policy on the same scenes (each policy takes the first "
             f"ones; seed {report['scene_seed']}, never used in training), one run on {report['machine']}, "
             f"{report['wall_s']:.0f} s wall, controller mode {report.get('controller_mode', 'pose')}. "
             "Trials and timeout per policy: "
             + ", ".join(f"{n} {p['trials']} x {p['timeout_s']:g} s" for n, p in report["policies"].items()) + ".", "",
             "| policy | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, t in report["table"].items():
        lines.append(f"| {name} | " + " | ".join(fn(t) for _, fn in cols) + " |")
    lines += ["", "Models: " + "; ".join(f"{n} = `{p['model_id']}` ({p['role']}, sha256 {p['onnx_sha256'][:12]})"
                                          for n, p in report["policies"].items()),
              "", f"Reproduce: `{report['command']}`", ""]
    return "\n".join(lines)


def plot(report: dict, scenes: list[Scene], out: Path) -> None:
    """paths.png: one blocking scene's end-effector paths per policy (top and side views);
    latency.png: decision latency distribution per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Polygon

    trials = report["trials"]
    names = list(report["table"])
    index = next((i for i, s in enumerate(scenes) if s.blocking
                  and all(any(r["scene"] == i and r["policy"] == n and r.get("ee_path") for r in trials) for n in names)), 0)
    scene = scenes[index]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (a, b, label) in zip(axes, ((0, 1, "top view (x, y)"), (0, 2, "side view (x, z)"))):
        obs = scene.obstacles
        for c, r, oid in zip(obs.sphere_centers, obs.sphere_radii, obs.sphere_ids):
            ax.add_patch(Circle((c[a], c[b]), r, color="tab:red", alpha=0.35))
        for c, rot, h, oid in zip(obs.box_centers, obs.box_rotations, obs.box_half_extents, obs.box_ids):
            if oid == "table" and b == 1:
                continue  # the table covers the whole top view
            corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * h
            pts = (corners @ rot.T + c)[:, [a, b]]
            hull = _hull(pts)
            ax.add_patch(Polygon(hull, color="tab:gray" if oid == "table" else "tab:red", alpha=0.35))
        for n in names:
            r = next((r for r in trials if r["scene"] == index and r["policy"] == n), None)
            if r and r.get("ee_path"):
                p = np.asarray(r["ee_path"])
                ax.plot(p[:, a], p[:, b], lw=1.5, label=f"{n} ({'ok' if r['success'] else 'fail'})")
        ax.plot(*scene.goal[[a, b]], "k*", ms=12, label="goal")
        ax.set_title(f"scene {index}: {label}", fontsize=10)
        ax.set_aspect("equal")
        ax.autoscale_view()
        ax.set_xlabel("x m")
        ax.set_ylabel(("y" if b == 1 else "z") + " m")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "paths.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    data = [np.concatenate([np.asarray(r["latency_ms"]) for r in trials if r["policy"] == n and r.get("latency_ms")]
                           or [np.array([np.nan])]) for n in names]
    ax.boxplot(data, whis=(5, 95), showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_yscale("log")
    ax.axhline(50.0, color="tab:red", lw=1, ls="--", label="20 Hz period")
    ax.set_ylabel("decision latency, ms (box: quartiles, whiskers: 5-95 %)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of 2-D points (monotone chain), for drawing box projections."""
    pts = sorted(map(tuple, points))

    def half(seq):
        h: list = []
        for p in seq:
            while len(h) >= 2 and np.cross(np.subtract(h[-1], h[-2]), np.subtract(p, h[-2])) <= 0:
                h.pop()
            h.append(p)
        return h

    lower, upper = half(pts), half(reversed(pts))
    return np.array(lower[:-1] + upper[:-1])

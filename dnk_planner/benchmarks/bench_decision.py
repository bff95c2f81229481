"""Decision latency of the planner core: p50/p95/p99 per phase (prior, inference, arm = FK and
whole-arm clearance in one compiled pass, scoring = arm + limits + terms + argmax, total).

One decision = N joint-space candidates at horizon H through the FDK-sized student (seeded random
weights with the trained student's shape and cost, arm layout q | goal | goal_q), the whole-arm
geometric selector (batched FK of every row, 27 link spheres against every obstacle, joint limits)
and a table-top scene, exactly the `Planner.plan` code path the ROS node runs, contexts built by the
node's `ArmContext`. The analytic arm student is measured alongside as the reference of the demo;
`--model` adds trained models (the shipped student: its obstacle slots are encoded every decision).

    python dnk_planner/benchmarks/bench_decision.py            # 5000 decisions per setting
    python dnk_planner/benchmarks/bench_decision.py --quick    # 200-decision smoke
    python dnk_planner/benchmarks/bench_decision.py --latents --no-arm --model dnk_bringup/models/arm-student.onnx
Writes results/bench/decision_latency.json (see --out; the committed reports/bench/ files are written on purpose with --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from dnk_planner.core import Context, Planner
from dnk_planner.core.arm_context import ArmContext
from dnk_planner.core.arm_geometry import arm_clearance
from dnk_planner.core.config import GeometricScoreConfig, PlannerConfig
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import HOME_POSITIONS, JOINT_LOWER, JOINT_UPPER, forward_kinematics, solve_ik
from dnk_planner.core.manifest import load_model, read_manifest
from dnk_planner.core.selectors import GeometricSelector
from dnk_planner.ros.node_config import NodeConfig
from dnk_planner.testing.models import ARM_MODEL_ID, build_arm_primitive_model, build_fdk_sized_model

REPO = Path(__file__).resolve().parents[2]
PHASES = ("prior_ms", "inference_ms", "arm_ms", "scoring_ms", "total_ms")

# A table-top scene in front of the arm (base_link, m): two spheres, a tilted box, a table slab.
OBSTACLES = ObstacleSet.from_shapes(
    spheres=[("ball_a", (0.5, 0.0, 0.3), 0.08), ("ball_b", (0.35, 0.25, 0.45), 0.05)],
    boxes=[("crate", (0.6, -0.25, 0.2), (0.0, 0.0, 0.3827, 0.9239), (0.1, 0.2, 0.3)),
           ("table", (0.5, 0.0, -0.05), (0.0, 0.0, 0.0, 1.0), (1.0, 1.2, 0.1))],
)


def _progress(n: int, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dev convenience, not required
        return range(n)
    return tqdm(range(n), desc=desc, leave=False, mininterval=1.0, disable=None)  # silent off a TTY


def _states(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(q, goal, goal_q): arm states near Home with reachable goals (IK'd, current orientation kept), all
    clear of the obstacles, so every decision does real work."""
    rng = np.random.default_rng(seed)
    home = np.array(HOME_POSITIONS)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while len(out) < n:
        q = np.clip(home + rng.uniform(-0.6, 0.6, (64, 7)), JOINT_LOWER + 0.1, JOINT_UPPER - 0.1)
        clear = arm_clearance(q, OBSTACLES) > 0.05
        pose = forward_kinematics(q[clear])
        goal = pose[:, :3, 3] + rng.uniform(-0.25, 0.25, (len(pose), 3))
        ik = solve_ik(goal, q[clear], pose[:, :3, :3])
        ok = ik.converged & (OBSTACLES.min_signed_distance(goal) > 0.08)
        out += list(zip(q[clear][ok], goal[ok], ik.q[ok]))
    return out[:n]


def measure(planner: Planner, warmup: list[Context], contexts: list[Context], prefetch: bool, desc: str) -> dict:
    """prefetch=True draws the next prior noise between decisions, as a node can in its idle time."""
    for ctx in warmup:  # first runs allocate and page in the model
        planner.plan(ctx)
    samples = {k: np.empty(len(contexts)) for k in PHASES}
    feasible = 0
    for i in _progress(len(contexts), desc):
        if prefetch:
            planner.prefetch()
        d = planner.plan(contexts[i])
        feasible += d.feasible
        for k in PHASES:
            samples[k][i] = d.timing[k]
    stats = {
        k: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)),
            "p99": float(np.percentile(v, 99)), "mean": float(v.mean()), "max": float(v.max())}
        for k, v in samples.items()
    }
    return {"stats_ms": stats, "feasible_fraction": feasible / len(contexts)}


def _environment() -> dict:
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    cpu = ""
    if Path("/proc/cpuinfo").is_file():
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "onnxruntime": ort.__version__,
            "available_providers": ort.get_available_providers(), "git_commit": commit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=5000, help="decisions per setting (default 5000)")
    ap.add_argument("--quick", action="store_true", help="200-decision smoke run")
    ap.add_argument("--latents", type=int, nargs="*", default=[128, 256],
                    help="FDK latent sizes m (none: no synthetic student)")
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="a trained arm model (.onnx with its manifest) to measure too; repeatable")
    ap.add_argument("--rank", type=int, default=32, help="FDK rank r (dnk_training default)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="onnxruntime intra-op threads")
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--horizon", type=int, default=32)
    ap.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"])
    ap.add_argument("--smoothing-degree", type=int, default=NodeConfig.model_fields["smoothing_degree"].default,
                    help="candidate smoothing (PlannerConfig.smoothing_degree); default: the planner node's")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefetch", choices=["off", "on", "both"], default="both",
                    help="draw prior noise between decisions (Planner.prefetch) or inside plan")
    ap.add_argument("--no-arm", action="store_true", help="skip the analytic arm student reference row")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "decision_latency.json")
    args = ap.parse_args()
    n = 200 if args.quick else args.decisions

    states = _states(n + args.warmup, args.seed)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [(f"fdk m={m} r={args.rank}", lambda p, m=m: build_fdk_sized_model(
            p, horizon=args.horizon, latent=m, rank=min(args.rank, m), seed=args.seed)) for m in args.latents]
        if not args.no_arm:
            models.append((ARM_MODEL_ID, lambda p: build_arm_primitive_model(p, horizon=args.horizon)))
        runs = []
        for k, (name, build) in enumerate(models):
            path = Path(tmp) / f"model{k}.onnx"
            build(path)
            runs.append((name, path))
        runs += [(str(path), path) for path in args.model]
        for name, path in runs:
            build_context = ArmContext(read_manifest(path))  # the node's context builder, once per model
            contexts = [build_context.build(q, goal, goal_q, OBSTACLES) for q, goal, goal_q in states]
            for threads in args.threads:
                for prefetch in {"off": [False], "on": [True], "both": [False, True]}[args.prefetch]:
                    student = load_model(path, provider=args.provider, threads=threads)
                    planner = Planner(student, GeometricSelector(GeometricScoreConfig(dt=0.05)),
                                      PlannerConfig(num_candidates=args.candidates, seed=args.seed,
                                                    smoothing_degree=args.smoothing_degree))
                    row = {"model": name, "threads": threads, "prefetch": prefetch, "provider": student.provider,
                           "num_candidates": args.candidates, "horizon": student.manifest.horizon, "decisions": n,
                           "smoothing_degree": args.smoothing_degree,
                           **measure(planner, contexts[:args.warmup], contexts[args.warmup:], prefetch,
                                     f"{name} t={threads} prefetch={prefetch}")}
                    results.append(row)
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python dnk_planner/benchmarks/bench_decision.py " + " ".join(sys.argv[1:]),
        "obstacles": list(OBSTACLES.ids), "environment": _environment(),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "target": "p95 total <= 1.5 ms with 1 thread, whole-arm scoring, 64 x 32", "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{'model':<22}{'thr':>4}{'pref':>5}  " + "  ".join(f"{k[:-3]:>22}" for k in PHASES) + "  feasible")
    print(f"{'':<31}  " + "  ".join(f"{'p50 / p95 / p99 ms':>22}" for _ in PHASES))
    for r in results:
        cells = "  ".join(
            "{p50:6.3f} /{p95:6.3f} /{p99:6.3f}".format(**r["stats_ms"][k]).rjust(22) for k in PHASES)
        print(f"{r['model']:<22}{r['threads']:>4}{'on' if r['prefetch'] else 'off':>5}  {cells}  "
              f"{r['feasible_fraction']:.2f}")
    print(f"loadavg before {load_before}, after {report['loadavg_after']}; wrote {args.out}")


if __name__ == "__main__":
    main()

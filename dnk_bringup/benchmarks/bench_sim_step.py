"""Cost of one sim_gen3 step per command mode (ArmSim.step, no DDS), to size rate_hz.

At rate_hz the sim spends (step cost x rate) of one core: the IK modes (twist, pose) cost the
most. Prints a table and writes results/bench/sim_step.json (see --out).

    python dnk_bringup/benchmarks/bench_sim_step.py [--steps 2000]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from dnk_bringup.arm_sim import ArmSim
from dnk_bringup.sim_gen3_config import SimGen3Config, load_joint_limits
from dnk_planner.core.kinematics import forward_kinematics

LIMITS = Path(__file__).resolve().parents[1] / "config" / "joint_limits.yaml"


def command(sim: ArmSim, mode: str) -> None:
    q = sim.q
    if mode == "trajectory":
        sim.set_trajectory(0.0, 0.0, np.array([5.0]), (q + 0.5)[None])
    elif mode == "twist":
        sim.set_twist(0.0, np.array([0.0, 0.05, 0.0]), np.zeros(3))
    elif mode == "pose":
        sim.set_pose_target(forward_kinematics(q)[:3, 3] + np.array([0.0, 0.3, -0.1]), None)


def bench(mode: str, steps: int, dt: float) -> dict:
    v_max, a_max = load_joint_limits(LIMITS)
    sim = ArmSim(SimGen3Config(twist_timeout_s=0.0), v_max, a_max)
    command(sim, mode)
    times = np.empty(steps)
    for k in range(steps):
        t0 = time.perf_counter()
        sim.step(dt, (k + 1) * dt)
        times[k] = time.perf_counter() - t0
    us = times * 1e6
    return {"mode": mode, "steps": steps, "mean_us": float(us.mean()), "p95_us": float(np.percentile(us, 95)),
            "core_share_at_100hz": float(us.mean() * 1e-6 * 100.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="steps per mode")
    ap.add_argument("--out", type=Path, default=Path("results/bench/sim_step.json"))
    args = ap.parse_args()
    rows = [bench(mode, args.steps, 0.01) for mode in ("hold", "trajectory", "twist", "pose")]
    print(f"{'mode':<11}{'mean us':>10}{'p95 us':>10}{'core @100 Hz':>14}")
    for r in rows:
        print(f"{r['mode']:<11}{r['mean_us']:>10.1f}{r['p95_us']:>10.1f}{r['core_share_at_100hz']:>13.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "sim_gen3 ArmSim.step", "host": platform.node(),
                                    "python": platform.python_version(), "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

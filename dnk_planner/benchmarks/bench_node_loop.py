"""Control-loop benchmark of the real planner node process over DDS.

Measures, from the node's own PlannerStatus stamps (its clock at publish time), the control
period jitter and the deadline misses over a long run at 20 Hz, then sweeps higher rates to
find the highest one this machine sustains without misses. Prints a table and writes JSON.

    python dnk_planner/benchmarks/bench_node_loop.py                 # 60 s at 20 Hz + sweep
    python dnk_planner/benchmarks/bench_node_loop.py --quick         # CI smoke (~25 s)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ROS_DOMAIN_ID", str((os.getpid() + int(time.time())) % 100 + 1))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from dnk_planner.testing.models import build_arm_primitive_model  # noqa: E402
from dnk_planner.ros.client import PlannerClient, sphere, start_planner_process, stop_process  # noqa: E402
from dnk_planner.core.kinematics import HOME_POSITIONS, forward_kinematics  # noqa: E402

Q_HOME = np.array(HOME_POSITIONS)


def run_at(client: PlannerClient, model: Path, rate_hz: float, seconds: float) -> dict:
    """One planner process at `rate_hz` for `seconds` of ACTIVE planning; period statistics."""
    client.clear()
    proc = start_planner_process([f"model_path:={model}", f"rate_hz:={rate_hz:.1f}", "marker_rate_hz:=0.0"])
    try:
        if not client.configure_and_activate():
            raise RuntimeError(f"planner did not configure/activate:\n{stop_process(proc)}")
        start = forward_kinematics(Q_HOME)[:3, 3]
        goal = start + np.array([0.0, 0.3, 0.0])
        client.publish_obstacles([sphere("ball", (start + goal) / 2, 0.05)])
        time.sleep(0.3)
        if not client.set_goal(goal).accepted:
            raise RuntimeError("goal refused")
        client.wait_for(lambda: len(client.status) > 5, 10, "status messages")
        client.clear()
        time.sleep(seconds)
        status = list(client.status)
    finally:
        stop_process(proc)
    stamps = np.array([s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in status])
    periods_ms = np.diff(stamps) * 1e3
    nominal = 1e3 / rate_hz
    jitter = periods_ms - nominal
    latencies = np.array([s.last_latency_ms for s in status])
    return {
        "rate_hz": rate_hz, "seconds": seconds, "cycles": int(len(status)),
        "expected_cycles": int(seconds * rate_hz),
        "period_ms_mean": float(periods_ms.mean()), "period_ms_std": float(periods_ms.std()),
        "jitter_ms_p50_abs": float(np.percentile(np.abs(jitter), 50)),
        "jitter_ms_p99_abs": float(np.percentile(np.abs(jitter), 99)),
        "jitter_ms_max_abs": float(np.abs(jitter).max()),
        "late_periods_over_1.5x": int(np.sum(periods_ms > 1.5 * nominal)),
        "deadline_misses": int(status[-1].deadline_misses - status[0].deadline_misses),
        "decision_ms_mean": float(latencies.mean()), "decision_ms_p95": float(np.percentile(latencies, 95)),
        "states": sorted({int(s.state) for s in status}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of the 20 Hz run, s")
    ap.add_argument("--sweep", type=float, nargs="*", default=[50.0, 100.0, 150.0, 200.0],
                    help="higher rates to try, Hz")
    ap.add_argument("--sweep-seconds", type=float, default=10.0, help="duration of each sweep run, s")
    ap.add_argument("--quick", action="store_true", help="CI smoke: 10 s at 20 Hz, one 5 s sweep point")
    ap.add_argument("--out", type=Path, default=Path("results/bench/node_loop.json"))
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.sweep, args.sweep_seconds = 10.0, [100.0], 5.0

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "arm.onnx"
        build_arm_primitive_model(model, horizon=32)
        client = PlannerClient()
        client.hold_joints(Q_HOME)
        try:
            base = run_at(client, model, 20.0, args.seconds)
            sweep = [run_at(client, model, r, args.sweep_seconds) for r in args.sweep]
        finally:
            client.close()
    sustained = max([20.0] * (base["deadline_misses"] == 0)
                    + [s["rate_hz"] for s in sweep if s["deadline_misses"] == 0 and s["cycles"] >= 0.9 * s["expected_cycles"]],
                    default=None)
    result = {"benchmark": "planner_node control loop", "model": "arm-primitives-v1 (H=32, 64 candidates)",
              "host": platform.node(), "cpus": os.cpu_count(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "base_20hz": base, "sweep": sweep, "highest_rate_without_misses_hz": sustained}
    print(f"{'rate Hz':>8} {'cycles':>7} {'period ms':>16} {'|jitter| p99/max ms':>20} {'misses':>7} {'decision p95 ms':>16}")
    for r in [base] + sweep:
        print(f"{r['rate_hz']:8.0f} {r['cycles']:4d}/{r['expected_cycles']:<4d}"
              f"{r['period_ms_mean']:9.2f}±{r['period_ms_std']:5.2f} "
              f"{r['jitter_ms_p99_abs']:9.2f}/{r['jitter_ms_max_abs']:<9.2f} {r['deadline_misses']:7d} "
              f"{r['decision_ms_p95']:16.3f}")
    print(f"highest rate sustained without deadline misses: {sustained} Hz")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

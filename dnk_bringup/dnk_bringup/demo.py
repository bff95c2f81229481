"""Closed-loop demo: simulated Gen3 + DNK planner node over DDS, a goal behind an obstacle.

Starts three real processes (sim_gen3, planner_node, bag_record), publishes an obstacle set,
sends goals through the SetGoal service, prints the planner status twice a second, and ends
with a summary (completion time, terminal error, minimum clearance, decision latency,
deadline misses) and the MCAP bag that recorded it. Exit code 0 only when every goal was
reached without touching an obstacle.

    python -m dnk_bringup.demo [--model arm.onnx] [--controller-mode joint_trajectory]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from dnk_planner.ros.domain import default_domain_id  # noqa: E402 - before any ROS import

default_domain_id()
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from dnk_msgs.msg import ObstacleArray, PlannerStatus  # noqa: E402
from dnk_planner.testing.models import ARM_MODEL_ID, build_arm_primitive_model  # noqa: E402
from dnk_planner.ros.client import ChildProcess, PlannerClient, box, sphere, start_planner_process, stop_process  # noqa: E402
from dnk_planner.core.arm_geometry import arm_clearance  # noqa: E402
from dnk_planner.core.kinematics import forward_kinematics  # noqa: E402
from dnk_planner.ros.inputs import obstacles_from_msg  # noqa: E402

from dnk_bringup.paths import config_file, model_file  # noqa: E402

GOAL_TOLERANCE_M = 0.01
STATE_NAMES = {PlannerStatus.IDLE: "IDLE", PlannerStatus.ACTIVE: "ACTIVE", PlannerStatus.HOLDING: "HOLDING",
               PlannerStatus.GOAL_REACHED: "GOAL_REACHED", PlannerStatus.FAULT: "FAULT"}


def _start(module: str, *ros_args: str) -> ChildProcess:
    return ChildProcess([sys.executable, "-m", module, "--ros-args", *ros_args])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None,
                    help="arm model .onnx (+ .json manifest); default: the shipped distilled student "
                    "(dnk_bringup/models/arm-student.onnx); 'analytic' generates the hand-written primitives model")
    ap.add_argument("--controller-mode", choices=["pose", "twist", "joint_trajectory"], default="joint_trajectory")
    ap.add_argument("--timeout", type=float, default=40.0, help="seconds allowed per goal")
    ap.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder for the bag and summary.json")
    args = ap.parse_args(argv)

    if args.model is None:
        args.model = model_file("arm-student.onnx")
    elif str(args.model) == "analytic":
        args.model = Path(f"artifacts/arm/{ARM_MODEL_ID}.onnx")
        print(f"demo: generating the analytic arm primitive model (not distilled) at {args.model}")
        build_arm_primitive_model(args.model, horizon=32)
    print(f"demo: model {args.model}")
    args.out.mkdir(parents=True, exist_ok=True)
    bag = args.out / time.strftime("bag_%Y%m%d_%H%M%S")
    print(f"demo: ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, controller_mode={args.controller_mode}")

    # The sim follows only the command of the chosen mode, as the real controller would.
    sim = _start("dnk_bringup.sim_gen3", "--params-file", str(config_file("sim_gen3.yaml")),
                 "-p", f"command_mode:={args.controller_mode}")
    recorder = _start("dnk_bringup.bag_record", "-p", f"output:={bag}")
    planner = start_planner_process(
        [f"model_path:={args.model.resolve()}", f"controller_mode:={args.controller_mode}"],
        params_file=str(config_file("planner.yaml")), autostart=True)
    client = PlannerClient()
    results, ok = [], True
    try:
        client.wait_for(lambda: (s := client.latest_status()) and s.state != PlannerStatus.FAULT and s.model_id,
                        timeout=20, what="the planner node's status")
        q = client.wait_for(client.joint_positions, timeout=10, what="/joint_states from sim_gen3")
        start = forward_kinematics(q)[:3, 3]
        # Goal 1: 30 cm to the side and 10 cm lower, a ball in the middle of the straight line and a
        # table below. Goal 2: up and back from there, clear of the ball.
        goals = [start + np.array([0.0, 0.30, -0.10]), start + np.array([-0.10, 0.30, 0.0])]
        obstacles = [sphere("ball", (start + goals[0]) / 2, 0.06),
                     box("table", [start[0], start[1], 0.0], [1.2, 1.2, 0.04])]
        client.publish_obstacles(obstacles)
        time.sleep(0.5)
        for k, goal in enumerate(goals):
            answer = client.set_goal(goal, tolerance=GOAL_TOLERANCE_M)
            print(f"demo: goal {k + 1}/{len(goals)} {np.round(goal, 3).tolist()} m -> accepted={answer.accepted} "
                  f"({answer.message})")
            if not answer.accepted:
                ok = False
                break
            results.append(_track(client, k, args.timeout, obstacles, goal))
            ok &= results[-1]["reached"]
    finally:
        client.close()
        logs = {name: stop_process(p) for name, p in (("planner", planner), ("sim_gen3", sim), ("bag_record", recorder))}
    for name, log in logs.items():
        if "Traceback" in log or not ok:
            print(f"---- {name} log ----\n{log[-3000:]}")
    summary = {"goals": results, "all_reached": ok, "bag": str(bag), "bag_messages": _bag_counts(bag)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("demo: summary")
    for r in results:
        print(f"  goal {r['goal']}: reached={r['reached']} in {r['completion_s']:.1f} s, terminal error "
              f"{r['terminal_error_mm']:.1f} mm, min clearance {r['min_clearance_mm']:.1f} mm, decision "
              f"{r['latency_mean_ms']:.2f} ms mean / {r['latency_p95_ms']:.2f} ms p95, "
              f"{r['deadline_misses']} deadline misses in {r['cycles']} cycles")
    print(f"  bag: {bag} {summary['bag_messages']}")
    print(f"demo: {'SUCCESS' if ok else 'FAILED'} (summary in {args.out / 'summary.json'})")
    return 0 if ok else 1


def _track(client: PlannerClient, index: int, timeout: float, obstacles: list, goal: np.ndarray) -> dict:
    """Follow one goal; obstacles are re-published at 2 Hz, as a perception node would. Clearance
    and terminal error are measured from what the arm did (FK of the sim's /joint_states, every
    link sphere against the obstacles), not from the planner's own status."""
    client.clear()
    scene = obstacles_from_msg(ObstacleArray(obstacles=list(obstacles)))
    t0, last_print = time.monotonic(), 0.0
    clearances: list[float] = []
    while time.monotonic() - t0 < timeout:
        time.sleep(0.05)
        st = client.latest_status()
        q = client.joint_positions()
        if st is None or q is None:
            continue
        clearances.append(float(arm_clearance(np.asarray(q), scene)))
        if time.monotonic() - last_print >= 0.5:
            last_print = time.monotonic()
            client.publish_obstacles(obstacles)
            print(f"  t={last_print - t0:5.1f} s {STATE_NAMES.get(st.state, st.state):12s} "
                  f"dist {st.distance_to_goal * 1e3:7.1f} mm  arm clearance {clearances[-1] * 1e3:7.1f} mm  "
                  f"decision mean {st.mean_latency_ms:5.2f} ms (p95 {st.p95_latency_ms:5.2f})  "
                  f"misses {st.deadline_misses}  | {st.message}")
        if st.state == PlannerStatus.GOAL_REACHED:
            break
    st = client.latest_status()
    q = client.joint_positions()
    error = float(np.linalg.norm(forward_kinematics(np.asarray(q))[:3, 3] - goal)) if q is not None else math.inf
    reached = st is not None and st.state == PlannerStatus.GOAL_REACHED and error <= GOAL_TOLERANCE_M
    lat = [s.last_latency_ms for s in client.status if math.isfinite(s.last_latency_ms)]
    return {"goal": index + 1, "reached": bool(reached and (not clearances or min(clearances) > 0.0)),
            "completion_s": time.monotonic() - t0,
            "terminal_error_mm": error * 1e3,
            "min_clearance_mm": (min(clearances) * 1e3) if clearances else math.inf,
            "latency_mean_ms": float(np.mean(lat)) if lat else math.nan,
            "latency_p95_ms": float(np.percentile(lat, 95)) if lat else math.nan,
            "deadline_misses": int(st.deadline_misses) if st else 0, "cycles": int(st.cycles) if st else 0}


def _bag_counts(bag: Path) -> dict[str, int]:
    """Messages per topic in the recorded bag, read back with rosbags."""
    from rosbags.rosbag2 import Reader
    if not (bag / "metadata.yaml").exists():
        return {}
    with Reader(bag) as reader:
        return {c.topic: c.msgcount for c in reader.connections}


if __name__ == "__main__":
    sys.exit(main())

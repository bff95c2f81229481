"""Real-time factor of sim_gen3's MuJoCo physics at 1 kHz with the planner running (real processes, DDS).

sim_gen3 (Kinova's URDF + meshes when ../shared/reference/kortex_gen3 exists, else the sphere
model) and planner_node in joint_trajectory mode; the arm is sent back and forth between two goals
around a ball for `--seconds`; the sim reports sim time / wall time on /sim_gen3/contacts, and the
/joint_states rate shows whether the 100 Hz publish loop keeps up.

    python dnk_bringup/benchmarks/bench_sim_rtf.py --seconds 60
Writes results/bench/sim_rtf.json (see --out; reports/bench/sim_rtf.json was written with --out).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from dnk_planner.ros.domain import default_domain_id  # noqa: E402 - before any ROS import

default_domain_id()
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import numpy as np  # noqa: E402

from dnk_msgs.msg import ArmContacts  # noqa: E402
from dnk_planner.core.kinematics import forward_kinematics  # noqa: E402
from dnk_planner.ros.client import ChildProcess, PlannerClient, sphere, start_planner_process, stop_process  # noqa: E402
from dnk_planner.ros.topics import SIM_CONTACTS  # noqa: E402
from dnk_planner.testing.models import build_arm_primitive_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
KORTEX = REPO.parent / "shared" / "reference" / "kortex_gen3"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "sim_rtf.json")
    args = ap.parse_args()
    config = REPO / "dnk_bringup" / "config"
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "arm.onnx"
        build_arm_primitive_model(model)
        sim_args = [sys.executable, "-m", "dnk_bringup.sim_gen3", "--ros-args", "--params-file",
                    str(config / "sim_gen3.yaml"), "-p", "command_mode:=joint_trajectory"]
        if KORTEX.is_dir():
            sim_args += ["-p", f"description_path:={KORTEX}"]
        sim = ChildProcess(sim_args)
        planner = start_planner_process([f"model_path:={model}", "controller_mode:=joint_trajectory", "provider:=cpu"],
                                        params_file=str(config / "planner.yaml"), autostart=True)
        client = PlannerClient()
        reports: list[ArmContacts] = []
        client.node.create_subscription(ArmContacts, SIM_CONTACTS, reports.append, 10)
        try:
            q = client.wait_for(client.joint_positions, timeout=30, what="/joint_states")
            client.wait_for(lambda: (s := client.latest_status()) and s.message == "waiting for a goal", timeout=30,
                            what="the planner")
            start = forward_kinematics(q)[:3, 3]
            goals = [start + np.array([0.0, 0.3, -0.1]), start]
            client.publish_obstacles([sphere("ball", (start + goals[0]) / 2, 0.06)])
            time.sleep(0.5)
            client.clear()
            reports.clear()
            t0, k, reached = time.monotonic(), 0, 0
            client.set_goal(goals[0])
            while time.monotonic() - t0 < args.seconds:
                time.sleep(0.1)
                s = client.latest_status()
                if s is not None and s.state == 3:  # GOAL_REACHED: go to the other goal
                    k, reached = k + 1, reached + 1
                    client.set_goal(goals[k % 2])
            wall = time.monotonic() - t0
            rtf = [r.real_time_factor for r in reports]
            window = list(reports)
            report = {
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "command": "python dnk_bringup/benchmarks/bench_sim_rtf.py " + " ".join(sys.argv[1:]),
                "physics": "Kinova URDF + meshes" if KORTEX.is_dir() else "collision spheres",
                "physics_step_s": 0.001, "wall_s": wall, "goals_reached": reached,
                "real_time_factor_since_start": rtf[-1] if rtf else None,
                "real_time_factor_min_report": min(rtf) if rtf else None,
                "contact_steps": int(sum(r.contact_steps for r in window)),
                "min_link_distance_m": float(min(r.min_link_distance for r in window)) if window else None,
                "planner_deadline_misses": int(client.latest_status().deadline_misses),
                "planner_cycles": int(client.latest_status().cycles),
                "loadavg": os.getloadavg(), "cpu_count": os.cpu_count(),
            }
        finally:
            client.close()
            stop_process(planner)
            stop_process(sim)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

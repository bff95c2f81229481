"""Soak and load benchmark of the real planner node process over DDS.

The benchmark process plays a busy robot: joint states at 1 kHz (stamped), an obstacle array of
moving spheres at 100 Hz and a new /goal_pose every few seconds, while the planner plans against
them with 64 candidates. It measures, from the node's own PlannerStatus stamps, the control period
jitter and the deadline misses, and the node's resident memory (RSS) over the run; then the same
load at each rate of a sweep. Prints a table, writes JSON and a PNG.

    python dnk_planner/benchmarks/bench_soak.py                        # 10 min soak at 20 Hz + sweep
    python dnk_planner/benchmarks/bench_soak.py --seconds 30 --sweep   # CI-sized smoke
    make soak                                                          # writes reports/bench/soak.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil

from dnk_planner.ros.domain import default_domain_id  # noqa: E402 - before any ROS import

default_domain_id()
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from dnk_planner.core.kinematics import HOME_POSITIONS, forward_kinematics  # noqa: E402
from dnk_planner.ros.client import PlannerClient, sphere, start_planner_process, stop_process  # noqa: E402
from dnk_planner.testing.models import ARM_MODEL_ID, build_arm_primitive_model  # noqa: E402

Q_HOME = np.array(HOME_POSITIONS)
EE_HOME = forward_kinematics(Q_HOME)[:3, 3]
GOALS = (EE_HOME + np.array([0.0, 0.25, -0.05]), EE_HOME + np.array([0.0, -0.25, 0.05]))


class Load(threading.Thread):
    """Publishes joint states at `joint_hz`, obstacles at `obstacle_hz` and a goal every
    `goal_period_s` on an absolute schedule (a late tick is not made up, it is counted)."""

    def __init__(self, client: PlannerClient, joint_hz: float, obstacle_hz: float, goal_period_s: float) -> None:
        super().__init__(daemon=True)
        self.client, self.joint_hz, self.obstacle_hz, self.goal_period_s = client, joint_hz, obstacle_hz, goal_period_s
        self.sent = {"joint_states": 0, "obstacles": 0, "goals": 0}
        self._halt = threading.Event()

    def run(self) -> None:
        c, node = self.client, self.client.node
        joints = JointState(name=c.joint_names, position=[float(v) for v in Q_HOME])
        goal = PoseStamped()
        goal.header.frame_id = "base_link"
        t0 = time.monotonic()
        next_obstacles = next_goal = t0
        tick = 1.0 / self.joint_hz
        k = 0
        while not self._halt.is_set():
            now = time.monotonic()
            joints.header.stamp = node.get_clock().now().to_msg()
            c.pub_joint_states.publish(joints)
            self.sent["joint_states"] += 1
            if now >= next_obstacles:
                phase = now - t0
                # three spheres swaying beside the arm, clear of both goals
                c.publish_obstacles([sphere(f"sway{i}", EE_HOME + [0.25, 0.15 * np.sin(phase + 2 * i), 0.25 + 0.05 * i],
                                            0.04) for i in range(3)])
                self.sent["obstacles"] += 1
                next_obstacles += 1.0 / self.obstacle_hz
            if now >= next_goal:
                g = GOALS[self.sent["goals"] % 2]
                goal.header.stamp = joints.header.stamp
                goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = (float(v) for v in g)
                c.pub_goal.publish(goal)
                self.sent["goals"] += 1
                next_goal += self.goal_period_s
            k += 1
            time.sleep(max(0.0, t0 + k * tick - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2.0)


def run_at(client: PlannerClient, model: Path, rate_hz: float, seconds: float, warmup_s: float,
           load_args: dict, log_dir: Path | None = None, label: str = "sweep") -> dict:
    """One planner process at `rate_hz` under load; statistics after `warmup_s`."""
    client.clear()
    client.hold_joints(None)  # the load thread publishes the joint states
    proc = start_planner_process([f"model_path:={model}", f"rate_hz:={rate_hz:.1f}"])
    load = Load(client, **load_args)
    rss: list[tuple[float, float]] = []
    try:
        if not client.configure_and_activate():
            raise RuntimeError(f"planner did not configure/activate:\n{stop_process(proc)}")
        load.start()
        client.wait_for(lambda: len(client.status) > 5, 10, "status messages")
        process = psutil.Process(proc.pid)
        time.sleep(warmup_s)
        client.clear()
        sent0 = dict(load.sent)
        t_start = time.monotonic()
        while (elapsed := time.monotonic() - t_start) < seconds:
            rss.append((elapsed, process.memory_info().rss / 2**20))
            time.sleep(min(1.0, seconds / 60))
        rss.append((time.monotonic() - t_start, process.memory_info().rss / 2**20))
        status = list(client.status)
        sent = {k: load.sent[k] - sent0[k] for k in sent0}
    finally:
        load.stop()
        log = stop_process(proc)
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / f"planner_{label}_{rate_hz:g}hz.log").write_text(log)
    if not status:
        raise RuntimeError(f"no status received at {rate_hz} Hz:\n{log}")
    stamps = np.array([s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in status])
    periods_ms = np.diff(stamps) * 1e3
    jitter = np.abs(periods_ms - 1e3 / rate_hz)
    latency = np.array([s.last_latency_ms for s in status])
    latency = latency[np.isfinite(latency)]
    states = {int(s.state) for s in status}
    messages = Counter(s.message.split(" (")[0][:80] for s in status)
    return {
        "rate_hz": rate_hz, "seconds": seconds, "warmup_s": warmup_s,
        "cycles": int(status[-1].cycles - status[0].cycles + 1), "expected_cycles": int(round(seconds * rate_hz)),
        "deadline_misses": int(status[-1].deadline_misses - status[0].deadline_misses),
        "period_ms_mean": float(periods_ms.mean()), "period_ms_std": float(periods_ms.std()),
        "jitter_ms_p99": float(np.percentile(jitter, 99)), "jitter_ms_max": float(jitter.max()),
        "decision_ms_p50": float(np.percentile(latency, 50)) if latency.size else None,
        "decision_ms_p95": float(np.percentile(latency, 95)) if latency.size else None,
        "decision_ms_p99": float(np.percentile(latency, 99)) if latency.size else None,
        "states": sorted(states), "status_messages": dict(messages.most_common(8)),
        "sent_rates_hz": {k: v / seconds for k, v in sent.items()},
        "rss_mib_start": rss[0][1], "rss_mib_end": rss[-1][1], "rss_growth_mib": rss[-1][1] - rss[0][1],
        "rss_mib": [[round(t, 2), round(m, 3)] for t, m in rss],
    }


def plot(result: dict, path: Path) -> Path | None:
    """RSS over the soak, and deadline misses per rate of the sweep."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib comes with the training profile; the JSON is the result
        return None
    soak, sweep = result["soak"], result["sweep"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    t, m = np.array(soak["rss_mib"]).T
    axes[0].plot(t, m)
    axes[0].set(xlabel="time after warm-up (s)", ylabel="planner RSS (MiB)",
                title=f"soak at {soak['rate_hz']:g} Hz: growth {soak['rss_growth_mib']:+.2f} MiB")
    if sweep:
        rates = [f"{r['rate_hz']:g}" for r in sweep]
        axes[1].bar(rates, [r["deadline_misses"] for r in sweep])
        for i, r in enumerate(sweep):
            axes[1].annotate(f"{r['deadline_misses']}/{r['cycles']}", (i, r["deadline_misses"]), ha="center",
                             va="bottom")
        axes[1].set(xlabel="control rate (Hz)", ylabel="deadline misses", title="misses per rate under the same load")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=20.0, help="control rate of the soak, Hz")
    ap.add_argument("--seconds", type=float, default=600.0, help="soak duration after warm-up, s")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up before measuring, s")
    ap.add_argument("--sweep", type=float, nargs="*", default=[20.0, 50.0, 100.0, 200.0, 300.0],
                    help="rates of the sweep, Hz (none: no sweep)")
    ap.add_argument("--sweep-seconds", type=float, default=30.0, help="duration of each sweep run, s")
    ap.add_argument("--joint-hz", type=float, default=1000.0)
    ap.add_argument("--obstacle-hz", type=float, default=100.0)
    ap.add_argument("--goal-period", type=float, default=5.0, help="s between goal changes")
    ap.add_argument("--out", type=Path, default=Path("results/bench/soak.json"))
    ap.add_argument("--logs", type=Path, default=None, help="folder for the planner's log of each run")
    args = ap.parse_args()
    load_args = {"joint_hz": args.joint_hz, "obstacle_hz": args.obstacle_hz, "goal_period_s": args.goal_period}

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "arm.onnx"
        build_arm_primitive_model(model, horizon=32)
        client = PlannerClient(listen_joint_states=False)
        try:
            soak = run_at(client, model, args.rate, args.seconds, args.warmup, load_args, args.logs, "soak")
            sweep = [run_at(client, model, r, args.sweep_seconds, args.warmup, load_args, args.logs) for r in args.sweep]
        finally:
            client.close()
    ok = [r["rate_hz"] for r in sweep if r["deadline_misses"] == 0 and r["cycles"] >= 0.95 * r["expected_cycles"]]
    result = {
        "benchmark": "planner_node soak and load", "model": f"{ARM_MODEL_ID} (H=32, 64 candidates)",
        "load": load_args, "host": platform.node(), "cpus": os.cpu_count(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": "python dnk_planner/benchmarks/bench_soak.py " + " ".join(os.sys.argv[1:]),
        "soak": soak, "sweep": sweep, "highest_rate_without_misses_hz": max(ok, default=None),
    }
    print(f"{'rate Hz':>8} {'cycles':>11} {'period ms':>14} {'|jitter| p99/max ms':>20} {'misses':>7} "
          f"{'decision p50/p99 ms':>20} {'RSS MiB start->end':>19}")
    for r in [soak] + sweep:
        print(f"{r['rate_hz']:8.0f} {r['cycles']:5d}/{r['expected_cycles']:<5d} {r['period_ms_mean']:7.2f}±{r['period_ms_std']:5.2f} "
              f"{r['jitter_ms_p99']:9.2f}/{r['jitter_ms_max']:<10.2f} {r['deadline_misses']:7d} "
              f"{r['decision_ms_p50']:9.3f}/{r['decision_ms_p99']:<10.3f} {r['rss_mib_start']:8.2f}->{r['rss_mib_end']:.2f}")
    print(f"load sent (Hz): {soak['sent_rates_hz']}")
    print(f"highest rate of the sweep without deadline misses: {result['highest_rate_without_misses_hz']} Hz")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    png = plot(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out}" + (f" and {png}" if png else ""))


if __name__ == "__main__":
    main()

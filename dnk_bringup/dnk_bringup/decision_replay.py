"""dnk-replay: run the decisions recorded in a bag through the planner core again, offline.

Every `/dnk/decision` message (dnk_msgs/PlannerDecision) holds the context, obstacle set and prior
generator state the planner decided from. Replayed with the same model and execution provider,
each decision must come out bit-identical (chosen index, every score, the action); the report says
per decision whether it did and how far it moved otherwise. `--model OTHER` replays the same
inputs with another student: where and by how much the decisions and scores change (regression
debugging between two trained students). No ROS executor and no torch: rosbags + the core.

    dnk-replay runs/run1                       # the recorded model, found by its hash
    dnk-replay runs/run1 --model other.onnx --out results/replay --plot results/replay/episode.png

Exit status: 0 all read (and, with the recorded model, all identical); 1 a same-model decision
differs; 2 the bag is damaged (partial results are still reported) or unusable.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnk_bringup.bag_read import read_bag
from dnk_bringup.msg_types import UnknownMessageType, ensure_registered, make_typestore
from dnk_planner.core import Decision, Planner
from dnk_planner.core.manifest import ModelContractError, load_model
from dnk_planner.core.selectors import GeometricSelector
from dnk_planner.ros.decisions import RecordedDecision, read_decision
from dnk_planner.ros.topics import DECISION

DECISION_TYPE = "dnk_msgs/msg/PlannerDecision"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dnk-replay", description=__doc__.split("\n\n")[0])
    p.add_argument("bag", type=Path, help="bag directory (or .mcap file) recorded with /dnk/decision")
    p.add_argument("--model", type=Path, default=None,
                   help="replay with this .onnx instead of the recorded model (found by its sha256)")
    p.add_argument("--search", type=Path, action="append", default=[],
                   help="folder to look for the recorded model in (repeatable; the shipped models always)")
    p.add_argument("--provider", default="cpu", choices=("auto", "cpu", "cuda", "tensorrt"),
                   help="onnxruntime provider (bit-identity needs the one the robot used)")
    p.add_argument("--out", type=Path, default=None, help="write replay.json here")
    p.add_argument("--plot", type=Path, default=None, help="PNG of the replayed episode")
    return p.parse_args(argv)


def find_model(sha256: str, folders: list[Path]) -> Path | None:
    """The .onnx among `folders` whose manifest names this sha256 (hashing only candidates)."""
    from dnk_planner.core.manifest import sha256_file

    for folder in folders:
        for onnx in sorted(Path(folder).glob("*.onnx")):
            manifest = onnx.with_suffix(".json")
            try:
                if manifest.is_file() and json.loads(manifest.read_text()).get("onnx_sha256") == sha256 \
                        and sha256_file(onnx) == sha256:
                    return onnx
            except (OSError, ValueError):
                continue
    return None


@dataclass
class Replayed:
    recorded: RecordedDecision
    best_index: int
    scores: np.ndarray
    action: np.ndarray
    total_ms: float

    @property
    def identical(self) -> bool:
        r = self.recorded
        return (self.best_index == r.best_index and np.array_equal(self.scores, r.scores)
                and np.array_equal(self.action, r.action))

    def diff(self) -> dict:
        r = self.recorded
        both = np.isfinite(self.scores) & np.isfinite(r.scores)
        return {"cycle": r.cycle, "best_index": [r.best_index, self.best_index],
                "feasible": [r.best_index >= 0, self.best_index >= 0],
                "score_max_abs_diff": float(np.abs(self.scores[both] - r.scores[both]).max()) if both.any() else None,
                "rejections_changed": int((np.isfinite(self.scores) != np.isfinite(r.scores)).sum()),
                "action_max_abs_diff": float(np.abs(self.action - r.action).max())}


class DecisionReplayer:
    """One planner core, rebuilt only when the recorded planner settings change."""

    def __init__(self, model_path: Path, provider: str) -> None:
        self.model = load_model(model_path, provider=provider)
        self._planner: Planner | None = None
        self._key: tuple[str, str] | None = None

    def plan(self, rec: RecordedDecision) -> Decision:
        """The recorded decision's inputs through the core again (its settings, its prior noise)."""
        key = (rec.planner_config.model_dump_json(), rec.score_config.model_dump_json())
        if key != self._key:
            self._planner = Planner(self.model, GeometricSelector(rec.score_config), rec.planner_config)
            self._key = key
        return self._planner.plan(rec.context, generator_state=rec.generator_state)

    def replay(self, rec: RecordedDecision) -> Replayed:
        """The outcome only: a long bag must not hold every decision's 64 candidates in memory."""
        d = self.plan(rec)
        return Replayed(rec, d.best_index, d.scores, d.action.astype(np.float32), d.timing["total_ms"])


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms, dtype=float)
    if not len(a):
        return {}
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max())}


def replay_bag(bag: Path, model: Path | None = None, search: list[Path] = (), provider: str = "cpu"):
    """(report dict, replayed decisions, the replayer). ValueError for a bag or model that cannot be
    replayed at all."""
    from dnk_bringup.paths import SOURCE_DIR, model_file

    messages, scan = read_bag(bag, [DECISION])
    store = make_typestore()
    ensure_registered(store, DECISION_TYPE)
    recorded, undecodable = [], 0
    for m in messages:
        try:
            recorded.append(read_decision(store.deserialize_cdr(m.data, m.msgtype)))
        except Exception:  # noqa: BLE001 - a damaged message is counted, the rest still replays
            undecodable += 1
    if not recorded:
        raise ValueError(f"{bag}: no readable {DECISION} message"
                         + (f" ({scan.error})" if scan.error else "; record with the planner's publish_decisions"
                            " on (the default) and /dnk/decision in the recorder's topics"))
    first = recorded[0]
    if model is None:
        try:
            shipped = [model_file("arm-student.onnx").parent]
        except ValueError:
            shipped = [SOURCE_DIR / "models"]
        model = find_model(first.model_sha256, [*search, *shipped])
        if model is None:
            raise ValueError(f"the bag's model {first.model_id} (sha256 {first.model_sha256[:12]}…) is not in "
                             f"{[str(f) for f in [*search, *shipped]]}. Fix: pass --model PATH or --search FOLDER")
    replayer = DecisionReplayer(model, provider)
    same_model = replayer.model.manifest.onnx_sha256 == first.model_sha256
    replayed = [replayer.replay(r) for r in recorded]
    changed = [r for r in replayed if not r.identical]
    action_diff = [float(np.abs(r.action - r.recorded.action).max()) for r in replayed]
    report = {
        "bag": str(bag), "model": str(model), "model_sha256": replayer.model.manifest.onnx_sha256,
        "recorded_model": first.model_id, "recorded_model_sha256": first.model_sha256, "same_model": same_model,
        "provider": provider, "decisions": len(replayed), "undecodable": undecodable,
        "identical": len(replayed) - len(changed), "changed": len(changed),
        # decisions where the recorded model found a plan (holds with none under both models replay identically)
        "recorded_feasible": sum(r.recorded.best_index >= 0 for r in replayed),
        "changed_recorded_feasible": sum(r.recorded.best_index >= 0 for r in changed),
        "best_index_changed": sum(r.best_index != r.recorded.best_index for r in replayed),
        "feasibility_changed": sum((r.best_index >= 0) != (r.recorded.best_index >= 0) for r in replayed),
        "action_max_abs_diff": max(action_diff, default=0.0),
        "diffs": [r.diff() for r in changed[:200]],
        "latency_ms": {"replayed": _stats([r.total_ms for r in replayed]),
                       "recorded": _stats([r.recorded.timing.get("total_ms", np.nan) for r in replayed])},
        "bag_error": scan.error, "salvaged": scan.salvaged,
    }
    return report, replayed, replayer


def plot_episode(replayed: list[Replayed], replayer: DecisionReplayer, path: Path) -> None:
    """Top view (x-y, base_link) of the replayed episode: the arm's end-effector path, the obstacles,
    and at one decision (the first with a rejected candidate, else the middle) the chosen and rejected plans."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Polygon

    from dnk_planner.core.kinematics import forward_kinematics

    ee = forward_kinematics(np.array([r.recorded.context.values["q"] for r in replayed]))[:, :3, 3]
    pick = next((r for r in replayed if np.isinf(r.scores).any() and r.best_index >= 0), replayed[len(replayed) // 2])
    candidates = replayer.plan(pick.recorded).candidates  # bit-identical to the replay: planned again, not kept
    fig, ax = plt.subplots(figsize=(6.5, 6))
    obs = pick.recorded.context.obstacles
    for c, rad, name in zip(obs.sphere_centers, obs.sphere_radii, obs.sphere_ids):
        ax.add_patch(Circle(c[:2], rad, color="tab:red", alpha=0.35))
        ax.annotate(name, c[:2], fontsize=7)
    for c, rot, half, name in zip(obs.box_centers, obs.box_rotations, obs.box_half_extents, obs.box_ids):
        if half.max() > 0.5:  # the table: not drawn in a top view
            continue
        corners = np.array([[sx, sy, 0.0] for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]) * half
        ax.add_patch(Polygon((corners @ rot.T + c)[:, :2], color="tab:red", alpha=0.25))
        ax.annotate(name, c[:2], fontsize=7)
    for k, cand in enumerate(candidates):
        path_k = forward_kinematics(cand[:, :7].astype(np.float64))[:, :3, 3]
        rejected = not np.isfinite(pick.scores[k])
        ax.plot(path_k[:, 0], path_k[:, 1], color="0.6" if rejected else "tab:blue", lw=0.6,
                alpha=0.5, ls=":" if rejected else "-")
    if pick.best_index >= 0:
        best = forward_kinematics(candidates[pick.best_index][:, :7].astype(np.float64))[:, :3, 3]
        ax.plot(best[:, 0], best[:, 1], color="tab:green", lw=2.0, label=f"chosen at cycle {pick.recorded.cycle}")
    ax.plot(ee[:, 0], ee[:, 1], color="k", lw=1.5, label="end effector (recorded contexts)")
    goal = pick.recorded.context.values.get("goal")
    if goal is not None:
        ax.plot(goal[0], goal[1], "*", color="tab:orange", ms=12, label="goal")
    ax.plot([], [], color="tab:blue", lw=0.6, label="feasible candidates")
    ax.plot([], [], color="0.6", lw=0.6, ls=":", label="rejected candidates")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, base_link)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"replay: {len(replayed)} decisions, {sum(r.identical for r in replayed)} identical")
    ax.legend(fontsize=7, loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        report, replayed, replayer = replay_bag(args.bag, args.model, args.search, args.provider)
    except (ValueError, ModelContractError, UnknownMessageType, OSError) as exc:
        print(f"dnk-replay: {exc}", file=sys.stderr)
        return 2
    lat = report["latency_ms"]
    print(f"dnk-replay: {report['decisions']} decisions with {Path(report['model']).name}"
          f"{' (the recorded model)' if report['same_model'] else ' (recorded: ' + report['recorded_model'] + ')'}: "
          f"{report['identical']} identical, {report['changed']} changed "
          f"({report['best_index_changed']} chose another candidate, {report['feasibility_changed']} changed "
          f"feasibility, action max |diff| {report['action_max_abs_diff']:.3g}); replayed latency "
          f"{lat['replayed']['mean']:.2f} ms mean / {lat['replayed']['p95']:.2f} ms p95")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "replay.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        plot_episode(replayed, replayer, args.plot)
    if report["bag_error"]:
        print(f"dnk-replay: {report['bag_error']}", file=sys.stderr)
        return 2
    return 1 if report["same_model"] and report["changed"] else 0


if __name__ == "__main__":
    sys.exit(main())

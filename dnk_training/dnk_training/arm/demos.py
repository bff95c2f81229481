"""Arm demonstrations: seeded scenes solved by the B-spline planner, validated, written in shards.

`generate_demos` is resumable (a shard is written atomically once all its scenes are solved, and a
second run skips the shards that exist), uses a process pool (one worker per core by default), and
refuses an output folder generated with another config. Every written path is checked at
`validation_substeps` points per control period: whole-arm clearance >= margin to every obstacle,
joint position limits, and joint velocity limits between consecutive 20 Hz rows (the runtime
selector's own check); a scene that fails is dropped and counted, never written.

Shard layout (`shard_00000.npz`), one entry per demonstration (a scene with several distinct
solutions has several, with the same scene_index): q (sum T_i, 7) rad at dt, offsets (n + 1,),
q_start (n, 7), goal (n, 3) m, goal_q (n, 7), obstacles (n, SLOTS * F) in `obstacle_encoding`
slots (the table included), blocking (n,) bool, seconds (n,) planning time, scene_index (n,).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnk_planner.core.arm_geometry import arm_clearance
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import JOINT_LOWER, JOINT_UPPER, JOINT_VELOCITY_LIMITS
from dnk_planner.core.obstacle_encoding import NUM_FEATURES, decode_obstacles, encode_obstacles

from ..datasets import DatasetError
from .bspline import optimize_paths, timed_path
from .config import DemoConfig
from .scenes import Scene, sample_scene, scene_rng

FORMAT = "dnk-arm-demos-1"


def slots(cfg: DemoConfig) -> int:
    """Obstacle slots a scene can fill: its obstacles and the table."""
    return cfg.scene.max_obstacles + int(cfg.scene.table)


def config_hash(cfg: DemoConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def check_path(rows: np.ndarray, obstacles: ObstacleSet, margin: float, dt: float, substeps: int) -> str | None:
    """Why a dense path (n * substeps + 1, 7) is not a valid demonstration, or None."""
    if not np.all(np.isfinite(rows)):
        return "non-finite joint positions"
    clearance = arm_clearance(rows, obstacles) if not obstacles.is_empty else np.full(len(rows), np.inf)
    if clearance.min() < margin:
        return f"whole-arm clearance {clearance.min():.4f} m < margin {margin} m at step {int(np.argmin(clearance))}"
    if np.any(rows < JOINT_LOWER) or np.any(rows > JOINT_UPPER):
        return "joint position limits exceeded"
    coarse = rows[::substeps]
    speed = np.abs(np.diff(coarse, axis=0)) / dt
    if np.any(speed > JOINT_VELOCITY_LIMITS):
        return f"joint velocity {speed.max():.3f} rad/s over the limit between 20 Hz rows"
    return None


@dataclass(frozen=True)
class Demo:
    scene: Scene
    q: np.ndarray        # (T, 7) at dt, q[0] = start, q[-1] = goal_q
    seconds: float       # planning time: its share of the scene's (a shard's sum is its CPU time)


def solve_scene(cfg: DemoConfig, index: int) -> list[Demo]:
    """Scene `index` of the set and its validated demonstrations, one per distinct solution the
    planner found (`planner.solutions` at most; empty when it fails)."""
    rng = scene_rng(cfg.seed, index)
    t0 = time.perf_counter()
    # start and goal keep what the optimizer plans for (margin + buffer), or no path could reach it
    scene = sample_scene(rng, cfg.scene, cfg.margin_m + cfg.planner.plan_buffer_m)
    results = optimize_paths(scene.q_start, scene.goal_q, scene.obstacles, cfg.margin_m, cfg.planner, rng)
    demos = []
    for result in results:
        dense = timed_path(result.control_points, cfg.dt, cfg.planner.speed_fraction, cfg.validation_substeps)
        if check_path(dense, scene.obstacles, cfg.margin_m, cfg.dt, cfg.validation_substeps) is None:
            demos.append(dense[::cfg.validation_substeps].copy())
    seconds = (time.perf_counter() - t0) / max(len(demos), 1)
    return [Demo(scene, q, seconds) for q in demos]


def _shard_path(out: Path, shard: int) -> Path:
    return out / f"shard_{shard:05d}.npz"


def _write_shard(args: tuple[DemoConfig, Path, int]) -> dict:
    """Solve the scenes of one shard and write it atomically; returns its statistics."""
    cfg, out, shard = args
    first = shard * cfg.shard_size
    indices = range(first, min(first + cfg.shard_size, cfg.scenes))
    demos: list[tuple[int, Demo]] = []
    dropped = 0
    for i in indices:
        solved = solve_scene(cfg, i)
        dropped += not solved
        demos.extend((i, demo) for demo in solved)
    n_slots = slots(cfg)
    arrays = {
        "q": np.concatenate([d.q for _, d in demos]) if demos else np.zeros((0, 7)),
        "offsets": np.cumsum([0] + [len(d.q) for _, d in demos]),
        "q_start": np.array([d.scene.q_start for _, d in demos]).reshape(-1, 7),
        "goal": np.array([d.scene.goal for _, d in demos]).reshape(-1, 3),
        "goal_q": np.array([d.scene.goal_q for _, d in demos]).reshape(-1, 7),
        "obstacles": np.array([encode_obstacles(d.scene.obstacles, d.scene.q_start, n_slots) for _, d in demos],
                              dtype=np.float32).reshape(-1, n_slots * NUM_FEATURES),
        "blocking": np.array([d.scene.blocking for _, d in demos], dtype=bool),
        "seconds": np.array([d.seconds for _, d in demos]),
        "scene_index": np.array([i for i, _ in demos], dtype=np.int64),
    }
    tmp = out / f".shard_{shard:05d}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(_shard_path(out, shard))
    return {"shard": shard, "scenes": len(set(arrays["scene_index"].tolist())), "demos": len(demos),
            "dropped": dropped, "steps": int(len(arrays["q"])),
            "seconds": float(arrays["seconds"].sum())}


def generate_demos(cfg: DemoConfig, out: str | Path, workers: int | None = None, progress: bool = True) -> dict:
    """Write every missing shard of `cfg` under `out`; returns the index (also out/index.json)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.json"
    digest = config_hash(cfg)
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        if index.get("config_hash") != digest:
            raise ValueError(f"{out} holds demos of another config (hash {index.get('config_hash')}, this one "
                             f"{digest}). Fix: write to a new --out, or delete the folder to regenerate")
    else:
        index = {"format": FORMAT, "config_hash": digest, "config": cfg.model_dump(mode="json"), "shards": {}}
    n_shards = -(-cfg.scenes // cfg.shard_size)
    todo = [k for k in range(n_shards) if not _shard_path(out, k).is_file() or str(k) not in index["shards"]]
    workers = workers or min(os.cpu_count() or 1, len(todo)) or 1
    t0 = time.perf_counter()
    jobs = [(cfg, out, k) for k in todo]
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm comes with the training profile
        tqdm = None
    bar = tqdm(total=len(jobs), desc="arm demos (shards)", disable=not progress) if tqdm else None
    with multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else _Inline() as pool:
        for stats in pool.imap_unordered(_write_shard, jobs):
            index["shards"][str(stats["shard"])] = stats
            _write_index(index_path, index)  # after each shard: resumable
            if bar is not None:
                bar.update(1)
                bar.set_postfix(scenes=sum(s["scenes"] for s in index["shards"].values()))
    if bar is not None:
        bar.close()
    shards = index["shards"].values()
    previous = index.get("summary", {})
    # wall time summed over the runs that wrote shards: a resumed run that finds nothing to do adds ~0
    index["summary"] = {"scenes": sum(s["scenes"] for s in shards), "dropped": sum(s["dropped"] for s in shards),
                        "demos": sum(s.get("demos", s["scenes"]) for s in shards),
                        "steps": sum(s["steps"] for s in shards), "cpu_seconds": sum(s["seconds"] for s in shards),
                        "wall_seconds": previous.get("wall_seconds", 0.0) + time.perf_counter() - t0,
                        "workers": workers if todo else previous.get("workers", workers)}
    _write_index(index_path, index)
    return index


def _write_index(path: Path, index: dict) -> None:
    """Atomically: a reader (or a killed run) never sees half an index."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    tmp.replace(path)


class _Inline:
    """A one-process stand-in for Pool (workers=1: no spawn, easy to debug)."""

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc) -> None:
        return None

    @staticmethod
    def imap_unordered(fn, jobs):
        return map(fn, jobs)


@dataclass(frozen=True)
class ArmDemos:
    """Every demonstration of a folder, concatenated; episode e is q[offsets[e]:offsets[e + 1]],
    solving scene scene_index[e] (episodes of one scene are adjacent)."""

    q: np.ndarray
    offsets: np.ndarray
    q_start: np.ndarray
    goal: np.ndarray
    goal_q: np.ndarray
    obstacles: np.ndarray
    scene_index: np.ndarray
    config: DemoConfig

    def __len__(self) -> int:
        return len(self.goal)

    def episode(self, e: int) -> np.ndarray:
        return self.q[self.offsets[e]:self.offsets[e + 1]]

    def obstacle_set(self, e: int) -> ObstacleSet:
        return decode_obstacles(self.obstacles[e])


def load_demos(path: str | Path) -> ArmDemos:
    """Read and validate a demo folder (DatasetError names the file and the fix)."""
    path = Path(path)
    index_path = path / "index.json"
    if not index_path.is_file():
        raise DatasetError(f"{path}: no index.json. Fix: generate it with `dnk-train gen-arm-demos --out {path}`")
    index = json.loads(index_path.read_text())
    if index.get("format") != FORMAT:
        raise DatasetError(f"{index_path}: format {index.get('format')!r}, expected {FORMAT!r}. Fix: regenerate")
    cfg = DemoConfig.model_validate(index["config"])
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("q", "offsets", "q_start", "goal", "goal_q", "obstacles",
                                                           "scene_index")}
    base = 0
    for key in sorted(index["shards"], key=int):
        file = _shard_path(path, int(key))
        if not file.is_file():
            raise DatasetError(f"{file} is listed in index.json but missing. Fix: rerun gen-arm-demos (it resumes)")
        with np.load(file) as z:
            offsets = z["offsets"]
            if offsets[-1] != len(z["q"]) or np.any(np.diff(offsets) < 1) and len(offsets) > 1:
                raise DatasetError(f"{file}: offsets do not match q. Fix: delete the shard and rerun gen-arm-demos")
            if not np.all(np.isfinite(z["q"])):
                raise DatasetError(f"{file}: non-finite joint positions. Fix: delete the shard and rerun")
            for k in parts:
                parts[k].append(z[k][1:] + base if k == "offsets" else z[k])
            base += len(z["q"])
    return ArmDemos(
        q=np.concatenate(parts["q"]), offsets=np.concatenate([[0]] + parts["offsets"]).astype(np.int64),
        q_start=np.concatenate(parts["q_start"]), goal=np.concatenate(parts["goal"]),
        goal_q=np.concatenate(parts["goal_q"]), obstacles=np.concatenate(parts["obstacles"]),
        scene_index=np.concatenate(parts["scene_index"]), config=cfg)

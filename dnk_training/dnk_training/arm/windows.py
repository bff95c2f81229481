"""Training windows of the arm: the joint-space layout the planner core plans with.

Row layout (the manifest's columns): q (7, rad) | q_measured (7, rad) | goal (3, m) | goal_q (7, rad) |
obstacles (slots x F, `obstacle_encoding`). Fixed entries: q at row 0 (the measured state), q_measured,
goal, goal_q and obstacles at every row. The executed action is q at row 1. `q` and `goal_q` are
`relative` to the measured joints: the model plans offsets from where the arm is, whose spread within a
1.6 s window is a fraction of the joints' range, so the same normalized error is a fraction of the
radians near the goal (absolute plans settled centimetres off); q_measured carries the absolute
configuration the obstacles are seen from. A window starting at step t of a demonstration is
q[t : t + H], padded with the goal configuration (the arm at rest there), and its obstacle slots are
encoded at q[t] by the runtime's own function.
"""
from __future__ import annotations

import numpy as np

from dnk_planner.core.obstacle_encoding import NUM_FEATURES, encode_obstacles, slots_of
from dnk_planner.core.priors import offsets_of, to_model_space

from ..configs import LayoutConfig, TaskConfig
from ..datasets import find_dataset
from ..normalizer import Normalizer
from .demos import ArmDemos, load_demos


def arm_layout(slots: int) -> LayoutConfig:
    """The arm's row layout with `slots` obstacle slots."""
    return LayoutConfig.model_validate({
        "columns": [{"name": "q", "dim": 7}, {"name": "q_measured", "dim": 7}, {"name": "goal", "dim": 3},
                    {"name": "goal_q", "dim": 7}, {"name": "obstacles", "dim": slots * NUM_FEATURES}],
        "fixed": [{"column": "q", "rows": "first", "source": "q"},
                  {"column": "q_measured", "rows": "all", "source": "q"},
                  {"column": "goal", "rows": "all", "source": "goal"},
                  {"column": "goal_q", "rows": "all", "source": "goal_q"},
                  {"column": "obstacles", "rows": "all", "source": "obstacles"}],
        "relative": [{"column": "q", "source": "q"}, {"column": "goal_q", "source": "q"}],
        "action": {"column": "q", "row": 1},
    })


def arm_windows(demos: ArmDemos, horizon: int, slots: int, episodes: np.ndarray | None = None,
                stride: int = 1) -> np.ndarray:
    """Windows (M, H, D) float32 in the model's space (relative columns as offsets) of the given episodes
    (all by default), one every `stride` steps."""
    episodes = np.arange(len(demos)) if episodes is None else np.asarray(episodes)
    layout = arm_layout(slots)
    col = {c.name: layout.column_slice(c.name) for c in layout.columns}
    offsets = offsets_of(layout, col)
    out = []
    for e in episodes:
        q = demos.episode(int(e))
        obstacles = demos.obstacle_set(int(e))
        padded = np.concatenate([q, np.repeat(q[-1:], horizon - 1, axis=0)])
        starts = np.arange(0, len(q), stride)
        w = np.empty((len(starts), horizon, layout.dim), dtype=np.float32)
        w[:, :, col["q"]] = padded[starts[:, None] + np.arange(horizon)[None]]
        w[:, :, col["q_measured"]] = q[starts][:, None]
        w[:, :, col["goal"]] = demos.goal[e]
        w[:, :, col["goal_q"]] = demos.goal_q[e]
        for i, t in enumerate(starts):
            w[i, :, col["obstacles"]] = encode_obstacles(obstacles, q[t], slots)
        out.append(to_model_space(w, offsets))
    return np.concatenate(out) if out else np.zeros((0, horizon, layout.dim), dtype=np.float32)


def split_scenes(demos: ArmDemos, heldout_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out episode indices: every solution of the last `heldout_frac` of the
    scenes is held out, so no held-out scene is seen in training by another of its solutions."""
    scenes = np.unique(demos.scene_index)
    n_held = int(round(len(scenes) * heldout_frac))
    held = np.isin(demos.scene_index, scenes[len(scenes) - n_held:])
    return np.flatnonzero(~held), np.flatnonzero(held)


def split_windows(cfg: TaskConfig) -> tuple[np.ndarray, np.ndarray]:
    """Windows (model space) of the task's training scenes and of its held-out scenes (the last
    heldout_frac), one every dataset.window_stride steps."""
    demos = load_demos(find_dataset(cfg.dataset.path))
    obstacles = cfg.layout.column_slice("obstacles")
    n_slots = slots_of(obstacles.stop - obstacles.start)
    if cfg.layout != arm_layout(n_slots):
        raise ValueError(f"the task layout {[(c.name, c.dim) for c in cfg.layout.columns]} is not the arm layout "
                         f"(q 7, q_measured 7, goal 3, goal_q 7, obstacles slots x {NUM_FEATURES}, q and goal_q "
                         "relative to q). Fix: use config/arm.yaml's layout")
    train, held = split_scenes(demos, cfg.heldout_frac)
    stride = cfg.dataset.window_stride
    return (arm_windows(demos, cfg.dataset.horizon, n_slots, train, stride),
            arm_windows(demos, cfg.dataset.horizon, n_slots, held, stride))


def training_windows(cfg: TaskConfig) -> tuple[np.ndarray, Normalizer]:
    """The task's training windows (held-out scenes excluded) and the normalizer fit on them."""
    windows, _ = split_windows(cfg)
    return windows, Normalizer.fit(windows[::4])  # every 4th window: the same statistics at a quarter of the memory

"""Offline datasets in the D4RL v2 layout: loading, validation, episodes, windows, returns.

Everything downstream (teacher, classifier, IQL, pairs) reads a validated ``OfflineData``;
bad files fail here with the key/episode and the fix, never later inside a training step.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .normalizer import Normalizer

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")


class DatasetError(ValueError):
    """A dataset file or array that cannot be trained on; the message names the key and the fix."""


@dataclass
class OfflineData:
    """Flat transition arrays (N rows), float32 observations/actions, bool flags."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    next_observations: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])


def validate(arrays: dict[str, np.ndarray], source: str = "dataset") -> OfflineData:
    """Check keys, shapes, dtypes and finiteness; return typed arrays."""
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise DatasetError(
            f"{source}: missing key(s) {missing}; a D4RL v2 file needs {list(REQUIRED_KEYS)} "
            "(for v0/v1 files without next_observations, re-export them with next_observations = observations shifted by one)"
        )
    obs = np.asarray(arrays["observations"])
    n = obs.shape[0] if obs.ndim >= 1 else 0
    if n == 0:
        raise DatasetError(f"{source}: 'observations' is empty; the file holds no transitions")
    for key in ("observations", "actions", "next_observations"):
        a = np.asarray(arrays[key])
        if a.ndim != 2 or a.shape[0] != n:
            raise DatasetError(f"{source}: '{key}' has shape {a.shape}; expected ({n}, dim) to match 'observations' rows")
    if arrays["next_observations"].shape != obs.shape:
        raise DatasetError(
            f"{source}: 'next_observations' has shape {arrays['next_observations'].shape} but 'observations' has {obs.shape}; they must match"
        )
    for key in ("rewards", "terminals", "timeouts"):
        a = np.asarray(arrays[key])
        if a.ndim == 0 or a.shape[0] != n or a.size != n:
            raise DatasetError(f"{source}: '{key}' has shape {a.shape}; expected ({n},), one entry per transition")
    for key in ("observations", "actions", "rewards", "next_observations"):
        a = np.asarray(arrays[key])
        if not np.issubdtype(a.dtype, np.floating):
            raise DatasetError(f"{source}: '{key}' has dtype {a.dtype}; expected a float type (float32)")
        bad = ~np.isfinite(a)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DatasetError(
                f"{source}: '{key}' contains {int(bad.sum())} NaN/inf value(s), first at row {row}; "
                "drop or repair those transitions before training"
            )
    for key in ("terminals", "timeouts"):
        a = np.asarray(arrays[key])
        if a.dtype != np.bool_ and not (np.issubdtype(a.dtype, np.integer) and np.isin(a, (0, 1)).all()):
            raise DatasetError(f"{source}: '{key}' has dtype {a.dtype}; expected bool (or 0/1 integers)")
    return OfflineData(
        observations=obs.astype(np.float32),
        actions=np.asarray(arrays["actions"], dtype=np.float32),
        rewards=np.asarray(arrays["rewards"], dtype=np.float32).reshape(n),
        terminals=np.asarray(arrays["terminals"]).astype(bool).reshape(n),
        timeouts=np.asarray(arrays["timeouts"]).astype(bool).reshape(n),
        next_observations=np.asarray(arrays["next_observations"], dtype=np.float32),
        source=source,
    )


DATASETS_ENV = "DNK_DATASETS"
# datasets/ at the root of the source checkout (this file resolves into it under --symlink-install)
WORKSPACE_DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def dataset_search_path() -> list[Path]:
    """Folders a dataset named by its file name is looked for in, in order: each entry of
    $DNK_DATASETS (':'-separated), ./datasets, then datasets/ at the workspace root."""
    env = [Path(p) for p in os.environ.get(DATASETS_ENV, "").split(os.pathsep) if p]
    return list(dict.fromkeys([*env, Path.cwd() / "datasets", WORKSPACE_DATASETS]))


def find_dataset(name: str | Path) -> Path:
    """An existing path as given, else the first search-path folder holding a file of that name.

    Raises DatasetError listing every place it looked and how to point at the file.
    """
    path = Path(name)
    if path.exists():  # a file, or a folder dataset (arm demos)
        return path
    looked = [path]
    if not path.is_absolute():
        for folder in dataset_search_path():
            candidate = folder / path
            if candidate.exists():
                return candidate
            looked.append(candidate)
    raise DatasetError(
        f"dataset '{name}' does not exist in any of:  {', '.join(map(str, looked))}. Fix: pass --dataset /path/to/file.hdf5, "
        f"or put the folder holding it on {DATASETS_ENV} (scripts/env.sh sets it to ../shared/datasets when "
        "that folder exists), or copy the file into datasets/ at the workspace root")


def list_datasets() -> list[Path]:
    """Every .hdf5 file on the search path (first occurrence of each name)."""
    found: dict[str, Path] = {}
    for folder in dataset_search_path():
        for f in sorted(folder.glob("*.hdf5")) if folder.is_dir() else []:
            found.setdefault(f.name, f)
    return list(found.values())


def load_d4rl_hdf5(path: str | Path) -> OfflineData:
    """Load and validate a D4RL v2-layout HDF5 file (a path, or a file name on the search path)."""
    import h5py

    path = find_dataset(path)
    try:
        with h5py.File(path, "r") as f:
            arrays = {k: f[k][()] for k in REQUIRED_KEYS if k in f and isinstance(f[k], h5py.Dataset)}
    except OSError as e:
        raise DatasetError(f"{path} is not a readable HDF5 file ({e}); check the path and the download") from e
    return validate(arrays, source=str(path))


def minari_available() -> bool:
    return importlib.util.find_spec("minari") is not None


def load_minari(dataset_id: str) -> OfflineData:
    """Load a locally stored Minari dataset (episodes with T+1 observations) into flat arrays."""
    if not minari_available():
        raise DatasetError(
            "the 'minari' package is not installed in this environment; use a D4RL-layout HDF5 file "
            "(source: d4rl_hdf5) or add an exact minari pin to requirements/training.txt and install it"
        )
    import minari

    try:
        ds = minari.load_dataset(dataset_id, download=False)
    except Exception as e:  # minari raises several types for a missing local dataset
        raise DatasetError(f"Minari dataset '{dataset_id}' is not available locally ({e}); download it with `minari download {dataset_id}`") from e
    parts: dict[str, list[np.ndarray]] = {k: [] for k in REQUIRED_KEYS}
    for ep in ds.iterate_episodes():
        obs = np.asarray(ep.observations)
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(np.asarray(ep.actions))
        parts["rewards"].append(np.asarray(ep.rewards))
        parts["terminals"].append(np.asarray(ep.terminations))
        timeouts = np.asarray(ep.truncations).copy()
        timeouts[-1] = timeouts[-1] or not ep.terminations[-1]
        parts["timeouts"].append(timeouts)
    if not parts["observations"]:
        raise DatasetError(f"Minari dataset '{dataset_id}' has no episodes")
    return validate({k: np.concatenate(v) for k, v in parts.items()}, source=f"minari:{dataset_id}")


def load_dataset(path: str, source: str = "d4rl_hdf5") -> OfflineData:
    if source == "minari":
        return load_minari(path)
    return load_d4rl_hdf5(path)


def split_episodes(data: OfflineData) -> list[tuple[int, int]]:
    """[start, stop) row ranges; an episode ends at a terminal or timeout (or the file end)."""
    ends = np.flatnonzero(data.terminals | data.timeouts) + 1
    bounds = [0, *ends.tolist()]
    if bounds[-1] != len(data):
        bounds.append(len(data))
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def returns_to_go(rewards: np.ndarray, terminal: bool, discount: float, terminal_penalty: float) -> np.ndarray:
    """Discounted return-to-go of one episode; a terminal (failure) last step gets the penalty."""
    r = np.asarray(rewards, dtype=np.float64).copy()
    if terminal and r.size:
        r[-1] += terminal_penalty
    out = np.empty_like(r)
    acc = 0.0
    for i in range(r.size - 1, -1, -1):
        acc = r[i] + discount * acc
        out[i] = acc
    return out.astype(np.float32)


@dataclass
class Windows:
    """Sliding windows x = [obs, act] of shape (M, H, D) and the RTG value at each window start."""

    x: np.ndarray
    values: np.ndarray
    episode_of: np.ndarray
    start_row: np.ndarray


def make_windows(
    data: OfflineData,
    horizon: int,
    discount: float = 0.997,
    terminal_penalty: float = -100.0,
    drop_short_episodes: bool = True,
) -> Windows:
    """All length-``horizon`` windows fully inside an episode, with the window-start return-to-go."""
    rows = np.concatenate([data.observations, data.actions], axis=1)
    xs, vals, eps, starts = [], [], [], []
    episodes = split_episodes(data)
    for e, (a, b) in enumerate(episodes):
        length = b - a
        if length < horizon:
            if drop_short_episodes:
                continue
            raise DatasetError(
                f"{data.source}: episode {e} (rows {a}-{b - 1}) has {length} steps, shorter than the horizon {horizon}; "
                "set dataset.drop_short_episodes: true to skip it or use a shorter horizon"
            )
        rtg = returns_to_go(data.rewards[a:b], bool(data.terminals[b - 1]), discount, terminal_penalty)
        n_win = length - horizon + 1
        idx = np.arange(n_win)[:, None] + np.arange(horizon)[None, :]
        xs.append(rows[a:b][idx])
        vals.append(rtg[:n_win])
        eps.append(np.full(n_win, e, dtype=np.int64))
        starts.append(a + np.arange(n_win))
    if not xs:
        raise DatasetError(
            f"{data.source}: no episode has at least {horizon} steps, so no training window exists; use a shorter horizon"
        )
    return Windows(
        x=np.concatenate(xs).astype(np.float32),
        values=np.concatenate(vals).astype(np.float32),
        episode_of=np.concatenate(eps),
        start_row=np.concatenate(starts),
    )


def fit_normalizer(data: OfflineData) -> Normalizer:
    """Normalizer over the [obs, act] row layout, fit on every transition."""
    return Normalizer.fit(np.concatenate([data.observations, data.actions], axis=1))

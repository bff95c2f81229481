"""Whole-arm-clear joint-space B-spline paths, timed for the 20 Hz control period.

A clamped cubic B-spline in joint space runs from the start to the goal configuration; its
interior control points are found by the cross-entropy method, scoring each candidate path with
the planner core's own whole-arm kernel (`arm_sweep`: the same spheres and
distances the runtime selector rejects candidates with), joint limits and path energy. The path
is then timed with a minimum-jerk profile so the fastest joint peaks at `speed_fraction` of its
URDF velocity limit and the arm starts and ends at rest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnk_planner.core.arm_geometry import arm_sweep
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import JOINT_LOWER, JOINT_UPPER, JOINT_VELOCITY_LIMITS

from .config import PlannerSettings

_FINITE = np.isfinite(JOINT_UPPER)


def bspline_basis(num_control: int, u: np.ndarray, degree: int = 3) -> np.ndarray:
    """(len(u), num_control) basis of the clamped uniform B-spline on [0, 1] (Cox-de Boor)."""
    inner = np.linspace(0.0, 1.0, num_control - degree + 1)
    knots = np.concatenate([np.zeros(degree), inner, np.ones(degree)])
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0 - 1e-12)
    basis = ((knots[:-1][None] <= u[:, None]) & (u[:, None] < knots[1:][None])).astype(np.float64)
    for p in range(1, degree + 1):
        nxt = np.zeros((len(u), len(knots) - p - 1))
        for i in range(len(knots) - p - 1):
            left = knots[i + p] - knots[i]
            right = knots[i + p + 1] - knots[i + 1]
            if left > 0:
                nxt[:, i] += (u - knots[i]) / left * basis[:, i]
            if right > 0:
                nxt[:, i] += (knots[i + p + 1] - u) / right * basis[:, i + 1]
        basis = nxt
    return basis


def path_costs(paths: np.ndarray, obstacles: ObstacleSet, clearance_target: float) -> tuple[np.ndarray, np.ndarray]:
    """Cost (P,) and whole-arm clearance (P, S) of joint paths (P, S, 7): squared margin
    violations and limit violations dominate, path energy breaks ties."""
    s = paths.shape[1]
    clearance, _ = arm_sweep(paths, obstacles, cutoff=clearance_target + 0.05)
    violation = np.square(np.maximum(clearance_target - clearance, 0.0)).sum(axis=1)
    over = np.maximum(paths[..., _FINITE] - JOINT_UPPER[_FINITE], 0.0)
    under = np.maximum(JOINT_LOWER[_FINITE] - paths[..., _FINITE], 0.0)
    limits = (np.square(over) + np.square(under)).sum(axis=(1, 2))
    energy = np.square(np.diff(paths, axis=1)).sum(axis=(1, 2)) * s
    return 1e4 * (violation + limits) + energy, clearance


@dataclass(frozen=True)
class PathResult:
    control_points: np.ndarray   # (K, 7) rad
    min_clearance: float         # on the optimizer's samples, m
    iterations: int


def optimize_paths(q_start: np.ndarray, goal_q: np.ndarray, obstacles: ObstacleSet, margin: float,
                   settings: PlannerSettings, rng: np.random.Generator) -> list[PathResult]:
    """Up to `settings.solutions` distinct paths that keep `margin` + plan_buffer on every sample
    (empty when every restart fails). Restarts stop once enough distinct paths are found."""
    k = settings.control_points
    basis = bspline_basis(k, np.linspace(0.0, 1.0, settings.samples))                     # (S, K)
    target = margin + settings.plan_buffer_m
    std0 = settings.init_std_rad * JOINT_VELOCITY_LIMITS / JOINT_VELOCITY_LIMITS.max()
    straight = np.linspace(q_start, goal_q, k)[1:-1]                                        # (K-2, 7)
    bump = np.sin(np.pi * np.arange(1, k - 1) / (k - 1))[:, None]
    found: list[PathResult] = []
    for attempt in range(settings.attempts):
        # a restart begins from a random detour with a wider search: CEM collapses onto one side
        mean = straight if attempt == 0 else straight + rng.normal(0.0, 0.5, 7) * bump
        std = np.broadcast_to(std0 * (1.0 + 0.5 * attempt), mean.shape).copy()
        best, best_cost, best_clear = None, np.inf, -np.inf
        for it in range(settings.iterations):
            interior = mean + std * rng.standard_normal((settings.population,) + mean.shape)
            interior[0] = mean
            interior[..., _FINITE] = np.clip(interior[..., _FINITE], JOINT_LOWER[_FINITE], JOINT_UPPER[_FINITE])
            ctrl = np.concatenate([np.broadcast_to(q_start, (len(interior), 1, 7)), interior,
                                   np.broadcast_to(goal_q, (len(interior), 1, 7))], axis=1)
            paths = np.einsum("sk,pkj->psj", basis, ctrl)
            cost, clearance = path_costs(paths, obstacles, target)
            order = np.argsort(cost)
            if cost[order[0]] < best_cost:
                best, best_cost, best_clear = ctrl[order[0]], cost[order[0]], clearance[order[0]].min()
            elite = interior[order[:settings.elites]]
            mean = 0.3 * mean + 0.7 * elite.mean(axis=0)
            std = 0.3 * std + 0.7 * elite.std(axis=0) + 1e-3
            if best_clear >= target and it >= 4 and float(std.max()) < 0.02:
                break
        if best is None or best_clear < target:
            continue
        if all(np.abs(best[1:-1] - f.control_points[1:-1]).max() >= settings.distinct_rad for f in found):
            found.append(PathResult(best, float(best_clear), it + 1))
            if len(found) >= settings.solutions:
                break
    return found


def _min_jerk(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s(tau) and ds/dtau of the minimum-jerk profile on [0, 1]."""
    return 10 * tau**3 - 15 * tau**4 + 6 * tau**5, 30 * tau**2 - 60 * tau**3 + 30 * tau**4


def timed_path(control_points: np.ndarray, dt: float, speed_fraction: float, substeps: int = 1) -> np.ndarray:
    """Joint positions (n * substeps + 1, 7) every dt / substeps along the path: minimum-jerk
    timing whose duration n * dt makes the fastest joint peak at speed_fraction of its limit."""
    k = len(control_points)
    u = np.linspace(0.0, 1.0, 1001)
    dense = bspline_basis(k, u) @ control_points
    dq_du = np.gradient(dense, u, axis=0)                                                    # (1001, 7)
    tau = np.linspace(0.0, 1.0, 1001)
    s, ds = _min_jerk(tau)
    rate = np.abs(np.array([np.interp(s, u, dq_du[:, j]) for j in range(7)])).T * ds[:, None]
    duration = float((rate / (speed_fraction * JOINT_VELOCITY_LIMITS)).max())
    n = max(1, int(np.ceil(duration / dt)))
    s_rows, _ = _min_jerk(np.linspace(0.0, 1.0, n * substeps + 1))
    rows = bspline_basis(k, s_rows) @ control_points
    rows[0], rows[-1] = control_points[0], control_points[-1]                                # exact ends
    return rows

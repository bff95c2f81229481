"""Fit the Gen3's collision spheres to Kinova's collision meshes (offline tool, not runtime).

    python -m dnk_planner.testing.gen3_fit --meshes ../shared/reference/kortex_gen3/meshes

writes `dnk_planner/core/gen3_spheres.py`: per link, spheres (centre in the link frame, radius)
that together contain every vertex of that link's collision mesh, so a clearance computed on
them never over-states the real clearance. Links are the frames of
`dnk_planner.core.kinematics.link_frames` (base_link .. bracelet_link; meshes use the link frame).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# (link name, mesh file, spheres): more spheres on the long links, fewer on the compact wrist parts.
LINKS: tuple[tuple[str, str, int], ...] = (
    ("base_link", "base_link.STL", 2),
    ("shoulder_link", "shoulder_link.STL", 3),
    ("half_arm_1_link", "half_arm_1_link.STL", 5),
    ("half_arm_2_link", "half_arm_2_link.STL", 5),
    ("forearm_link", "forearm_link.STL", 5),
    ("spherical_wrist_1_link", "spherical_wrist_1_link.STL", 3),
    ("spherical_wrist_2_link", "spherical_wrist_2_link.STL", 3),
    ("bracelet_link", "bracelet_no_vision_link.STL", 3),
)
OUTPUT = Path(__file__).resolve().parents[1] / "core" / "gen3_spheres.py"


def read_stl(path: str | Path) -> np.ndarray:
    """Unique vertices (V, 3) of a binary STL file, in the file's units (m for Kinova's meshes)."""
    data = Path(path).read_bytes()
    if len(data) < 84:
        raise ValueError(f"{path}: {len(data)} bytes is too short for a binary STL")
    count = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
    if len(data) != 84 + 50 * count:
        raise ValueError(f"{path}: not a binary STL ({count} triangles need {84 + 50 * count} bytes, file has {len(data)})")
    tri = np.frombuffer(data, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]), count=count, offset=84)
    return np.unique(tri["v"].reshape(-1, 3).astype(np.float64), axis=0)


def enclosing_ball(points: np.ndarray, iterations: int = 400) -> tuple[np.ndarray, float]:
    """Near-minimal ball containing `points` (Badoiu-Clarkson), radius exact for that centre."""
    c = points.mean(axis=0)
    for i in range(1, iterations + 1):
        far = points[np.argmax(np.square(points - c).sum(axis=1))]
        c = c + (far - c) / (i + 1)
    return c, float(np.sqrt(np.square(points - c).sum(axis=1)).max())


def fit_spheres(vertices: np.ndarray, k: int, rounds: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """k spheres whose union contains every vertex: clusters along the main axis, refined by
    reassigning each vertex to the sphere it sticks out of least, each sphere the enclosing ball
    of its cluster."""
    mean = vertices.mean(axis=0)
    axis = np.linalg.svd(vertices - mean, full_matrices=False)[2][0]
    t = (vertices - mean) @ axis
    labels = np.minimum((np.argsort(np.argsort(t)) * k) // len(t), k - 1)
    best = None
    for _ in range(rounds):
        for j in range(k):  # an emptied cluster restarts at the vertex farthest from its sphere's centre
            if not np.any(labels == j):
                labels[np.argmax(np.square(vertices - vertices[labels == labels[0]].mean(0)).sum(1))] = j
        balls = [enclosing_ball(vertices[labels == j]) for j in range(k)]
        centers = np.round(np.array([b[0] for b in balls]), 5)  # 10 um grid, radii computed from these
        radii = np.sqrt(np.square(vertices[:, None, :] - centers[None]).sum(-1))
        radii = np.array([radii[labels == j, j].max() for j in range(k)])
        volume = float(np.sum(radii**3))
        if best is None or volume < best[0]:
            best = (volume, centers, radii)
        excess = np.sqrt(np.square(vertices[:, None, :] - centers[None]).sum(-1)) - radii[None]
        labels = np.argmin(excess / radii[None], axis=1)
    _, centers, radii = best
    radii = np.ceil(radii * 1e4) / 1e4  # up to 0.1 mm: rounding never uncovers a vertex
    gap = np.sqrt(np.square(centers[:, None] - centers[None]).sum(-1)) + radii[:, None] - radii[None]
    np.fill_diagonal(gap, np.inf)
    keep = ~(gap <= 0).any(axis=1)  # drop spheres lying wholly inside another one of the link
    return centers[keep], radii[keep]


def contains(vertices: np.ndarray, centers: np.ndarray, radii: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """(V,) True where a vertex lies inside at least one sphere."""
    d = np.sqrt(np.square(vertices[:, None, :] - centers[None]).sum(-1)) - radii[None]
    return d.min(axis=1) <= tol


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", required=True, help="folder with Kinova's collision STL files (kortex_description/meshes)")
    ap.add_argument("--out", type=Path, default=OUTPUT, help="generated module (default: dnk_planner/core/gen3_spheres.py)")
    args = ap.parse_args(argv)
    rows = []
    for index, (link, mesh, k) in enumerate(LINKS):
        v = read_stl(Path(args.meshes) / mesh)
        centers, radii = fit_spheres(v, k)
        if not contains(v, centers, radii).all():
            raise RuntimeError(f"{link}: the fitted spheres miss vertices (a bug in fit_spheres)")
        print(f"{link:24s} {len(v):6d} vertices  radii (mm) {np.round(radii * 1e3, 1).tolist()}")
        rows += [(index, *c.tolist(), float(r)) for c, r in zip(centers, radii)]
    lines = [
        '"""Gen3 collision spheres, GENERATED by `python -m dnk_planner.testing.gen3_fit` from Kinova\'s',
        "collision meshes (kortex_description/meshes); do not edit by hand.",
        "",
        "Each row: link index into `kinematics.link_frames` (0 base_link .. 7 bracelet_link), centre",
        "x, y, z in that link's frame (m), radius (m). The spheres of a link contain every vertex of its mesh.",
        '"""',
        "LINK_NAMES = (" + ", ".join(repr(name) for name, _, _ in LINKS) + ")",
        "SPHERES = (",
        *[f"    ({i}, {x!r}, {y!r}, {z!r}, {r!r})," for i, x, y, z, r in rows],
        ")",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out} ({len(rows)} spheres)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Real ONNX models written with onnx.helper (no torch): an analytic arm student and an
FDK-sized student for latency measurements.

The arm has no trained teacher yet, so the demo and tests need a model that honours
the student contract end to end. `build_arm_primitive_model` is that model: straight
line to the goal under a speed cap, plus the prior's noise projected on a smooth
low-frequency basis, so the N candidates are diverse smooth detours the geometric
selector can choose between. `onnx` is only needed when writing files, so it is
imported inside the builders.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dnk_planner.core.manifest import (
    ActionSpec, ColumnSpec, FixedSpec, ModelManifest, NormalizerSpec, TensorSpec, save_manifest, sha256_file,
)

OPSET = 17
ARM_MODEL_ID = "arm-primitives-v1"


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as e:  # onnx is a training/export dependency, not a runtime one
        raise ImportError(
            "writing ONNX models needs the 'onnx' package (requirements/training.txt). "
            "Fix: pip install onnx==1.23.2, or copy a model built on the training machine."
        ) from e
    return onnx


def _const(name: str, value: np.ndarray | list | float, dtype: type = np.float32):
    return _onnx().numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _save(graph, path: Path) -> Path:
    onnx = _onnx()
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="dnk_planner.testing.models")
    model.ir_version = 9  # readable by onnxruntime >= 1.16
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def smooth_basis(horizon: int, k: int) -> np.ndarray:
    """(H, k) detour shapes sin((j - 1/2) pi t)/j, t in [0, 1]: zero at the current position
    (row 0), free at the horizon's end (so a plan can end beside an obstacle on the straight
    line), low frequencies dominant so detours stay smooth."""
    t = np.linspace(0.0, 1.0, horizon)[:, None]
    j = np.arange(1, k + 1)[None, :]
    return np.sin((j - 0.5) * np.pi * t) / j


def _student_manifest(
    path: Path, model_id: str, task: str, horizon: int, columns: list[ColumnSpec], fixed: list[FixedSpec],
    action: ActionSpec, mean: np.ndarray, std: np.ndarray, provenance: dict[str, str],
) -> ModelManifest:
    d = sum(c.dim for c in columns)
    return ModelManifest(
        format_version=1, model_id=model_id, role="student", task=task, horizon=horizon, columns=columns,
        fixed=fixed, action=action, normalizer=NormalizerSpec(mean=mean.tolist(), std=std.tolist()),
        inputs=[TensorSpec(name="prior", shape=[None, horizon, d])],
        outputs=[TensorSpec(name="trajectory", shape=[None, horizon, d])],
        opset=OPSET, onnx_sha256=sha256_file(path),
        provenance={"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance},
    )


def build_arm_primitive_model(
    path: str | Path,
    horizon: int = 32,
    dt: float = 0.05,
    max_speed: float = 0.25,
    detour_amplitude: float = 0.3,
    taper_distance: float = 0.3,
    num_modes: int = 4,
    workspace_center: tuple[float, float, float] = (0.4, 0.0, 0.4),
    workspace_scale: float = 0.3,
) -> ModelManifest:
    """Write `path` (.onnx) and its manifest; returns the manifest.

    Graph (normalized prior [B,H,6] -> normalized trajectory [B,H,6]):
      x = prior*std + mean; start = x[:,0,:3]; goal = x[:,0,3:]
      line_h = start + min(1, h*max_speed*dt/|goal-start|) (goal-start)   (speed-capped line)
      detour = detour_amplitude * min(1, |goal-start|/taper_distance) * B (W noise)
    with noise = prior[:,:,:3] (row 0 excluded by W), W (k,H) the unit-norm projection onto
    the basis B (H,k) = smooth_basis. Tapering the detour near the goal lets the arm settle.
    Units: m, s, m/s. Goal columns pass through unchanged.
    """
    onnx = _onnx()
    h = onnx.helper
    path = Path(path).with_suffix(".onnx")
    basis = smooth_basis(horizon, num_modes)                      # (H, k)
    proj = basis.T.copy()
    proj[:, 0] = 0.0                                              # row 0 of the prior is context, not noise
    proj /= np.maximum(np.linalg.norm(proj, axis=1, keepdims=True), 1e-12)
    mean = np.array(list(workspace_center) * 2, dtype=np.float32)
    std = np.full(6, workspace_scale, dtype=np.float32)
    inits = [
        _const("mean", mean), _const("std", std),
        _const("steps", (np.arange(horizon) * max_speed * dt).reshape(1, horizon, 1)),
        _const("proj", proj), _const("basis", basis * detour_amplitude),
        _const("eps", 1e-6), _const("one", 1.0), _const("inv_taper", 1.0 / taper_distance),
        _const("s0", [0, 0, 0], np.int64), _const("e_start", [2**31, 1, 3], np.int64),
        _const("s_goal", [0, 0, 3], np.int64), _const("e_goal", [2**31, 1, 6], np.int64),
        _const("e_pos", [2**31, 2**31, 3], np.int64), _const("s_gall", [0, 0, 3], np.int64),
        _const("e_gall", [2**31, 2**31, 6], np.int64), _const("ax2", [2], np.int64),
    ]
    nodes = [
        h.make_node("Mul", ["prior", "std"], ["x_s"]),
        h.make_node("Add", ["x_s", "mean"], ["x"]),
        h.make_node("Slice", ["x", "s0", "e_start"], ["start"]),          # (B,1,3)
        h.make_node("Slice", ["x", "s_goal", "e_goal"], ["goal"]),        # (B,1,3)
        h.make_node("Slice", ["x", "s_gall", "e_gall"], ["goal_cols"]),   # (B,H,3)
        h.make_node("Sub", ["goal", "start"], ["delta"]),
        h.make_node("Mul", ["delta", "delta"], ["delta_sq"]),
        h.make_node("ReduceSum", ["delta_sq", "ax2"], ["dist_sq"], keepdims=1),
        h.make_node("Sqrt", ["dist_sq"], ["dist"]),                      # (B,1,1) m
        h.make_node("Max", ["dist", "eps"], ["dist_safe"]),
        h.make_node("Div", ["steps", "dist_safe"], ["frac_raw"]),        # (B,H,1)
        h.make_node("Min", ["frac_raw", "one"], ["frac"]),
        h.make_node("Mul", ["frac", "delta"], ["along"]),
        h.make_node("Add", ["start", "along"], ["line"]),                # (B,H,3)
        h.make_node("Slice", ["prior", "s0", "e_pos"], ["noise"]),       # (B,H,3) normalized
        h.make_node("MatMul", ["proj", "noise"], ["coef"]),              # (B,k,3)
        h.make_node("MatMul", ["basis", "coef"], ["detour_raw"]),        # (B,H,3) m
        h.make_node("Mul", ["dist", "inv_taper"], ["taper_raw"]),
        h.make_node("Min", ["taper_raw", "one"], ["taper"]),
        h.make_node("Mul", ["detour_raw", "taper"], ["detour"]),
        h.make_node("Add", ["line", "detour"], ["pos"]),
        h.make_node("Concat", ["pos", "goal_cols"], ["y"], axis=2),
        h.make_node("Sub", ["y", "mean"], ["y_c"]),
        h.make_node("Div", ["y_c", "std"], ["trajectory"]),
    ]
    tp = onnx.TensorProto.FLOAT
    graph = h.make_graph(
        nodes, "arm_primitives",
        [h.make_tensor_value_info("prior", tp, ["batch", horizon, 6])],
        [h.make_tensor_value_info("trajectory", tp, ["batch", horizon, 6])], initializer=inits,
    )
    _save(graph, path)
    manifest = _student_manifest(
        path, ARM_MODEL_ID, "arm", horizon,
        [ColumnSpec(name="ee_position", dim=3), ColumnSpec(name="goal", dim=3)],
        [FixedSpec(column="ee_position", rows="first", source="ee_position"),
         FixedSpec(column="goal", rows="all", source="goal")],
        ActionSpec(column="ee_position", row=1), mean, std,
        {"method": "analytic motion primitives (not distilled)", "dataset": "none", "teacher": "none",
         "config": f"dt={dt} max_speed={max_speed} detour_amplitude={detour_amplitude} "
                   f"taper_distance={taper_distance} num_modes={num_modes}"},
    )
    save_manifest(manifest, path)
    return manifest


def build_fdk_sized_model(
    path: str | Path,
    horizon: int = 32,
    dim: int = 6,
    latent: int = 192,
    rank: int = 32,
    hidden: int = 256,
    depth: int = 2,
    gain_hidden: int = 128,
    seed: int = 0,
) -> ModelManifest:
    """FDK student's graph and cost with seeded random weights (latency benchmarks only).

    phi: SiLU MLP (H*D -> hidden x depth -> latent); g: SiLU MLP (latent -> gain_hidden -> rank);
    z0 = ((V z) * g(z)) U^T; psi: SiLU MLP (latent -> hidden x depth -> H*D); fixed entries
    (row 0, all columns) re-imposed with a mask, as dnk_training's FDKStudent does.
    Widths default to dnk_training's FDKConfig. Layout: the arm's ee_position + goal
    (+ an unfixed `extra` column when dim > 6), so it plugs into the arm planner as is.
    """
    onnx = _onnx()
    h = onnx.helper
    if rank > latent:
        raise ValueError(f"rank ({rank}) must be <= latent ({latent})")
    if dim < 6:
        raise ValueError(f"dim ({dim}) must be >= 6 (ee_position + goal)")
    path = Path(path).with_suffix(".onnx")
    rng = np.random.default_rng(seed)
    n = horizon * dim
    inits = [_const("flat_shape", [-1, n], np.int64), _const("out_shape", [-1, horizon, dim], np.int64)]
    nodes = [h.make_node("Reshape", ["prior", "flat_shape"], ["flat"])]

    def mlp(prefix: str, x: str, sizes: list[int]) -> str:
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            w, bias = f"{prefix}_w{i}", f"{prefix}_b{i}"
            inits.extend([_const(w, rng.normal(0, 1 / np.sqrt(a), (a, b))), _const(bias, np.zeros(b))])
            nodes.append(h.make_node("MatMul", [x, w], [f"{prefix}_mm{i}"]))
            nodes.append(h.make_node("Add", [f"{prefix}_mm{i}", bias], [f"{prefix}_a{i}"]))
            x = f"{prefix}_a{i}"
            if i < len(sizes) - 2:  # SiLU on hidden layers
                nodes.append(h.make_node("Sigmoid", [x], [f"{x}_sig"]))
                nodes.append(h.make_node("Mul", [x, f"{x}_sig"], [f"{x}_silu"]))
                x = f"{x}_silu"
        return x

    z = mlp("phi", "flat", [n] + [hidden] * depth + [latent])
    g = mlp("gain", z, [latent, gain_hidden, rank])
    q, _ = np.linalg.qr(rng.normal(size=(latent, rank)))
    inits.extend([_const("Vt", q), _const("Ut", q.T)])
    nodes += [
        h.make_node("MatMul", [z, "Vt"], ["modes"]),
        h.make_node("Mul", ["modes", g], ["gained"]),
        h.make_node("MatMul", ["gained", "Ut"], ["z0"]),
    ]
    y = mlp("psi", "z0", [latent] + [hidden] * depth + [n])
    mask = np.zeros((horizon, dim), np.float32)
    mask[0, :3] = 1.0   # ee_position at row 0
    mask[:, 3:6] = 1.0  # goal at all rows
    inits.extend([_const("mask", mask), _const("keep", 1.0 - mask)])
    nodes += [
        h.make_node("Reshape", [y, "out_shape"], ["decoded"]),
        h.make_node("Mul", ["decoded", "keep"], ["free"]),
        h.make_node("Mul", ["prior", "mask"], ["fixed"]),
        h.make_node("Add", ["free", "fixed"], ["trajectory"]),
    ]
    tp = onnx.TensorProto.FLOAT
    graph = h.make_graph(
        nodes, "fdk_sized",
        [h.make_tensor_value_info("prior", tp, ["batch", horizon, dim])],
        [h.make_tensor_value_info("trajectory", tp, ["batch", horizon, dim])], initializer=inits,
    )
    _save(graph, path)
    columns = [ColumnSpec(name="ee_position", dim=3), ColumnSpec(name="goal", dim=3)]
    if dim > 6:
        columns.append(ColumnSpec(name="extra", dim=dim - 6))
    mean = np.array([0.4, 0.0, 0.4] * 2 + [0.0] * (dim - 6), np.float32)
    manifest = _student_manifest(
        path, f"fdk-sized-m{latent}-r{rank}", "arm", horizon, columns,
        [FixedSpec(column="ee_position", rows="first", source="ee_position"),
         FixedSpec(column="goal", rows="all", source="goal")], ActionSpec(column="ee_position", row=1),
        mean, np.full(dim, 0.3, np.float32),
        {"method": "random weights with the FDK student's shape (latency benchmark only, not a policy)",
         "config": f"latent={latent} rank={rank} hidden={hidden} depth={depth} gain_hidden={gain_hidden} seed={seed}"},
    )
    save_manifest(manifest, path)
    return manifest

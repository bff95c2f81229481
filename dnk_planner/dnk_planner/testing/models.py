"""Real ONNX models written with onnx.helper (no torch): an analytic arm student and an
FDK-sized student for latency measurements.

The arm has no trained teacher yet, so the demo and tests need a model that honours
the student contract end to end. `build_arm_primitive_model` is that model: a joint-space
move to the goal configuration within the joint velocity limits that brakes into the goal,
plus the prior's noise projected on a smooth low-frequency basis, so the N candidates are
diverse smooth whole-arm detours the geometric selector can choose between. `onnx` is only needed when writing files, so it is
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
ARM_MODEL_ID = "arm-primitives-v2"
# The prior temperature the analytic model is run at (its manifest's prior_temperature): its priors spread
# the primitives, and at the shipped student's 1.5 it holds in most cycles (1/20 offline, reports/arm_distill_rel).
ARM_PRIMITIVE_TEMPERATURE = 0.5


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
    row_period_s: float | None = None, prior_temperature: float | None = None,
) -> ModelManifest:
    d = sum(c.dim for c in columns)
    return ModelManifest(
        format_version=1, model_id=model_id, role="student", task=task, horizon=horizon, columns=columns,
        fixed=fixed, action=action, row_period_s=row_period_s, prior_temperature=prior_temperature,
        normalizer=NormalizerSpec(mean=mean.tolist(), std=std.tolist()),
        inputs=[TensorSpec(name="prior", shape=[None, horizon, d])],
        outputs=[TensorSpec(name="trajectory", shape=[None, horizon, d])],
        opset=OPSET, onnx_sha256=sha256_file(path),
        provenance={"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance},
    )


ARM_COLUMNS = [ColumnSpec(name="q", dim=7), ColumnSpec(name="goal", dim=3), ColumnSpec(name="goal_q", dim=7)]
ARM_FIXED = [FixedSpec(column="q", rows="first", source="q"), FixedSpec(column="goal", rows="all", source="goal"),
             FixedSpec(column="goal_q", rows="all", source="goal_q")]
ARM_ACTION = ActionSpec(column="q", row=1)
# Normalizer of the arm layout: joints around 0 with a quarter turn as unit; goal around the workspace.
ARM_MEAN = np.array([0.0] * 7 + [0.4, 0.0, 0.4] + [0.0] * 7, np.float32)
ARM_STD = np.array([np.pi / 2] * 7 + [0.3] * 3 + [np.pi / 2] * 7, np.float32)


def build_arm_primitive_model(
    path: str | Path,
    horizon: int = 32,
    dt: float = 0.05,
    speed_fraction: float = 0.5,
    brake_rate: float = 1.0,
    detour_amplitude: tuple[float, ...] = (0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2),
    taper_time: float = 0.5,
    num_modes: int = 4,
) -> ModelManifest:
    """Write `path` (.onnx) and its manifest; returns the manifest.

    Joint-space motion primitives (layout `q` 7 | `goal` 3 | `goal_q` 7, action `q` at row 1;
    `goal_q` is the goal configuration the planner node solves once per goal). Graph, raw units:
      q0 = x[:,0,q]; delta = goal_q - q0; D = max_j |delta_j| / vmax_j  (s at full speed)
      sigma(t): remaining D, shrinking at speed_fraction until sigma = speed_fraction^2 / (2 brake_rate),
                then braking as sqrt(2 brake_rate sigma) (finite-time stop: plans decelerate into the goal)
      line_h = q0 + (1 - sigma(h dt) / D) delta                    (every joint within its velocity limit)
      detour = detour_amplitude * min(1, D / taper_time)^2 * B (W noise)   (the arm settles at the goal)
    with noise = prior[:,:,q] (row 0 excluded by W), W (k,H) the unit-norm projection onto the
    basis B (H,k) = smooth_basis: N diverse smooth joint-space detours for the whole-arm selector.
    Units: rad, s; goal and goal_q columns pass through unchanged.
    """
    from dnk_planner.core.kinematics import JOINT_VELOCITY_LIMITS

    onnx = _onnx()
    h = onnx.helper
    path = Path(path).with_suffix(".onnx")
    basis = smooth_basis(horizon, num_modes)                      # (H, k)
    proj = basis.T.copy()
    proj[:, 0] = 0.0                                              # row 0 of the prior is context, not noise
    proj /= np.maximum(np.linalg.norm(proj, axis=1, keepdims=True), 1e-12)
    sigma_brake = speed_fraction**2 / (2.0 * brake_rate)
    big = 2**31
    inits = [
        _const("mean", ARM_MEAN), _const("std", ARM_STD), _const("inv_vmax", 1.0 / JOINT_VELOCITY_LIMITS),
        _const("t", (np.arange(horizon) * dt).reshape(1, horizon, 1)), _const("alpha", speed_fraction),
        _const("sigma_brake", sigma_brake), _const("root_half_b", np.sqrt(brake_rate / 2.0)),
        _const("proj", proj), _const("basis", basis), _const("amp", np.asarray(detour_amplitude)),
        _const("eps", 1e-6), _const("zero", 0.0), _const("one", 1.0), _const("inv_taper", 1.0 / taper_time),
        _const("s_q0", [0, 0, 0], np.int64), _const("e_q0", [big, 1, 7], np.int64),
        _const("s_gq", [0, 0, 10], np.int64), _const("e_gq", [big, 1, 17], np.int64),
        _const("e_noise", [big, big, 7], np.int64), _const("s_ctx", [0, 0, 7], np.int64),
        _const("e_ctx", [big, big, 17], np.int64), _const("ax2", [2], np.int64),
    ]
    nodes = [
        h.make_node("Mul", ["prior", "std"], ["x_s"]),
        h.make_node("Add", ["x_s", "mean"], ["x"]),
        h.make_node("Slice", ["x", "s_q0", "e_q0"], ["q0"]),              # (B,1,7) rad
        h.make_node("Slice", ["x", "s_gq", "e_gq"], ["goal_q"]),          # (B,1,7)
        h.make_node("Slice", ["x", "s_ctx", "e_ctx"], ["context"]),       # (B,H,10) goal, goal_q
        h.make_node("Sub", ["goal_q", "q0"], ["delta"]),
        h.make_node("Abs", ["delta"], ["delta_abs"]),
        h.make_node("Mul", ["delta_abs", "inv_vmax"], ["u"]),
        h.make_node("ReduceMax", ["u"], ["dist"], axes=[2], keepdims=1),  # (B,1,1) s at full speed
        h.make_node("Max", ["dist", "eps"], ["dist_safe"]),
        h.make_node("Min", ["dist", "sigma_brake"], ["sigma_s"]),
        h.make_node("Sub", ["dist", "sigma_brake"], ["cruise"]),
        h.make_node("Relu", ["cruise"], ["cruise_pos"]),
        h.make_node("Div", ["cruise_pos", "alpha"], ["t1"]),              # end of the cruise phase, s
        h.make_node("Mul", ["t", "alpha"], ["travel"]),
        h.make_node("Sub", ["dist", "travel"], ["sigma_cruise"]),         # (B,H,1)
        h.make_node("Sub", ["t", "t1"], ["tau_raw"]),
        h.make_node("Relu", ["tau_raw"], ["tau"]),
        h.make_node("Sqrt", ["sigma_s"], ["root_s"]),
        h.make_node("Mul", ["tau", "root_half_b"], ["root_drop"]),
        h.make_node("Sub", ["root_s", "root_drop"], ["root_raw"]),
        h.make_node("Relu", ["root_raw"], ["root"]),
        h.make_node("Mul", ["root", "root"], ["sigma_brake_phase"]),
        h.make_node("Less", ["t1", "t"], ["braking"]),
        h.make_node("Where", ["braking", "sigma_brake_phase", "sigma_cruise"], ["sigma"]),
        h.make_node("Div", ["sigma", "dist_safe"], ["left_raw"]),
        h.make_node("Max", ["left_raw", "zero"], ["left_pos"]),
        h.make_node("Min", ["left_pos", "one"], ["left"]),
        h.make_node("Sub", ["one", "left"], ["frac"]),                     # (B,H,1) share of delta done
        h.make_node("Mul", ["frac", "delta"], ["along"]),
        h.make_node("Add", ["q0", "along"], ["line"]),                     # (B,H,7)
        h.make_node("Slice", ["prior", "s_q0", "e_noise"], ["noise"]),     # (B,H,7) normalized
        h.make_node("MatMul", ["proj", "noise"], ["coef"]),                # (B,k,7)
        h.make_node("MatMul", ["basis", "coef"], ["detour_unit"]),         # (B,H,7)
        h.make_node("Mul", ["detour_unit", "amp"], ["detour_raw"]),        # rad
        h.make_node("Mul", ["dist", "inv_taper"], ["taper_raw"]),
        h.make_node("Min", ["taper_raw", "one"], ["taper_lin"]),
        h.make_node("Mul", ["taper_lin", "taper_lin"], ["taper"]),        # quadratic: detours die out near the goal
        h.make_node("Mul", ["detour_raw", "taper"], ["detour"]),
        h.make_node("Add", ["line", "detour"], ["q_plan"]),
        h.make_node("Concat", ["q_plan", "context"], ["y"], axis=2),
        h.make_node("Sub", ["y", "mean"], ["y_c"]),
        h.make_node("Div", ["y_c", "std"], ["trajectory"]),
    ]
    tp = onnx.TensorProto.FLOAT
    d = sum(c.dim for c in ARM_COLUMNS)
    graph = h.make_graph(
        nodes, "arm_primitives",
        [h.make_tensor_value_info("prior", tp, ["batch", horizon, d])],
        [h.make_tensor_value_info("trajectory", tp, ["batch", horizon, d])], initializer=inits,
    )
    _save(graph, path)
    manifest = _student_manifest(
        path, ARM_MODEL_ID, "arm", horizon, ARM_COLUMNS, ARM_FIXED, ARM_ACTION, ARM_MEAN, ARM_STD,
        {"method": "analytic joint-space motion primitives (not distilled)", "dataset": "none", "teacher": "none",
         "config": f"dt={dt} speed_fraction={speed_fraction} brake_rate={brake_rate} "
                   f"detour_amplitude={list(detour_amplitude)} taper_time={taper_time} num_modes={num_modes}"},
        row_period_s=dt, prior_temperature=ARM_PRIMITIVE_TEMPERATURE,
    )
    save_manifest(manifest, path)
    return manifest


def build_fdk_sized_model(
    path: str | Path,
    horizon: int = 32,
    dim: int = 17,
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
    Widths default to dnk_training's FDKConfig. Layout: the arm's q + goal + goal_q (+ an unfixed
    `extra` column when dim > 17), so it plugs into the arm planner as is.
    """
    onnx = _onnx()
    h = onnx.helper
    if rank > latent:
        raise ValueError(f"rank ({rank}) must be <= latent ({latent})")
    if dim < 17:
        raise ValueError(f"dim ({dim}) must be >= 17 (q + goal + goal_q)")
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
    mask[0, :7] = 1.0    # q at row 0
    mask[:, 7:17] = 1.0  # goal and goal_q at all rows
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
    columns = list(ARM_COLUMNS)
    if dim > 17:
        columns.append(ColumnSpec(name="extra", dim=dim - 17))
    manifest = _student_manifest(
        path, f"fdk-sized-m{latent}-r{rank}", "arm", horizon, columns, ARM_FIXED, ARM_ACTION,
        np.r_[ARM_MEAN, np.zeros(dim - 17, np.float32)], np.r_[ARM_STD, np.ones(dim - 17, np.float32)],
        {"method": "random weights with the FDK student's shape (latency benchmark only, not a policy)",
         "config": f"latent={latent} rank={rank} hidden={hidden} depth={depth} gain_hidden={gain_hidden} seed={seed}"},
        row_period_s=0.05,
    )
    save_manifest(manifest, path)
    return manifest

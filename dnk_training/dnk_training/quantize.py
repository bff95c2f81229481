"""INT8 copies of exported students: dynamic quantization of the MatMul weights, gated against the float model.

`onnxruntime.quantization.quantize_dynamic` stores the weights as int8 (per tensor) and quantizes the
activations per call (DynamicQuantizeLinear + MatMulInteger, default-domain ops that every CPU
onnxruntime runs). The shipped arm student's ONNX call takes 2.3x less time that way on this
project's 2-core CPU (reports/bench). The copy is written only when it answers like the float model:
the RMS difference over the float model's parity samples and `samples` random priors (context columns
constant over rows, as in every prior), in normalized
units, below `tol` (the max abs difference, an extreme of ~700k values, is reported beside it). Its
manifest is the float model's with the new hash, `model_id` + `-int8` and provenance naming the
source and the measured difference.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from dnk_planner.core.manifest import load_model, onnx_opsets, save_manifest, sha256_file
from dnk_planner.core.priors import context_columns
from dnk_training.export import ExportParityError, parity_path

DEFAULT_TOL = 0.02  # RMS, normalized units: the shipped student's own held-out RMS error against its teacher is ~0.12


def int8_path(onnx_path: str | Path) -> Path:
    """`x.onnx` -> `x-int8.onnx`."""
    path = Path(onnx_path)
    return path.with_name(f"{path.stem}-int8.onnx")


def quantize_student(src: str | Path, dst: str | Path | None = None, tol: float = DEFAULT_TOL,
                     samples: int = 256, seed: int = 0) -> tuple[Path, float, float]:
    """Write an INT8 copy of the student `src` (.onnx + manifest) to `dst` (default `int8_path(src)`);
    returns (path, max abs difference, RMS difference) against the float model.

    Raises ExportParityError (nothing written) when the RMS difference is not below `tol`, and
    ValueError for a model that is not a one-step student (a teacher's error compounds per step)."""
    src = Path(src)
    dst = int8_path(src) if dst is None else Path(dst).with_suffix(".onnx")
    float_model = load_model(src, provider="cpu")  # the runtime's contract checks (hash, opsets, shapes)
    manifest = float_model.manifest
    if manifest.role != "student" or manifest.denoising_steps is not None:
        raise ValueError(f"{src}: role {manifest.role!r}; only one-step students are quantized (a teacher's "
                         "error would compound over its denoising steps)")
    if len(manifest.inputs) != 1:
        raise ValueError(f"{src}: inputs {[t.name for t in manifest.inputs]}; a one-step student takes one (prior)")
    name, shape = manifest.inputs[0].name, manifest.inputs[0].shape
    random = np.random.default_rng(seed).standard_normal((samples, *shape[1:])).astype(np.float32)
    for sl in context_columns(manifest):  # a context column holds one value at every row of a prior
        random[:, :, sl] = random[:, :1, sl]
    feeds = [{name: random}]
    if parity_path(src).exists():
        with np.load(parity_path(src)) as saved:
            feeds.append({name: saved[name]})
    tmp = dst.with_name(dst.stem + ".tmp.onnx")
    dst.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)
    try:
        int8 = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        output = manifest.outputs[0].name
        diffs = np.concatenate([(int8.run([output], f)[0] - float_model.run(**f)[output]).ravel() for f in feeds])
        worst, rms = float(np.max(np.abs(diffs))), float(np.sqrt(np.mean(diffs ** 2)))
        if not rms < tol:
            raise ExportParityError(f"{dst.name}: int8 vs float RMS difference {rms:.3g} >= {tol:g} (normalized "
                                    f"units, max abs {worst:.3g}); not written")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dst)
    quantized = manifest.model_copy(update={
        "model_id": f"{manifest.model_id}-int8",
        "opset": onnx_opsets(dst)[""],
        "onnx_sha256": sha256_file(dst),
        "provenance": {**manifest.provenance, "quantized_from": f"{src.name} (sha256 {manifest.onnx_sha256})",
                       "quantization": "dynamic int8 MatMul weights (onnxruntime quantize_dynamic, QInt8)",
                       "quantization_max_abs_diff": f"{worst:.6g}", "quantization_rms_diff": f"{rms:.6g}"},
    })
    save_manifest(quantized, dst)
    load_model(dst, provider="cpu")  # the runtime's own contract check
    return dst, worst, rms

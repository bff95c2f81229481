"""onnxruntime session wrapper: provider selection, thread control, cheap IO binding.

Kept separate from the manifest so that the contract (pydantic) and the execution
engine can evolve independently; `dnk_planner.core.manifest.load_model` builds an
`OnnxModel` only after the manifest has been validated against the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import onnxruntime as ort

if TYPE_CHECKING:  # avoid an import cycle: manifest.py imports this module
    from dnk_planner.core.manifest import ModelManifest

Provider = Literal["auto", "cpu", "cuda", "tensorrt"]

_ORT_NAMES: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
# Best first: "auto" takes the first one this onnxruntime build offers.
_AUTO_ORDER = ("tensorrt", "cuda", "cpu")

# onnxruntime type strings -> manifest dtype names.
ORT_DTYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
}


def resolve_providers(provider: str) -> list[str]:
    """Map auto|cpu|cuda|tensorrt to an onnxruntime provider list (CPU always last as fallback).

    The robot image ships onnxruntime-gpu under the same import name, so the
    available providers are queried, never assumed.
    """
    available = ort.get_available_providers()
    if provider == "auto":
        chosen = next(p for p in _AUTO_ORDER if _ORT_NAMES[p] in available)
    elif provider in _ORT_NAMES:
        chosen = provider
        if _ORT_NAMES[chosen] not in available:
            raise ValueError(
                f"provider={provider!r} is not available in this onnxruntime build "
                f"(available: {available}). Fix: install onnxruntime-gpu with a matching "
                f"CUDA/TensorRT, or use provider='cpu' or 'auto'."
            )
    else:
        raise ValueError(
            f"provider={provider!r} is unknown. Fix: use one of 'auto', 'cpu', 'cuda', 'tensorrt'."
        )
    names = [_ORT_NAMES[chosen]]
    if chosen != "cpu":
        names.append(_ORT_NAMES["cpu"])
    return names


def session_options(threads: int) -> ort.SessionOptions:
    """Latency-oriented options: sequential execution, full graph optimisation, fixed threads."""
    if threads < 1:
        raise ValueError(f"threads={threads} must be >= 1. Fix: pass threads=1 (or 2).")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # warnings such as provider fallbacks stay out of control-loop logs
    return opts


def create_session(path: Path, provider: str = "auto", threads: int = 1) -> ort.InferenceSession:
    """Open an inference session; raises onnxruntime's own errors for unreadable graphs."""
    return ort.InferenceSession(
        str(path), sess_options=session_options(threads), providers=resolve_providers(provider)
    )


class OnnxModel:
    """A validated ONNX model: its manifest plus a ready onnxruntime session."""

    def __init__(self, session: ort.InferenceSession, manifest: ModelManifest, path: Path) -> None:
        self.session = session
        self.manifest = manifest
        self.path = Path(path)
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.providers = session.get_providers()
        self._on_cpu = self.providers[0] == _ORT_NAMES["cpu"]
        self._binding = session.io_binding()
        self._bound: tuple | None = None  # (name, address, shape) of what _binding holds

    @property
    def provider(self) -> str:
        """The execution provider actually running the graph (first of the session's list)."""
        return self.providers[0]

    def _feed(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        extra = [n for n in inputs if n not in self.input_names]
        if missing or extra:
            raise ValueError(
                f"model {self.manifest.model_id!r} inputs: missing {missing}, unexpected {extra}. "
                f"Fix: pass exactly {self.input_names}."
            )
        # float32 C-contiguous arrays are passed through without a copy.
        return {n: np.ascontiguousarray(inputs[n], dtype=np.float32) for n in self.input_names}

    def run(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run once; returns {output name: array}."""
        outs = self.session.run(self.output_names, self._feed(inputs))
        return dict(zip(self.output_names, outs))

    def run_into(self, outputs: dict[str, np.ndarray], **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run writing into caller-owned float32 output buffers (no per-call allocation).

        Uses IO binding on the CPU provider, where binding host memory is free; the
        binding is redone only when a buffer's address or shape changes, so a caller
        that reuses its buffers (the Planner) pays for binding once. On GPU providers
        it falls back to `run` and copies, since host binding would force a device
        round trip anyway.
        """
        if not self._on_cpu:
            for name, value in self.run(**inputs).items():
                outputs[name][...] = value
            return outputs
        feed = self._feed(inputs)
        for name in self.output_names:
            buf = outputs[name]
            if buf.dtype != np.float32 or not buf.flags.c_contiguous:
                raise ValueError(f"output buffer {name!r} must be C-contiguous float32")
        key = tuple((n, a.ctypes.data, a.shape) for n, a in (*feed.items(), *((n, outputs[n]) for n in self.output_names)))
        b = self._binding
        if key != self._bound:
            b.clear_binding_inputs()
            b.clear_binding_outputs()
            for name, arr in feed.items():
                b.bind_cpu_input(name, arr)
            for name in self.output_names:
                buf = outputs[name]
                b.bind_output(name, "cpu", 0, np.float32, list(buf.shape), buf.ctypes.data)
            self._bound = key
        self.session.run_with_iobinding(b)
        return outputs

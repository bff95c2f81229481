"""ONNX export of students and selectors with the runtime's manifest and a parity gate.

Every file is exported to a temporary path, compared against torch in onnxruntime on random
inputs (several batch sizes, so the dynamic batch axis is exercised), and only written when
the max abs error is below the tolerance; the manifest is then checked by the runtime's own
loader (dnk_planner.core.manifest.load_model) so an export the planner would refuse never lands.
"""
from __future__ import annotations

import copy
import datetime as dt
import os
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from dnk_planner.core.manifest import ModelManifest, load_model, onnx_opsets, save_manifest, sha256_file
from dnk_training.configs import LayoutConfig
from dnk_training.normalizer import Normalizer
from dnk_training.students.common import ContextOnce, FreeOutputs, Student

DEFAULT_OPSET = 17
PARITY_TOL = 1e-4
PARITY_BATCHES = (1, 7, 64)


def parity_path(onnx_path: str | Path) -> Path:
    """`x.onnx` -> `x.parity.npz`: inputs and torch's outputs, saved at export."""
    return Path(onnx_path).with_suffix(".parity.npz")


class ExportParityError(RuntimeError):
    """onnxruntime and torch disagree beyond the tolerance; nothing was written."""


def _parity(module: nn.Module, onnx_path: Path, make_inputs, output: str, seed: int) -> tuple[float, float]:
    """(max abs error, max |torch output|) over random inputs at several batch sizes."""
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = scale = 0.0
    for b in PARITY_BATCHES:
        inputs = make_inputs(b, gen)
        with torch.no_grad():
            ref = module(*inputs.values()).numpy()
        got = sess.run([output], {k: v.numpy() for k, v in inputs.items()})[0]
        if got.shape != ref.shape:
            raise ExportParityError(f"{onnx_path.name}: onnx output shape {got.shape} != torch {ref.shape} at batch {b}")
        worst = max(worst, float(np.max(np.abs(got - ref))))
        scale = max(scale, float(np.max(np.abs(ref))))
    return worst, scale


def export_onnx(
    module: nn.Module,
    path: str | Path,
    make_inputs,
    output: str,
    manifest_fields: dict,
    opset: int = DEFAULT_OPSET,
    tol: float = PARITY_TOL,
    seed: int = 0,
    relative: bool = False,
) -> tuple[ModelManifest, float]:
    """Export `module` to path (.onnx + .json manifest) after a parity check; returns (manifest, max abs err).

    make_inputs(batch, generator) -> {input name: float32 tensor}, in the order module.forward takes them.
    manifest_fields: the manifest minus inputs/outputs/opset/onnx_sha256 (filled here).
    relative: gate on max abs error / max(1, max |output|) instead of the absolute error; for
    selectors whose outputs are in return units (~1e3), where float32 spacing alone is ~1e-4.
    """
    path = Path(path).with_suffix(".onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    example = make_inputs(2, torch.Generator().manual_seed(seed))
    tmp = path.with_name(path.stem + ".tmp.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is chosen on purpose
        torch.onnx.export(
            module,
            tuple(example.values()),
            str(tmp),
            input_names=list(example),
            output_names=[output],
            dynamic_axes={**{k: {0: "batch"} for k in example}, output: {0: "batch"}},
            opset_version=opset,
            dynamo=False,  # deterministic graphs for these small MLP/conv nets, no torch.export tracing quirks
        )
    try:
        err, scale = _parity(module, tmp, make_inputs, output, seed + 1)
        gated = err / max(1.0, scale) if relative else err
        if not gated < tol:
            kind = f"max abs error / max(1, max|output| = {scale:.3g})" if relative else "max abs error"
            raise ExportParityError(
                f"{path.name}: onnxruntime vs torch {kind} = {gated:.3g} >= {tol:g}; not written "
                "(check for ops that differ between torch and onnxruntime)"
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    with torch.no_grad():
        out_shape = list(module(*example.values()).shape)
        samples = make_inputs(4, torch.Generator().manual_seed(seed + 2))
        reference = module(*samples.values())
    # torch's answers to a few inputs travel with the file: a copy can be re-checked without torch
    np.savez(parity_path(path), **{k: v.numpy() for k, v in samples.items()}, **{output: reference.numpy()})
    manifest = ModelManifest.model_validate(
        {
            **manifest_fields,
            "format_version": 1,
            "inputs": [{"name": k, "shape": [None, *v.shape[1:]], "dtype": "float32"} for k, v in example.items()],
            "outputs": [{"name": output, "shape": [None, *out_shape[1:]], "dtype": "float32"}],
            "opset": onnx_opsets(path)[""],
            "onnx_sha256": sha256_file(path),
        }
    )
    save_manifest(manifest, path)
    load_model(path, provider="cpu")  # the runtime's own contract check
    return manifest, err


def _layout_fields(layout: LayoutConfig, horizon: int, normalizer: Normalizer, task: str) -> dict:
    return {
        "task": task,
        "horizon": horizon,
        "columns": [c.model_dump() for c in layout.columns],
        "fixed": [f.model_dump() for f in layout.fixed],
        "relative": [r.model_dump() for r in layout.relative],
        "action": layout.action.model_dump(),
        "normalizer": normalizer.to_dict(),
    }


def _provenance(extra: dict[str, str]) -> dict[str, str]:
    return {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **{k: str(v) for k, v in extra.items()}}


def serving_module(student: Student) -> nn.Module:
    """What ONNX traces for a student: `export_module` of a copy whose encoder reads each column fixed
    at every row once (ContextOnce) and whose decoder computes only the other columns (FreeOutputs).
    The same function on priors that keep the layout, at a fraction of the cost: for the arm student
    (77 of 84 columns goal and obstacle context, the same value in all 32 rows, overwritten by the
    prior's own values on the way out) it removes 79 % of the weights its matrix products use."""
    if student.encoder is None or not student.fixed.all(0).any():
        return student.export_module()
    served = copy.deepcopy(student)
    encoder, decoder = getattr(served, student.encoder), getattr(served, student.decoder)
    encoder[0] = ContextOnce(encoder[0], student.fixed)
    decoder[-1] = FreeOutputs(decoder[-1], student.fixed)
    return served.export_module()


def layout_priors(fixed: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """`priors` (B, H, D) with every column fixed at every row set to its row-0 value at every row, in
    place: the form the planner's priors and the pairs have (a context value, not noise, per row)."""
    context = fixed.all(0)
    priors[:, :, context] = priors[:, :1, context]
    return priors


def export_student(
    student: Student,
    path: str | Path,
    model_id: str,
    layout: LayoutConfig,
    horizon: int,
    normalizer: Normalizer,
    task: str,
    provenance: dict[str, str],
    tol: float = PARITY_TOL,
    row_period_s: float | None = None,
    prior_temperature: float | None = None,
) -> tuple[ModelManifest, float]:
    """Student: prior [B,H,D] -> trajectory [B,H,D], both normalized; `row_period_s`: s between rows,
    `prior_temperature`: the one the planner runs it at."""
    d = layout.dim

    def make_inputs(b: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"prior": layout_priors(student.fixed, torch.randn(b, horizon, d, generator=gen))}

    fields = {"model_id": model_id, "role": "student", **_layout_fields(layout, horizon, normalizer, task),
              "row_period_s": row_period_s, "prior_temperature": prior_temperature,
              "provenance": _provenance(provenance)}
    return export_onnx(serving_module(student), path, make_inputs, "trajectory", fields, tol=tol)


class DenoisingStep(nn.Module):
    """One deterministic DDIM (eta = 0) step of the teacher, `Teacher.ddim_step`: (x_t, t) -> x_{t-1}.
    The planner core runs it `denoising_steps` times (t = K-1 .. 0), which is `Teacher.sample(prior,
    sampler="ddim")`, the map the pairs were made with. One step, not K unrolled: onnxruntime
    optimises a 30-fold unrolled U-Net for over a minute at load."""

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        if teacher.cfg.sampling.guidance_weight > 0:
            raise ValueError("the teacher samples with classifier guidance (guidance_weight > 0): the gradient "
                             "steps do not export; export an unguided teacher (guidance_weight 0)")
        self.teacher = teacher

    def forward(self, prior: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        return self.teacher.ddim_step(prior, step.long())


def export_teacher(
    teacher: nn.Module,
    path: str | Path,
    model_id: str,
    provenance: dict[str, str],
    tol: float = PARITY_TOL,
) -> tuple[ModelManifest, float]:
    """Teacher: (x_t [B,H,D], step [B]) -> x_{t-1} [B,H,D], normalized (role 'teacher', `denoising_steps` K)."""
    cfg = teacher.cfg
    d, horizon = cfg.layout.dim, cfg.dataset.horizon

    def make_inputs(b: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"prior": torch.randn(b, horizon, d, generator=gen),
                "step": torch.randint(0, teacher.steps, (b,), generator=gen).float()}

    fields = {"model_id": model_id, "role": "teacher", **_layout_fields(cfg.layout, horizon, teacher.normalizer, cfg.task),
              "row_period_s": cfg.row_period_s, "prior_temperature": cfg.prior_temperature,
              "denoising_steps": teacher.steps,
              "provenance": _provenance({**provenance, "method": f"ddim eta=0, {teacher.steps} steps"})}
    return export_onnx(DenoisingStep(teacher), path, make_inputs, "trajectory", fields, tol=tol)


class ClassifierAtZero(nn.Module):
    """Return classifier evaluated at diffusion step 0 with a batch-shaped step tensor (traceable)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, trajectory: torch.Tensor) -> torch.Tensor:
        t = torch.zeros_like(trajectory[:, 0, 0], dtype=torch.long)
        return self.classifier(trajectory, t)


def export_classifier(
    classifier: nn.Module,
    path: str | Path,
    model_id: str,
    layout: LayoutConfig,
    horizon: int,
    normalizer: Normalizer,
    task: str,
    provenance: dict[str, str],
    tol: float = PARITY_TOL,
) -> tuple[ModelManifest, float]:
    """Selector: normalized trajectory [B,H,D] -> value [B] = classifier(trajectory, t=0), return units.

    Parity is gated relative to the output scale (returns are ~1e3; float32 spacing there is ~1e-4).
    """
    d = layout.dim

    def make_inputs(b: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"trajectory": torch.randn(b, horizon, d, generator=gen)}

    fields = {"model_id": model_id, "role": "classifier", **_layout_fields(layout, horizon, normalizer, task),
              "provenance": _provenance(provenance)}
    return export_onnx(ClassifierAtZero(classifier), path, make_inputs, "value", fields, tol=tol, relative=True)


def export_critic(
    critic: nn.Module,
    path: str | Path,
    model_id: str,
    layout: LayoutConfig,
    horizon: int,
    normalizer: Normalizer,
    task: str,
    provenance: dict[str, str],
    tol: float = PARITY_TOL,
) -> tuple[ModelManifest, float]:
    """Selector: raw obs [B,ds], raw act [B,da] -> q [B]; `critic` does its own input scaling.

    Parity is gated relative to the output scale, as for the classifier (Q is in return units).
    """
    ds = layout.column_slice("obs")
    da = layout.column_slice(layout.action.column)
    obs_std = torch.as_tensor(normalizer.std[ds])
    obs_mean = torch.as_tensor(normalizer.mean[ds])

    def make_inputs(b: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        obs = obs_mean + obs_std * torch.randn(b, ds.stop - ds.start, generator=gen)
        act = torch.rand(b, da.stop - da.start, generator=gen) * 2 - 1
        return {"obs": obs, "act": act}

    fields = {"model_id": model_id, "role": "critic", **_layout_fields(layout, horizon, normalizer, task),
              "provenance": _provenance(provenance)}
    return export_onnx(critic, path, make_inputs, "q", fields, tol=tol, relative=True)

"""Checkpoints as safetensors (weights, optimizer tensors, RNG states) + a JSON sidecar.

No pickle anywhere: a checkpoint is ``<prefix>.safetensors`` (tensors only) and
``<prefix>.json`` (step, config, normalizer, optimizer hyper-parameters), so loading a file
from elsewhere cannot execute code. Saving RNG and optimizer state lets ``--resume`` reproduce
the uninterrupted run's next step exactly.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CKPT_RE = re.compile(r"^ckpt_(\d{8})\.json$")


class CheckpointError(ValueError):
    """A checkpoint that does not match the model being loaded; the message names the fix."""


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict:
    sd = opt.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{name}/{idx}/{k}"] = v.detach().clone().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim/{name}/"
    for key, v in tensors.items():
        if key.startswith(prefix):
            idx, k = key[len(prefix):].split("/", 1)
            state.setdefault(int(idx), {})[k] = v
    for idx, st in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(st)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    prefix: str | Path,
    modules: dict[str, torch.nn.Module],
    meta: dict[str, Any],
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    generators: dict[str, torch.Generator] | None = None,
) -> Path:
    """Write ``prefix.safetensors`` + ``prefix.json``; returns the JSON path."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            tensors[f"model/{name}/{k}"] = v.detach().clone().contiguous()
    optim_meta = {n: _flatten_optimizer(n, o, tensors) for n, o in (optimizers or {}).items()}
    for name, g in (generators or {}).items():
        tensors[f"rng/{name}"] = g.get_state()
    tmp = prefix.with_suffix(".safetensors.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(prefix.with_suffix(".safetensors"))
    sidecar = dict(meta, _optim=optim_meta, _modules=sorted(modules), weights=prefix.with_suffix(".safetensors").name)
    json_path = prefix.with_suffix(".json")
    json_path.write_text(json.dumps(sidecar, indent=1))
    return json_path


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read the JSON sidecar of a checkpoint given either of its two files."""
    p = Path(path)
    json_path = p.with_suffix(".json")
    if not json_path.is_file():
        raise CheckpointError(f"checkpoint metadata {json_path} not found; pass the .json or .safetensors of a saved checkpoint")
    return json.loads(json_path.read_text())


def load_checkpoint(
    path: str | Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    generators: dict[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Load weights (strict), optimizer and RNG state into the given objects; return the metadata."""
    meta = read_meta(path)
    weights = Path(path).with_suffix(".safetensors")
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights {weights} not found next to {Path(path).with_suffix('.json')}")
    tensors = load_file(str(weights))
    for name, m in modules.items():
        prefix = f"model/{name}/"
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointError(f"{weights} holds no weights for '{name}' (it has {meta.get('_modules')}); load the matching checkpoint")
        try:
            m.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{weights}: weights of '{name}' do not fit the model built from the config ({e}); use the config saved with the checkpoint") from e
    for name, o in (optimizers or {}).items():
        if name not in meta.get("_optim", {}):
            raise CheckpointError(f"{weights} has no optimizer state '{name}'; it is an export, not a resumable checkpoint")
        _unflatten_optimizer(name, o, tensors, meta["_optim"][name])
    for name, g in (generators or {}).items():
        key = f"rng/{name}"
        if key not in tensors:
            raise CheckpointError(f"{weights} has no RNG state '{name}'; it is an export, not a resumable checkpoint")
        g.set_state(tensors[key])
    return meta


class CheckpointManager:
    """Periodic ``ckpt_<step>`` files in one directory, keeping the newest ``keep``."""

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        self.dir = Path(directory)
        self.keep = keep

    def list(self) -> list[tuple[int, Path]]:
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := CKPT_RE.match(p.name))]
        return sorted(found)

    def latest(self) -> Path | None:
        ckpts = self.list()
        return ckpts[-1][1] if ckpts else None

    def save(self, step: int, **kwargs: Any) -> Path:
        path = save_checkpoint(self.dir / f"ckpt_{step:08d}", **kwargs)
        for _, old in self.list()[: -self.keep]:
            old.with_suffix(".safetensors").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        return path

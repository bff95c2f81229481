"""Offline teacher-target pairs (method IV-A): conditioned priors -> full teacher reverse process.

For each context drawn from the teacher's dataset windows: x~_T = tau * eps with the fixed entries
replaced by the (normalized) context, x^_0 = Teacher(x~_T), q = classifier score of x^_0.
Pairs are written in chunks (``chunk_#####.npz``) listed in ``index.json``; a rerun skips chunks
already on disk, so a killed job resumes where it stopped. Every chunk draws its windows, tau, eps
and the teacher's sampling noise from its own seed (recorded per pair), so a chunk is reproducible.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from collections.abc import Sequence
from typing import Callable, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, field_validator
from tqdm import tqdm

TeacherFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""(conditioned prior [B,H,D], torch generator) -> teacher target [B,H,D] (normalized)."""
ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""(teacher target [B,H,D]) -> return-model score q [B]."""

INDEX = "index.json"


class PairsConfig(BaseModel):
    """How many pairs, in which chunks, from which temperatures."""

    num_pairs: int = Field(4096, ge=1, description="pairs to generate (paper: 500,000 per task)")
    chunk_size: int = Field(1024, ge=1, description="pairs per .npz chunk (the unit of resumption)")
    batch_size: int = Field(256, ge=1, description="priors per teacher call")
    temperatures: dict[float, float] = Field(
        default_factory=lambda: {0.5: 0.5, 0.75: 0.3, 1.0: 0.2},
        description="prior temperature tau -> probability (x_T = tau * eps)",
    )
    seed: int = Field(0, description="base seed; chunk c uses SeedSequence([seed, c])")
    sampler: Literal["ddpm", "ddim"] = Field("ddim", description="teacher sampler of the targets (ddim: deterministic)")
    priors_per_context: int = Field(
        1, ge=1, description="consecutive pairs that share one context window with independent priors (1: every pair "
        "draws its own context); > 1 shows a student how the teacher's target moves with the prior alone")

    @field_validator("temperatures")
    @classmethod
    def _probabilities(cls, v: dict[float, float]) -> dict[float, float]:
        if not v or any(t <= 0 or p < 0 for t, p in v.items()) or abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError("temperatures must map tau > 0 to probabilities >= 0 that sum to 1")
        return v


def condition_prior(noise: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x~_T: the noise with the fixed entries (mask [H,D]) replaced by the context's values."""
    return torch.where(mask, context, noise)


def chunk_seed(base: int, chunk: int) -> int:
    return int(np.random.SeedSequence([base, chunk]).generate_state(1)[0])


def _write_index(out: Path, index: dict) -> None:
    tmp = out / (INDEX + ".tmp")
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, out / INDEX)


def generate_pairs(
    out_dir: str | Path,
    windows: np.ndarray,
    mask: np.ndarray,
    teacher: TeacherFn,
    score: ScoreFn,
    cfg: PairsConfig,
    meta: dict | None = None,
    max_chunks: int | None = None,
    progress: bool = True,
) -> dict:
    """Write cfg.num_pairs pairs under out_dir (resumable); returns the index.

    windows: normalized dataset windows [M, H, D] from which contexts are drawn (only the fixed
    entries are used for the prior; the whole window is stored for data-only baselines).
    max_chunks: stop after this many new chunks (time-boxed runs); rerun to continue.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-cfg.num_pairs // cfg.chunk_size)
    index = {"config": cfg.model_dump(mode="json"), "meta": meta or {}, "chunks": []}
    if (out / INDEX).exists():
        old = json.loads((out / INDEX).read_text())
        if old["config"] | {"num_pairs": 0} != index["config"] | {"num_pairs": 0}:
            raise ValueError(f"{out} holds pairs made with another config {old['config']}; use a new --out directory")
        index["chunks"] = [c for c in old["chunks"] if (out / c["file"]).exists()]
    done = {c["file"] for c in index["chunks"]}
    mask_t = torch.as_tensor(mask)
    taus = np.array(sorted(cfg.temperatures), dtype=np.float32)
    probs = np.array([cfg.temperatures[t] for t in sorted(cfg.temperatures)])
    new = 0
    for c in tqdm(range(n_chunks), desc="pair chunks", disable=not progress):
        name = f"chunk_{c:05d}.npz"
        if name in done:
            continue
        if max_chunks is not None and new >= max_chunks:
            break
        n = min(cfg.chunk_size, cfg.num_pairs - c * cfg.chunk_size)
        seed = chunk_seed(cfg.seed, c)
        rng = np.random.default_rng(seed)
        k = cfg.priors_per_context
        widx = np.repeat(rng.integers(0, windows.shape[0], size=-(-n // k)), k)[:n]
        tau = taus[rng.choice(len(taus), size=n, p=probs)]
        eps = rng.standard_normal((n, *windows.shape[1:]), dtype=np.float32)
        ctx = torch.as_tensor(windows[widx])
        prior = condition_prior(torch.as_tensor(eps * tau[:, None, None]), ctx, mask_t)
        gen = torch.Generator().manual_seed(seed)
        targets, scores = [], []
        for s in range(0, n, cfg.batch_size):
            x0 = teacher(prior[s : s + cfg.batch_size], gen).detach()
            targets.append(x0)
            scores.append(score(x0).detach().reshape(-1))
        arrays = {
            "prior": prior.numpy().astype(np.float32),
            "target": torch.cat(targets).numpy().astype(np.float32),
            "q": torch.cat(scores).numpy().astype(np.float32),
            "tau": tau,
            "window_index": widx,
            "window": windows[widx].astype(np.float32),
            "seed": np.full(n, seed, dtype=np.uint64),
        }
        tmp = out / (name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, out / name)
        index["chunks"].append({"file": name, "n": n, "seed": seed})
        index["chunks"].sort(key=lambda d: d["file"])
        _write_index(out, index)
        new += 1
    index["total"] = sum(c["n"] for c in index["chunks"])
    _write_index(out, index)
    return index


def within_prior_spread(teacher: TeacherFn, prior: torch.Tensor, free: torch.Tensor, seeds: Sequence[int]) -> float:
    """Mean variance of the targets of the SAME priors across generator seeds, over the free
    (not context-fixed) entries `free` [H, D]: 0 for a deterministic sampler. A one-step student
    fitted with L2 can at best reach the mean of these targets, so this is its floor."""
    targets = torch.stack([teacher(prior, torch.Generator().manual_seed(int(s))).detach() for s in seeds])
    return float(targets.var(dim=0, unbiased=True)[:, free].mean())


def load_pairs(pairs_dir: str | Path) -> dict[str, np.ndarray]:
    """Concatenate every chunk listed in index.json (missing/partial chunks are an error)."""
    d = Path(pairs_dir)
    if not (d / INDEX).exists():
        raise FileNotFoundError(f"{d / INDEX} not found; run `dnk-train gen-pairs` first")
    index = json.loads((d / INDEX).read_text())
    if not index["chunks"]:
        raise ValueError(f"{d} lists no chunks; run `dnk-train gen-pairs` to generate some")
    parts: dict[str, list[np.ndarray]] = {}
    for c in index["chunks"]:
        with np.load(d / c["file"]) as z:
            for k in z.files:
                parts.setdefault(k, []).append(z[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def quality_weights(q: np.ndarray, w_min: float = 0.5, w_max: float = 1.5) -> np.ndarray:
    """w_i = w_min + (w_max - w_min) u_i with u_i the quantile rank of q_i (ties share their mean rank)."""
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    if q.size == 0:
        raise ValueError("quality_weights needs at least one score q")
    if not np.all(np.isfinite(q)):
        raise ValueError("quality scores q contain NaN/inf; check the classifier outputs")
    if q.size == 1:
        return np.array([(w_min + w_max) / 2], dtype=np.float32)
    order = np.argsort(q, kind="stable")
    ranks = np.empty(q.size)
    ranks[order] = np.arange(q.size)
    _, inverse, counts = np.unique(q, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    u = (sums / counts)[inverse] / (q.size - 1)
    return (w_min + (w_max - w_min) * u).astype(np.float32)

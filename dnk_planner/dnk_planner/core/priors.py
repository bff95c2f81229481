"""Conditioned priors in normalized space, plus the fixed-entry helpers.

The student maps a noisy prior to a trajectory in ONE call; conditioning is done
the way the method does it (inpainting): the fixed entries of the prior are the
normalized context, the rest is temperature-scaled Gaussian noise. Buffers are
preallocated and the generator is seeded so that replaying a log with the same
seed reproduces every candidate bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dnk_planner.core.manifest import ModelManifest
from dnk_planner.core.normalizer import Normalizer


@dataclass(frozen=True)
class FixedEntry:
    """One resolved `fixed` rule: rows x column slice filled from context key `source` (minus context key
    `offset` when the column is `relative`)."""

    source: str
    rows: slice
    cols: slice
    offset: str | None = None


@dataclass(frozen=True)
class Offset:
    """One resolved `relative` rule: columns `cols` reach the model as raw - context[source]; `ref_cols` is the
    absolute fixed column that carries context[source] into the trajectory."""

    cols: slice
    source: str
    ref_cols: slice


def offsets_of(layout, slices: dict[str, slice]) -> list[Offset]:
    """Resolve the `relative` rules of a manifest (or of training's LayoutConfig, the same field names);
    `slices`: its column name -> slice (`ModelManifest.column_slices`)."""
    relative = {r.column for r in layout.relative}
    return [Offset(slices[r.column], r.source,
                   slices[next(f.column for f in layout.fixed if f.source == r.source and f.column not in relative)])
            for r in layout.relative]


def to_model_space(x: np.ndarray, offsets: list[Offset]) -> np.ndarray:
    """Raw trajectories (..., H, D) -> the model's space, in place: each relative column minus its reference,
    read at row 0 of the absolute column that carries it (training windows hold their context that way)."""
    refs = [x[..., :1, o.ref_cols].copy() for o in offsets]  # all read before any column changes
    for o, ref in zip(offsets, refs):
        x[..., o.cols] -= ref
    return x


def fixed_entries(manifest: ModelManifest) -> list[FixedEntry]:
    """Resolve the manifest's `fixed` rules into row/column slices."""
    cols = manifest.column_slices
    offset = {r.column: r.source for r in manifest.relative}
    return [
        FixedEntry(f.source, slice(0, 1) if f.rows == "first" else slice(None), cols[f.column], offset.get(f.column))
        for f in manifest.fixed
    ]


def context_columns(manifest: ModelManifest) -> list[slice]:
    """Column slices fixed at every row (the arm's goal, its obstacle slots): one context value copied
    into every row of a prior, so they need no noise and no decoding."""
    always = {f.column for f in manifest.fixed if f.rows == "all"}
    return [sl for name, sl in manifest.column_slices.items() if name in always]


def free_columns(manifest: ModelManifest) -> list[slice]:
    """Column slices not fixed at every row: what the model plans."""
    context = context_columns(manifest)
    return [sl for sl in manifest.column_slices.values() if sl not in context]


def check_values(
    manifest: ModelManifest, values: Mapping[str, np.ndarray], entries: list[FixedEntry] | None = None
) -> dict[str, np.ndarray]:
    """Validate the context entries the manifest fixes: present, right shape, finite.

    Returns float32 copies keyed by source. Raises ValueError naming the key, so a
    bad sensor message is rejected before it can reach the model. `entries` (from
    `fixed_entries`) saves re-resolving the manifest in a control loop.
    """
    out: dict[str, np.ndarray] = {}
    for entry in entries if entries is not None else fixed_entries(manifest):
        key = entry.source
        want = (entry.cols.stop - entry.cols.start,)
        if key not in values:
            raise ValueError(
                f"context key {key!r} is missing (model {manifest.model_id!r} conditions on it). "
                f"Fix: pass Context(values={{{key!r}: array of shape {want}}})."
            )
        v = np.asarray(values[key], dtype=np.float32)
        if v.shape != want:
            raise ValueError(f"context {key!r} has shape {v.shape}, expected {want}. Fix: pass a flat vector.")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"context {key!r} contains NaN/inf: {v}. Fix: check the sensor/state source.")
        out[key] = v
    return out


def impose_fixed(x: np.ndarray, entries: list[FixedEntry], values: Mapping[str, np.ndarray]) -> None:
    """Write the fixed entries into x (..., H, D) in place; x and values in the same space."""
    for e in entries:
        x[..., e.rows, e.cols] = values[e.source]


class PriorBuilder:
    """Builds N conditioned priors (N, H, D) float32 in normalized space into one reused buffer."""

    def __init__(self, manifest: ModelManifest, num_candidates: int, seed: int, temperature: float = 1.0) -> None:
        if num_candidates < 1:
            raise ValueError(f"num_candidates={num_candidates} must be >= 1")
        if not temperature >= 0:
            raise ValueError(f"temperature={temperature} must be >= 0")
        self.manifest = manifest
        self.num_candidates = num_candidates
        self.temperature = np.float32(temperature)
        self.normalizer = Normalizer.from_manifest(manifest)
        self.entries = fixed_entries(manifest)
        self.rng = np.random.default_rng(seed)
        self.drawn_from: tuple[int, ...] = generator_words(self.rng)  # state the buffered noise came from
        self.buffer = np.empty((num_candidates, manifest.horizon, manifest.dim), dtype=np.float32)
        self._noisy = free_columns(manifest)  # columns fixed at every row never need noise
        width = sum(sl.stop - sl.start for sl in self._noisy)
        self._noise = np.empty((num_candidates, manifest.horizon, width), dtype=np.float32)
        self._drawn = False

    def draw(self) -> None:
        """Draw the next decision's noise (temperature-scaled) into the buffer.

        `build` calls it when needed; a control loop may call it in its idle time
        instead (Planner.prefetch) to take the draw off the decision's critical path.
        Either way each decision consumes exactly one draw, so replays stay bit-identical.
        """
        self.drawn_from = generator_words(self.rng)
        if self._noise.size:
            self.rng.standard_normal(dtype=np.float32, out=self._noise)
        start = 0
        for sl in self._noisy:
            stop = start + sl.stop - sl.start
            np.multiply(self._noise[..., start:stop], self.temperature, out=self.buffer[..., sl])
            start = stop
        self._drawn = True

    def restore(self, words: tuple[int, ...]) -> None:
        """Continue from a recorded generator state (`generator_words`): the next build draws the
        noise a recorded decision drew, so a replay from the middle of a log is still bit-identical."""
        set_generator_words(self.rng, words)
        self._drawn = False

    def prefetch(self) -> None:
        """Draw now unless the next decision's noise is already drawn."""
        if not self._drawn:
            self.draw()

    def build(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """temperature * N(0, I) with fixed entries set; returns the internal buffer (reused next call)."""
        self.prefetch()
        self._drawn = False
        n = self.normalizer
        for e in self.entries:  # each entry normalized with its own columns' statistics
            v = values[e.source] if e.offset is None else values[e.source] - values[e.offset]
            self.buffer[:, e.rows, e.cols] = (v - n.mean[e.cols]) / n.std[e.cols]
        return self.buffer


_MASK64 = (1 << 64) - 1


def generator_words(rng: np.random.Generator) -> tuple[int, ...]:
    """A PCG64 generator's full state as six unsigned 64-bit words (a message field can carry them):
    state hi, state lo, increment hi, increment lo, has_uint32, uinteger."""
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise ValueError(f"generator {st['bit_generator']} cannot be recorded; the priors use PCG64")
    state, inc = st["state"]["state"], st["state"]["inc"]
    return (state >> 64, state & _MASK64, inc >> 64, inc & _MASK64, int(st["has_uint32"]), int(st["uinteger"]))


def set_generator_words(rng: np.random.Generator, words) -> None:
    """Inverse of `generator_words`."""
    w = [int(v) for v in words]
    if len(w) != 6:
        raise ValueError(f"a recorded generator state has 6 words, got {len(w)}")
    rng.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
                               "has_uint32": w[4], "uinteger": w[5]}

"""Model contract: the `.json` manifest beside every `.onnx` (docs/interfaces.md).

Training writes the manifest with `save_manifest`; the runtime opens models only
through `load_model`, which checks the manifest against the real file so that a
stale export, a wrong layout or a corrupt download is refused at start-up with a
message naming the field and the fix, instead of producing garbage actions.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dnk_planner.core.onnx_runtime import ORT_DTYPES, OnnxModel, create_session

FORMAT_VERSION = 1


class ModelContractError(ValueError):
    """A model file or manifest does not honour the contract; `field` names the culprit.

    Raised as ModelContractError(field, problem, fix). Callers that only have a
    ready-made sentence (e.g. a front end refusing a task/role) may pass just that.
    """

    def __init__(self, field: str, problem: str | None = None, fix: str | None = None) -> None:
        self.field = field if problem is not None else "model"
        self.problem = problem if problem is not None else field
        self.fix = fix or ""
        super().__init__(field if problem is None else f"{field}: {problem}. Fix: {fix}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    name: str = Field(min_length=1, description="Column name, e.g. 'obs', 'ee_position'.")
    dim: int = Field(ge=1, description="Number of scalar entries in this column.")


class FixedSpec(_Strict):
    column: str = Field(description="Column whose entries the context fixes.")
    rows: Literal["first", "all"] = Field(description="'first' = row 0 only, 'all' = every row.")
    source: str = Field(min_length=1, description="Context key the values come from.")


class RelativeSpec(_Strict):
    column: str = Field(description="Column the model sees as offsets (every row, fixed or generated).")
    source: str = Field(min_length=1, description="Context key subtracted from it (a fixed source of an absolute "
                        "column of the same dim): model value = raw value - context[source], same units.")


class ActionSpec(_Strict):
    column: str = Field(description="Column holding the executed action.")
    row: int = Field(ge=0, description="Row of the executed action (0 = current step).")


class NormalizerSpec(_Strict):
    mean: list[float] = Field(description="Per-entry mean, length D (raw units).")
    std: list[float] = Field(description="Per-entry std, length D, > 0 (raw units).")

    @field_validator("mean")
    @classmethod
    def _finite_mean(cls, v: list[float]) -> list[float]:
        if not all(math.isfinite(x) for x in v):
            raise ValueError("mean must be finite")
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: list[float]) -> list[float]:
        if not all(math.isfinite(x) and x > 0 for x in v):
            raise ValueError("std must be finite and > 0 (clip tiny stds at export)")
        return v


class TensorSpec(_Strict):
    name: str = Field(min_length=1, description="ONNX input/output name.")
    shape: list[int | None] = Field(description="Shape; null = dynamic (the batch dimension).")
    dtype: str = Field(default="float32", description="numpy dtype name, e.g. 'float32'.")


# Required I/O per role: name -> shape template ('H', 'D', column name for its dim, or None).
_ROLE_IO: dict[str, tuple[dict[str, tuple], dict[str, tuple]]] = {
    "student": ({"prior": (None, "H", "D")}, {"trajectory": (None, "H", "D")}),
    # one step of the teacher's deterministic reverse process, x_t -> x_{t-1}; run denoising_steps times
    "teacher": ({"prior": (None, "H", "D"), "step": (None,)}, {"trajectory": (None, "H", "D")}),
    "classifier": ({"trajectory": (None, "H", "D")}, {"value": (None,)}),
    "critic": ({"obs": (None, "col:obs"), "act": (None, "col:action")}, {"q": (None,)}),
}


class ModelManifest(_Strict):
    """Everything the runtime needs to use a model without reading training code."""

    format_version: int = Field(description=f"Manifest format; this runtime reads {FORMAT_VERSION}.")
    model_id: str = Field(min_length=1, description="Unique model name, e.g. 'arm-primitives-v1'.")
    role: Literal["student", "teacher", "critic", "classifier"] = Field(
        description="student: one-step generator; teacher: one denoising step the planner runs denoising_steps "
        "times (to compare policies through the same planner); critic / classifier: selectors.")
    task: Literal["arm", "locomotion"]
    horizon: int = Field(ge=1, le=4096, description="H, trajectory steps.")
    columns: list[ColumnSpec] = Field(min_length=1, description="Row layout; D = sum of dims.")
    fixed: list[FixedSpec] = Field(default_factory=list)
    relative: list[RelativeSpec] = Field(
        default_factory=list, description="Columns planned as offsets from a context value (the arm: joints "
        "relative to the measured ones, so a normalized error is small in rad); the planner adds the value back.")
    action: ActionSpec
    row_period_s: float | None = Field(
        None, gt=0.0, le=10.0, description="Time between trajectory rows, s (the arm's plans: 0.05 = 20 Hz). A node "
        "running at another rate samples the plan at its own period; None: rows are one control period apart.")
    prior_temperature: float | None = Field(
        None, ge=0.0, le=2.0, description="The prior temperature this model is run at unless the node's "
        "`temperature` parameter overrides it (normalized units): a model's candidates spread differently per "
        "temperature, so the value is chosen per model (the arm student: by the offline screen). None: the "
        "planner's default.")
    denoising_steps: int | None = Field(
        None, ge=1, le=1000, description="role 'teacher' only: K, the steps t = K-1 .. 0 the planner runs the model "
        "for (its input `step` holds t); null for every other role.")
    normalizer: NormalizerSpec
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    opset: int = Field(ge=1, description="Default-domain opset the .onnx imports.")
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 hex of the .onnx bytes.")
    provenance: dict[str, str] = Field(
        default_factory=dict, description="dataset, teacher, config, created, method, ..."
    )

    @property
    def dim(self) -> int:
        """D: entries per trajectory row."""
        return sum(c.dim for c in self.columns)

    @property
    def column_slices(self) -> dict[str, slice]:
        """Column name -> slice into a row."""
        out, start = {}, 0
        for c in self.columns:
            out[c.name] = slice(start, start + c.dim)
            start += c.dim
        return out

    def column_dim(self, name: str) -> int:
        return next(c.dim for c in self.columns if c.name == name)

    @model_validator(mode="after")
    def _consistent(self) -> ModelManifest:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(
                f"format_version: {self.format_version} unsupported; this runtime reads "
                f"{FORMAT_VERSION} (re-export with the current dnk_training)"
            )
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"columns: duplicate names in {names}")
        d = self.dim
        for key in ("mean", "std"):
            n = len(getattr(self.normalizer, key))
            if n != d:
                raise ValueError(f"normalizer.{key}: length {n} != D={d} (sum of column dims)")
        for i, f in enumerate(self.fixed):
            if f.column not in names:
                raise ValueError(f"fixed.{i}.column: {f.column!r} not in columns {names}")
        if self.action.column not in names:
            raise ValueError(f"action.column: {self.action.column!r} not in columns {names}")
        self._check_relative(names)
        if self.action.row >= self.horizon:
            raise ValueError(f"action.row: {self.action.row} >= horizon {self.horizon}")
        if (self.role == "teacher") != (self.denoising_steps is not None):
            raise ValueError(f"denoising_steps: {self.denoising_steps!r} for role {self.role!r}; a teacher needs its "
                             "step count K, every other role null")
        self._check_role_io()
        return self

    def _check_relative(self, names: list[str]) -> None:
        relative = [r.column for r in self.relative]
        if len(set(relative)) != len(relative):
            raise ValueError(f"relative: a column appears twice in {relative}")
        for i, r in enumerate(self.relative):
            if r.column not in names:
                raise ValueError(f"relative.{i}.column: {r.column!r} not in columns {names}")
            refs = [f.column for f in self.fixed if f.source == r.source and f.column not in relative]
            if not refs:
                raise ValueError(f"relative.{i}.source: {r.source!r} is not the source of a fixed absolute column "
                                 "(the reference must reach the model as it is)")
            if self.column_dim(refs[0]) != self.column_dim(r.column):
                raise ValueError(f"relative.{i}: column {r.column!r} has dim {self.column_dim(r.column)}, its "
                                 f"reference {r.source!r} dim {self.column_dim(refs[0])}")

    def _expected_dim(self, token: object) -> int | None:
        if token == "H":
            return self.horizon
        if token == "D":
            return self.dim
        if token == "col:obs":
            return self.column_dim("obs") if any(c.name == "obs" for c in self.columns) else -1
        if token == "col:action":
            return self.column_dim(self.action.column)
        return None

    def _check_role_io(self) -> None:
        req_in, req_out = _ROLE_IO[self.role]
        for kind, required, specs in (("inputs", req_in, self.inputs), ("outputs", req_out, self.outputs)):
            got = {t.name: t for t in specs}
            if set(got) != set(required):
                raise ValueError(
                    f"{kind}: role {self.role!r} needs names {sorted(required)}, got {sorted(got)}"
                )
            for name, template in required.items():
                spec = got[name]
                if len(spec.shape) != len(template) or spec.shape[0] is not None:
                    raise ValueError(
                        f"{kind}.{name}.shape: {spec.shape} expected rank {len(template)} "
                        f"with a dynamic (null) batch dimension first"
                    )
                for axis, token in enumerate(template[1:], start=1):
                    want = self._expected_dim(token)
                    if want == -1:  # critic without an 'obs' column: only require a fixed size
                        if spec.shape[axis] is None:
                            raise ValueError(f"{kind}.{name}.shape: axis {axis} must be fixed")
                    elif spec.shape[axis] != want:
                        raise ValueError(
                            f"{kind}.{name}.shape: axis {axis} is {spec.shape[axis]}, expected {want} "
                            f"({token} from horizon/columns)"
                        )
                if spec.dtype != "float32":
                    raise ValueError(f"{kind}.{name}.dtype: {spec.dtype!r}, but the runtime feeds float32")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed (model files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_manifest(manifest: ModelManifest, path: str | Path) -> Path:
    """Write the manifest as JSON beside its .onnx (`x.onnx` -> `x.json`)."""
    path = Path(path).with_suffix(".json")
    path.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    return path


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix not in (".onnx", ".json"):
        raise ModelContractError(
            "path", f"{path} is neither .onnx nor .json", "pass the model's .onnx or its .json manifest"
        )
    return path.with_suffix(".onnx"), path.with_suffix(".json")


MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few kB; this bounds what configure reads


def read_manifest(path: str | Path) -> ModelManifest:
    """Parse and self-validate a manifest (no .onnx needed)."""
    _, json_path = _paths(path)
    if not json_path.is_file():
        raise ModelContractError(
            "manifest", f"{json_path} not found",
            "export the model with its manifest (dnk_planner.core.manifest.save_manifest) beside the .onnx",
        )
    size = json_path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ModelContractError("manifest", f"{json_path} is {size} bytes, more than a manifest can be "
                                 f"({MAX_MANIFEST_BYTES})", "re-export it")
    try:
        raw = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelContractError("manifest", f"{json_path} is not valid JSON ({e})", "re-export it") from e
    except RecursionError as e:
        raise ModelContractError("manifest", f"{json_path} is nested too deeply to be a manifest", "re-export it") from e
    if not isinstance(raw, dict):
        raise ModelContractError("manifest", f"{json_path} is not a JSON object", "re-export it")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ModelContractError(
            "format_version", f"{raw.get('format_version')!r} is not supported (need {FORMAT_VERSION})",
            "re-export the model with the current dnk_training exporter",
        )
    try:
        return ModelManifest.model_validate(raw)
    except ValidationError as e:
        raise _contract_error(e) from e


def _contract_error(e: ValidationError) -> ModelContractError:
    """First pydantic error -> ModelContractError; model-level messages start with 'field: '."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if not loc and ": " in msg:
        loc, msg = msg.split(": ", 1)
    return ModelContractError(
        loc or "manifest", msg, "correct the manifest (or re-export) so it matches docs/interfaces.md"
    )


def onnx_opsets(path: str | Path) -> dict[str, int]:
    """Read ModelProto.opset_import (field 8) from the raw protobuf bytes.

    A tiny wire-format reader so the runtime does not depend on the `onnx`
    package (the robot image carries only onnxruntime). Raises ValueError on
    malformed bytes.
    """
    data = Path(path).read_bytes()

    def varint(buf: bytes, i: int) -> tuple[int, int]:
        shift = result = 0
        while True:
            if i >= len(buf):
                raise ValueError("truncated varint")
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, i
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def fields(buf: bytes):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            num, wire = key >> 3, key & 7
            if wire == 0:
                val, i = varint(buf, i)
            elif wire == 2:
                n, i = varint(buf, i)
                if i + n > len(buf):
                    raise ValueError("truncated field")
                val, i = buf[i:i + n], i + n
            elif wire == 1:
                val, i = buf[i:i + 8], i + 8
            elif wire == 5:
                val, i = buf[i:i + 4], i + 4
            else:
                raise ValueError(f"unsupported wire type {wire}")
            yield num, wire, val

    opsets: dict[str, int] = {}
    for num, wire, val in fields(data):
        if num == 8 and wire == 2:
            domain, version = "", None
            for n2, w2, v2 in fields(val):
                if n2 == 1 and w2 == 2:
                    domain = v2.decode()
                elif n2 == 2 and w2 == 0:
                    version = v2
            if version is not None:
                opsets["" if domain == "ai.onnx" else domain] = version
    return opsets


def _dims_match(declared: list[int | None], actual: list) -> bool:
    """Manifest null must be dynamic in the file; a fixed manifest dim must match or be dynamic."""
    if len(declared) != len(actual):
        return False
    for want, got in zip(declared, actual):
        dynamic = not isinstance(got, int)
        if want is None and not dynamic:
            return False
        if want is not None and not dynamic and got != want:
            return False
    return True


def _check_io(kind: str, specs: list[TensorSpec], nodes: list) -> None:
    actual = {n.name: n for n in nodes}
    declared = {s.name for s in specs}
    if set(actual) != declared:
        raise ModelContractError(
            kind, f"manifest names {sorted(declared)} but the .onnx has {sorted(actual)}",
            "rename the graph's inputs/outputs at export or fix the manifest",
        )
    for s in specs:
        node = actual[s.name]
        dtype = ORT_DTYPES.get(node.type, node.type)
        if dtype != s.dtype:
            raise ModelContractError(
                f"{kind}.{s.name}.dtype", f"manifest says {s.dtype} but the .onnx has {dtype}",
                "export in float32",
            )
        if not _dims_match(s.shape, list(node.shape)):
            raise ModelContractError(
                f"{kind}.{s.name}.shape", f"manifest says {s.shape} but the .onnx has {list(node.shape)}",
                "export with a dynamic batch axis (dynamic_axes) and the manifest's horizon/dims",
            )


def load_model(path: str | Path, provider: str = "auto", threads: int = 1) -> OnnxModel:
    """Open a model by its .onnx or .json after checking the manifest against the file."""
    onnx_path, _ = _paths(path)
    if not onnx_path.is_file():
        raise ModelContractError(
            "onnx file", f"{onnx_path} not found", "copy the .onnx beside its .json manifest"
        )
    manifest = read_manifest(path)
    digest = sha256_file(onnx_path)
    if digest != manifest.onnx_sha256:
        raise ModelContractError(
            "onnx_sha256", f"manifest has {manifest.onnx_sha256[:12]}... but {onnx_path.name} hashes to "
            f"{digest[:12]}...", "the .onnx and .json come from different exports: re-export both together",
        )
    if onnx_path.stat().st_size == 0:
        raise ModelContractError("onnx file", f"{onnx_path} is empty (0 bytes)",
                                 "copy the complete .onnx again (an interrupted copy or download leaves this)")
    try:
        opsets = onnx_opsets(onnx_path)
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelContractError("onnx file", f"{onnx_path} is not a valid ONNX protobuf ({e})",
                                 "re-export the model") from e
    if "" not in opsets:
        raise ModelContractError("onnx file", f"{onnx_path} imports no default-domain opset: not an ONNX model",
                                 "re-export the model")
    if opsets.get("") != manifest.opset:
        raise ModelContractError(
            "opset", f"manifest says {manifest.opset} but the .onnx imports {opsets.get('')}",
            "write the exporter's opset into the manifest",
        )
    try:
        session = create_session(onnx_path, provider=provider, threads=threads)
    except ValueError:
        raise  # provider / threads errors are already explicit
    except Exception as e:  # onnxruntime raises its own exception types for bad graphs
        raise ModelContractError("onnx file", f"onnxruntime cannot load {onnx_path} ({e})",
                                 "re-export the model; check the file is complete") from e
    _check_io("inputs", manifest.inputs, session.get_inputs())
    _check_io("outputs", manifest.outputs, session.get_outputs())
    return OnnxModel(session, manifest, onnx_path)

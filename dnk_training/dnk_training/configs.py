"""Pydantic configs for the training pipeline, loaded from ``config/<task>.yaml`` + a preset.

A task YAML holds a ``base`` config and named ``presets`` (``small``: CPU minutes, ``paper``:
the published setting) whose keys override the base, so the two settings differ only where
the YAML says so. The trajectory layout uses the manifest's field names (docs/interfaces.md)
so the same object can be written into exported manifests.
"""
from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dnk_training.eval.metrics import env_family

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
NON_TASK_CONFIGS = {"distill", "eval", "arm_demos"}  # distillation and evaluation scale (every task); the arm demos


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Column(_Strict):
    name: str = Field(description="column name, e.g. 'obs' or 'act'")
    dim: int = Field(gt=0, description="number of entries of this column in one row")


class FixedEntry(_Strict):
    column: str = Field(description="column whose entries the context fixes")
    rows: Literal["first", "all"] = Field(description="'first': row 0 only; 'all': every row")
    source: str = Field(description="context key that supplies the values")


class Relative(_Strict):
    column: str = Field(description="column the model sees as offsets from a context value (every row)")
    source: str = Field(description="context key subtracted from it; a fixed source of an absolute column")


class ActionSpec(_Strict):
    column: str = Field(description="column holding the executed action")
    row: int = Field(ge=0, description="row of the executed action (0 = first step)")


class LayoutConfig(_Strict):
    """Row layout of a trajectory tensor (H, D); same names as the model manifest."""

    columns: list[Column]
    fixed: list[FixedEntry]
    relative: list[Relative] = Field(default_factory=list, description="columns trained as offsets (the manifest's "
                                     "`relative`: model value = raw value - context[source])")
    action: ActionSpec

    @property
    def dim(self) -> int:
        return sum(c.dim for c in self.columns)

    def column_slice(self, name: str) -> slice:
        start = 0
        for c in self.columns:
            if c.name == name:
                return slice(start, start + c.dim)
            start += c.dim
        raise ValueError(f"column '{name}' is not in the layout {[c.name for c in self.columns]}")

    @model_validator(mode="after")
    def _columns_exist(self) -> "LayoutConfig":
        names = {c.name for c in self.columns}
        for f in self.fixed:
            if f.column not in names:
                raise ValueError(f"fixed.column '{f.column}' is not one of the columns {sorted(names)}")
        if self.action.column not in names:
            raise ValueError(f"action.column '{self.action.column}' is not one of the columns {sorted(names)}")
        for r in self.relative:
            if r.column not in names:
                raise ValueError(f"relative.column '{r.column}' is not one of the columns {sorted(names)}")
        return self


class DatasetConfig(_Strict):
    path: str = Field(description="D4RL-layout HDF5: a file name looked up on the dataset search path ($DNK_DATASETS, ./datasets, <workspace>/datasets) or a path; or a Minari dataset id with source='minari'")
    source: Literal["d4rl_hdf5", "minari", "arm_demos"] = Field(
        "d4rl_hdf5", description="loader to use (arm_demos: a `dnk-train gen-arm-demos` folder)")
    horizon: int = Field(gt=0, description="trajectory length H in env steps (4 halfcheetah, 32 walker2d)")
    discount: float = Field(0.997, gt=0, le=1, description="discount of the classifier's return-to-go target")
    terminal_penalty: float = Field(-100.0, description="reward added at terminal (failure) steps, return units")
    drop_short_episodes: bool = Field(
        True, description="skip episodes shorter than the horizon instead of raising an error"
    )
    window_stride: int = Field(
        1, ge=1, le=64, description="arm_demos: one window every N demonstration steps. Windows are held in "
        "memory (H x D float32 each, 9.9 kB for the arm): 8000 multimodal scenes at stride 1 need ~20 GB; "
        "neighbouring windows share H - N rows, so a stride drops near-duplicates first")

    @model_validator(mode="after")
    def _stride_for_arm_demos(self) -> "DatasetConfig":
        if self.window_stride != 1 and self.source != "arm_demos":
            raise ValueError(f"dataset.window_stride = {self.window_stride} applies to source 'arm_demos' only (this "
                             f"source is '{self.source}'). Fix: leave it at 1")
        return self


class TrainConfig(_Strict):
    steps: int = Field(gt=0, description="gradient steps")
    batch_size: int = Field(gt=0, description="windows (or transitions) per gradient step")
    lr: float = Field(gt=0, description="Adam learning rate")
    seed: int = Field(0, description="seed of weights, batch sampling and noise")
    log_every: int = Field(100, gt=0, description="steps between CSV log rows")
    ckpt_every: int = Field(1000, gt=0, description="steps between resumable checkpoints")
    keep_checkpoints: int = Field(2, gt=0, description="periodic checkpoints kept on disk")


class UNetConfig(_Strict):
    model_dim: int = Field(32, gt=0, description="channels of the first U-Net level")
    dim_mult: list[int] = Field(description="channel multiplier per level, e.g. [1, 4, 2]")
    kernel_size: int = Field(5, gt=0, description="temporal convolution kernel (odd), in steps")


class DiffusionConfig(_Strict):
    steps: int = Field(20, gt=0, description="diffusion steps K (20 locomotion, 30 arm)")
    beta_schedule: Literal["cosine", "linear"] = Field("cosine", description="noise schedule")
    clip_x0: float | None = Field(
        None, gt=0, description="clamp predicted x0 to +-clip_x0 (normalized units); null = off"
    )


class TeacherConfig(_Strict):
    unet: UNetConfig
    diffusion: DiffusionConfig = DiffusionConfig()
    first_action_weight: float = Field(10.0, gt=0, description="loss weight of the executed action entries")
    ema_decay: float = Field(0.995, ge=0, lt=1, description="EMA decay of the sampling weights per step")
    ema_start: int = Field(1000, ge=0, description="steps before EMA starts tracking (copies weights until then)")
    train: TrainConfig


class ClassifierConfig(_Strict):
    unet: UNetConfig
    train: TrainConfig


class IQLConfig(_Strict):
    hidden: list[int] = Field([256, 256], description="hidden layer widths of Q and V MLPs")
    expectile: float = Field(0.7, gt=0, lt=1, description="expectile tau of the V regression")
    discount: float = Field(0.99, gt=0, le=1, description="TD discount per env step")
    polyak: float = Field(0.005, gt=0, le=1, description="target-Q update rate per step")
    train: TrainConfig


class SamplingConfig(_Strict):
    num_candidates: int = Field(64, gt=0, description="candidates sampled per decision")
    temperature: float = Field(0.5, gt=0, description="prior scale tau: x_T = tau * eps")
    guidance_weight: float = Field(1e-4, ge=0, description="classifier-guidance weight w_cg")


# Env seeds for evaluation episodes start here so they never coincide with the seeds the
# offline datasets were collected with (0..469, see the datasets' README).
ENV_SEED_BASE = 1_000_000


class EvalConfig(_Strict):
    """One closed-loop evaluation setting; every method of a Table I run (and eval-teacher) shares it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_id: str = Field("HalfCheetah-v5", description="gymnasium MuJoCo env id (HalfCheetah-v5, Walker2d-v5)")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="evaluation seeds (runs); Table I std is over these")
    episodes: int = Field(5, ge=1, le=1000, description="episodes per seed")
    max_steps: int = Field(1000, ge=1, le=1000, description="control steps per episode at most (D4RL: 1000)")
    candidate_states: int = Field(4, ge=0, le=64, description="states whose candidates are stored for Fig. 4 (0 = none)")
    candidate_dataset: str | None = Field(
        None, description="D4RL-layout HDF5 whose evenly spaced observations are the Fig. 4 states (None: env rollout)")
    progress: bool = Field(True, description="show a tqdm bar over control steps")

    @field_validator("env_id")
    @classmethod
    def _known_env(cls, v: str) -> str:
        env_family(v)  # raises naming the supported envs
        return v

    def env_seed(self, seed: int, episode: int) -> int:
        """Seed of env.reset for one episode: distinct per (seed, episode), disjoint from dataset seeds."""
        return ENV_SEED_BASE + 1000 * seed + episode


class TaskConfig(_Strict):
    task: Literal["locomotion", "arm"] = Field(description="task family of the layout")
    name: str = Field(description="environment name, e.g. 'halfcheetah'")
    env_id: str | None = Field(None, description="gymnasium env of the task (HalfCheetah-v5, Walker2d-v5) that eval-teacher runs; none for the arm")
    layout: LayoutConfig
    dataset: DatasetConfig
    teacher: TeacherConfig
    classifier: ClassifierConfig | None = Field(None, description="return classifier (locomotion)")
    iql: IQLConfig | None = Field(None, description="IQL critic (locomotion)")
    sampling: SamplingConfig = SamplingConfig()
    heldout_frac: float = Field(0.1, ge=0.0, lt=1.0, description="arm: share of demo scenes (the last) held out")
    row_period_s: float | None = Field(
        None, gt=0.0, description="s between trajectory rows, written into the students' manifests (arm: 0.05)")
    prior_temperature: float | None = Field(
        None, ge=0.0, le=2.0, description="prior temperature the planner runs the exported students and teacher at, "
        "written into their manifests (arm: 1.5, chosen by the offline screen); none: the planner's default")

    @model_validator(mode="after")
    def _selectors_for_locomotion(self) -> "TaskConfig":
        if self.task == "locomotion" and (self.classifier is None or self.iql is None):
            raise ValueError("a locomotion task needs 'classifier' and 'iql' sections (its selectors)")
        return self


def _deep_update(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = _deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def check_key(model: type[BaseModel], dotted: str) -> None:
    """Refuse a ``--set`` key that is not a field of `model`, naming the valid ones at that level."""
    keys = dotted.split(".")
    node: type[BaseModel] = model
    for i, k in enumerate(keys):
        fields = node.model_fields
        where = ".".join(keys[:i]) or "the top level"
        if k not in fields:
            raise ValueError(f"--set {dotted}: '{k}' is not a field of {where}; valid: {', '.join(sorted(fields))}")
        annotation = fields[k].annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # an optional section
            annotation = next((a for a in typing.get_args(annotation)
                               if isinstance(a, type) and issubclass(a, BaseModel)), annotation)
        is_section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if i < len(keys) - 1 and not is_section:
            raise ValueError(f"--set {dotted}: '{'.'.join(keys[:i + 1])}' is a value, not a section")
        if is_section:
            node = annotation


def set_dotted(d: dict, dotted: str, value: object) -> None:
    """Apply a ``--set a.b.c=value`` override to a plain config dict (sections created as needed)."""
    keys = dotted.split(".")
    node = d
    for k in keys[:-1]:
        if node.get(k) is None:
            node[k] = {}
        if not isinstance(node[k], dict):
            raise ValueError(f"override '{dotted}': '{k}' is not a config section")
        node = node[k]
    node[keys[-1]] = value


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def load_preset_config(model: type[ConfigT], path: Path, preset: str, overrides: dict[str, object] | None = None) -> ConfigT:
    """A YAML of ``base`` + named ``presets``: base, then the preset's keys, then dotted overrides."""
    raw = yaml.safe_load(path.read_text())
    presets = raw.get("presets", {})
    if preset not in presets:
        raise ValueError(f"preset '{preset}' not in {path.name}; choose one of {sorted(presets)}")
    cfg = _deep_update(raw["base"], presets[preset] or {})
    for k, v in (overrides or {}).items():
        check_key(model, k)
        set_dotted(cfg, k, v)
    return model.model_validate(cfg)


def load_eval_config(preset: str = "small", overrides: dict[str, object] | None = None) -> EvalConfig:
    """config/eval.yaml (evaluation budgets: small, paper, smoke) with `preset` and dotted overrides."""
    return load_preset_config(EvalConfig, CONFIG_DIR / "eval.yaml", preset, overrides)


def load_task_config(task: str, preset: str = "small", overrides: dict[str, object] | None = None) -> TaskConfig:
    """Load ``task`` (a name in config/ or a YAML path), apply ``preset`` then dotted overrides."""
    path = Path(task) if task.endswith((".yaml", ".yml")) else CONFIG_DIR / f"{task}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem not in NON_TASK_CONFIGS)
        raise FileNotFoundError(f"task config '{task}' not found at {path}; known tasks: {known}")
    return load_preset_config(TaskConfig, path, preset, overrides)

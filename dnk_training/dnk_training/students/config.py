"""The distillation run's configuration: scale, the shared student sizes and each student's own
settings (loss weights included), loaded from config/distill.yaml with a preset and --set overrides.

Each student's resolved config is stored in its checkpoint, and `load_student` rebuilds from that,
so a checkpoint never depends on today's defaults.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dnk_training.configs import CONFIG_DIR, TrainConfig, load_preset_config
from dnk_training.students.common import StudentConfig
from dnk_training.students.consistency import ConsistencyConfig
from dnk_training.students.fdk import FDKConfig
from dnk_training.students.kdm import KDMConfig
from dnk_training.students.kdmf import KDMFConfig

MODELS = ("fdk", "kdm", "kdmf", "cd", "ct")
ModelName = Literal["fdk", "kdm", "kdmf", "cd", "ct"]
STUDENT_CONFIGS: dict[str, type[StudentConfig]] = {
    "fdk": FDKConfig, "kdm": KDMConfig, "kdmf": KDMFConfig, "cd": ConsistencyConfig, "ct": ConsistencyConfig}
DISTILL_YAML = CONFIG_DIR / "distill.yaml"


class DistillConfig(BaseModel):
    """Scale of one distillation run; every student gets the same architecture sizes and budget."""

    model_config = ConfigDict(extra="forbid")

    num_pairs: int = Field(ge=1, description="training pairs (paper: 500,000)")
    heldout_pairs: int = Field(ge=1, description="pairs from held-out episodes for fidelity metrics")
    heldout_frac: float = Field(0.1, gt=0, lt=1, description="fraction of episodes (the last ones) held out")
    chunk_size: int = Field(512, ge=1, description="pairs per resumable chunk")
    teacher_batch: int = Field(256, ge=1, description="priors per teacher call")
    sampler: Literal["ddpm", "ddim"] = Field(
        "ddim", description="teacher sampler of the pair targets: ddim (eta = 0, one target per prior, the default: "
        "an L2 student regresses to the mean of a stochastic sampler's targets) or ddpm (stochastic)")
    priors_per_context: int = Field(
        1, ge=1, description="pairs per context window, each with its own prior (pairs.PairsConfig.priors_per_context)")
    student: StudentConfig = Field(StudentConfig(), description="latent_dim m, MLP width and depth, shared by all")
    fdk: FDKConfig = Field(FDKConfig(), description="FDK (DNK) settings: rank r, gain network, loss weights")
    kdm: KDMConfig = Field(KDMConfig(), description="KDM settings (static Koopman matrix)")
    kdmf: KDMFConfig = Field(KDMFConfig(), description="KDM-F settings (eigen-factorized Koopman matrix)")
    cd: ConsistencyConfig = Field(ConsistencyConfig(), description="consistency distillation settings")
    ct: ConsistencyConfig = Field(ConsistencyConfig(), description="consistency training settings")
    match_params: bool = Field(
        True, description="give every student about FDK's trainable-parameter count by solving each other "
        "student's MLP width (student.hidden stays FDK's); off: every student uses student.hidden as is")
    train: TrainConfig

    @model_validator(mode="before")
    @classmethod
    def _shared_sizes(cls, data: Any) -> Any:
        """Write `student.*` into every student's section; a section may not set other sizes."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        shared = StudentConfig.model_validate(data.get("student", {})).model_dump()
        for name in MODELS:
            section = dict(data.get(name) or {})
            clash = {k for k in shared if k in section and section[k] != shared[k]}
            if clash:
                raise ValueError(f"{name}.{sorted(clash)[0]}: sizes are shared by every student for an equal "
                                 f"budget; set them once with student.{sorted(clash)[0]}=...")
            data[name] = {**section, **shared}
        return data

    @model_validator(mode="after")
    def _ct_curriculum(self) -> "DistillConfig":
        """CT's curriculum spans the run unless set (CleanDiffuser: curriculum_cycle = training iterations)."""
        if self.ct.curriculum_steps is None:
            self.ct = self.ct.model_copy(update={"curriculum_steps": self.train.steps})
        return self

    def student_config(self, model: str) -> StudentConfig:
        if model not in MODELS:
            raise ValueError(f"--model {model!r} unknown; choose one of {MODELS}")
        return getattr(self, model)


def load_distill_config(preset: str = "small", overrides: dict[str, object] | None = None) -> DistillConfig:
    """config/distill.yaml with `preset` and dotted overrides applied."""
    return load_preset_config(DistillConfig, DISTILL_YAML, preset, overrides)

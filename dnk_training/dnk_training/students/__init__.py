"""One-step students distilled from the DDPM teacher: FDK (DNK), KDM, KDM-F, CD, CT."""
from dnk_training.students.common import Student, locomotion_layout
from dnk_training.students.consistency import ConsistencyConfig, ConsistencyStudent, ddim_step
from dnk_training.students.fdk import FDKConfig, FDKStudent
from dnk_training.students.kdm import KDMConfig, KDMStudent
from dnk_training.students.kdmf import KDMFConfig, KDMFStudent

__all__ = [
    "ConsistencyConfig",
    "ConsistencyStudent",
    "FDKConfig",
    "FDKStudent",
    "KDMConfig",
    "KDMFConfig",
    "KDMFStudent",
    "KDMStudent",
    "Student",
    "ddim_step",
    "locomotion_layout",
]

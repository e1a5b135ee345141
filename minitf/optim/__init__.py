"""Optimizers, gradient clipping and learning-rate schedules."""
from .adam import Adam, AdamW
from .clip import clip_grad_norm, global_grad_norm
from .schedules import CosineSchedule, InverseSqrtSchedule, Schedule

__all__ = ["Adam", "AdamW", "clip_grad_norm", "global_grad_norm", "Schedule", "InverseSqrtSchedule",
           "CosineSchedule"]

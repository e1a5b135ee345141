"""Optimizers (torch.optim's structure and formulas), gradient clipping and learning-rate schedules."""
from .adam import Adam, AdamW
from .clip import clip_grad_norm, global_grad_norm
from .optimizer import Optimizer
from .schedules import CosineSchedule, InverseSqrtSchedule, Schedule

__all__ = ["Optimizer", "Adam", "AdamW", "clip_grad_norm", "global_grad_norm", "Schedule", "InverseSqrtSchedule",
           "CosineSchedule"]

"""Optimizers (torch.optim's structure and formulas), gradient clipping and learning-rate schedules."""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm, global_grad_norm
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .schedules import BudgetSchedule, CosineSchedule, InverseSqrtSchedule, Schedule
from .sgd import SGD

__all__ = ["Optimizer", "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "lr_scheduler",
           "clip_grad_norm", "global_grad_norm", "Schedule", "InverseSqrtSchedule", "CosineSchedule",
           "BudgetSchedule"]

"""Learning-rate schedulers with torch.optim.lr_scheduler's names, semantics and state dicts.

Call `scheduler.step()` after `optimizer.step()`. Construction applies epoch 0's rate
(`last_epoch` becomes 0); each step() moves to the next epoch (or batch, for OneCycleLR and
CyclicLR) and writes every parameter group's "lr". `get_last_lr()` lists the rates last set.
state_dict() holds every attribute but the optimizer (as torch's); load_state_dict() takes
minitf's or torch's.
"""
from .base import LRScheduler
from .basic import ConstantLR, ExponentialLR, LambdaLR, LinearLR, MultiStepLR, PolynomialLR, StepLR
from .compose import ChainedScheduler, SequentialLR
from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from .cyclic import CyclicLR, OneCycleLR
from .plateau import ReduceLROnPlateau

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
           "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "CyclicLR",
           "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"]

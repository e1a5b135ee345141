"""Learning-rate schedulers with torch.optim.lr_scheduler's names, semantics and state dicts.

Call `scheduler.step()` after `optimizer.step()`. Construction applies epoch 0's rate
(`last_epoch` becomes 0); each step() moves to the next epoch (or batch, for OneCycleLR and
CyclicLR) and writes every parameter group's "lr". `get_last_lr()` lists the rates last set.
"""
from .base import LRScheduler
from .basic import LambdaLR, MultiStepLR, StepLR
from .cyclic import OneCycleLR
from .plateau import ReduceLROnPlateau

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "OneCycleLR", "ReduceLROnPlateau"]

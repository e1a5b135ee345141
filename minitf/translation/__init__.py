"""The translation application on the minitf engine: training (Trainer, TrainConfig), checkpoints,
decoding (greedy, beam search), metrics and the Translator. `import minitf` does not load it."""
from ..serialization import CheckpointError
from .checkpoint import load_checkpoint, save_checkpoint
from .config import DEMO_CONFIG, PRESETS, Progress, TrainConfig
from .decode import beam_search, greedy_decode, translate_ids
from .metrics import bleu, chrf, exact_match
from .trainer import Trainer
from .translator import Translator

__all__ = ["beam_search", "greedy_decode", "translate_ids", "bleu", "chrf", "exact_match",
           "CheckpointError", "load_checkpoint", "save_checkpoint", "Translator",
           "DEMO_CONFIG", "PRESETS", "Progress", "TrainConfig", "Trainer"]

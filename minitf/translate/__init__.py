"""Translation tools: decoding (greedy, beam search), metrics, checkpoints, the Translator."""
from ..serialization import CheckpointError
from .checkpoint import load_checkpoint, save_checkpoint
from .decode import beam_search, greedy_decode, translate_ids
from .metrics import bleu, chrf, exact_match
from .translator import Translator

__all__ = ["beam_search", "greedy_decode", "translate_ids", "bleu", "chrf", "exact_match",
           "CheckpointError", "load_checkpoint", "save_checkpoint", "Translator"]

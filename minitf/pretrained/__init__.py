"""Pretrained models read from Hugging Face folders: a BERT-family encoder (:mod:`.bert`)."""
from .bert import load_bert

__all__ = ["load_bert"]

"""Pretrained models in Hugging Face's folder format, built on the engine: a BERT-family sentence encoder
(``load_bert``) and GPT-2 (``load_gpt2``). Nothing in the engine imports this package.

    model, tokenizer = minitf.pretrained.load_bert("path/to/all-MiniLM-L6-v2")  # model.encode(texts)
    model, tokenizer = minitf.pretrained.load_gpt2("path/to/gpt2")  # config.json, model.safetensors, tokenizer
"""
from .bert import load_bert
from .generation import generate, positions_from_mask
from .gpt2 import GPT2Cache, GPT2Config, GPT2LMHeadModel, GPT2Model
from .loading import load_gpt2

__all__ = ["load_bert", "load_gpt2", "GPT2Config", "GPT2Model", "GPT2LMHeadModel", "GPT2Cache", "generate",
           "positions_from_mask"]

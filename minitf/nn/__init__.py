"""Neural-network modules built from the explicit ops in minitf.functional."""
from .attention import KVCache, MultiHeadAttention
from .layers import Dropout, Embedding, FeedForward, LayerNorm, Linear
from .module import Module, ModuleList, Parameter
from .transformer import (DecoderLayer, EncoderLayer, Transformer, TransformerConfig,
                          sinusoidal_positions)

__all__ = [
    "Module", "ModuleList", "Parameter", "Linear", "Embedding", "LayerNorm", "Dropout", "FeedForward",
    "MultiHeadAttention", "KVCache", "EncoderLayer", "DecoderLayer", "Transformer", "TransformerConfig",
    "sinusoidal_positions",
]

"""Neural-network modules built from the explicit ops in minitf.functional."""
from typing import Any

from . import init, utils
from .activation import ELU, GELU, Flatten, Identity, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from .attention import FusedMultiHeadAttention, KVCache
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, ConvTranspose2d, MaxPool2d
from .layers import Dropout, Embedding, FeedForward, GlorotLinear, LayerNorm, Linear, ScaledEmbedding
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
                   SmoothL1Loss)
from .module import Module, Parameter
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, RMSNorm
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .torch_attention import MultiheadAttention
from .torch_transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                                TransformerEncoderLayer)
from .transformer import (MODEL_LIMITS, DecoderLayer, EncoderLayer, Seq2SeqTransformer, TransformerConfig,
                          parameter_shapes, sinusoidal_positions, tied_names)

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
    "Linear", "Embedding", "LayerNorm", "Dropout", "FeedForward", "GlorotLinear", "ScaledEmbedding",
    "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
    "BatchNorm1d", "BatchNorm2d", "GroupNorm", "RMSNorm",
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNNCellBase",
    "Identity", "Flatten", "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "LeakyReLU", "ELU",
    "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerDecoder", "Transformer",
    "FusedMultiHeadAttention", "KVCache", "EncoderLayer", "DecoderLayer", "Seq2SeqTransformer", "TransformerConfig",
    "sinusoidal_positions", "parameter_shapes", "tied_names", "MODEL_LIMITS", "init", "utils",
]

_RENAMED = {"MultiHeadAttention": "FusedMultiHeadAttention (minitf's fused attention with a key/value cache); "
                                  "PyTorch's module is nn.MultiheadAttention"}


def __getattr__(name: str) -> Any:
    """An old name that differs from a current one only in case is an error that says where it went."""
    if name in _RENAMED:
        raise AttributeError(f"minitf.nn.{name} was renamed {_RENAMED[name]}")
    raise AttributeError(f"module 'minitf.nn' has no attribute {name!r}")

"""The explicit ops of the Transformer, each one fused node with an analytic backward.

    import minitf.functional as F
"""
from .activations import dropout, gelu, relu
from .attention import scaled_dot_product_attention
from .linear import embedding, feed_forward, linear
from .loss import cross_entropy
from .norm import layer_norm
from .softmax import log_softmax, softmax

__all__ = [
    "relu", "gelu", "dropout", "softmax", "log_softmax", "layer_norm", "linear", "feed_forward",
    "embedding", "cross_entropy", "scaled_dot_product_attention",
]

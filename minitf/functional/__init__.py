"""The explicit ops of the Transformer and of CNNs, each one fused node with an analytic backward.

    import minitf.functional as F
"""
from .activations import dropout, gelu, relu
from .attention import scaled_dot_product_attention
from .conv import conv1d, conv2d, conv_transpose2d
from .linear import embedding, feed_forward, linear
from .loss import cross_entropy
from .norm import layer_norm
from .norm_batch import batch_norm, group_norm
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .softmax import log_softmax, softmax

__all__ = [
    "relu", "gelu", "dropout", "softmax", "log_softmax", "layer_norm", "linear", "feed_forward",
    "embedding", "cross_entropy", "scaled_dot_product_attention",
    "conv1d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "batch_norm", "group_norm",
]

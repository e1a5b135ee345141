"""The explicit ops of the Transformer, each one fused node with an analytic backward.

    import minitf.functional as F
"""
from .activations import dropout, elu, gelu, leaky_relu, log_sigmoid, relu, sigmoid, silu, softplus, tanh
from .attention import scaled_dot_product_attention
from .linear import embedding, feed_forward, linear
from .loss import cross_entropy
from .loss_probability import binary_cross_entropy, binary_cross_entropy_with_logits, kl_div, nll_loss
from .loss_regression import l1_loss, mse_loss, smooth_l1_loss
from .norm import layer_norm, rms_norm
from .similarity import cosine_similarity, normalize
from .softmax import log_softmax, softmax

__all__ = [
    "relu", "gelu", "dropout", "softmax", "log_softmax", "layer_norm", "linear", "feed_forward",
    "embedding", "cross_entropy", "scaled_dot_product_attention",
    "silu", "softplus", "leaky_relu", "elu", "sigmoid", "tanh", "log_sigmoid", "rms_norm",
    "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "cosine_similarity", "normalize",
]

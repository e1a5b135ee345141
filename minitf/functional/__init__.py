"""The explicit ops of the Transformer and of CNNs, each one fused node with an analytic backward.

    import minitf.functional as F
"""
from .activations import dropout, elu, gelu, leaky_relu, log_sigmoid, relu, sigmoid, silu, softplus, tanh
from ..autograd import one_hot  # the same function as minitf.one_hot (torch has it in F)
from .attention import scaled_dot_product_attention
from .conv import conv1d, conv2d, conv_transpose2d
from .linear import embedding, feed_forward, linear
from .loss import cross_entropy
from .loss_probability import binary_cross_entropy, binary_cross_entropy_with_logits, kl_div, nll_loss
from .loss_regression import l1_loss, mse_loss, smooth_l1_loss
from .norm import dropout_add_layer_norm, layer_norm, rms_norm
from .norm_batch import batch_norm, group_norm
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .recurrent import recurrent_layer
from .similarity import cosine_similarity, normalize
from .softmax import log_softmax, softmax
from ..autograd import Tensor
from ..autograd.op_table import Op, bind_methods

# Rows of the table of ops (minitf/autograd/op_table.py) for the fused ops that Tensor has as
# methods and minitf exports: autograd may not import this layer (tests/test_structure.py), so
# these rows live here and this package binds them; minitf exports them from FUNCTIONAL_OPS.
FUNCTIONAL_OPS = (Op("softmax", softmax), Op("log_softmax", log_softmax))
bind_methods(Tensor, FUNCTIONAL_OPS)

__all__ = [
    "relu", "gelu", "dropout", "softmax", "log_softmax", "layer_norm", "dropout_add_layer_norm", "linear", "feed_forward",
    "embedding", "cross_entropy", "scaled_dot_product_attention",
    "conv1d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "batch_norm", "group_norm",
    "silu", "softplus", "leaky_relu", "elu", "sigmoid", "tanh", "log_sigmoid", "rms_norm",
    "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "cosine_similarity", "normalize", "one_hot", "recurrent_layer",
]

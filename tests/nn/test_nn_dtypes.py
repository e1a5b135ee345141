"""One dtype rule for the layers and ops with parameters, as PyTorch's: a floating input whose
dtype differs from the parameters' raises a TypeError naming the layer (or op) and both dtypes,
instead of silently computing in the wider dtype."""
import re

import numpy as np
import pytest

import minitf.functional as F
from minitf import nn
from minitf.autograd import Tensor

OTHER = {np.float32: np.float64, np.float64: np.float32}

# name: (layer, input shape)
LAYERS = {
    "Linear": (lambda: nn.Linear(4, 3), (2, 4)),
    "GlorotLinear": (lambda: nn.GlorotLinear(4, 3), (2, 4)),
    "LayerNorm": (lambda: nn.LayerNorm(4), (2, 4)),
    "FeedForward": (lambda: nn.FeedForward(4, 8), (2, 3, 4)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4), (3, 4)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(2), (3, 2, 2, 2)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), (2, 4, 3)),
    "RMSNorm": (lambda: nn.RMSNorm(4), (2, 4)),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3), (1, 2, 5)),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3), (1, 2, 5, 5)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 3), (1, 2, 4, 4)),
    "FusedMultiHeadAttention": (lambda: nn.FusedMultiHeadAttention(4, 2), (2, 3, 4)),
}


def rand(shape, dtype):
    return Tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_with_weights_refuses_an_input_of_the_other_float_dtype(name, dtype):
    make, shape = LAYERS[name]
    layer = make().to(dtype)
    assert layer(rand(shape, dtype)).dtype == dtype  # its own dtype works
    other = np.dtype(OTHER[dtype])
    with pytest.raises(TypeError, match=rf"^{name}: input dtype {other} does not match "
                                        rf"(weight|in_proj_weight) dtype {np.dtype(dtype)}; "
                                        rf"convert with x.astype\(np.{np.dtype(dtype)}\) or the layer"):
        layer(rand(shape, other))


def test_attention_refuses_a_memory_of_the_other_dtype():
    attention = nn.FusedMultiHeadAttention(4, 2)
    with pytest.raises(TypeError, match="FusedMultiHeadAttention: input dtype float64 does not match"):
        attention(rand((2, 3, 4), np.float32), memory=rand((2, 5, 4), np.float64))


def t(shape, dtype=np.float32):
    return rand(shape, dtype)


# name: call with an input x of a given dtype and float32 parameters
OPS = {
    "linear": lambda x: F.linear(x, t((3, 4)), t((3,))),
    "feed_forward (first layer)": lambda x: F.feed_forward(x, t((8, 4)), t((8,)), t((4, 8)), t((4,))),
    "layer_norm": lambda x: F.layer_norm(x, t((4,)), t((4,))),
    "dropout_add_layer_norm": lambda x: F.dropout_add_layer_norm(x, x, t((4,)), t((4,)), p=0.1),
    "rms_norm": lambda x: F.rms_norm(x, 4, t((4,))),
    "batch_norm": lambda x: F.batch_norm(x, None, None, t((2,)), t((2,)), training=True),
    "group_norm": lambda x: F.group_norm(x, 2, t((2,)), t((2,))),
    "conv1d": lambda x: F.conv1d(x, t((3, 2, 1))),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_functional_ops_refuse_an_input_of_another_dtype_than_their_parameters(op):
    call = OPS[op]
    assert call(t((3, 2, 4))).dtype == np.float32
    with pytest.raises(TypeError, match=rf"^{re.escape(op)}: input dtype float64 does not match weight dtype float32"):
        call(t((3, 2, 4), np.float64))


def test_a_bias_of_another_dtype_than_the_weight_is_refused():
    with pytest.raises(TypeError, match="linear: bias dtype float64 does not match weight dtype float32"):
        F.linear(t((2, 4)), t((3, 4)), t((3,), np.float64))
    with pytest.raises(TypeError, match="linear: expects a floating input, got dtype int64"):
        F.linear(Tensor(np.ones((2, 4), np.int64)), t((3, 4)))


def test_float16_layers_take_float16_input():
    layer = nn.Linear(4, 3).half()
    assert layer(rand((2, 4), np.float16)).dtype == np.float16

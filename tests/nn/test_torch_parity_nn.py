"""minitf.nn modules against torch.nn: state-dict keys, shapes and order, loading PyTorch's state
dicts (tied weights included) and the same outputs. Skipped when PyTorch is not installed."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

import minitf
from minitf import Tensor, nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def cnn(lib):
    return lib.Sequential(OrderedDict(
        conv1=lib.Conv2d(1, 4, 3, padding=1), bn1=lib.BatchNorm2d(4), act1=lib.ReLU(),
        pool=lib.MaxPool2d(2), conv2=lib.Conv2d(4, 6, 3, groups=2), gn=lib.GroupNorm(2, 6), act2=lib.SiLU(),
        avg=lib.AdaptiveAvgPool2d(2), flat=lib.Flatten(), drop=lib.Dropout(0.5),
        head=lib.Sequential(lib.Linear(24, 10), lib.GELU(), lib.Linear(10, 3), lib.LogSoftmax(dim=1))))


def torch_state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def test_same_keys_shapes_and_order_as_torch():
    ours, theirs = cnn(nn), cnn(tnn)
    mine, ref = ours.state_dict(), torch_state(theirs)
    assert list(mine) == list(ref)
    assert all(mine[k].shape == ref[k].shape and mine[k].dtype == ref[k].dtype for k in ref)


@pytest.mark.parametrize("make", [
    lambda lib: lib.Conv1d(4, 6, 3, groups=2), lambda lib: lib.ConvTranspose2d(4, 6, 3, groups=2),
    lambda lib: lib.BatchNorm1d(5, affine=False), lambda lib: lib.RMSNorm([3, 4]),
    lambda lib: lib.ModuleDict({"a": lib.Linear(2, 3), "b": lib.ModuleList([lib.Embedding(5, 2)])}),
    lambda lib: lib.ParameterList([lib.Parameter(torch.zeros(2) if lib is tnn else np.zeros(2, np.float32))]),
    lambda lib: lib.ParameterDict({"s": lib.Parameter(torch.zeros(2) if lib is tnn else np.zeros(2, np.float32))}),
])
def test_more_modules_have_torchs_keys(make):
    mine, ref = make(nn).state_dict(), torch_state(make(tnn))
    assert list(mine) == list(ref) and all(mine[k].shape == ref[k].shape for k in ref)


def test_torch_state_dict_loads_and_gives_the_same_outputs():
    torch.manual_seed(0)
    theirs = cnn(tnn).double()
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8))
    theirs.train()
    theirs(torch.tensor(x))  # running statistics that are not the defaults
    ours = cnn(nn).double()
    ours.load_state_dict(torch_state(theirs))
    for mode in ("eval", "train"):
        getattr(ours, mode)(), getattr(theirs, mode)()
        ours.drop.p = theirs.drop.p = 0.0
        out = ours(Tensor(x))
        ref = theirs(torch.tensor(x))
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    # the training pass updated both models' running statistics the same way
    for k, v in torch_state(theirs).items():
        np.testing.assert_allclose(ours.state_dict()[k], v, rtol=1e-10, atol=1e-12, err_msg=k)
    # and our state dict loads back into PyTorch
    back = cnn(tnn).double()
    back.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})


def test_torch_lists_tied_weights_twice_and_we_accept_it():
    class Tied(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embed = tnn.Embedding(7, 4)
            self.head = tnn.Linear(4, 7, bias=False)
            self.head.weight = self.embed.weight

    class OurTied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(7, 4)
            self.head = nn.Linear(4, 7, bias=False)
            self.head.weight = self.embed.weight

    ref = torch_state(Tied())
    assert list(ref) == ["embed.weight", "head.weight"]
    ours = OurTied()
    ours.load_state_dict(ref)
    np.testing.assert_array_equal(ours.head.weight.numpy(), ref["embed.weight"])


def test_float64_torch_state_into_float32_model_needs_cast():
    theirs = tnn.Linear(3, 2).double()
    ours = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="'weight' is float64 in the state but float32"):
        ours.load_state_dict(torch_state(theirs))
    ours.load_state_dict(torch_state(theirs), cast=True)
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy().astype(np.float32))


@pytest.mark.parametrize("name, param", [("linear", None), ("tanh", None), ("relu", None),
                                         ("leaky_relu", None), ("leaky_relu", 0.3), ("selu", None)])
def test_calculate_gain_matches_torch(name, param):
    assert nn.init.calculate_gain(name, param) == pytest.approx(tnn.init.calculate_gain(name, param))


def test_default_init_statistics_match_torch():
    """Same bounds and spread as torch's default Linear / Conv2d initialization."""
    torch.manual_seed(0)
    minitf.manual_seed(0)
    for ours, theirs in ((nn.Conv2d(16, 32, 3), tnn.Conv2d(16, 32, 3)), (nn.Linear(300, 200), tnn.Linear(300, 200))):
        for name in ("weight", "bias"):
            a, b = getattr(ours, name).numpy(), getattr(theirs, name).detach().numpy()
            bound = 1 / math.sqrt(ours.weight[0].size)
            assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
            if a.size > 1000:
                assert abs(a.std() - b.std()) < 0.03 * b.std()

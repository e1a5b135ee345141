"""Module infrastructure: buffers, traversal, apply, dtype casts, containers and state dicts."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

import minitf
from minitf import Tensor, backend, nn


class WithBuffers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("stats", np.arange(2, dtype=np.float32))
        self.register_buffer("count", np.zeros((), np.int64))
        self.register_buffer("table", np.ones((4, 2), np.float32), persistent=False)
        self.register_buffer("nothing", None)

    def forward(self, x):
        return self.linear(x) + self.stats


# ---- buffers ----------------------------------------------------------------------------------

def test_buffers_are_listed_and_persistent_ones_saved():
    m = WithBuffers()
    assert [name for name, _ in m.named_buffers()] == ["stats", "count", "table"]
    assert len(m.buffers()) == 3 and m.stats is m._buffers["stats"]
    # PyTorch's order: parameters, then buffers, then children; non-persistent buffers left out
    outer = nn.Sequential(m)
    assert list(outer.state_dict()) == ["0.stats", "0.count", "0.linear.weight", "0.linear.bias"]
    assert list(m.state_dict()) == ["stats", "count", "linear.weight", "linear.bias"]
    assert m.state_dict()["count"].dtype == np.int64


def test_assigning_to_a_buffer_name_keeps_it_a_buffer():
    m = WithBuffers()
    m.stats = np.full(2, 5.0, np.float32)
    assert "stats" in dict(m.named_buffers()) and m.state_dict()["stats"].tolist() == [5.0, 5.0]
    m.stats = Tensor(np.zeros(2, np.float32))  # a tensor's data is stored
    assert isinstance(m._buffers["stats"], np.ndarray)
    m.stats = nn.Parameter(np.zeros(2, np.float32))  # becomes a parameter
    assert "stats" not in dict(m.named_buffers()) and "stats" in dict(m.named_parameters())
    del m.count
    assert "count" not in m.state_dict()


def test_register_buffer_errors():
    m = WithBuffers()
    with pytest.raises(KeyError, match="'a.b'"):
        m.register_buffer("a.b", np.zeros(1))
    with pytest.raises(KeyError, match="'linear'"):
        m.register_buffer("linear", np.zeros(1))
    with pytest.raises(TypeError, match="'x'.*list"):
        m.register_buffer("x", [1, 2])

    class Early(nn.Module):
        def __init__(self):
            self.register_buffer("x", np.zeros(1))

    with pytest.raises(AttributeError, match="super"):
        Early()


def test_buffers_move_with_to_and_load_in_place(device):
    m = WithBuffers().to(device)
    assert all(backend.device_of(b) == backend.parse_device(device) for b in m.buffers())
    stats = m.stats
    state = {k: v + 1 for k, v in m.state_dict().items()}
    m.load_state_dict(state)
    assert m.stats is stats  # written in place, as PyTorch copies into its buffers
    np.testing.assert_array_equal(backend.to_device(m.stats, "cpu"), [1, 2])
    assert int(backend.to_device(m.count, "cpu")) == 1


def test_transformer_positions_are_a_non_persistent_buffer(device):
    model = nn.Seq2SeqTransformer(nn.TransformerConfig(11, 11, d_model=8, n_heads=2, n_encoder_layers=1,
                                                       n_decoder_layers=1, d_ff=12, max_len=16))
    assert "positions" in dict(model.named_buffers()) and "positions" not in model.state_dict()
    model.to(device)
    assert backend.device_of(model.positions) == backend.parse_device(device)
    model.to("cpu")


# ---- traversal and apply ------------------------------------------------------------------------

def test_children_modules_and_shared_modules_listed_once():
    shared = nn.Linear(2, 2)
    m = nn.ModuleDict({"a": shared, "b": nn.Sequential(nn.ReLU(), shared)})
    assert [name for name, _ in m.named_children()] == ["a", "b"]
    assert list(m.children()) == [shared, m["b"]]
    assert [name for name, _ in m.named_modules()] == ["", "a", "b", "b.0"]
    assert [name for name, _ in m.named_modules(remove_duplicate=False)] == ["", "a", "b", "b.0", "b.1"]
    assert len(list(m.modules())) == 4 and len(m.parameters()) == 2
    assert [n for n, _ in m.named_parameters(remove_duplicate=False)] == \
        ["a.weight", "a.bias", "b.1.weight", "b.1.bias"]


def test_apply_visits_children_first_and_returns_self():
    m = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Tanh(), nn.Linear(3, 1)))
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "Tanh", "Linear", "Sequential", "Sequential"]

    def zero_linear(mod):
        if isinstance(mod, nn.Linear):
            nn.init.zeros_(mod.weight)

    m.apply(zero_linear)
    assert all(np.all(p.numpy() == 0) for name, p in m.named_parameters() if name.endswith("weight"))


def test_requires_grad_and_zero_grad():
    m = nn.Linear(3, 2)
    m(Tensor(np.ones((1, 3), np.float32))).sum().backward()
    m.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.requires_grad_(False) is m and not any(p.requires_grad for p in m.parameters())
    out = m(Tensor(np.ones((1, 3), np.float32)))
    assert not out.requires_grad
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())


# ---- dtype casts -------------------------------------------------------------------------------

@pytest.mark.parametrize("cast, dtype", [(lambda m: m.double(), np.float64), (lambda m: m.half(), np.float16),
                                         (lambda m: m.to(np.float64), np.float64),
                                         (lambda m: m.to("float64"), np.float64),
                                         (lambda m: m.to(dtype="float64"), np.float64),
                                         (lambda m: m.double().float(), np.float32)])
def test_dtype_casts_floating_parameters_and_buffers_only(cast, dtype):
    m = WithBuffers()
    weight = m.linear.weight
    m.linear.weight.grad = np.ones((2, 3), np.float32)
    assert cast(m) is m and m.linear.weight is weight  # identity kept for optimizers
    assert weight.dtype == dtype and weight.grad.dtype == dtype and m.stats.dtype == dtype
    assert m.table.dtype == dtype and m.count.dtype == np.int64
    assert m(Tensor(np.ones((1, 3), dtype))).dtype == dtype


def test_to_device_and_dtype_together(device):
    m = WithBuffers().to(device, np.float64)
    assert m.linear.weight.dtype == np.float64 and str(m.device) == str(backend.parse_device(device))
    m.to(device=device, dtype=np.float32)
    assert m.linear.weight.dtype == np.float32
    m.to("cpu")


def test_to_rejects_what_is_not_a_device_or_float_dtype():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="floating"):
        m.to(np.int32)
    with pytest.raises(minitf.DeviceError, match="unknown device 'gpu0'"):
        m.to("gpu0")
    with pytest.raises(TypeError, match="neither a device nor a dtype"):
        m.to([1])
    with pytest.raises(TypeError, match="to\\(device"):
        m.to("cpu", np.float32, "extra")
    with pytest.raises(TypeError, match="non_blocking"):
        m.to("cpu", non_blocking=True)


# ---- containers --------------------------------------------------------------------------------

def test_sequential_indexing_iteration_and_forward():
    a, b, c = nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)
    seq = nn.Sequential(a, b)
    seq.append(c)
    assert len(seq) == 3 and list(seq) == [a, b, c] and seq[0] is a and seq[-1] is c
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = Tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    np.testing.assert_array_equal(seq(x).numpy(), c(b(a(x))).numpy())
    seq[1] = nn.Tanh()
    np.testing.assert_array_equal(seq(x).numpy(), c(minitf.functional.tanh(a(x))).numpy())
    with pytest.raises(IndexError, match="index 3.*length 3"):
        seq[3]
    with pytest.raises(TypeError, match="Modules, got int"):
        seq.append(3)


def test_sequential_from_ordered_dict_names_children():
    seq = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), act=nn.ReLU()))
    assert list(seq.state_dict()) == ["conv.weight", "conv.bias"] and isinstance(seq[1], nn.ReLU)
    assert list(seq[:1].state_dict()) == ["conv.weight", "conv.bias"]
    with pytest.raises(TypeError, match="'act' is a str"):
        nn.Sequential(OrderedDict(act="relu"))


def test_module_list_slices_and_assignment():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert isinstance(layers[:2], nn.ModuleList) and len(layers[:2]) == 2
    new = nn.Linear(2, 2)
    layers[-1] = new
    assert layers[2] is new and "2.weight" in layers.state_dict()
    layers.extend([nn.ReLU()])
    assert len(layers) == 4


def test_module_dict():
    d = nn.ModuleDict({"enc": nn.Linear(2, 3)})
    d["dec"] = nn.Linear(3, 2)
    assert list(d) == ["enc", "dec"] and "dec" in d and len(d) == 2
    assert list(d.keys()) == ["enc", "dec"] and [k for k, _ in d.items()] == ["enc", "dec"]
    assert list(d.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    del d["enc"]
    assert list(d) == ["dec"] and list(d.state_dict()) == ["dec.weight", "dec.bias"]
    with pytest.raises(KeyError, match="'a.b'"):
        d["a.b"] = nn.ReLU()
    with pytest.raises(TypeError, match="Modules, got int for 'x'"):
        d["x"] = 3
    with pytest.raises(KeyError):
        del d["missing"]


def test_parameter_list_and_dict_register_parameters():
    plist = nn.ParameterList([np.zeros(2, np.float32), nn.Parameter(np.ones(3, np.float32))])
    plist.append(np.ones((2, 2), np.float32))
    assert len(plist) == 3 and all(isinstance(p, nn.Parameter) for p in plist)
    assert list(plist.state_dict()) == ["0", "1", "2"] and plist[-1].shape == (2, 2)
    pdict = nn.ParameterDict({"scale": np.ones(2, np.float32)})
    pdict["shift"] = np.zeros(2, np.float32)
    holder = nn.ModuleDict({"p": pdict, "l": plist})
    assert [n for n, _ in holder.named_parameters()] == ["p.scale", "p.shift", "l.0", "l.1", "l.2"]
    assert "scale" in pdict and list(pdict) == ["scale", "shift"]
    del pdict["scale"]
    assert list(pdict.keys()) == ["shift"]


# ---- load_state_dict: dtypes (tied weights: test_nn_tied.py) ----------------------------------

def test_lossy_dtype_is_an_error_unless_cast():
    m = nn.Linear(3, 2)
    state = {k: v.astype(np.float64) + 1 for k, v in m.state_dict().items()}
    before = m.state_dict()
    with pytest.raises(TypeError, match="'weight' is float64 in the state but float32 in the model.*cast=True"):
        m.load_state_dict(state)
    for name, value in m.state_dict().items():  # nothing changed
        np.testing.assert_array_equal(value, before[name])
    m.load_state_dict(state, cast=True)
    assert m.weight.dtype == np.float32
    np.testing.assert_allclose(m.weight.numpy(), state["weight"], rtol=1e-6)
    with pytest.raises(TypeError, match="'count' is float64 in the state but int64"):
        WithBuffers().load_state_dict(dict(WithBuffers().state_dict(), count=np.array(1.5)))


def test_load_state_dict_checks_buffers_and_type():
    m = WithBuffers()
    state = m.state_dict()
    with pytest.raises(KeyError, match="missing entries \\['count'\\]"):
        m.load_state_dict({k: v for k, v in state.items() if k != "count"})
    with pytest.raises(ValueError, match="'stats' has shape \\(3,\\)"):
        m.load_state_dict(dict(state, stats=np.zeros(3, np.float32)))
    with pytest.raises(TypeError, match="dict of name"):
        m.load_state_dict([("stats", np.zeros(2))])
    result = m.load_state_dict({"linear.weight": Tensor(np.ones((2, 3), np.float32)), "extra": np.zeros(1)},
                               strict=False)
    assert np.all(m.linear.weight.numpy() == 1)
    assert result.missing_keys == ["count", "linear.bias", "stats"] and result.unexpected_keys == ["extra"]
    assert m.load_state_dict(state) == ([], [])


def test_transformer_loads_a_state_listing_its_shared_embedding_twice():
    config = nn.TransformerConfig(11, 11, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=12)
    a, b = nn.Seq2SeqTransformer(config), nn.Seq2SeqTransformer(config)
    state = a.state_dict(remove_duplicate=True)
    assert "tgt_embed.weight" in state and "src_embed.weight" not in state
    b.load_state_dict(dict(state, **{"src_embed.weight": state["tgt_embed.weight"]}))  # as PyTorch lists it
    np.testing.assert_array_equal(b.src_embed.weight.numpy(), state["tgt_embed.weight"])


def test_transformer_keeps_its_own_initialization():
    """Glorot-uniform feed-forward weights with zero biases and N(0, 1/d) embeddings, not PyTorch's
    defaults (so seeded translation runs do not change)."""
    minitf.manual_seed(0)
    d, d_ff = 64, 96
    model = nn.Seq2SeqTransformer(nn.TransformerConfig(500, 500, d_model=d, n_heads=2, n_encoder_layers=1,
                                                       n_decoder_layers=1, d_ff=d_ff))
    ff = model.encoder_layers[0].ff
    bound = math.sqrt(6 / (d + d_ff))
    for linear in (ff.linear1, ff.linear2):
        w = linear.weight.numpy()
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
        assert np.all(linear.bias.numpy() == 0)
    assert abs(model.tgt_embed.weight.numpy()[1:].std() - d ** -0.5) < 0.05 * d ** -0.5

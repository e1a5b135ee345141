"""Creation (zeros .. eye) and random tensors (rand .. multinomial, bernoulli): values, dtype
defaults as PyTorch, seeding, errors, the CuPy path (the NumPy stand-in of tests/fake_gpu.py), and
seeded statistical checks of the samplers (deterministic given the seed, so never flaky)."""
import sys
import types

import numpy as np
import pytest

import minitf as mt
from minitf import backend, rng
from fake_gpu import FakeCupyArray, FakeRandomState


def host(t):
    return backend.to_device(t.data, "cpu")


# ---- creation -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, fill", [("zeros", 0), ("ones", 1), ("empty", None)])
def test_filled(device, name, fill):
    t = getattr(mt, name)(2, 3, device=device)
    assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == backend.parse_device(device)
    assert getattr(mt, name)((2, 3), dtype=np.float64).dtype == np.float64
    if fill is not None:
        np.testing.assert_array_equal(host(t), np.full((2, 3), fill))
    like = getattr(mt, f"{name}_like")(mt.tensor(np.ones((4,), dtype=np.int32), device=device))
    assert like.shape == (4,) and like.dtype == np.int32 and like.device == backend.parse_device(device)


def test_full_takes_its_dtype_from_the_value(device):
    assert mt.full((2,), 3, device=device).dtype == np.int64
    assert mt.full((2,), 1.5).dtype == np.float32
    assert mt.full((2,), True).dtype == np.bool_
    t = mt.full_like(mt.zeros(3, dtype=np.float64), 2, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad
    np.testing.assert_array_equal(host(t), [2.0, 2.0, 2.0])
    with pytest.raises(TypeError, match="fill_value"):
        mt.full((2,), "x")


@pytest.mark.parametrize("args, expected, dtype", [
    ((5,), np.arange(5), np.int64), ((2, 7, 2), np.arange(2, 7, 2), np.int64),
    ((0, 1, 0.25), np.arange(0, 1, 0.25), np.float32), ((3.0,), np.arange(3.0), np.float32),
    ((5, 0, -2), np.arange(5, 0, -2), np.int64), ((0, 0.3, 0.1), np.arange(0, 0.3, 0.1), np.float32),
])
def test_arange(device, args, expected, dtype):
    t = mt.arange(*args, device=device)
    assert t.dtype == dtype
    np.testing.assert_allclose(host(t), expected, rtol=1e-6)
    assert mt.arange(*args, dtype=np.float64).dtype == np.float64


def test_linspace_and_eye(device):
    t = mt.linspace(-1, 1, 5, device=device)
    assert t.dtype == np.float32
    np.testing.assert_allclose(host(t), np.linspace(-1, 1, 5))
    e = mt.eye(2, 3, dtype=np.float64, device=device, requires_grad=True)
    assert e.requires_grad and e.dtype == np.float64
    np.testing.assert_array_equal(host(e), np.eye(2, 3))
    np.testing.assert_array_equal(host(mt.eye(3)), np.eye(3))


def test_creation_errors():
    with pytest.raises(ValueError, match="must not be negative"):
        mt.zeros(2, -1)
    with pytest.raises(TypeError, match="shape must be ints"):
        mt.ones(2.5)
    with pytest.raises(ValueError, match="step must not be 0"):
        mt.arange(0, 5, 0)
    with pytest.raises(TypeError, match="end must be a number"):
        mt.arange(0, "5")
    with pytest.raises(ValueError, match="steps"):
        mt.linspace(0, 1, -1)
    with pytest.raises(TypeError, match="floating-point"):
        mt.zeros(2, dtype=np.int64, requires_grad=True)
    with pytest.raises(mt.DeviceError):
        mt.zeros(2, device="tpu")


# ---- random: dtypes, seeding, errors ---------------------------------------------------------

DRAWS = {  # name: (draw on device, dtype)
    "rand": (lambda d: mt.rand(3, 4, device=d), np.float32),
    "randn": (lambda d: mt.randn((3, 4), device=d), np.float32),
    "randint": (lambda d: mt.randint(2, 9, (3, 4), device=d), np.int64),
    "randperm": (lambda d: mt.randperm(12, device=d), np.int64),
    "multinomial": (lambda d: mt.multinomial(mt.ones(3, 5, device=d), 4), np.int64),
    "multinomial_replacement": (lambda d: mt.multinomial(mt.ones(5, device=d), 9, True), np.int64),
    "bernoulli": (lambda d: mt.bernoulli(mt.full((3, 4), 0.5, device=d)), np.float32),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_same_seed_same_draws(device, name):
    draw, dtype = DRAWS[name]
    mt.manual_seed(7)
    first, second = draw(device), draw(device)
    mt.manual_seed(7)
    again = draw(device)
    assert first.dtype == dtype and first.device == backend.parse_device(device) and not first.requires_grad
    np.testing.assert_array_equal(host(first), host(again))
    assert not np.array_equal(host(first), host(second))


def test_random_values_are_in_range():
    mt.manual_seed(0)
    assert 0 <= host(mt.rand(1000)).min() and host(mt.rand(1000)).max() < 1
    ints = host(mt.randint(-3, 4, (1000,)))
    assert set(ints.tolist()) == set(range(-3, 4))
    assert sorted(host(mt.randperm(50)).tolist()) == list(range(50))
    assert host(mt.randint(5, size=(10,))).max() < 5 and mt.randint(5, (2,)).shape == (2,)
    assert mt.rand(2, dtype=np.float64, requires_grad=True).requires_grad


def test_random_errors():
    with pytest.raises(ValueError, match=r"low \(5\) must be less than high \(5\)"):
        mt.randint(5, 5, (2,))
    with pytest.raises(TypeError, match="give the size"):
        mt.randint(5)
    with pytest.raises(ValueError, match="n must not be negative"):
        mt.randperm(-1)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        mt.bernoulli(mt.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        mt.bernoulli(mt.tensor([np.nan]))
    with pytest.raises(TypeError, match="floating point"):
        mt.bernoulli(mt.tensor([1, 0]))


@pytest.mark.parametrize("probs, n, replacement, error, match", [
    ([0.5, -0.1, 0.6], 1, True, ValueError, "inf, NaN or a negative"),
    ([0.5, np.nan], 1, True, ValueError, "inf, NaN or a negative"),
    ([0.5, np.inf], 1, False, ValueError, "inf, NaN or a negative"),
    ([[0.5, 0.5], [0.0, 0.0]], 1, True, ValueError, "row 1 of probs sums to 0"),
    ([0.2, 0.8], 3, False, ValueError, "cannot draw 3 samples without replacement from 2"),
    ([0.0, 0.8, 0.0], 2, False, ValueError, "only 1 categories of nonzero weight"),
    ([0.2, 0.8], 0, True, ValueError, "positive int"),
    (np.ones((2, 2, 2)), 1, True, ValueError, "1-D or 2-D"),
    (np.array([1, 2]), 1, True, TypeError, "floating point"),
])
def test_multinomial_errors(probs, n, replacement, error, match):
    with pytest.raises(error, match=match):
        mt.multinomial(mt.tensor(np.asarray(probs)), n, replacement)


# ---- random: distributions (fixed seed, generous bounds) --------------------------------------

def chi_square(counts, probs):
    expected = counts.sum() * np.asarray(probs)
    keep = expected > 0
    assert (counts[~keep] == 0).all(), "a category of probability 0 was drawn"
    return float((((counts - expected) ** 2)[keep] / expected[keep]).sum())


# 99.99% quantiles of chi-square with k - 1 degrees of freedom are below 25 for k <= 5:
# with a fixed seed these checks are deterministic and far from their bound when correct.
BOUND = 25.0
WEIGHTS = np.array([[1.0, 2.0, 3.0, 4.0, 0.0], [0.0, 5.0, 0.5, 0.0, 4.5]])


def test_multinomial_with_replacement_matches_the_weights(device):
    mt.manual_seed(1)
    draws = host(mt.multinomial(mt.tensor(WEIGHTS, device=device), 20000, replacement=True))
    assert draws.shape == (2, 20000) and draws.dtype == np.int64
    for row, weights in zip(draws, WEIGHTS):
        assert chi_square(np.bincount(row, minlength=5), weights / weights.sum()) < BOUND


def test_multinomial_without_replacement_draws_in_sequence(device):
    mt.manual_seed(2)
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    draws = host(mt.multinomial(mt.tensor(np.tile(probs, (8000, 1)), device=device), 2))
    assert draws.shape == (8000, 2) and (draws[:, 0] != draws[:, 1]).all()
    # first draw ~ p; second draw j: sum_i p_i p_j / (1 - p_i) over i != j
    second = np.array([sum(probs[i] * probs[j] / (1 - probs[i]) for i in range(4) if i != j)
                       for j in range(4)])
    assert chi_square(np.bincount(draws[:, 0], minlength=4), probs) < BOUND
    assert chi_square(np.bincount(draws[:, 1], minlength=4), second) < BOUND
    full = host(mt.multinomial(mt.tensor(WEIGHTS, device=device), 3))
    assert len(set(full[0])) == 3 and set(full[0]) <= {0, 1, 2, 3} and sorted(full[1]) == [1, 2, 4]


def test_bernoulli_frequencies(device):
    mt.manual_seed(3)
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0], dtype=np.float64)
    draws = host(mt.bernoulli(mt.tensor(np.tile(p, (10000, 1)), device=device)))
    assert draws.dtype == np.float64 and set(np.unique(draws)) <= {0.0, 1.0}
    assert (draws[:, 0] == 0).all() and (draws[:, 4] == 1).all()
    for k in (1, 2, 3):
        ones = draws[:, k].sum()
        assert chi_square(np.array([10000 - ones, ones]), [1 - p[k], p[k]]) < BOUND


# ---- the CuPy path, on the NumPy stand-in of tests/fake_gpu.py ---------------------------------------------

class _RicherFakeRandomState(FakeRandomState):
    """fake_gpu.py's stand-in for cupy.random.RandomState, with the draws these creators use."""

    def standard_normal(self, shape, dtype=np.float64):
        return self._rng.standard_normal(shape, dtype=dtype).view(FakeCupyArray)

    def randint(self, low, high, size, dtype):
        return self._rng.integers(low, high, size, dtype=dtype).view(FakeCupyArray)

    def permutation(self, n):
        return self._rng.permutation(n).view(FakeCupyArray)


@pytest.mark.parametrize("name", sorted(DRAWS) + ["zeros", "arange", "eye", "linspace", "full"])
def test_creators_make_cupy_arrays_from_cupys_generator(fake_gpu, name):  # noqa: F811
    sys.modules["cupy"].random = types.SimpleNamespace(RandomState=_RicherFakeRandomState)
    make = {"zeros": lambda d: mt.zeros(2, device=d), "arange": lambda d: mt.arange(4, device=d),
            "eye": lambda d: mt.eye(2, device=d), "linspace": lambda d: mt.linspace(0, 1, 3, device=d),
            "full": lambda d: mt.full((2,), 1.5, device=d)}
    draw = DRAWS[name][0] if name in DRAWS else make[name]
    mt.manual_seed(5)
    numpy_state = rng.rng_state()
    t = draw("cuda")
    assert isinstance(t.data, FakeCupyArray) and str(t.device) == "cuda:0"
    assert rng.rng_state() == numpy_state  # the CPU generator was not used
    mt.manual_seed(5)
    np.testing.assert_array_equal(np.asarray(draw("cuda").data), np.asarray(t.data))


# ---- tensor copies; from_numpy and as_tensor share -----------------------------------------

def test_writing_the_array_after_tensor_does_not_change_the_gradient():
    a = np.ones(3)
    x = mt.tensor(a)
    w = mt.tensor(np.ones(3), requires_grad=True)
    loss = (w * x).sum()
    a[0] = 5.0  # the caller reuses its buffer (no minitf write, so no version counter sees it)
    loss.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0, 1.0])
    assert x.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("make", [
    lambda: np.arange(6.0), lambda: np.arange(6.0)[::2], lambda: np.arange(6, dtype=np.int32),
    lambda: mt.tensor(np.arange(3.0)), lambda: bytearray(b"abc"),
], ids=["array", "view", "int32", "Tensor", "buffer"])
def test_tensor_copies_any_data(make):
    source = make()
    t = mt.tensor(source)
    memory = source.data if isinstance(source, mt.Tensor) else np.asarray(source)
    assert not np.shares_memory(t.data, memory)
    np.testing.assert_array_equal(t.numpy(), memory)
    assert t.dtype == memory.dtype
    t2 = mt.tensor(source, dtype=memory.dtype, requires_grad=memory.dtype.kind == "f")
    assert not np.shares_memory(t2.data, memory)


def test_from_numpy_shares_memory_and_dtype():
    a = np.arange(4.0)
    t = mt.from_numpy(a)
    assert t.dtype == np.float64 and t.data is a
    a[0] = 7.0
    t += 1.0
    assert t.tolist() == [8.0, 2.0, 3.0, 4.0] and a.tolist() == [8.0, 2.0, 3.0, 4.0]
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        mt.from_numpy([1.0, 2.0])
    with pytest.raises(TypeError, match="from_numpy: .* dtype <U1"):
        mt.from_numpy(np.array(["a"]))


def test_as_tensor_shares_when_it_can():
    a = np.arange(4.0)
    assert mt.as_tensor(a).data is a and mt.as_tensor(a, dtype=np.float64, device="cpu").data is a
    converted = mt.as_tensor(a, dtype=np.float32)
    assert converted.dtype == np.float32 and not np.shares_memory(converted.data, a)
    assert mt.as_tensor([1.0, 2.0]).dtype == np.float32  # lists as mt.tensor makes them
    w = mt.tensor(np.ones(2), requires_grad=True)
    assert mt.as_tensor(w) is w and mt.as_tensor(w, dtype=np.float64) is w
    narrow = mt.as_tensor(w, dtype=np.float32)  # a recorded conversion, as torch.as_tensor
    narrow.sum().backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0])


def test_tensor_copies_and_as_tensor_shares_on_the_gpu_path(fake_gpu):  # noqa: F811
    on_gpu = fake_gpu(np.arange(3.0))
    copied = mt.tensor(on_gpu, device="cuda")
    assert isinstance(copied.data, FakeCupyArray) and not np.shares_memory(copied.data, on_gpu)
    shared = mt.as_tensor(on_gpu)
    assert isinstance(shared.data, FakeCupyArray) and np.shares_memory(shared.data, on_gpu)
    from_host = mt.tensor(np.arange(3.0), device="cuda")  # the transfer is the copy
    assert isinstance(from_host.data, FakeCupyArray)

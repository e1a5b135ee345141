"""Defects a hostile tester found in the in-place ops, backward's version checks, gradcheck and
tensor creation: each test fails on the code before its fix."""
import re

import numpy as np
import pytest

import minitf as mt


# ---- in-place ops: a failed op leaves the tensor as it was ---------------------------------

def test_a_failed_clamp_leaves_the_tensor_and_its_gradient_unchanged():
    w = mt.tensor([1.0, 1.0], requires_grad=True)
    a = mt.tensor([-5, 5])
    out = (w * a).sum()
    with pytest.raises(TypeError, match=r"clamp_ on a tensor of dtype int64: .*float64"):
        a.clamp_(0, 2.5)  # maximum(a, 0) fits int64, minimum(., 2.5) does not
    assert a.tolist() == [-5, 5] and a._version == 0
    out.backward()
    np.testing.assert_array_equal(w.grad, [-5.0, 5.0])


def test_a_failed_pow_leaves_the_tensor_unchanged():
    x = mt.tensor([2, 3, 4])
    with pytest.raises(ValueError, match=r"pow_ on a tensor of dtype int64: .*negative"):
        x.pow_(mt.tensor([2, -1, 2]))
    assert x.tolist() == [2, 3, 4] and x._version == 0
    x.pow_(mt.tensor([2, 1, 0]))
    assert x.tolist() == [4, 3, 1] and x._version == 1


def test_a_write_that_raises_after_writing_is_still_counted():
    x = mt.tensor(np.array([1.0, 2.0], np.float16))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        x.add_(np.array([1e6, 0.0]))  # NumPy writes inf, then raises
    assert np.isinf(x.numpy()[0]) and x._version == 1


def test_a_copy_that_fails_while_copying_is_still_counted(monkeypatch):
    x = mt.tensor([1.0, 2.0])

    def half_copy(out, src, casting):
        out[0] = 9.0
        raise MemoryError("interrupted")

    monkeypatch.setattr(np, "copyto", half_copy)
    with pytest.raises(MemoryError):
        x.copy_(np.zeros(2))
    assert x._version == 1


@pytest.mark.parametrize("value", [np.array([[5.0]]), [5.0], mt.tensor([[5.0]]), 5, np.float64(5)])
def test_fill_takes_one_element_of_any_shape(value):
    for x in (mt.tensor([1.0, 2.0, 3.0]), mt.tensor(1.0)):
        x.fill_(value)
        assert (x.numpy() == 5.0).all() and x._version == 1


@pytest.mark.parametrize("value", [[7, 8, 9], np.ones((1, 3)), mt.tensor([1.0, 2.0]), []])
def test_fill_refuses_more_or_fewer_than_one_element(value):
    x = mt.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"fill_: the value must be a number or hold exactly one element"):
        x.fill_(value)
    assert x.tolist() == [1.0, 2.0, 3.0] and x._version == 0


def test_writing_none_says_the_gradient_is_missing():
    p = mt.tensor([1.0, 2.0], requires_grad=True)
    with mt.no_grad():
        for write in (lambda: p.sub_(p.grad, alpha=0.1), lambda: p.__isub__(None),
                      lambda: p.copy_(None)):
            with pytest.raises(TypeError, match=r"the value is None \(did backward run\?"):
                write()
    assert p.tolist() == [1.0, 2.0] and p._version == 0


def test_writing_a_non_number_names_it():
    x = mt.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="add_: the value must be a number, an array or a tensor, got str"):
        x.add_("ab")
    with pytest.raises(TypeError, match="copy_: the value has dtype <U1, not a number"):
        x.copy_(np.array(["a", "b"]))


# ---- backward: a write made during backward (by a hook) is seen ------------------------------

@pytest.mark.parametrize("detached_first", [False, True])
def test_a_hook_that_writes_a_saved_input_during_backward_is_detected(detached_first):
    p1 = mt.tensor([1.0, 2.0], requires_grad=True)
    w2 = mt.tensor([1.0, 1.0], requires_grad=True)
    d = p1.detach()  # shares p1's memory; `w2 * d` saves it

    def sgd_step(p):
        with mt.no_grad():
            p.sub_(p.grad, alpha=100.0)

    p1.register_post_accumulate_grad_hook(sgd_step)
    uses_d, uses_p1 = (w2 * d).sum(), (p1 * 3.0).sum()
    # backward takes the last operand of the sum first
    loss = uses_p1 + uses_d if detached_first else uses_d + uses_p1
    if detached_first:  # `w2 * d` runs its backward before the hook writes: correct
        loss.backward()
        np.testing.assert_array_equal(w2.grad, [1.0, 2.0])
    else:
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            loss.backward()
    np.testing.assert_array_equal(p1.numpy(), [-299.0, -298.0])


# ---- gradcheck: NaN never passes; a float32 module gets a hint ------------------------------

def _doubling_with_nan_backward(x):
    return mt.Tensor.from_op(x.data * 2, (x,), lambda g: (g * np.nan,))


@pytest.mark.parametrize("fast", [False, True])
def test_gradcheck_fails_a_nan_backward_and_counts_it(fast):
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(mt.GradcheckError, match="2 of 2 .*not finite"):
        mt.gradcheck(_doubling_with_nan_backward, [x], fast=fast)


@pytest.mark.parametrize("fast", [False, True])
def test_gradcheck_refuses_a_function_that_is_not_finite_at_the_inputs(fast):
    def log_with_wrong_backward(x):
        return mt.Tensor.from_op(np.log(x.data), (x,), lambda g: (g * 5.0,))

    x = mt.tensor([-1.0, -2.0], requires_grad=True)
    with np.errstate(invalid="ignore"), \
            pytest.raises(ValueError, match="the function is not finite at the inputs"):
        mt.gradcheck(log_with_wrong_backward, [x], fast=fast)


def test_gradcheck_of_a_linear_layer_needs_it_in_float64():
    lin = mt.nn.Linear(3, 2)
    x = mt.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    with pytest.raises(TypeError, match=r"module.to\(np.float64\)"):
        mt.gradcheck(lambda t: lin(t), [x])
    lin.to(np.float64)
    assert mt.gradcheck(lambda t: lin(t), [x])


# ---- the dtype rule: by kind and size, one message for a non-floating input -------------------

def test_a_layer_refuses_an_integer_input_with_a_fix_that_works():
    attention = mt.nn.FusedMultiHeadAttention(4, 2)
    ids = mt.tensor(np.arange(8).reshape(1, 2, 4))
    with pytest.raises(TypeError, match=r"expects a floating input, got dtype int64; "
                                        r"convert with x.astype\(np.float32\)$"):
        attention(ids)
    assert attention(ids.astype(np.float32)).shape == (1, 2, 4)


def test_a_layer_accepts_a_big_endian_float32_array():
    lin = mt.nn.Linear(3, 2)
    x = np.arange(6, dtype=">f4").reshape(2, 3)
    for big_endian in (mt.tensor(x), mt.as_tensor(x)):  # converted to native order
        assert big_endian.dtype == np.float32 and big_endian.tolist() == x.tolist()
        np.testing.assert_array_equal(lin(big_endian).numpy(), lin(mt.tensor(x.astype("<f4"))).numpy())
    with pytest.raises(TypeError, match=r"x.astype\(np.float32\) or the layer with .to\(np.float64\)"):
        lin(mt.tensor(x.astype(">f8")))
    with pytest.raises(TypeError, match=r"from_numpy: the array's byte order \(>f4\)"):
        mt.from_numpy(x)


def test_attention_refuses_mixed_float_dtypes():
    rng = np.random.default_rng(0)
    q = mt.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32))
    kv = mt.tensor(rng.standard_normal((2, 3, 4)))
    with pytest.raises(TypeError, match=r"attention: q dtype float32 does not match k dtype float64"):
        mt.functional.scaled_dot_product_attention(q, kv, kv)
    with pytest.raises(TypeError, match=r"attention: v dtype float32 does not match k dtype float64"):
        mt.functional.scaled_dot_product_attention(kv, kv, q)


def test_the_dtype_rule_compares_kind_and_size_not_byte_order():
    from minitf.functional.dtypes import check_dtypes
    weight = mt.tensor(np.ones((2, 3), dtype=np.float32))
    check_dtypes("Linear", np.ones(3, dtype=">f4"), weight=weight)  # no error
    with pytest.raises(TypeError, match=r"input dtype >f8 does not match weight dtype float32; "
                                        r"convert with x.astype\(np.float32\)"):
        check_dtypes("Linear", np.ones(3, dtype=">f8"), weight=weight)


# ---- tensor creation: only the dtypes the engine supports -----------------------------------

@pytest.mark.parametrize("data", [np.array(["2026-01-01"], dtype="datetime64[D]"),
                                  np.array([1, "a"], dtype=object), np.array(["ab"]), ["ab"],
                                  np.array([1 + 2j]), np.timedelta64(3, "s")])
def test_tensor_refuses_unsupported_dtypes(data):
    message = re.escape(f"cannot make a tensor of dtype {np.asarray(data).dtype}: minitf supports")
    for make in (mt.tensor, mt.as_tensor, mt.Tensor):
        with pytest.raises(TypeError, match=message):
            make(data)


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint16, np.int64, np.float16, np.float64])
def test_tensor_keeps_supported_dtypes(dtype):
    assert mt.tensor(np.zeros(2, dtype=dtype)).dtype == dtype


# ---- views and copies: flip copies (as torch), writes through views are seen, clone -----------

def test_flip_returns_a_copy():
    a = mt.tensor([1.0, 2.0, 3.0])
    b = mt.flip(a, 0)
    b.add_(100.0)
    assert a.tolist() == [1.0, 2.0, 3.0] and a._version == 0
    assert b.tolist() == [103.0, 102.0, 101.0]


@pytest.mark.parametrize("view", [lambda a: a.reshape(2, 3), lambda a: a.T, lambda a: a[:, 1:],
                                  lambda a: a.swapaxes(0, 1), lambda a: a.unsqueeze(0), lambda a: a[0]])
def test_a_write_through_a_view_is_seen_by_the_ops_that_saved_the_base(view):
    w = mt.tensor(np.ones((3, 2)), requires_grad=True)
    a = mt.tensor(np.arange(6.0).reshape(3, 2))
    out = (w * a).sum()  # saves a
    view(a).add_(1.0)
    assert a._version == 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.backward()


def test_clone_copies_and_keeps_the_graph():
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = x.clone()
    assert c.requires_grad and not np.shares_memory(c.data, x.data)
    with mt.no_grad():
        c.detach().mul_(0.0)  # a write to the clone's memory does not reach x
    assert x.tolist() == [1.0, 2.0]
    v = np.array([0.5, -2.0])
    assert mt.gradcheck(lambda t: mt.clone(t) * t, [x])
    (mt.clone(x) * mt.tensor(v)).sum().backward()
    np.testing.assert_array_equal(x.grad, v)

"""minitf.einsum: forward against numpy.einsum in float64 and every operand's gradient against
finite differences, on drawn subscripts (repeated labels, labels summed within one operand,
implicit output, ellipses, size-1 broadcasting)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitf as mt
from minitf.autograd.ops_einsum import explicit_subscripts
from minitf.testing import arrays

LABELS = "abcXY"  # upper case too: the implicit output orders labels by ASCII


@st.composite
def einsum_cases(draw):
    """(subscripts, operand shapes) that numpy.einsum accepts."""
    sizes = {label: draw(st.integers(1, 3)) for label in LABELS}
    ellipsis = draw(st.lists(st.integers(1, 3), max_size=2))  # the broadcast shape
    terms, shapes = [], []
    for _ in range(draw(st.integers(1, 3))):
        labels = draw(st.lists(st.sampled_from(LABELS), max_size=3))
        own = {label: 1 if draw(st.booleans()) and draw(st.booleans()) else sizes[label]
               for label in labels}  # size 1: broadcast against the others
        term, shape = "".join(labels), [own[label] for label in labels]
        if ellipsis and draw(st.booleans()):
            at = draw(st.integers(0, len(labels)))
            count = draw(st.integers(0, len(ellipsis)))
            dims = [1 if draw(st.booleans()) else n for n in ellipsis[len(ellipsis) - count:]]
            term, shape = term[:at] + "..." + term[at:], shape[:at] + dims + shape[at:]
        terms.append(term)
        shapes.append(tuple(shape))
    subscripts = ",".join(terms)
    if draw(st.booleans()):  # explicit output: some of the labels, '...' where there is one
        seen = sorted({c for c in subscripts if c in LABELS})
        out = "".join(draw(st.permutations(seen))[:draw(st.integers(0, len(seen)))])
        if "..." in subscripts:
            at = draw(st.integers(0, len(out)))
            out = out[:at] + "..." + out[at:]
        subscripts += "->" + out
    return subscripts, shapes


@given(data=st.data(), case=einsum_cases())
def test_einsum_forward_and_gradients(device, data, case):
    subscripts, shapes = case
    operands = [data.draw(arrays(shape)) for shape in shapes]
    expected = np.einsum(subscripts, *operands)
    inputs, output, _ = explicit_subscripts(subscripts, shapes)  # the backward's reading of it
    explicit = ",".join("".join(t) for t in inputs) + "->" + "".join(output)
    np.testing.assert_allclose(np.einsum(explicit, *operands), expected, rtol=1e-12, atol=1e-12)
    tensors = [mt.tensor(a, requires_grad=True, device=device) for a in operands]
    out = mt.einsum(subscripts, *tensors)
    assert out.shape == np.shape(expected) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert mt.gradcheck(lambda *ts: mt.einsum(subscripts, *ts), tensors)


@pytest.mark.parametrize("subscripts, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk", [(2, 2, 3), (2, 3, 2)]), ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]), ("iij->j", [(2, 2, 3)]), ("ij->", [(2, 3)]), ("i,i", [(3,), (3,)]),
    ("i,j->ij", [(2,), (3,)]), ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]), ("ij, jk -> ki", [(2, 3), (3, 2)]), (",ij", [(), (2, 2)]),
    ("ii,i->i", [(3, 3), (1,)]), ("ab,bc,cd->ad", [(2, 3), (3, 2), (2, 2)]),
])
def test_einsum_examples(device, subscripts, shapes):
    rng = np.random.default_rng(0)
    operands = [rng.standard_normal(shape) for shape in shapes]
    tensors = [mt.tensor(a, requires_grad=True, device=device) for a in operands]
    np.testing.assert_allclose(mt.einsum(subscripts, *tensors).numpy(),
                               np.einsum(subscripts, *operands), rtol=1e-12)
    assert mt.gradcheck(lambda *ts: mt.einsum(subscripts, *ts), tensors)


def test_einsum_trace_and_diagonal_gradients(device):
    a = mt.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True, device=device)
    mt.einsum("ii", a).backward()
    np.testing.assert_array_equal(mt.backend.to_device(a.grad, "cpu"), np.eye(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_einsum_keeps_dtype_and_takes_constants(device, dtype):
    a = mt.tensor(np.ones((2, 3), dtype=dtype), requires_grad=True, device=device)
    ids = mt.tensor(np.arange(3), device=device)  # an integer operand: no gradient
    out = mt.einsum("ij,j->i", a, ids)
    assert out.dtype == np.result_type(dtype, np.int64) or out.dtype == dtype
    out = mt.einsum("ij,j->i", a, mt.tensor(np.arange(3, dtype=dtype), device=device))
    assert out.dtype == dtype
    out.backward(mt.tensor(np.ones(2, dtype=dtype), device=device))
    assert a.grad.dtype == dtype
    np.testing.assert_array_equal(mt.backend.to_device(a.grad, "cpu"), [[0, 1, 2], [0, 1, 2]])


def test_einsum_errors_name_subscripts_and_shapes():
    a = mt.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"einsum\('ij,jk->ik'\) on operands of shapes \(2, 3\), \(2, 3\)"):
        mt.einsum("ij,jk->ik", a, a)
    with pytest.raises(ValueError, match="einsum"):
        mt.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match="at least one operand"):
        mt.einsum("ij")
    with pytest.raises(TypeError, match="subscripts must be a string"):
        mt.einsum(a, [0, 1])

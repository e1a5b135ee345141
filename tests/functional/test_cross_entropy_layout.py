"""cross_entropy in PyTorch's (N, C, d1, ...) layout (`class_axis=1`), with class weights and
probabilities as targets (soft labels, label smoothing), and nll_loss in that layout: forward against
a float64 NumPy reference, gradients (targets fixed) and second derivatives against finite
differences, dtypes, and PyTorch parity (double backward included) without moving any axis."""
import numpy as np
import pytest
from hypothesis import strategies as st

import minitf as mt
import minitf.functional as F
from minitf.testing import OpCase, OpTest, float_arrays

IGNORE = -100


def ref_cross_entropy(x, target, axis, weight=None, smoothing=0.0, reduction="mean", ignore_index=IGNORE):
    """PyTorch's formulas in float64 NumPy, classes moved last."""
    x = np.moveaxis(x, axis, -1)
    n_classes = x.shape[-1]
    logp = x - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)) - x.max(-1, keepdims=True)
    w = np.ones(n_classes) if weight is None else weight
    if target.dtype.kind == "f":
        p = np.moveaxis(target, axis, -1) * (1 - smoothing) + smoothing / n_classes
        per_item = -(logp * p * w).sum(-1)
        count = per_item.size
    else:
        keep = target != ignore_index
        safe = np.where(keep, target, 0)
        picked = np.take_along_axis(logp, safe[..., None], -1)[..., 0]
        smooth = -(logp * w).sum(-1)
        per_item = np.where(keep, (1 - smoothing) * -picked * w[safe] + smoothing / n_classes * smooth, 0.0)
        count = (w[safe] * keep).sum()
    if reduction == "none":
        return per_item
    with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: NaN, as PyTorch
        return per_item.sum() if reduction == "sum" else per_item.sum() / count


@st.composite
def cross_entropy_cases(draw, for_torch=False):
    """Logits (N, C, d...) or (C,); class_axis 1 (PyTorch's), or the last axis, or another; integer
    targets (some ignored, one kept) or probabilities; weights, smoothing and reduction drawn.
    for_torch: the class axis is 1 (PyTorch's own layout: it gets the same arrays)."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    axis = 1 if for_torch else draw(st.sampled_from(sorted({1, -1, len(shape) - 1, 0})))
    x = draw(float_arrays(shape))
    if for_torch:  # PyTorch's nll_loss2d backward refuses non-contiguous input ("grad_input must be contiguous")
        x = np.ascontiguousarray(x)
    cax = 0 if len(shape) == 1 else axis % len(shape)
    n_classes = shape[cax]
    item_shape = shape[:cax] + shape[cax + 1:]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    soft = draw(st.booleans())
    if soft:
        target = rng.dirichlet(np.ones(n_classes), size=item_shape)  # classes last: moved to cax
        target = np.moveaxis(target, -1, cax) if target.ndim > 1 else target
    else:
        target = rng.integers(0, n_classes, item_shape)
        if target.ndim:
            target[rng.random(item_shape) < 0.3] = IGNORE
            target.flat[0] = 0  # one kept: "mean" of none is NaN (tested on its own)
    weight = rng.uniform(0.5, 2.0, n_classes) if draw(st.booleans()) else None
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.3]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    options = {"weight": weight, "label_smoothing": smoothing, "reduction": reduction}

    def ours(x, t):
        return F.cross_entropy(x, t, class_axis=axis, **options)

    def theirs(x, t):
        import torch
        return torch.nn.functional.cross_entropy(
            x, t, **{**options, "weight": None if weight is None else torch.tensor(weight)})

    return OpCase(ours, (x,), lambda x, t: ref_cross_entropy(x, t, cax, weight, smoothing, reduction),
                  (target,), torch=theirs)


CASES = OpTest("cross_entropy_layout", cross_entropy_cases(),
               checks=("forward", "gradient", "gradgrad", "float32", "float64"),
               examples={"forward": 30, "gradient": 20, "gradgrad": 10, "float32": 10, "float64": 10},
               options={"float32": {"float32_tol": 1e-3}})
TORCH = OpTest("cross_entropy_layout_torch", cross_entropy_cases(for_torch=True), checks=("torch",),
               examples={"torch": 25})


@pytest.mark.parametrize("check", CASES.checks)
def test_cross_entropy_layouts_weights_and_probabilities(check):
    CASES.check(check)


def test_cross_entropy_in_torchs_layout_matches_torch_double_backward_included():
    TORCH.check("torch")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_class_axis_1_is_the_fused_op_on_moved_logits():
    x = rand(3, 5, 2, 4)
    t = np.random.default_rng(1).integers(0, 5, (3, 2, 4))
    t[0, 1] = IGNORE
    for options in ({}, {"label_smoothing": 0.2, "reduction": "none"}):
        moved = F.cross_entropy(mt.tensor(np.moveaxis(x, 1, -1)), t, **options)
        np.testing.assert_array_equal(F.cross_entropy(mt.tensor(x), t, class_axis=1, **options).numpy(),
                                      moved.numpy())
    assert F.cross_entropy(mt.tensor(rand(4)), np.array(2), class_axis=1).shape == ()  # (C,): axis 0


def test_ignored_items_with_nan_logits_give_zero_loss_and_gradient_with_weights():
    x = rand(3, 4, 2)
    x[1, :, 0] = np.nan
    t = np.array([[0, 3], [IGNORE, 2], [1, 1]])
    logits = mt.tensor(x, requires_grad=True)
    loss = F.cross_entropy(logits, t, class_axis=1, weight=np.arange(1.0, 5.0), label_smoothing=0.1)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad).all()
    np.testing.assert_array_equal(logits.grad[1, :, 0], 0.0)


def test_probabilities_as_targets_take_a_gradient():
    p = mt.tensor(np.random.default_rng(2).dirichlet(np.ones(3), size=(4,)), requires_grad=True)
    mt.gradcheck(lambda x, p: F.cross_entropy(x, p, label_smoothing=0.2),
                 [mt.tensor(rand(4, 3), requires_grad=True), p])
    torch = pytest.importorskip("torch")
    x, q = rand(2, 3, 4), np.random.default_rng(3).dirichlet(np.ones(3), size=(2, 4)).transpose(0, 2, 1)
    mine_x, mine_q = mt.tensor(x, requires_grad=True), mt.tensor(q, requires_grad=True)
    their_x, their_q = torch.tensor(x, requires_grad=True), torch.tensor(q, requires_grad=True)
    F.cross_entropy(mine_x, mine_q, class_axis=1, label_smoothing=0.1).backward()
    torch.nn.functional.cross_entropy(their_x, their_q, label_smoothing=0.1).backward()
    np.testing.assert_allclose(mine_q.grad, their_q.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(mine_x.grad, their_x.grad.numpy(), rtol=1e-10)


def test_every_target_ignored_with_weights_is_nan_with_zero_gradient_as_torch():
    logits = mt.tensor(rand(2, 3), requires_grad=True)
    loss = F.cross_entropy(logits, np.full(2, IGNORE), weight=np.ones(3), label_smoothing=0.1)
    loss.backward()
    assert np.isnan(loss.item())
    np.testing.assert_array_equal(logits.grad, 0.0)


@st.composite
def nll_cases(draw):
    """nll_loss of log-probabilities (N, C, d...) or (C,), PyTorch's layout, a third ignored."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    cax = 1 if len(shape) > 1 else 0
    x = np.ascontiguousarray(draw(float_arrays(shape)))  # PyTorch's nll_loss2d backward needs it
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    item_shape = shape[:cax] + shape[cax + 1:]
    target = rng.integers(0, shape[cax], item_shape)
    if target.ndim:
        target[rng.random(item_shape) < 0.3] = IGNORE
        target.flat[0] = 0
    weight = rng.uniform(0.5, 2.0, shape[cax]) if draw(st.booleans()) else None
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))

    def theirs(x, t):
        import torch
        return torch.nn.functional.nll_loss(x, t, weight=None if weight is None else torch.tensor(weight),
                                            reduction=reduction)

    return OpCase(lambda x, t: F.nll_loss(x, t, weight=weight, reduction=reduction), (x,),
                  lambda x, t: _ref_nll(x, t, cax, weight, reduction), (target,), torch=theirs)


def _ref_nll(x, target, cax, weight, reduction):
    x = np.moveaxis(x, cax, -1)
    w = np.ones(x.shape[-1]) if weight is None else weight
    keep = target != IGNORE
    safe = np.where(keep, target, 0)
    per_item = np.where(keep, -np.take_along_axis(x, safe[..., None], -1)[..., 0] * w[safe], 0.0)
    if reduction == "none":
        return per_item
    return per_item.sum() if reduction == "sum" else per_item.sum() / (w[safe] * keep).sum()


NLL = OpTest("nll_loss_layout", nll_cases(), checks=("forward", "gradient", "gradgrad", "torch"),
             examples={"forward": 20, "gradient": 10, "gradgrad": 10, "torch": 20})


@pytest.mark.parametrize("check", NLL.checks)
def test_nll_loss_in_torchs_layout(check):
    NLL.check(check)


def test_a_weight_in_pytorchs_third_position_is_refused():
    """PyTorch's third positional argument is weight, minitf's ignore_index: an array there is an error."""
    logits = mt.tensor(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="ignore_index must be an int, got ndarray .* pass weight= by name"):
        F.cross_entropy(logits, np.array([0, 1, 2]), np.array([0.0, 1.0, 5.0]))
    with pytest.raises(TypeError, match="ignore_index must be an int, got NoneType"):
        F.cross_entropy(logits, np.array([0, 1, 2]), ignore_index=None)

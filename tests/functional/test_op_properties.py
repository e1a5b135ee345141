"""The generic checks of `minitf.testing.OpTest` on every registry in tests/op_cases/.

For each op of each registry, each check it declares: the forward against the float64 NumPy
reference, every gradient against central differences in float64 (random cotangent), outputs
and gradients keeping float32/float64, the device and their shapes, CuPy against NumPy (skipped
without a GPU), and forward and gradients against PyTorch (registries that need PyTorch are
skipped without it).
"""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import op_cases


def load_registries() -> dict[str, list | None]:
    """Registry name -> its OpTests, for every module of op_cases; None for one that needs PyTorch
    when it is not installed."""
    registries = {}
    for info in pkgutil.iter_modules(op_cases.__path__):
        try:
            registries[info.name] = importlib.import_module(f"op_cases.{info.name}").OPS
        except ModuleNotFoundError as e:
            if e.name != "torch":
                raise
            registries[info.name] = None
    return registries


REGISTRIES = load_registries()


def declaring(*checks: str) -> list:
    """pytest params (op_test, check) for every op that declares one of `checks`; a registry that
    needs the missing PyTorch gives one skipped param to the "torch" check."""
    params = []
    for registry, ops in REGISTRIES.items():
        if ops is None:
            if "torch" in checks:
                params.append(pytest.param(None, "torch", id=f"{registry}-no-torch",
                                           marks=pytest.mark.skip(reason="needs PyTorch")))
            continue
        params += [pytest.param(op, check, id=f"{registry}.{op.name}-{check}")
                   for op in ops for check in checks if check in op.checks]
    return params


@pytest.mark.parametrize("op, check", declaring("forward"))
def test_forward_matches_float64_reference(op, check, device):
    op.check(check, device)


@pytest.mark.parametrize("op, check", declaring("gradient"))
def test_gradient_matches_finite_differences(op, check, device):
    op.check(check, device)


@pytest.mark.parametrize("op, check", declaring("gradgrad"))
def test_second_derivatives_match_finite_differences(op, check, device):
    op.check(check, device)


@pytest.mark.parametrize("op, check", declaring("no_gradient"))
def test_non_differentiable_ops_keep_no_graph(op, check, device):
    op.check(check, device)


@pytest.mark.parametrize("op, check", declaring("float32", "float64"))
def test_outputs_and_gradients_keep_dtype_device_and_shape(op, check, device):
    op.check(check, device)


@pytest.mark.parametrize("op, check", declaring("cupy"))
def test_cupy_matches_numpy(op, check):
    op.check(check)


@pytest.mark.parametrize("op, check", declaring("torch"))
def test_forward_and_gradients_match_torch(op, check):
    op.check(check)


def test_every_registry_is_run():
    """Each registry holds ops, each op declares checks and has a unique name."""
    assert {"autograd_ops", "autograd_layout", "functional", "functional_conv", "functional_toolkit"} <= set(REGISTRIES)
    for name, ops in REGISTRIES.items():
        if ops is not None:
            assert ops and all(op.checks for op in ops), name
            assert len({op.name for op in ops}) == len(ops), f"{name}: two ops share a name"

"""The table of ops (minitf/autograd/op_table.py) is the one place an op is registered: Tensor's
methods and operators, minitf.autograd's exports and minitf's are derived from it."""
import inspect
import subprocess
import sys
import textwrap

import minitf as mt
import minitf.autograd as ag
from minitf.autograd.op_table import OPS
from minitf.functional import FUNCTIONAL_OPS

ENGINE_MODULES = ("minitf.autograd.",)


def test_every_op_of_the_table_is_bound_and_exported_where_its_row_says():
    for op in OPS:
        assert (getattr(mt.Tensor, op.name, None) is op.fn) == op.method, op.name
        assert (op.name in ag.__all__ and getattr(ag, op.name) is op.fn) == (op.export in ("minitf", "autograd"))
        assert (op.name in mt.__all__ and getattr(mt, op.name) is op.fn) == (op.export == "minitf"), op.name


def test_the_functional_rows_are_bound_and_exported_by_minitf_only():
    """softmax, log_softmax: rows of minitf.functional (autograd may not import it)."""
    for op in FUNCTIONAL_OPS:
        assert (getattr(mt.Tensor, op.name, None) is op.fn) == op.method, op.name
        assert op.name not in ag.__all__ and not hasattr(ag, op.name), op.name
        assert (op.name in mt.__all__ and getattr(mt, op.name) is op.fn) == (op.export == "minitf"), op.name


def test_every_exported_op_and_every_method_is_in_the_table():
    names = {op.name for op in OPS} | {op.name for op in FUNCTIONAL_OPS}
    assert len(names) == len(OPS) + len(FUNCTIONAL_OPS), "one row per name"
    for namespace in (mt, ag):
        for name in namespace.__all__:
            fn = getattr(namespace, name)
            if inspect.isfunction(fn) and fn.__module__.startswith(ENGINE_MODULES) and name not in ag.ENGINE:
                assert name in names, f"{namespace.__name__}.{name} is not in the table of ops"
    for name, fn in vars(mt.Tensor).items():
        if inspect.isfunction(fn) and fn.__module__ != "minitf.autograd.tensor":
            assert name in names, f"Tensor.{name} is not in the table of ops"


def test_an_op_added_to_the_table_becomes_a_method_and_an_export():
    """One new row, and nothing else: the op is a Tensor method and a function of minitf."""
    script = textwrap.dedent("""
        import importlib
        import minitf, minitf.autograd
        from minitf.autograd import op_table

        def twice(x):
            return x * 2.0

        assert not hasattr(minitf.Tensor, "twice") and not hasattr(minitf, "twice")
        op_table.OPS = op_table.OPS + (op_table.Op("twice", twice),)
        importlib.reload(minitf.autograd)
        importlib.reload(minitf)
        t = minitf.tensor([1.0, 2.5])
        assert t.twice().tolist() == [2.0, 5.0] and minitf.twice(t).tolist() == [2.0, 5.0]
        assert minitf.autograd.twice is twice and "twice" in minitf.autograd.__all__
        assert "twice" in minitf.__all__
        from minitf import twice as imported
        assert imported is twice
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

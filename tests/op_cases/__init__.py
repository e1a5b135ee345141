"""Registries of op cases for the generic checks that tests/functional/test_op_properties.py runs.

Each module here describes ops once with `minitf.testing` (a hypothesis strategy of `OpCase`s, or
fixed `OpCase`s with a PyTorch counterpart) and exports `OPS`, a list of `OpTest`s;
test_op_properties.py finds every module of this package, so a new registry needs no other edit.
These are not test modules: test modules import their strategies and references from here,
never from each other.
"""

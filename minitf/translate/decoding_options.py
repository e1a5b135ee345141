"""The range of each decoding option, checked in one place for `minitf translate`/`evaluate` and the
Python API (Translator.translate, translate_ids, greedy_decode, beam_search).

A value outside its range would not fail loudly later: a length penalty of 1000 overflows
((5 + n) / 6) ** alpha, one of -1000 underflows it to 0 (every score -inf: empty output), and a
nan or 1e300 length limit turns into garbage when cast to an integer (empty outputs again).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping

from ..errors import ConfigError

LENGTH_PENALTY_RANGE = (-5.0, 5.0)
"""GNMT's alpha is typically 0 .. 2; within +-5 the penalty of any length a model allows
(LIMITS["max_len"] tokens) stays far from float64 overflow and underflow."""


def _integer(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low


def _number(low: float, high: float = math.inf) -> Callable[[Any], bool]:
    return lambda v: (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                      and low <= v <= high)


_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "beam_size": (_integer(1), "an integer >= 1"),
    "batch_size": (_integer(1), "an integer >= 1"),
    "length_penalty": (_number(*LENGTH_PENALTY_RANGE),
                       "a finite number in [{:g}, {:g}]".format(*LENGTH_PENALTY_RANGE)),
    "max_len_a": (_number(0.0), "a finite number >= 0"),
    "max_len_b": (_number(0.0), "a finite number >= 0"),
    "max_len": (lambda v: v is None or _integer(0)(v), "None or an integer >= 0"),
}


def check_decoding_options(names: Mapping[str, str] | None = None, **options: Any) -> None:
    """Raise ConfigError (a ValueError) naming the first option outside its range and its value.

    `options`: any of beam_size, batch_size, length_penalty, max_len_a, max_len_b, max_len;
    `names` maps an option to the name the user gave it (a CLI flag such as "--beam").
    """
    for key, value in options.items():
        if key not in _RULES:
            raise TypeError(f"unknown decoding option {key!r}; the options are {', '.join(_RULES)}")
        valid, rule = _RULES[key]
        if not valid(value):
            shown = repr(value) if isinstance(value, str) else str(value)
            raise ConfigError(f"{(names or {}).get(key, key)} must be {rule}, got {shown[:60]}")

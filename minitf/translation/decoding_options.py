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


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _integer(low: int) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and v >= low


def _number(low: float, high: float = math.inf) -> Callable[[Any], bool]:
    def valid(v: Any) -> bool:
        try:
            v = float(v)  # an int too large for a float (10**400) overflows here: not a finite number
        except OverflowError:
            return False
        return math.isfinite(v) and low <= v <= high
    return valid


# option: (the types it takes, as said in a message; its range; the range in words)
_RULES: dict[str, tuple[str, Callable[[Any], bool], str]] = {
    "beam_size": ("an int", _integer(1), "an integer >= 1"),
    "batch_size": ("an int", _integer(1), "an integer >= 1"),
    "length_penalty": ("a float or int", _number(*LENGTH_PENALTY_RANGE),
                       "a finite number in [{:g}, {:g}]".format(*LENGTH_PENALTY_RANGE)),
    "max_len_a": ("a float or int", _number(0.0), "a finite number >= 0"),
    "max_len_b": ("a float or int", _number(0.0), "a finite number >= 0"),
    "max_len": ("None or an int", lambda v: v is None or _integer(0)(v), "None or an integer >= 0"),
    "nbest": ("None or an int", lambda v: v is None or _integer(1)(v), "None or an integer >= 1"),
}


def _shown(value: Any) -> str:
    """The value for a message: a string quoted, a huge integer by its size (str() refuses > 4300 digits)."""
    if _is_int(value) and abs(value).bit_length() > 200:
        return f"an integer of {abs(value).bit_length() * 30103 // 100000 + 1} digits"
    return (repr(value) if isinstance(value, str) else str(value))[:60]


def check_decoding_options(names: Mapping[str, str] | None = None, **options: Any) -> None:
    """Raise ConfigError (a ValueError) naming the first option outside its range and its value.

    `options`: any of beam_size, batch_size, length_penalty, max_len_a, max_len_b, max_len, nbest
    (which may not exceed beam_size when both are given);
    `names` maps an option to the name the user gave it (a CLI flag such as "--beam").
    """
    for key, value in options.items():
        if key not in _RULES:
            raise TypeError(f"unknown decoding option {key!r}; the options are {', '.join(_RULES)}")
        kind, valid, rule = _RULES[key]
        name = (names or {}).get(key, key)
        if not (value is None or _is_number(value)):  # Decimal, str ...: not a range problem
            raise ConfigError(f"{name} must be {kind}, got {type(value).__name__}")
        if not valid(value):
            raise ConfigError(f"{name} must be {rule}, got {_shown(value)}")
    nbest, beam = options.get("nbest"), options.get("beam_size")
    if nbest is not None and beam is not None and nbest > beam:
        names = names or {}
        raise ConfigError(f"{names.get('nbest', 'nbest')} {nbest} is more than {names.get('beam_size', 'beam_size')} "
                          f"{beam}: beam search keeps only {beam} hypotheses (raise the beam size to at least {nbest})")

"""The range of each decoding option, checked in one place for `minitf translate`/`evaluate` and the
Python API (Translator.translate, translate_ids, greedy_decode, beam_search).

A value outside its range would not fail loudly later: a length penalty of 1000 overflows
((5 + n) / 6) ** alpha, one of -1000 underflows it to 0 (every score -inf: empty output), and a
nan or 1e300 length limit turns into garbage when cast to an integer (empty outputs again).
"""
from __future__ import annotations

import argparse
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
    "no_repeat_ngram_size": ("an int", _integer(0), "an integer >= 0 (0: off)"),
    # sampling (translate_ids with sample=True); None: the default (temperature 1, no top-k, top-p 1, seed 0)
    "temperature": ("None or a float or int", lambda v: v is None or (_number(0.0)(v) and v > 0),
                    "a finite number > 0"),
    "top_k": ("None or an int", lambda v: v is None or _integer(1)(v), "an integer >= 1"),
    "top_p": ("None or a float or int", lambda v: v is None or (_number(0.0, 1.0)(v) and v > 0), "a number in (0, 1]"),
    "seed": ("None or an int", lambda v: v is None or _integer(0)(v), "an integer >= 0"),
}
SAMPLING = ("temperature", "top_k", "top_p", "seed")  # the fields of sampling.Sampling

# The CLI flag of each option (translate, evaluate)
FLAGS = {"beam_size": "--beam", "batch_size": "--batch-size", "length_penalty": "--length-penalty",
         "max_len_a": "--max-len-a", "max_len_b": "--max-len-b", "nbest": "--nbest",
         "no_repeat_ngram_size": "--no-repeat-ngram-size", "sample": "--sample", "temperature": "--temperature",
         "top_k": "--top-k", "top_p": "--top-p", "seed": "--seed"}


def _shown(value: Any) -> str:
    """The value for a message: a string quoted, a huge integer by its size (str() refuses > 4300 digits)."""
    if _is_int(value) and abs(value).bit_length() > 200:
        return f"an integer of {abs(value).bit_length() * 30103 // 100000 + 1} digits"
    return (repr(value) if isinstance(value, str) else str(value))[:60]


def check_decoding_options(names: Mapping[str, str] | None = None, **options: Any) -> None:
    """Raise ConfigError (a ValueError) naming the first option outside its range and its value.

    `options`: any of beam_size, batch_size, length_penalty, max_len_a, max_len_b, max_len, nbest
    (which may not exceed beam_size when both are given), no_repeat_ngram_size, and sample with
    its options (temperature, top_k, top_p, seed: given only with sample=True, never with beam_size > 1 or nbest);
    `names` maps an option to the name the user gave it (a CLI flag such as "--beam").
    """
    names = names or {}
    sample = options.pop("sample", False)
    if not isinstance(sample, bool):
        raise ConfigError(f"{names.get('sample', 'sample')} must be True or False, got {type(sample).__name__}")
    for key, value in options.items():
        if key not in _RULES:
            raise TypeError(f"unknown decoding option {key!r}; the options are {', '.join(_RULES)}")
        kind, valid, rule = _RULES[key]
        name = names.get(key, key)
        if not (value is None or _is_number(value)):  # Decimal, str ...: not a range problem
            raise ConfigError(f"{name} must be {kind}, got {type(value).__name__}")
        if not valid(value):
            raise ConfigError(f"{name} must be {rule}, got {_shown(value)}")
    _check_sampling(names, sample, options)
    nbest, beam = options.get("nbest"), options.get("beam_size")
    if nbest is not None and beam is not None and nbest > beam:
        raise ConfigError(f"{names.get('nbest', 'nbest')} {nbest} is more than {names.get('beam_size', 'beam_size')} "
                          f"{beam}: beam search keeps only {beam} hypotheses (raise the beam size to at least {nbest})")


def _check_sampling(names: Mapping[str, str], sample: bool, options: Mapping[str, Any]) -> None:
    flag = names.get("sample", "sample")
    if not sample:
        given = [key for key in SAMPLING if options.get(key) is not None]
        if given:
            raise ConfigError(f"{names.get(given[0], given[0])} applies only to sampling: give {flag} too")
        return
    beam, nbest = options.get("beam_size"), options.get("nbest")
    if beam is not None and beam > 1:
        beam_name = names.get("beam_size", "beam_size")
        raise ConfigError(f"{flag} draws one translation token by token: not with {beam_name} {beam} "
                          "(beam search; use 1)")
    if nbest is not None:
        raise ConfigError(f"{flag} draws one translation per sentence: not with {names.get('nbest', 'nbest')}")


def add_flags(p: argparse.ArgumentParser, sampling: bool = False) -> None:
    """The decoding flags of `minitf translate` and `evaluate` (with `sampling`: --sample and its options)."""
    p.add_argument("--beam", type=int, help="beam size (1 = greedy; default 5, 1 with --sample)")
    p.add_argument("--length-penalty", type=float, default=0.6, help="GNMT alpha for beam search, in [{:g}, {:g}] "
                   "(default 0.6)".format(*LENGTH_PENALTY_RANGE))
    p.add_argument("--max-len-a", type=float, default=1.5,
                   help="output length limit: A * source tokens + B (default A 1.5, B 10)")
    p.add_argument("--max-len-b", type=float, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-repeat-ngram-size", type=int, default=0, metavar="N",
                   help="never repeat an N-gram within a translation (default 0: off)")
    if sampling:
        p.add_argument("--sample", action="store_true", help="draw each token from the model's distribution "
                       "instead of searching (e.g. for back-translation); greedy only, not with --nbest")
        p.add_argument("--temperature", type=float, metavar="T",
                       help="with --sample: divide the logits by T > 0 (default 1)")
        p.add_argument("--top-k", type=int, metavar="K", help="with --sample: draw among the K most likely tokens only")
        p.add_argument("--top-p", type=float, metavar="P", help="with --sample: draw among the smallest set of most "
                       "likely tokens of probability >= P, in (0, 1] (default 1)")
        p.add_argument("--seed", type=int, help="with --sample: the seed of the draws (default 0)")


def options_from_args(args: argparse.Namespace) -> dict:
    """The decoding flags as options of Translator.translate, checked (ConfigError names a flag): an option
    left at its default that older minitf did not have is left out (evaluate reports the options)."""
    sample = bool(getattr(args, "sample", False))
    options = dict(beam_size=args.beam if args.beam is not None else (1 if sample else 5), batch_size=args.batch_size,
                   length_penalty=args.length_penalty, max_len_a=args.max_len_a, max_len_b=args.max_len_b)
    if args.no_repeat_ngram_size != 0:
        options["no_repeat_ngram_size"] = args.no_repeat_ngram_size
    extra = {key: getattr(args, key, None) for key in SAMPLING}
    check_decoding_options(FLAGS, sample=sample, **options, **extra, nbest=getattr(args, "nbest", None))
    if sample:
        options.update(sample=True, **{key: value for key, value in extra.items() if value is not None})
    return options

"""A built-in synthetic translation task: English number words -> German number words.

No data files are needed, so demos and tests can train offline.

Conventions (fixed, so the task is deterministic):

* English: lowercase, American style without "and", tens and units hyphenated,
  words separated by single spaces::

      21406 -> "twenty-one thousand four hundred six"
      100   -> "one hundred"

* German: lowercase, written as one word as Germans do, always with the explicit
  "ein" for one hundred / one thousand; "eins" only when it ends the number::

      21406 -> "einundzwanzigtausendvierhundertsechs"
      101   -> "einhunderteins"
      1000  -> "eintausend"

  German puts the units before the tens ("einundzwanzig" = one-and-twenty), so a
  model must reorder, not just copy word by word.

Both functions support 0 <= n <= 999_999.
"""

from __future__ import annotations

import operator

import numpy as np

MAX_SUPPORTED = 999_999
"""Largest number :func:`english_number` and :func:`german_number` can spell."""

DEFAULT_SPLIT_SIZES = {"train": 20_000, "val": 500, "test": 1_000}
"""Default split sizes of :func:`number_translation_task`."""

_EN_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()

_DE_UNITS = (
    "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn "
    "vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn"
).split()
_DE_TENS = "_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split()


def _check_number(n: int) -> int:
    """Return ``n`` as a Python int, or raise if it is not an integer in range."""
    if isinstance(n, bool):
        raise TypeError("expected an integer, got a bool")
    value = operator.index(n)  # accepts numpy integers, rejects floats
    if not 0 <= value <= MAX_SUPPORTED:
        raise ValueError(f"number must be in 0..{MAX_SUPPORTED}, got {value}")
    return value


def _english_below_1000(n: int) -> str:
    """Spell 1 <= n <= 999 in English."""
    hundreds, rest = divmod(n, 100)
    words = [f"{_EN_UNITS[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, units = divmod(rest, 10)
        words.append(_EN_TENS[tens] + (f"-{_EN_UNITS[units]}" if units else ""))
    elif rest:
        words.append(_EN_UNITS[rest])
    return " ".join(words)


def english_number(n: int) -> str:
    """Spell ``n`` (0..999_999) in English, e.g. 21406 -> "twenty-one thousand four hundred six"."""
    n = _check_number(n)
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = [f"{_english_below_1000(thousands)} thousand"] if thousands else []
    if rest:
        words.append(_english_below_1000(rest))
    return " ".join(words)


def _german_below_100(n: int, final: bool) -> str:
    """Spell 1 <= n <= 99 in German; ``final`` selects "eins" over "ein" for n == 1."""
    if n == 1:
        return "eins" if final else "ein"
    if n < 20:
        return _DE_UNITS[n]
    tens, units = divmod(n, 10)
    if units == 0:
        return _DE_TENS[tens]
    return _german_below_100(units, final=False) + "und" + _DE_TENS[tens]


def _german_below_1000(n: int, final: bool) -> str:
    """Spell 1 <= n <= 999 in German as one word ("einhundert", not "hundert")."""
    hundreds, rest = divmod(n, 100)
    head = _german_below_100(hundreds, final=False) + "hundert" if hundreds else ""
    return head + (_german_below_100(rest, final) if rest else "")


def german_number(n: int) -> str:
    """Spell ``n`` (0..999_999) in German as one word.

    E.g. 21406 -> "einundzwanzigtausendvierhundertsechs", 101 -> "einhunderteins".
    """
    n = _check_number(n)
    if n == 0:
        return "null"
    thousands, rest = divmod(n, 1000)
    head = _german_below_1000(thousands, final=False) + "tausend" if thousands else ""
    return head + (_german_below_1000(rest, final=True) if rest else "")


def _digit_classes(max_value: int) -> list[tuple[int, int]]:
    """Inclusive ranges of numbers with 1, 2, ... digits, clipped to ``max_value``."""
    ranges = []
    low = 0
    digits = 1
    while low <= max_value:
        high = min(10**digits - 1, max_value)
        ranges.append((low, high))
        low, digits = 10**digits, digits + 1
    return ranges


def _balanced_quotas(total: int, capacities: list[int]) -> list[int]:
    """Split ``total`` into per-class counts as evenly as the class capacities allow.

    Classes that are too small (e.g. the ten 1-digit numbers) take everything they
    have; the rest is shared evenly among the larger classes.
    """
    if total > sum(capacities):
        raise ValueError(f"cannot draw {total} distinct numbers from {sum(capacities)}")
    quotas = [0] * len(capacities)
    remaining = total
    while remaining:
        open_classes = [i for i, cap in enumerate(capacities) if quotas[i] < cap]
        share = max(1, remaining // len(open_classes))
        for i in open_classes:
            extra = min(capacities[i] - quotas[i], share, remaining)
            quotas[i] += extra
            remaining -= extra
            if not remaining:
                break
    return quotas


def sample_distinct_numbers(
    count: int, max_value: int = MAX_SUPPORTED, *, seed: int = 0, balance_digits: bool = True
) -> np.ndarray:
    """Draw ``count`` distinct numbers from 0..max_value, in random order.

    With ``balance_digits`` the numbers are spread evenly over digit counts (as many
    1-digit as 2-digit as ... 6-digit numbers, where a class is too small all its
    numbers are taken), so small numbers are not drowned out by the 900,000 six-digit
    ones. Otherwise the draw is uniform over 0..max_value.

    Returns:
        int64 array of shape (count,), deterministic for a given seed.
    """
    if not 0 <= max_value <= MAX_SUPPORTED:
        raise ValueError(f"max_value must be in 0..{MAX_SUPPORTED}, got {max_value}")
    if count < 0 or count > max_value + 1:
        raise ValueError(f"cannot draw {count} distinct numbers from 0..{max_value}")
    rng = np.random.default_rng(seed)
    if not balance_digits:
        return rng.choice(max_value + 1, size=count, replace=False).astype(np.int64)
    classes = _digit_classes(max_value)
    quotas = _balanced_quotas(count, [high - low + 1 for low, high in classes])
    parts = [
        low + rng.choice(high - low + 1, size=quota, replace=False)
        for (low, high), quota in zip(classes, quotas)
    ]
    return rng.permutation(np.concatenate(parts)).astype(np.int64)


def number_splits(
    n_train: int = DEFAULT_SPLIT_SIZES["train"],
    n_val: int = DEFAULT_SPLIT_SIZES["val"],
    n_test: int = DEFAULT_SPLIT_SIZES["test"],
    max_value: int = MAX_SUPPORTED,
    seed: int = 0,
    *,
    balance_digits: bool = True,
) -> dict[str, np.ndarray]:
    """Disjoint random sets of numbers for the "train", "val" and "test" splits.

    Returns:
        dict of int64 arrays with shapes (n_train,), (n_val,), (n_test,); no number
        occurs in two splits. See :func:`sample_distinct_numbers` for the sampling.
    """
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    for name, size in sizes.items():
        if size < 0:
            raise ValueError(f"n_{name} must be >= 0, got {size}")
    numbers = sample_distinct_numbers(
        sum(sizes.values()), max_value, seed=seed, balance_digits=balance_digits
    )
    bounds = np.cumsum([0, n_train, n_val, n_test])
    return {name: numbers[bounds[i] : bounds[i + 1]] for i, name in enumerate(sizes)}


def number_translation_task(
    n_train: int = DEFAULT_SPLIT_SIZES["train"],
    n_val: int = DEFAULT_SPLIT_SIZES["val"],
    n_test: int = DEFAULT_SPLIT_SIZES["test"],
    max_value: int = MAX_SUPPORTED,
    seed: int = 0,
    *,
    balance_digits: bool = True,
) -> dict[str, list[tuple[str, str]]]:
    """The English -> German number-words task as (english, german) pairs per split.

    The defaults (20,000 / 500 / 1,000 pairs of numbers up to 999,999) are enough for
    a small Transformer to learn the task well in a few minutes on a CPU: sources
    have at most 7 words (64 characters), targets are one word of at most 65
    characters. Numbers are distinct across all splits, so "val" and "test" measure
    generalisation to unseen numbers. By default they are spread evenly over digit
    counts (see :func:`sample_distinct_numbers`): with the default sizes every
    number below 1,000 is drawn and the rest are ~6,300 each of 4-, 5- and 6-digit
    numbers. Deterministic for a given ``seed``.

    Returns:
        {"train": [...], "val": [...], "test": [...]}, each a list of
        (english, german) string pairs, e.g. ("twenty-one", "einundzwanzig").
    """
    splits = number_splits(
        n_train, n_val, n_test, max_value, seed, balance_digits=balance_digits
    )
    return {
        name: [(english_number(int(n)), german_number(int(n))) for n in numbers]
        for name, numbers in splits.items()
    }

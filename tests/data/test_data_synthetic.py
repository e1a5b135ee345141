"""The synthetic English -> German number-words task."""

import collections

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitf.data import (
    english_number,
    german_number,
    number_splits,
    number_translation_task,
    sample_distinct_numbers,
)

# Hand-verified spellings.
EXAMPLES = [
    (0, "zero", "null"),
    (1, "one", "eins"),
    (7, "seven", "sieben"),
    (11, "eleven", "elf"),
    (12, "twelve", "zwölf"),
    (16, "sixteen", "sechzehn"),
    (17, "seventeen", "siebzehn"),
    (21, "twenty-one", "einundzwanzig"),
    (30, "thirty", "dreißig"),
    (31, "thirty-one", "einunddreißig"),
    (40, "forty", "vierzig"),
    (60, "sixty", "sechzig"),
    (70, "seventy", "siebzig"),
    (71, "seventy-one", "einundsiebzig"),
    (99, "ninety-nine", "neunundneunzig"),
    (100, "one hundred", "einhundert"),
    (101, "one hundred one", "einhunderteins"),
    (111, "one hundred eleven", "einhundertelf"),
    (216, "two hundred sixteen", "zweihundertsechzehn"),
    (1000, "one thousand", "eintausend"),
    (1001, "one thousand one", "eintausendeins"),
    (1100, "one thousand one hundred", "eintausendeinhundert"),
    (17017, "seventeen thousand seventeen", "siebzehntausendsiebzehn"),
    (21406, "twenty-one thousand four hundred six", "einundzwanzigtausendvierhundertsechs"),
    (101000, "one hundred one thousand", "einhunderteintausend"),
    (201001, "two hundred one thousand one", "zweihunderteintausendeins"),
    (
        999999,
        "nine hundred ninety-nine thousand nine hundred ninety-nine",
        "neunhundertneunundneunzigtausendneunhundertneunundneunzig",
    ),
]


@pytest.mark.parametrize("n, english, german", EXAMPLES)
def test_hand_verified_spellings(n, english, german):
    assert english_number(n) == english
    assert german_number(n) == german


def test_accepts_numpy_integers():
    assert german_number(np.int64(21)) == "einundzwanzig"


@pytest.mark.parametrize("bad", [-1, 1_000_000])
def test_out_of_range_raises(bad):
    with pytest.raises(ValueError, match="0..999999"):
        english_number(bad)
    with pytest.raises(ValueError, match="0..999999"):
        german_number(bad)


@pytest.mark.parametrize("bad", [1.0, True, "3"])
def test_non_integers_raise(bad):
    with pytest.raises(TypeError):
        german_number(bad)


def test_spellings_are_unique_over_a_range():
    numbers = range(0, 1_000_000, 37)
    assert len({english_number(n) for n in numbers}) == len(numbers)
    assert len({german_number(n) for n in numbers}) == len(numbers)


@given(st.integers(1, 999), st.integers(0, 999))
def test_german_thousands_compose(thousands, rest):
    n = thousands * 1000 + rest
    head = german_number(thousands * 1000)
    assert head.endswith("tausend")
    expected = head if rest == 0 else head + german_number(rest)
    assert german_number(n) == expected


def test_task_splits_have_requested_sizes_and_are_disjoint():
    task = number_translation_task(n_train=3000, n_val=200, n_test=300, seed=5)
    assert {k: len(v) for k, v in task.items()} == {"train": 3000, "val": 200, "test": 300}
    sources = {name: {src for src, _ in pairs} for name, pairs in task.items()}
    assert all(len(sources[name]) == len(task[name]) for name in task)
    assert not sources["train"] & sources["val"]
    assert not sources["train"] & sources["test"]
    assert not sources["val"] & sources["test"]


def test_task_pairs_are_translations():
    splits = number_splits(50, 10, 10, seed=1)
    task = number_translation_task(50, 10, 10, seed=1)
    for name, numbers in splits.items():
        assert task[name] == [(english_number(n), german_number(n)) for n in numbers]


def test_task_is_deterministic_and_seed_dependent():
    first = number_translation_task(500, 50, 50, seed=3)
    assert number_translation_task(500, 50, 50, seed=3) == first
    assert number_translation_task(500, 50, 50, seed=4) != first


def test_default_sizes():
    splits = number_splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 20_000, "val": 500, "test": 1_000}
    assert len(np.unique(np.concatenate(list(splits.values())))) == 21_500


def test_digit_balancing_includes_small_numbers():
    numbers = sample_distinct_numbers(6000, seed=0)
    by_digits = collections.Counter(len(str(n)) for n in numbers)
    # 1-, 2- and 3-digit classes are exhausted (10 + 90 + 900); the rest share evenly.
    assert by_digits[1] == 10 and by_digits[2] == 90 and by_digits[3] == 900
    assert [by_digits[d] for d in (4, 5, 6)] == [1667, 1667, 1666]
    assert len(set(numbers.tolist())) == 6000


def test_uniform_sampling_is_mostly_six_digits():
    numbers = sample_distinct_numbers(2000, seed=0, balance_digits=False)
    assert (numbers >= 100_000).mean() > 0.8


def test_max_value_bounds_the_numbers_and_can_use_all():
    numbers = sample_distinct_numbers(100, max_value=99, seed=2)
    assert sorted(numbers.tolist()) == list(range(100))
    task = number_translation_task(80, 10, 10, max_value=99)
    assert sum(len(v) for v in task.values()) == 100


def test_too_many_numbers_raises():
    with pytest.raises(ValueError, match="distinct"):
        number_splits(90, 10, 1, max_value=99)
    with pytest.raises(ValueError, match="max_value"):
        number_splits(1, 1, 1, max_value=1_000_000)


@given(st.integers(0, 5000), st.integers(0, 999_999), st.integers(0, 2**32))
def test_sampling_is_distinct_in_range_and_exact_size(count, max_value, seed):
    count = min(count, max_value + 1)
    numbers = sample_distinct_numbers(count, max_value, seed=seed)
    assert numbers.dtype == np.int64 and numbers.shape == (count,)
    assert len(np.unique(numbers)) == count
    assert count == 0 or (numbers.min() >= 0 and numbers.max() <= max_value)

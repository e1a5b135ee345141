"""Decoding options out of range are one ConfigError naming the option and value, the same from the
Python API and the CLI; in range, even extreme values decode without overflow or a bad cast."""
from __future__ import annotations

import math
from decimal import Decimal
import warnings

import numpy as np
import pytest

from minitf.cli import main
from minitf.errors import ConfigError
from minitf.nn import Seq2SeqTransformer
from minitf.translation.decode import beam_search, greedy_decode, length_limits, translate_ids
from minitf.translation.decoding_options import LENGTH_PENALTY_RANGE
from minitf.translation.translator import Translator
from tiny_runs import TINY_MODEL_CONFIG, TINY_TOKENIZER

BAD = [("length_penalty", 1000.0), ("length_penalty", -1000.0), ("length_penalty", math.nan),
       ("length_penalty", math.inf), ("max_len_a", math.nan), ("max_len_a", -1.0), ("max_len_a", math.inf),
       ("max_len_b", math.nan), ("max_len_b", -0.5), ("beam_size", 0), ("beam_size", 2.5), ("batch_size", 0)]


@pytest.fixture(scope="module")
def translator():
    return Translator(Seq2SeqTransformer(TINY_MODEL_CONFIG), TINY_TOKENIZER)


def src_and_mask(translator, sentences=("one two", "three")):
    ids = [translator.tokenizer.encode(s) for s in sentences]
    width = max(map(len, ids))
    src = np.array([s + [TINY_MODEL_CONFIG.pad_id] * (width - len(s)) for s in ids], dtype=np.int64)
    return src, src != TINY_MODEL_CONFIG.pad_id


@pytest.mark.parametrize("option, value", BAD, ids=[f"{o}={v}" for o, v in BAD])
def test_an_option_out_of_range_is_one_config_error_naming_it_in_every_entry_point(translator, option, value):
    message = rf"^{option} must be .*, got {value}"
    with pytest.raises(ConfigError, match=message):
        translator.translate(["one", "two"], **{"beam_size": 2, option: value})
    if option == "batch_size":
        return
    model, (src, mask) = translator.model, src_and_mask(translator)
    ids = dict(bos_id=translator.bos_id, eos_id=translator.eos_id)
    with pytest.raises(ConfigError, match=message):
        beam_search(model, src, mask, **ids, **{"beam_size": 2, option: value})
    if option not in ("length_penalty", "beam_size"):
        with pytest.raises(ConfigError, match=message):
            greedy_decode(model, src, mask, **ids, **{option: value})
    with pytest.raises(ConfigError, match=message):  # greedy ignores length_penalty, but it is still wrong
        translate_ids(model, [[5, 6]], pad_id=translator.pad_id, **ids, **{"beam_size": 1, option: value})


@pytest.mark.parametrize("flag, value, rule", [
    ("--length-penalty", "1000", "a finite number in \\[-5, 5\\], got 1000.0"),
    ("--length-penalty", "-1000", "a finite number in \\[-5, 5\\], got -1000.0"),
    ("--max-len-a", "nan", "a finite number >= 0, got nan"),
    ("--beam", "0", "an integer >= 1, got 0"),
])
def test_the_cli_names_the_flag(capsys, tmp_path, flag, value, rule):
    assert main(["translate", "--checkpoint", str(tmp_path / "none.safetensors"), flag, value]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"minitf: error: {flag} must be ") and rule.replace("\\", "") in err[0]


def test_huge_finite_length_limits_are_capped_at_the_models_maximum(translator):
    _, mask = src_and_mask(translator)
    cap = TINY_MODEL_CONFIG.max_len - 1
    for a, b in ((1e300, 0.0), (0.0, 1e30), (1e308, 1e308)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "invalid value encountered in cast"
            assert length_limits(translator.model, mask, a, b).tolist() == [cap, cap]
    assert length_limits(translator.model, mask, 1.5, 1.0).tolist() == [math.floor(1.5 * mask[0].sum() + 1),
                                                                         math.floor(1.5 * mask[1].sum() + 1)]


@pytest.mark.parametrize("alpha", LENGTH_PENALTY_RANGE)
def test_the_extreme_length_penalties_decode_without_overflow(translator, alpha):
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        outputs = translator.translate(["one two", "three"], beam_size=3, length_penalty=alpha,
                                       max_len_a=1e300, max_len_b=1e30)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)


@pytest.mark.parametrize("option, value, message", [
    ("max_len_b", 10**400, "max_len_b must be a finite number >= 0, got an integer of 401 digits"),
    ("max_len_a", -10**5000, "max_len_a must be a finite number >= 0, got an integer of 5001 digits"),
    ("length_penalty", Decimal("0.5"), "length_penalty must be a float or int, got Decimal"),
    ("max_len_a", "1.5", "max_len_a must be a float or int, got str"),
    ("beam_size", Decimal(2), "beam_size must be an int, got Decimal"),
], ids=["10**400", "-10**5000", "Decimal", "str", "Decimal-beam"])
def test_a_value_of_the_wrong_type_or_too_large_for_a_float_is_a_config_error_saying_so(translator, option,
                                                                                       value, message):
    with pytest.raises(ConfigError) as info:
        translator.translate(["one"], **{option: value})
    assert str(info.value) == message


def test_an_unknown_option_is_a_type_error_naming_it(translator):
    with pytest.raises(TypeError, match="unknown decoding option 'max_length'"):
        translate_ids(translator.model, [[5]], bos_id=1, eos_id=2, pad_id=0, max_length=3)

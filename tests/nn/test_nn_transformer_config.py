"""TransformerConfig's checks (types, MODEL_LIMITS, cross-field rules) and the parameter layout
(parameter_shapes, tied_names) that the model states beside itself."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minitf.errors import ConfigError
from minitf.nn import Seq2SeqTransformer, TransformerConfig
from minitf.nn.transformer import MODEL_LIMITS, parameter_shapes, tied_names


@st.composite
def small_configs(draw) -> TransformerConfig:
    heads = draw(st.integers(1, 3))
    share = draw(st.booleans())
    tgt_vocab = draw(st.integers(1, 9))
    src_vocab = tgt_vocab if share else draw(st.integers(1, 9))
    return TransformerConfig(
        src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab,
        d_model=heads * draw(st.integers(1, 3)), n_heads=heads, n_encoder_layers=draw(st.integers(0, 2)),
        n_decoder_layers=draw(st.integers(0, 2)), d_ff=draw(st.integers(1, 5)), dropout=draw(st.sampled_from([0, 0.5])),
        activation=draw(st.sampled_from(["relu", "gelu"])), norm_first=draw(st.booleans()),
        max_len=draw(st.integers(1, 6)), pad_id=draw(st.integers(0, min(src_vocab, tgt_vocab) - 1)),
        share_embeddings=share, tie_output=draw(st.booleans()))


@settings(max_examples=40, deadline=None)
@given(small_configs())
def test_parameter_layout_is_the_built_models(config):
    model = Seq2SeqTransformer(config)
    assert list(parameter_shapes(config).items()) == [(n, p.shape) for n, p in model.named_parameters()]
    state = model.state_dict()
    aliases = tied_names(config)
    assert sorted(set(state) - set(parameter_shapes(config))) == sorted(aliases)  # each extra name is a tie
    for alias, name in aliases.items():
        assert state[alias] is state[name]
    assert ("output_weight" in parameter_shapes(config)) == (not config.tie_output)


@pytest.mark.parametrize("changes, message", [
    ({"d_model": 0}, "TransformerConfig.d_model must be an integer in 1 .. 65536, got 0"),
    ({"d_model": True}, "TransformerConfig.d_model must be an integer, got bool True"),
    ({"n_heads": 4.0}, "TransformerConfig.n_heads must be an integer, got float 4.0"),
    ({"d_ff": MODEL_LIMITS["d_ff"] + 1}, "TransformerConfig.d_ff must be an integer in 1 .. 262144, got 262145"),
    ({"n_encoder_layers": -1}, "TransformerConfig.n_encoder_layers must be an integer in 0 .. 1024, got -1"),
    ({"dropout": float("nan")}, "TransformerConfig.dropout must be a finite number in 0 .. 1, got nan"),
    ({"activation": "tanh"}, "TransformerConfig.activation must be one of ['relu', 'gelu'], got 'tanh'"),
    ({"norm_first": None}, "TransformerConfig.norm_first must be true or false, got null"),
    ({"n_heads": 3}, "n_heads 3 does not divide d_model 16"),
    ({"tgt_vocab_size": 14}, "share_embeddings needs src_vocab_size 13 == tgt_vocab_size 14 (one joint vocabulary)"),
    ({"pad_id": 13}, "pad_id 13 is not below tgt_vocab_size 13"),
    ({"pad_id": 9, "src_vocab_size": 9, "share_embeddings": False}, "pad_id 9 is not below src_vocab_size 9"),
    ({"max_len": 1 << 16, "d_model": 1 << 13, "n_heads": 1}, "max_len 65536 x d_model 8192 exceeds the limit of "
                                                            "268,435,456 position values"),
])
def test_config_is_checked_when_made_and_when_built(changes, message):
    good = dict(src_vocab_size=13, tgt_vocab_size=13, d_model=16, n_heads=4, n_encoder_layers=1,
                n_decoder_layers=1, d_ff=8, max_len=12)
    with pytest.raises(ConfigError, match=re.escape(message)):
        TransformerConfig(**{**good, **changes})
    config = TransformerConfig(**good)
    for name, value in changes.items():
        setattr(config, name, value)  # changed after it was made: the model checks again
    with pytest.raises(ValueError, match=re.escape(message)):
        Seq2SeqTransformer(config)


def test_limits_themselves_are_accepted():
    config = TransformerConfig(MODEL_LIMITS["vocab_size"], MODEL_LIMITS["vocab_size"], d_model=1 << 12, n_heads=1,
                               n_encoder_layers=MODEL_LIMITS["layers"], d_ff=MODEL_LIMITS["d_ff"],
                               max_len=MODEL_LIMITS["position_table"] >> 12, pad_id=MODEL_LIMITS["vocab_size"] - 1,
                               dropout=1.0)
    assert dataclasses.replace(config, share_embeddings=False, src_vocab_size=1, pad_id=0).src_vocab_size == 1
    assert parameter_shapes(config)["tgt_embed.weight"] == (1 << 20, 1 << 12)


def test_to_dict_round_trips():
    config = TransformerConfig(7, 7, d_model=8, n_heads=2, dropout=0)
    assert TransformerConfig(**config.to_dict()) == config
    assert tied_names(config) == {"src_embed.weight": "tgt_embed.weight"}
    assert tied_names(dataclasses.replace(config, share_embeddings=False)) == {}
    assert np.prod(parameter_shapes(config)["encoder_layers.0.ff.linear1.weight"]) == 1024 * 8

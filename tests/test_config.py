"""minitf.config: a config dataclass's fields are the one source of its checks, from_dict, flags and tags."""
import argparse
import dataclasses
import math
import re
from dataclasses import dataclass

import pytest

from minitf.config import (add_flags, check, defaults, fields_with, from_dict, given_flags, setting, setting_like,
                           spec_of)
from minitf.errors import ConfigError
from minitf.nn.transformer import MODEL_LIMITS, TransformerConfig


class FileError(ValueError):
    """Stands for a caller's own error class (e.g. CheckpointError)."""


@dataclass
class Run:
    data: str | None = setting(None, help="training file")
    lr: float = setting(1e-3, above=0, help="peak rate, 100% after warmup")
    dropout: float = setting(0.1, low=0, below=1)
    layers: int = setting(3, low=1, high=64, fixed_on_resume=True)
    max_steps: int | None = setting(None, low=0)
    time_limit: float | None = setting(None, low=0)
    sizes: tuple[int, int, int] = setting((20, 5, 5), low=1, fixed_on_resume=True)
    metric: str = setting("bleu", choices=("bleu", "chrf"))
    pre_norm: bool = setting(False, help="pre-norm layers")
    log_every: int = setting(50, low=1, flag=False)
    history: list = setting(default_factory=list, flag=False)

    def __post_init__(self) -> None:
        check(self)
        self.validate()

    def validate(self) -> None:
        if self.layers > 8 and self.pre_norm:
            raise ConfigError(f"pre_norm takes at most 8 layers, got {self.layers}")


# ---- check and from_dict -----------------------------------------------------------------------

@pytest.mark.parametrize("values, message", [
    ({"lr": 0.0}, "my.json: setting 'lr' must be a finite number > 0, got 0.0"),
    ({"lr": math.nan}, "setting 'lr' must be a finite number > 0, got nan"),
    ({"lr": math.inf}, "setting 'lr' must be a finite number > 0, got inf"),
    ({"lr": True}, "setting 'lr' must be a number, got bool True"),
    ({"lr": "0.1"}, "setting 'lr' must be a number, got str '0.1'"),
    ({"dropout": 1.0}, "setting 'dropout' must be a finite number in [0, 1), got 1.0"),
    ({"dropout": -0.5}, "setting 'dropout' must be a finite number in [0, 1), got -0.5"),
    ({"layers": 0}, "setting 'layers' must be an integer in 1 .. 64, got 0"),
    ({"layers": 65}, "setting 'layers' must be an integer in 1 .. 64, got 65"),
    ({"layers": 10 ** 400}, "setting 'layers' must be an integer in 1 .. 64, got 1000"),
    ({"layers": True}, "setting 'layers' must be an integer, got bool True"),
    ({"layers": 2.0}, "setting 'layers' must be an integer, got float 2.0"),
    ({"layers": None}, "setting 'layers' must be an integer, got null"),
    ({"max_steps": 2.0}, "setting 'max_steps' must be an integer or null, got float 2.0"),
    ({"max_steps": -1}, "setting 'max_steps' must be an integer >= 0, got -1"),
    ({"max_steps": 10 ** 309}, "setting 'max_steps' must be an integer of at most 1e308 in size, got 1000"),
    ({"lr": 10 ** 309}, "setting 'lr' must be a number of at most 1e308 in size, got 1000"),  # no float()
    ({"time_limit": math.nan}, "setting 'time_limit' must be a finite number >= 0, got nan"),
    ({"sizes": [1, 2]}, "setting 'sizes' must be a list of 3 integers, got list [1, 2]"),
    ({"sizes": "123"}, "setting 'sizes' must be a list of 3 integers, got str '123'"),
    ({"sizes": [1, "2", 3]}, "setting 'sizes[1]' must be an integer, got str '2'"),
    ({"sizes": [1, 2, 0]}, "setting 'sizes[2]' must be an integer >= 1, got 0"),
    ({"metric": "loss"}, "setting 'metric' must be one of ['bleu', 'chrf'], got 'loss'"),
    ({"pre_norm": 1}, "setting 'pre_norm' must be true or false, got int 1"),
    ({"data": 3}, "setting 'data' must be a string or null, got int 3"),
    ({"history": {}}, "setting 'history' must be a list, got dict {}"),
    ({"d_modle": 3, "lr": 0.1}, "my.json: unknown setting 'd_modle'; known: data, lr, dropout"),
    ({"layers": 9, "pre_norm": True}, "my.json: pre_norm takes at most 8 layers, got 9"),  # validate()
])
def test_from_dict_names_source_field_rule_and_value(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict(Run, values, source="my.json")


def test_constructor_checks_through_post_init_with_the_same_messages():
    with pytest.raises(ConfigError, match=re.escape("setting 'layers' must be an integer in 1 .. 64, got 0")):
        Run(layers=0)


def test_from_dict_takes_json_values_and_keeps_the_rest_default():
    run = from_dict(Run, {"sizes": [1, 2, 3], "lr": 1, "max_steps": None, "time_limit": 5})
    assert run.sizes == (1, 2, 3) and isinstance(run.sizes, tuple)
    assert run.lr == 1 and run.max_steps is None and run.time_limit == 5
    assert dataclasses.replace(run, sizes=(1, 2, 3)) == run and run.layers == 3
    assert Run(sizes=[4, 5, 6]).sizes == (4, 5, 6)  # an instance gets the tuple back too


def test_check_returns_checked_values_and_leaves_missing_ones_out():
    assert check({"sizes": [1, 2, 3]}, Run) == {"sizes": (1, 2, 3)}
    assert check({}, Run) == {}


def test_caller_chooses_error_class_source_and_label():
    """How a checkpoint reader names its file and key."""
    with pytest.raises(FileError, match=re.escape("checkpoint a.st: model_config.d_model must be an integer in "
                                                  "1 .. 65536, got 0")):
        from_dict(TransformerConfig, {"src_vocab_size": 5, "tgt_vocab_size": 5, "d_model": 0},
                  source="checkpoint a.st", label="model_config.{}", error=FileError)
    with pytest.raises(FileError, match=re.escape("checkpoint a.st: n_heads 4 does not divide d_model 6")):
        from_dict(TransformerConfig, {"src_vocab_size": 5, "tgt_vocab_size": 5, "d_model": 6},
                  source="checkpoint a.st", label="model_config.{}", error=FileError)
    with pytest.raises(FileError, match=re.escape("checkpoint a.st: model_config.tgt_vocab_size is required")):
        from_dict(TransformerConfig, {"src_vocab_size": 5}, source="checkpoint a.st", label="model_config.{}",
                  error=FileError)
    with pytest.raises(FileError, match=re.escape("checkpoint a.st: unknown model_config.colour; known: src_vocab")):
        check({"colour": 1}, TransformerConfig, source="checkpoint a.st", label="model_config.{}", error=FileError)


def test_numpy_numbers_are_taken_as_python_numbers():
    # as TransformerConfig took them before it checked its fields (a sweep's np.arange, np.load)
    import numpy as np

    values = check({"layers": np.int64(3), "lr": np.float32(0.5), "dropout": np.int32(0)}, Run)
    assert values == {"layers": 3, "lr": 0.5, "dropout": 0} and [type(v) for v in values.values()] == [int, float, int]
    model = TransformerConfig(np.int64(50), np.int64(50), d_model=np.int64(64), dropout=np.float32(0.25))
    assert (model.d_model, model.dropout) == (64, 0.25) and type(model.d_model) is int
    with pytest.raises(ConfigError, match="setting 'layers' must be an integer, got float64"):
        check({"layers": np.float64(3.0)}, Run)
    with pytest.raises(ConfigError, match="setting 'lr' must be a number, got bool"):
        check({"lr": np.True_}, Run)
    with pytest.raises(ConfigError, match="setting 'lr' must be a finite number > 0, got nan"):
        check({"lr": np.float32("nan")}, Run)


def test_unbounded_float_may_allow_infinity():
    @dataclass
    class Score:
        best: float = setting(-math.inf, high=100, finite=False)

    assert check({"best": -math.inf}, Score) == {"best": -math.inf}
    with pytest.raises(ConfigError, match=re.escape("setting 'best' must be a number <= 100, got nan")):
        check({"best": math.nan}, Score)
    with pytest.raises(ConfigError, match=re.escape("setting 'best' must be a number <= 100, got 101")):
        check({"best": 101}, Score)


# ---- tags, defaults, reuse ---------------------------------------------------------------------

def test_fields_with_and_defaults():
    assert fields_with(Run, "fixed_on_resume") == ("layers", "sizes")
    assert fields_with(Run, "no_such_tag") == ()
    values = defaults(Run)
    assert values["lr"] == 1e-3 and values["history"] == [] and values["history"] is not defaults(Run)["history"]
    assert "src_vocab_size" not in defaults(TransformerConfig) and defaults(TransformerConfig)["d_model"] == 256


def test_setting_like_reuses_a_field_with_changes():
    @dataclass
    class Train:
        d_model: int = setting_like(TransformerConfig, "d_model", fixed_on_resume=True)
        n_encoder_layers: int = setting_like(TransformerConfig, "n_encoder_layers", low=1)

    assert Train().d_model == TransformerConfig(3, 3).d_model
    spec = spec_of(dataclasses.fields(Train)[0])
    assert spec.high == MODEL_LIMITS["d_model"] and spec.help == "model width"
    assert spec.tags == {"fixed_on_resume": True}
    assert fields_with(Train, "fixed_on_resume") == ("d_model",)
    assert fields_with(TransformerConfig, "fixed_on_resume") == ()  # the tag is the copy's own
    with pytest.raises(ConfigError, match=re.escape("setting 'n_encoder_layers' must be an integer in 1 .. 1024")):
        from_dict(Train, {"n_encoder_layers": 0})
    assert from_dict(TransformerConfig, {"src_vocab_size": 5, "tgt_vocab_size": 5, "n_encoder_layers": 0})
    with pytest.raises(KeyError, match="no field 'width'"):
        setting_like(TransformerConfig, "width")


# ---- command-line flags ------------------------------------------------------------------------

def parser_for(cls, **options):
    parser = argparse.ArgumentParser(prog="t")
    return parser, add_flags(parser, cls, **options)


def test_flags_from_fields_types_and_defaults_none():
    parser, names = parser_for(Run)
    assert names == ["data", "lr", "dropout", "layers", "max_steps", "time_limit", "sizes", "metric", "pre_norm"]
    args = parser.parse_args(["--lr", "0.5", "--max-steps", "7", "--sizes", "1", "2", "3", "--no-pre-norm",
                              "--data", "a.txt"])
    given = given_flags(args, names)
    assert given == {"data": "a.txt", "lr": 0.5, "max_steps": 7, "sizes": [1, 2, 3], "pre_norm": False}
    assert type(given["lr"]) is float and type(given["max_steps"]) is int
    assert from_dict(Run, given).sizes == (1, 2, 3)
    assert given_flags(parser.parse_args([]), names) == {}
    assert parser.parse_args(["--pre-norm"]).pre_norm is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--layers", "2.5"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--log-every", "3"])  # flag=False


def test_flag_help_shows_help_choices_default_and_other_defaults():
    parser, _ = parser_for(Run, other=Run(lr=0.5, metric="chrf"), other_name="demo")
    text = " ".join(parser.format_help().split())
    assert "--lr LR peak rate, 100% after warmup (default 0.001; demo 0.5)" in text
    assert "--metric METRIC one of bleu, chrf (default bleu; demo chrf)" in text
    assert "--sizes N N N (default 20 5 5)" in text and "[--sizes N N N]" in text
    assert "--dropout DROPOUT (default 0.1)" in text and "demo 0.1" not in text


def test_a_field_added_in_one_place_flows_everywhere():
    """One more field, declared once, shows up in check, from_dict, the flags and fields_with."""
    Longer = dataclasses.make_dataclass(
        "Longer", [("beam", int, setting(4, low=1, high=16, help="beam size", fixed_on_resume=True))], bases=(Run,))
    with pytest.raises(ConfigError, match=re.escape("x: setting 'beam' must be an integer in 1 .. 16, got 0")):
        check({"beam": 0}, Longer, source="x")
    with pytest.raises(ConfigError, match=re.escape("setting 'beam' must be an integer, got bool True")):
        from_dict(Longer, {"beam": True})
    assert from_dict(Longer, {"beam": 8}).beam == 8 and Longer().beam == 4
    with pytest.raises(ConfigError, match="unknown setting 'beam'"):
        from_dict(Run, {"beam": 8})  # the base class does not have it
    parser, names = parser_for(Longer)
    assert names[-1] == "beam" and given_flags(parser.parse_args(["--beam", "2"]), names) == {"beam": 2}
    assert "beam size (default 4)" in parser.format_help()
    assert fields_with(Longer, "fixed_on_resume") == ("layers", "sizes", "beam")
    assert defaults(Longer)["beam"] == 4


@pytest.mark.parametrize("rules, value, text", [
    ({"below": 1}, 1.0, "a finite number < 1"),
    ({"high": 1}, 2.0, "a finite number <= 1"),
    ({"above": 0, "high": 1}, 0.0, "a finite number in (0, 1]"),
    ({"above": 0, "below": 1}, 1.0, "a finite number in (0, 1)"),
    ({"low": 0, "high": 1}, -1.0, "a finite number in 0 .. 1"),
    ({}, math.inf, "a finite number"),
])
def test_range_texts(rules, value, text):
    Ranged = dataclasses.make_dataclass("Ranged", [("x", float, setting(0.5, **rules))])
    with pytest.raises(ConfigError, match=re.escape(f"setting 'x' must be {text}, got {value!r}")):
        check({"x": value}, Ranged)
    assert check({"x": 0.5}, Ranged) == {"x": 0.5}


def test_config_module_needs_only_the_standard_library_and_minitf_errors():
    import ast
    import sys

    import minitf.config

    tree = ast.parse(open(minitf.config.__file__, encoding="utf-8").read())
    imported = {node.module if isinstance(node, ast.ImportFrom) else alias.name
                for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    local = {name for name in imported if name is None or not name.split(".")[0] in sys.stdlib_module_names}
    assert local == {"errors"}, local  # `from .errors import ConfigError`

"""Tokenizer files and a checkpoint's tokenizer are checked before use: patterns and special tokens
capped, nesting that the regex compiler cannot take, types, ids without gaps, the special tokens that
translation needs; each problem is one error naming the source and the field (and one CLI line)."""
from __future__ import annotations

import io
import json
import sys

import pytest

from minitf.cli import main
from minitf.nn import Seq2SeqTransformer, TransformerConfig
from minitf.tokenizer import BPETokenizer, TokenizerFileError
from minitf.tokenizer.patterns import MAX_PATTERN_CHARS
from minitf.tokenizer.vocab import MAX_SPECIAL_TOKEN_CHARS
from minitf.translation.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minitf.translation.tokens import SPECIAL_TOKENS
from hf_files import hf_file, hf_split

NESTED = "(" * 30000 + "a" + ")" * 30000  # 60,001 characters
DEEP = "(" * 500 + "a" + ")" * 500  # within the length cap, but deeper than the regex parser recurses


@pytest.fixture(scope="module")
def tokenizer() -> BPETokenizer:
    return BPETokenizer.train(["a dog runs", "two dogs run"] * 3, 270, special_tokens=SPECIAL_TOKENS)


def write(tmp_path, data: dict, name: str = "tok.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def changed(tokenizer, **changes) -> dict:
    return {**tokenizer.to_dict(), **changes}


# ---- minitf-bpe files --------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"pattern": NESTED}, f"pattern of 60,001 characters is longer than the limit of {MAX_PATTERN_CHARS:,}"),
    ({"pattern": "x" * (MAX_PATTERN_CHARS + 1)}, f"pattern of {MAX_PATTERN_CHARS + 1:,} characters is longer"),
    ({"pattern": DEEP}, "pattern .* of 1,001 characters nests its groups too deeply to compile"),
    ({"pattern": ["gpt2"]}, "pattern must be a string"),
    ({"special_tokens": [["<pad>", 0], ["<bos>", 1], ["x" * (MAX_SPECIAL_TOKEN_CHARS + 1), 2]]},
     f"special token 'xxx.* has {MAX_SPECIAL_TOKEN_CHARS + 1} characters, more than the limit of "
     f"{MAX_SPECIAL_TOKEN_CHARS}"),
    ({"special_tokens": [["<pad>", 0], ["<bos>", 1], [2, 2]]}, r"special_tokens entries must be \[name, id\]"),
    ({"special_tokens": [["<pad>", 0], ["<bos>", 1], ["<eos>", "2"]]}, "special token '<eos>': id must be"),
    ({"byte_ids": [str(i) for i in range(3, 259)]}, "byte 0x00: id must be a non-negative int, got '3'"),
    ({"version": True}, "unsupported minitf-bpe version True"),
    ({"version": 1.0}, "unsupported minitf-bpe version 1.0"),
])
def test_a_bad_field_is_one_tokenizer_file_error_naming_the_file(tokenizer, tmp_path, changes, message):
    path = write(tmp_path, changed(tokenizer, **changes))
    with pytest.raises(TokenizerFileError, match=message) as err:
        BPETokenizer.load(path)
    assert str(err.value).startswith(f"{path}: ")


def test_a_pattern_or_special_token_at_the_cap_is_accepted(tokenizer, tmp_path):
    longest = "<" + "s" * (MAX_SPECIAL_TOKEN_CHARS - 2) + ">"
    data = changed(tokenizer, pattern="a" * (MAX_PATTERN_CHARS - 3) + "|\\s", special_tokens=[
        ["<pad>", 0], ["<bos>", 1], [longest, 2]])
    loaded = BPETokenizer.load(write(tmp_path, data))
    assert loaded.encode(f"x{longest}", allowed_special="all")[-1] == 2


@pytest.mark.parametrize("shift", [1, 5])
def test_ids_with_a_gap_are_refused_naming_the_first_unused_id(tokenizer, shift):
    data = tokenizer.to_dict()
    last = data["merges"][-1]
    data["merges"][-1] = [last[0], last[1], last[2] + shift]  # the last merge's id leaves a hole
    with pytest.raises(TokenizerFileError, match=f"^tok: the ids must run from 0 to {last[2] + shift} without "
                                                 f"gaps, but {shift} are unused, the first is {last[2]}$"):
        BPETokenizer.from_dict(data, source="tok")


def test_an_integer_too_long_for_python_is_a_tokenizer_file_error(tokenizer, tmp_path):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(tokenizer.to_dict()).replace('"version": 1', '"version": ' + "9" * 5000))
    with pytest.raises(TokenizerFileError, match=f"^{path}: not valid JSON: .*4300 digits"):
        BPETokenizer.load(path)


def test_the_tokenizer_commands_print_one_error_line(tokenizer, tmp_path, monkeypatch, capsys):
    for pattern in (NESTED, DEEP):
        path = write(tmp_path, changed(tokenizer, pattern=pattern))
        for command in ("encode", "decode"):
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a dog\n"), "utf-8"))
            assert main(["tokenizer", command, "--tokenizer", str(path)]) == 1
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and err.startswith(f"minitf: error: {path}: pattern ")


# ---- Hugging Face tokenizer.json ------------------------------------------------------------------

@pytest.mark.parametrize("pre_tokenizer, message", [
    ({"type": "Sequence", "pretokenizers": 5}, "pre_tokenizer Sequence pretokenizers must be a list, got 5"),
    ({"type": "Sequence", "pretokenizers": "Split"}, "pretokenizers must be a list, got 'Split'"),
    (hf_split(5), r"pre_tokenizer Split pattern must be \{\"Regex\": string\} or .*, got \{'Regex': 5\}"),
    ({**hf_split("a"), "pretokenizers": [{**hf_split("a")["pretokenizers"][0], "pattern": {"String": 5}},
                                         hf_split("a")["pretokenizers"][1]]}, r"got \{'String': 5\}"),
    ({**hf_split("a"), "pretokenizers": [{**hf_split("a")["pretokenizers"][0], "pattern": "Regex"},
                                         hf_split("a")["pretokenizers"][1]]}, "Split pattern must be .*, got 'Regex'"),
    ({**hf_split("a"), "pretokenizers": [{**hf_split("a")["pretokenizers"][0], "pattern": {
        "String": "x" * (MAX_PATTERN_CHARS + 1)}}, hf_split("a")["pretokenizers"][1]]},
     f"pre_tokenizer Split pattern.String: pattern of {MAX_PATTERN_CHARS + 1:,} characters is longer"),
    (hf_split(NESTED), "pre_tokenizer Split pattern.Regex: pattern of 60,001 characters is longer"),
    (hf_split(DEEP), "pre_tokenizer Split pattern.Regex: pattern .* nests its groups too deeply"),
    ({"type": "ByteLevel", "add_prefix_space": False, "use_regex": "yes"},
     "pre_tokenizer ByteLevel use_regex must be true or false, got 'yes'"),
])
def test_bad_pre_tokenizer_values_are_value_errors_naming_the_field(tmp_path, pre_tokenizer, message):
    path = hf_file(tmp_path, pre_tokenizer=pre_tokenizer)
    with pytest.raises(ValueError, match=message) as err:
        BPETokenizer.from_huggingface(path)
    assert str(err.value).startswith(f"{path}: ")


def test_a_split_string_is_matched_literally(tmp_path):
    split = hf_split("a")
    split["pretokenizers"][0]["pattern"] = {"String": "."}
    tok = BPETokenizer.from_huggingface(hf_file(tmp_path, pre_tokenizer=split))
    assert tok.decode(tok.encode("ab.ab")) == "ab.ab" and tok.encode("ab.ab")[0] == 258


def test_a_long_added_token_is_refused(tmp_path):
    added = [{"id": 0, "content": "<pad>"}, {"id": 1, "content": "x" * (MAX_SPECIAL_TOKEN_CHARS + 1)}]
    with pytest.raises(ValueError, match=f"more than the limit of {MAX_SPECIAL_TOKEN_CHARS}"):
        BPETokenizer.from_huggingface(hf_file(tmp_path, added_tokens=added))


# ---- a checkpoint's tokenizer -----------------------------------------------------------------------

def checkpoint_with(tmp_path, tokenizer_data: dict):
    """A tiny translation checkpoint (model sized to the tokenizer) holding `tokenizer_data`."""
    size = BPETokenizer(special_tokens=SPECIAL_TOKENS).vocab_size
    config = TransformerConfig(src_vocab_size=size, tgt_vocab_size=size, d_model=4, n_heads=2, n_encoder_layers=1,
                               n_decoder_layers=1, d_ff=6, max_len=8, dropout=0.0)
    meta = {"model_config": config.to_dict(), "tokenizer": tokenizer_data}
    return save_checkpoint(tmp_path / "model.safetensors", Seq2SeqTransformer(config).state_dict(), meta)


@pytest.mark.parametrize("specials, missing", [(["<pad>", "<bos>", "<end>"], "<eos>"),
                                               (["<s>", "</s>", "<unk>"], "<pad>, <bos>, <eos>")])
def test_a_checkpoint_tokenizer_without_the_translation_specials_is_refused(tmp_path, specials, missing):
    path = checkpoint_with(tmp_path, BPETokenizer(special_tokens=specials).to_dict())
    with pytest.raises(CheckpointError, match=f"checkpoint {path}: the tokenizer lacks the special token.s. "
                                              f"{missing} "):
        load_checkpoint(path)


@pytest.mark.parametrize("pattern, message", [(NESTED, "is longer than the limit"), (DEEP, "nests its groups")],
                         ids=["long", "deep"])
def test_a_checkpoint_tokenizer_with_a_hostile_pattern_is_refused(tmp_path, pattern, message):
    data = {**BPETokenizer(special_tokens=SPECIAL_TOKENS).to_dict(), "pattern": pattern}
    path = checkpoint_with(tmp_path, data)
    with pytest.raises(CheckpointError, match=f"checkpoint {path}: tokenizer: pattern .*{message}"):
        load_checkpoint(path)


@pytest.mark.parametrize("tokenizer_data", [
    {**BPETokenizer(special_tokens=["<pad>", "<bos>", "<end>"]).to_dict()},
    {**BPETokenizer(special_tokens=SPECIAL_TOKENS).to_dict(), "pattern": DEEP},
])
def test_minitf_translate_reports_a_bad_checkpoint_tokenizer_in_one_line(tmp_path, monkeypatch, capsys,
                                                                         tokenizer_data):
    path = checkpoint_with(tmp_path, tokenizer_data)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"eins zwei\n"), "utf-8"))
    assert main(["translate", "--checkpoint", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"minitf: error: checkpoint {path}: ")

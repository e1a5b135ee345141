"""BPETokenizer files: save/load, to_dict/from_dict, format errors, and the CLI."""

import argparse
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minitf.tokenizer import BPETokenizer, PatternTimeoutError, TokenizerFileError, patterns
from minitf.tokenizer.cli import add_subparser
from hf_files import hf_file, hf_split

ROOT = Path(__file__).resolve().parents[2]

TEXTS = ["Ein Hund läuft über die Wiese.", "A dog runs across the meadow.",
         "Zwei Männer spielen Fußball 🤗", "Two men play soccer\tat 12:30."] * 5


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train(TEXTS, 330, special_tokens=["<pad>", "<eos>"], pattern="gpt2")


def test_save_load_gives_identical_encodings(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tok.merges and loaded.pattern == tok.pattern
    assert loaded.special_tokens == tok.special_tokens and loaded.vocab_size == tok.vocab_size
    for text in TEXTS + ["unseen wörds <eos>", ""]:
        assert loaded.encode(text) == tok.encode(text)
        assert loaded.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def test_file_is_readable_json(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["format"] == "minitf-bpe" and data["version"] == 1
    assert data["special_tokens"] == [["<pad>", 0], ["<eos>", 1]]
    assert data["byte_ids"] == list(range(2, 258))
    first = tok.merges[0]
    assert data["merges"][0] == [tok.id_to_bytes(first[0]).decode("latin-1"),
                                 tok.id_to_bytes(first[1]).decode("latin-1"), 258]
    assert text.count("\n") > len(tok.merges)  # one merge per line


def test_dict_round_trip_through_json(tok):
    data = json.loads(json.dumps(tok.to_dict()))
    again = BPETokenizer.from_dict(data)
    assert again.merges == tok.merges and again.encode(TEXTS[2]) == tok.encode(TEXTS[2])


def test_hugging_face_style_ids_survive_save(tmp_path):
    tok = BPETokenizer([(5, 6, 257)], special_tokens={"<s>": 256}, byte_ids=range(256),
                       pattern="gpt2")
    tok.save(tmp_path / "t.json")
    again = BPETokenizer.load(tmp_path / "t.json")
    assert again.byte_ids == list(range(256)) and again.special_tokens == {"<s>": 256}
    assert again.merges == [(5, 6, 257)] and again.vocab_size == 258


def write(tmp_path, data) -> str:
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def corrupt(tok, **changes):
    data = tok.to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize("change, message", [
    ({"format": "something-else"}, "not a minitf-bpe tokenizer"),
    ({"version": 2}, "unsupported minitf-bpe version 2"),
    ({"merges": [["a", "zz", 258]]}, "merge 0 uses unknown token 'zz'"),
    ({"merges": [["a", "b", "x"]]}, "merge 0"),
    ({"merges": [["a", "b"]]}, r"merge 0 must be \[left, right, new_id\]"),
    ({"merges": [["a", "€", 258]]}, "not Latin-1"),
    ({"byte_ids": [0] * 256}, "already taken"),
    ({"byte_ids": list(range(2, 200))}, "256 ids"),
    ({"special_tokens": [["<pad>", 0], ["<pad>", 1]]}, "duplicate special token"),
    ({"pattern": "(unclosed"}, "does not compile"),
    ({"pattern": "(?:a{500}){500}"}, r"pattern '\(\?:a\{500\}\)\{500\}' repeats too much"),
    ({"pattern": "x" * 100_001}, "pattern of 100,001 characters is longer than the limit"),
    ({"merges": "nope"}, "merges must be a list"),
])
def test_corrupt_files_name_the_problem_and_the_file(tok, tmp_path, change, message):
    path = write(tmp_path, corrupt(tok, **change))
    with pytest.raises(TokenizerFileError, match=message) as info:
        BPETokenizer.load(path)
    assert str(path) in str(info.value)


def test_missing_keys_bad_json_and_missing_file(tok, tmp_path):
    data = tok.to_dict()
    del data["merges"], data["pattern"]
    with pytest.raises(ValueError, match="missing key.*pattern.*merges|missing key.*merges"):
        BPETokenizer.load(write(tmp_path, data))
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        BPETokenizer.load(write(tmp_path, '{"format": "minitf-bpe", '))
    with pytest.raises(ValueError, match="expected a JSON object"):
        BPETokenizer.load(write(tmp_path, "[1, 2]"))
    with pytest.raises(FileNotFoundError, match="nothere.json"):
        BPETokenizer.load(tmp_path / "nothere.json")


# ---------------------------------------------------------------- CLI

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="minitf")
    add_subparser(top.add_subparsers(dest="command"))
    return top


def run(argv, stdin="", monkeypatch=None):
    args = parser().parse_args(argv)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), "utf-8"))
    return args.func(args)


def test_cli_train_encode_decode(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "tok.json"
    assert run(["tokenizer", "train", "--input", str(corpus), "--vocab-size", "300",
                "--output", str(out), "--special", "<eos>", "<pad>", "--quiet"],
               monkeypatch=monkeypatch) == 0
    tok = BPETokenizer.load(out)
    assert tok.special_tokens == {"<eos>": 0, "<pad>": 1} and tok.vocab_size == 300
    capsys.readouterr()
    lines = ["Ein Hund 🤗", "", "<eos> stays text"]
    assert run(["tokenizer", "encode", "--tokenizer", str(out)], "\n".join(lines) + "\n",
               monkeypatch) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines() == [" ".join(map(str, tok.encode(x))) for x in lines]
    assert run(["tokenizer", "decode", "--tokenizer", str(out)], printed, monkeypatch) == 0
    assert capsys.readouterr().out.splitlines() == lines
    assert run(["tokenizer", "encode", "--tokenizer", str(out), "--allow-special"],
               "<eos>\n", monkeypatch) == 0
    assert capsys.readouterr().out == "0\n"


def test_cli_errors_are_reported(tmp_path, monkeypatch, capsys):
    assert run(["tokenizer", "train", "--input", str(tmp_path / "missing.txt"),
                "--vocab-size", "300", "--output", str(tmp_path / "t.json"), "--quiet"],
               monkeypatch=monkeypatch) == 1
    assert "missing.txt" in capsys.readouterr().err
    BPETokenizer.train(TEXTS, 260).save(tmp_path / "t.json")
    assert run(["tokenizer", "decode", "--tokenizer", str(tmp_path / "t.json")],
               "1 2\n99999\n", monkeypatch) == 1
    assert "stdin line 2: unknown token id 99999" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["tokenizer"])  # a subcommand is required


# ---- bounded loading of untrusted files --------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"special_tokens": [["<pad>", 2**40]]}, "id 1,099,511,627,776 is not below the limit of 1,048,576"),
    ({"merges": [["a", "b", 2**20]]}, "merge 0: id 1,048,576 is not below the limit"),
    pytest.param({"merges": [["a", "b", 300]] * (2**20 + 1)}, "1,048,577 merges, more than the limit of 1,048,576",
                 marks=pytest.mark.slow),
])
def test_ids_and_merges_are_capped(tok, tmp_path, change, message):
    with pytest.raises(TokenizerFileError, match=message):
        BPETokenizer.load(write(tmp_path, corrupt(tok, **change)))


def test_a_file_over_the_size_limit_is_refused_unread(tok, tmp_path, monkeypatch):
    from minitf.tokenizer import serialization
    path = tmp_path / "t.json"
    tok.save(path)
    monkeypatch.setattr(serialization, "MAX_FILE_BYTES", 100)
    with pytest.raises(TokenizerFileError, match="bytes, more than the limit of 100"):
        BPETokenizer.load(path)


def test_hand_written_hugging_face_file_loads(tmp_path):
    tok = BPETokenizer.from_huggingface(hf_file(tmp_path))
    assert tok.encode("ab<eos>", allowed_special="all") == [258, 1]


@pytest.mark.parametrize("changes, message", [
    ({"added_tokens": {"<pad>": 0}}, "added_tokens must be a list, got dict"),
    ({"added_tokens": ["<pad>"]}, r"added_tokens\[0\] must be an object, got str"),
    ({"added_tokens": [{"content": "<pad>"}]}, r"added_tokens\[0\] lacks 'id'"),
    ({"added_tokens": [{"id": 0}]}, r"added_tokens\[0\] lacks 'content'"),
    ({"added_tokens": [{"id": "0", "content": "<pad>"}]}, r"added_tokens\[0\].id must be an integer .* got '0'"),
    ({"added_tokens": [{"id": -1, "content": "<pad>"}]}, r"added_tokens\[0\].id must be an integer .* got -1"),
    ({"added_tokens": [{"id": 0, "content": 7}]}, r"added_tokens\[0\].content must be a non-empty string"),
    ({"added_tokens": [{"id": 0, "content": "<a>"}, {"id": 0, "content": "<b>"}]},
     r"added_tokens\[1\].id 0 is already the id of another added token"),
    ({"added_tokens": [{"id": 0, "content": "<a>"}, {"id": 1, "content": "<a>"}]},
     r"added_tokens\[1\].content '<a>' is listed twice"),
    ({"vocab": ["a", "b"]}, "model.vocab must be an object"),
    ({"vocab": {"a": "1"}}, r"model.vocab\['a'\] must be an integer id"),
    ({"vocab": {"a": 2**31}}, r"model.vocab\['a'\] must be an integer id in 0 .. 1048575, got 2147483648"),
    ({"merges": "a b"}, "model.merges must be a list"),
])
def test_malformed_hugging_face_files_are_value_errors_naming_the_field(tmp_path, changes, message):
    path = hf_file(tmp_path, **changes)
    with pytest.raises(ValueError, match=message) as info:
        BPETokenizer.from_huggingface(path)
    assert str(path) in str(info.value)


# ---- untrusted pre-tokenization patterns ---------------------------------------------------------

BACKTRACKING = "(a|aa)+$"  # exponential backtracking on "a" * n + "b" (regex optimises (a+)+$)


def test_a_backtracking_pattern_from_a_file_raises_instead_of_hanging(tok, tmp_path):
    # in a child process with a timeout: without the time limit encoding would run for years
    path = write(tmp_path, corrupt(tok, pattern=BACKTRACKING))
    code = ("import sys\nfrom minitf.tokenizer import BPETokenizer\n"
            "tok = BPETokenizer.load(sys.argv[1])\n"
            "assert tok.decode(tok.encode('aa aab')) == 'aa aab'\n"
            "try:\n    tok.encode('a' * 60 + 'b')\n"
            "except ValueError as exc:\n    print(type(exc).__name__, exc)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"PatternTimeoutError {path}, key 'pattern': the pre-tokenization "
                                    "pattern '(a|aa)+$' took more than 1.00 s to split a text of 61 ")


def test_a_custom_pattern_from_a_file_splits_as_it_did_when_given_in_code(tmp_path):
    pattern = r"\p{L}{1,20}|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"  # whitespace left as gaps
    trained = BPETokenizer.train(TEXTS, 300, pattern=pattern)
    trained.save(tmp_path / "t.json")
    loaded = BPETokenizer.load(tmp_path / "t.json")
    for text in TEXTS + ["unseen wörds 1234567  \n"]:
        assert loaded.encode(text) == trained.encode(text)


@pytest.mark.parametrize("source, message", [("(a", "does not compile"),
                                             ("(?:a{500}){500}", "repeats too much")])
def test_a_bad_split_regex_in_a_hugging_face_file_names_the_file_and_the_field(tmp_path, source, message):
    path = hf_file(tmp_path, pre_tokenizer=hf_split(source))
    with pytest.raises(ValueError, match=f"pre_tokenizer Split pattern.Regex: pattern .*{message}") as info:
        BPETokenizer.from_huggingface(path)
    assert str(path) in str(info.value)


def test_only_patterns_from_files_are_time_limited(tmp_path, monkeypatch):
    monkeypatch.setattr(patterns, "TIME_LIMIT_S", 1e-6)  # shorter than the ~1 ms of "a" * 20 + "b"
    monkeypatch.setattr(patterns, "TIME_PER_CHAR_S", 0.0)
    path = hf_file(tmp_path, pre_tokenizer=hf_split(BACKTRACKING))
    with pytest.raises(PatternTimeoutError, match=re.escape(f"{path}, pre_tokenizer Split pattern.Regex: ")):
        BPETokenizer.from_huggingface(path).encode("a" * 20 + "b")
    trusted = BPETokenizer(pattern=BACKTRACKING)  # given in code: no limit, no cost
    assert trusted.decode(trusted.encode("a" * 20 + "b")) == "a" * 20 + "b"

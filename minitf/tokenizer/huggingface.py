"""Loading byte-level BPE ``tokenizer.json`` files of Hugging Face ``tokenizers``.

Supported: a ``BPE`` model whose vocabulary is in the GPT-2 byte-level alphabet and
holds all 256 bytes, no normalizer, and as pre-tokenizer either ``ByteLevel``
(``add_prefix_space`` false; ``use_regex`` true means the GPT-2 pattern, false no
split) or a ``Sequence`` of one ``Split`` (behavior ``Isolated``, not inverted) and a
``ByteLevel`` with ``use_regex`` false, as in GPT-4-style configs.  The ids are kept.
Added tokens become special tokens; ``tokenizers`` always recognises them in text, so
pass ``allowed_special="all"`` to encode as it does.  Post-processors and decoders
do not change the ids of ``encode(..., add_special_tokens=False)`` and are ignored;
so are the ``lstrip``/``rstrip``/``single_word`` flags of added tokens.  A ``Split`` regex
or string is untrusted: size-checked (see patterns), and a regex time-limited on each text.  Anything
else raises ValueError saying what is not supported; a malformed file (``added_tokens``
not a list of ``{"id": int, "content": str}`` with distinct ids, a vocabulary id that is not
an int below ``MAX_VOCAB_SIZE``, too many entries, a file over ``MAX_FILE_BYTES``) raises
ValueError naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import regex

from .byte_level import BYTE_TO_CHAR, chars_to_bytes
from .patterns import GPT2_PATTERN, compile_pattern
from .serialization import read_json
from .vocab import MAX_SPECIAL_TOKENS, MAX_VOCAB_SIZE

_WHOLE_TEXT = r"(?s).+"  # "no split": the whole text is one chunk


def from_huggingface(cls, path: Path):
    """Build a tokenizer of class ``cls`` from the ``tokenizer.json`` at ``path``."""
    data = _read(path)
    try:
        model = data["model"]
        if not isinstance(model, dict):
            raise ValueError("'model' is not an object")
        _check_model(model)
        if data.get("normalizer") is not None:
            raise ValueError(f"normalizer {_kind(data['normalizer'])} is not supported "
                             "(only none)")
        pattern, field = _pattern(data.get("pre_tokenizer"))
        vocab = _vocab(model["vocab"])
        specials = _added_tokens(data.get("added_tokens", []))
        byte_ids = _byte_ids(vocab)
        merges = _merges(model["merges"], vocab)
    except KeyError as exc:
        raise ValueError(f"{path}: not a tokenizers file: missing key {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    merged = {new for _, _, new in merges} | set(byte_ids)
    clash = sorted(name for name, i in specials.items() if i in merged)
    if clash:
        raise ValueError(f"{path}: added token(s) {clash} reuse ids of BPE tokens; "
                         "not supported")
    try:
        return cls(merges, special_tokens=specials, byte_ids=byte_ids, pattern=pattern,
                   pattern_origin=f"{path}, {field}" if field else None)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _read(path: Path) -> dict[str, Any]:
    data = read_json(path, "tokenizer.json")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a tokenizers file (top level is not an object)")
    return data


def _kind(part: Any) -> str:
    return repr(part.get("type")) if isinstance(part, dict) else repr(part)


def _check_model(model: dict[str, Any]) -> None:
    if model.get("type", "BPE") != "BPE":
        raise ValueError(f"model type {model.get('type')!r} is not supported (only BPE)")
    unsupported = {
        "dropout": model.get("dropout") not in (None, 0, 0.0),
        "continuing_subword_prefix": bool(model.get("continuing_subword_prefix")),
        "end_of_word_suffix": bool(model.get("end_of_word_suffix")),
        "byte_fallback": bool(model.get("byte_fallback")),
        "ignore_merges": bool(model.get("ignore_merges")),
    }
    bad = [name for name, is_set in unsupported.items() if is_set]
    if bad:
        raise ValueError(f"BPE option(s) {', '.join(bad)} are not supported")


def _pattern(pre: Any) -> tuple[str, str | None]:
    """The pattern and, for a regex written in the file, the field it was read from."""
    if isinstance(pre, dict) and pre.get("type") == "ByteLevel":
        _check_byte_level(pre)
        return (GPT2_PATTERN if pre.get("use_regex", True) else _WHOLE_TEXT), None
    if isinstance(pre, dict) and pre.get("type") == "Sequence":
        steps = pre.get("pretokenizers")
        if not isinstance(steps, list):
            raise ValueError(f"pre_tokenizer Sequence pretokenizers must be a list, got {_short(steps)}")
        if (len(steps) == 2 and isinstance(steps[0], dict) and steps[0].get("type") == "Split"
                and isinstance(steps[1], dict) and steps[1].get("type") == "ByteLevel"):
            _check_byte_level(steps[1])
            if steps[1].get("use_regex", True):
                raise ValueError("ByteLevel with use_regex after Split is not supported")
            return _split_pattern(steps[0])
        raise ValueError("pre_tokenizer Sequence is supported only as [Split, ByteLevel], "
                         f"got {[_kind(s) for s in steps]}")
    raise ValueError(f"pre_tokenizer {_kind(pre)} is not supported (ByteLevel, or a "
                     "Sequence of Split and ByteLevel)")


def _check_byte_level(pre: dict[str, Any]) -> None:
    for key in ("add_prefix_space", "use_regex", "trim_offsets"):
        if not isinstance(pre.get(key, False), bool):
            raise ValueError(f"pre_tokenizer ByteLevel {key} must be true or false, got {_short(pre[key])}")
    if pre.get("add_prefix_space", False):
        raise ValueError("ByteLevel add_prefix_space=True is not supported")


def _split_pattern(split: dict[str, Any]) -> tuple[str, str | None]:
    if split.get("behavior") != "Isolated" or split.get("invert", False) is not False:
        raise ValueError(f"Split behavior {_short(split.get('behavior'))} (invert="
                         f"{_short(split.get('invert'))}) is not supported (only Isolated)")
    pattern = split.get("pattern")
    kind = next(iter(pattern), None) if isinstance(pattern, dict) and len(pattern) == 1 else None
    if kind not in ("Regex", "String") or not isinstance(pattern[kind], str):
        raise ValueError(f"pre_tokenizer Split pattern must be {{\"Regex\": string}} or {{\"String\": "
                         f"string}}, got {_short(pattern)}")
    field = f"pre_tokenizer Split pattern.{kind}"
    source = pattern[kind] if kind == "Regex" else regex.escape(pattern[kind])
    try:
        compile_pattern(source, untrusted=True)  # size-checked before it is compiled
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None
    return source, field if kind == "Regex" else None  # an escaped string cannot backtrack


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _vocab(vocab: Any, field: str = "model.vocab") -> dict[str, int]:
    if not isinstance(vocab, dict):
        raise ValueError(f"{field} must be an object of token -> id, got {type(vocab).__name__}")
    if len(vocab) > MAX_VOCAB_SIZE:
        raise ValueError(f"{field} holds {len(vocab):,} tokens, more than the limit of {MAX_VOCAB_SIZE:,}")
    for token, token_id in vocab.items():
        if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 <= token_id < MAX_VOCAB_SIZE:
            raise ValueError(f"{field}[{token!r}] must be an integer id in 0 .. {MAX_VOCAB_SIZE - 1}, "
                             f"got {token_id!r:.40}")
    return vocab


def _added_tokens(added: Any) -> dict[str, int]:
    """added_tokens: a list of {"id": int, "content": non-empty str}, distinct ids and contents."""
    if added is None:
        return {}
    if not isinstance(added, list):
        raise ValueError(f"added_tokens must be a list, got {type(added).__name__}")
    if len(added) > MAX_SPECIAL_TOKENS:
        raise ValueError(f"added_tokens holds {len(added):,} entries, more than the limit of "
                         f"{MAX_SPECIAL_TOKENS:,}")
    specials: dict[str, int] = {}
    for i, token in enumerate(added):
        if not isinstance(token, dict):
            raise ValueError(f"added_tokens[{i}] must be an object, got {type(token).__name__}")
        for key in ("id", "content"):
            if key not in token:
                raise ValueError(f"added_tokens[{i}] lacks {key!r}")
        token_id, content = token["id"], token["content"]
        if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 <= token_id < MAX_VOCAB_SIZE:
            raise ValueError(f"added_tokens[{i}].id must be an integer in 0 .. {MAX_VOCAB_SIZE - 1}, "
                             f"got {token_id!r:.40}")
        if not isinstance(content, str) or not content:
            raise ValueError(f"added_tokens[{i}].content must be a non-empty string, got {content!r:.40}")
        if token_id in specials.values():
            raise ValueError(f"added_tokens[{i}].id {token_id} is already the id of another added token")
        if content in specials:
            raise ValueError(f"added_tokens[{i}].content {content!r} is listed twice")
        specials[content] = token_id
    return specials


def _byte_ids(vocab: dict[str, int]) -> list[int]:
    missing = [b for b in range(256) if BYTE_TO_CHAR[b] not in vocab]
    if missing:
        shown = ", ".join(f"0x{b:02x}" for b in missing[:8])
        raise ValueError(f"the vocabulary lacks {len(missing)} of the 256 byte tokens "
                         f"({shown}{', ...' if len(missing) > 8 else ''}); train it with "
                         "initial_alphabet=pre_tokenizers.ByteLevel.alphabet()")
    return [vocab[BYTE_TO_CHAR[b]] for b in range(256)]


def _merges(merges: Any, vocab: dict[str, int]) -> list[tuple[int, int, int]]:
    if not isinstance(merges, list):
        raise ValueError(f"model.merges must be a list, got {type(merges).__name__}")
    if len(merges) > MAX_VOCAB_SIZE:
        raise ValueError(f"model.merges holds {len(merges):,} entries, more than the limit of {MAX_VOCAB_SIZE:,}")
    triples = []
    for rank, merge in enumerate(merges):
        left, right = _merge_parts(merge, rank)
        for part in (left, right, left + right):
            if part not in vocab:
                raise ValueError(f"merge {rank} ({left!r}, {right!r}) uses {part!r}, which "
                                 "is not in the vocabulary")
            chars_to_bytes(part)  # must be byte-level text
        triples.append((vocab[left], vocab[right], vocab[left + right]))
    return triples


def _merge_parts(merge: Any, rank: int) -> tuple[str, str]:
    if isinstance(merge, str):
        parts = merge.split(" ")
    else:
        parts = list(merge) if isinstance(merge, list) else []
    if len(parts) != 2 or not all(isinstance(p, str) for p in parts):
        raise ValueError(f"merge {rank} is not a pair of tokens: {merge!r}")
    return parts[0], parts[1]

"""Reading a WordPiece ``tokenizer.json`` of Hugging Face ``tokenizers`` (BERT-family models).

Supported: model ``WordPiece``; normalizer ``BertNormalizer`` or none; pre-tokenizer
``BertPreTokenizer``; post-processor ``TemplateProcessing``, ``BertProcessing`` or none; truncation
``LongestFirst`` to the right with stride 0, or none; padding to the right (``BatchLongest`` or
``Fixed``), or none; added tokens matched in the original text (``normalized`` false, no
``lstrip``/``rstrip``/``single_word``). The decoder is not used. Anything else raises ValueError
naming it. The file is untrusted: its size is checked before it is read (``MAX_FILE_BYTES``), the
vocabulary and added tokens are capped (``MAX_VOCAB_SIZE``, ``MAX_SPECIAL_TOKENS``), and every field
read is type-checked with an error naming it. Vocabulary tokens have at most ``MAX_TOKEN_CHARS``
characters and ``max_input_chars_per_word`` is at most ``MAX_WORD_CHARS``, which bounds the work per
character of text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bert_text import BertNormalizer
from .serialization import read_json
from .vocab import MAX_SPECIAL_TOKEN_CHARS, MAX_SPECIAL_TOKENS, MAX_VOCAB_SIZE

MAX_LENGTH = 1 << 20  # truncation and padding lengths
MAX_WORD_CHARS = 10_000  # max_input_chars_per_word
MAX_TOKEN_CHARS = 200  # a vocabulary token (BERT's longest have about 20): bounds the pieces tried per character


@dataclass
class Padding:
    """Padding of a batch: to its longest encoding (``length`` None) or to ``length``, then up to a
    multiple of ``multiple_of``; pads get ``pad_id``/``pad_type_id``, mask 0, offsets (0, 0)."""

    length: int | None = None
    multiple_of: int | None = None
    pad_id: int = 0
    pad_type_id: int = 0
    pad_token: str = "[PAD]"


@dataclass
class Template:
    """A post-processor template: pieces are ("special", name, type_id) or ("A"/"B", type_id)."""

    single: list[tuple] = field(default_factory=list)
    pair: list[tuple] = field(default_factory=list)
    specials: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class WordPieceSpec:
    """Everything a WordPiece tokenizer is made of, checked."""

    vocab: dict[str, int]
    unk_token: str = "[UNK]"
    prefix: str = "##"
    max_input_chars_per_word: int = 100
    normalizer: BertNormalizer | None = None
    added: dict[str, int] = field(default_factory=dict)
    template: Template | None = None
    truncation: int | None = None
    padding: Padding | None = None


def read_wordpiece(path: Path) -> WordPieceSpec:
    """The checked spec of the ``tokenizer.json`` at ``path``; ValueError names the file and field."""
    data = read_json(Path(path), "tokenizer.json")
    try:
        if not isinstance(data, dict):
            raise ValueError("not a tokenizers file (top level is not an object)")
        return _spec(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _spec(data: dict[str, Any]) -> WordPieceSpec:
    model = _object(data.get("model"), "model")
    if model.get("type") != "WordPiece":
        raise ValueError(f"model type {_short(model.get('type'))} is not supported (only WordPiece)")
    vocab = _vocab(model.get("vocab"))
    spec = WordPieceSpec(vocab, _string(model.get("unk_token", "[UNK]"), "model.unk_token"),
                         _string(model.get("continuing_subword_prefix", "##"), "model.continuing_subword_prefix"),
                         _int(model.get("max_input_chars_per_word", 100), "model.max_input_chars_per_word", 1,
                              MAX_WORD_CHARS))
    if spec.unk_token not in vocab:
        raise ValueError(f"model.unk_token {spec.unk_token!r} is not in the vocabulary")
    spec.normalizer = _normalizer(data.get("normalizer"))
    pre = data.get("pre_tokenizer")
    if _kind(pre) != "BertPreTokenizer":
        raise ValueError(f"pre_tokenizer {_short(_kind(pre))} is not supported (only BertPreTokenizer)")
    spec.added = _added_tokens(data.get("added_tokens") or [])
    spec.template = _post_processor(data.get("post_processor"), {**vocab, **spec.added})
    spec.truncation = _truncation(data.get("truncation"))
    spec.padding = _padding(data.get("padding"))
    return spec


def _kind(part: Any) -> Any:
    return part.get("type") if isinstance(part, dict) else part


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object, got {_short(value)}")
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_SPECIAL_TOKEN_CHARS:
        raise ValueError(f"{name} must be a non-empty string of at most {MAX_SPECIAL_TOKEN_CHARS} "
                         f"characters, got {_short(value)}")
    return value


def _int(value: Any, name: str, low: int = 0, high: int = MAX_LENGTH) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low} .. {high}, got {_short(value)}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {_short(value)}")
    return value


def _vocab(vocab: Any) -> dict[str, int]:
    if not isinstance(vocab, dict):
        raise ValueError(f"model.vocab must be an object of token -> id, got {type(vocab).__name__}")
    if len(vocab) > MAX_VOCAB_SIZE:
        raise ValueError(f"model.vocab holds {len(vocab):,} tokens, more than the limit of {MAX_VOCAB_SIZE:,}")
    for token, token_id in vocab.items():
        _int(token_id, f"model.vocab[{token[:40]!r}]", 0, MAX_VOCAB_SIZE - 1)
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise ValueError(f"model.vocab token {token[:40]!r} has {len(token):,} characters; tokens must "
                             f"have 1 .. {MAX_TOKEN_CHARS}")
    return vocab


def _normalizer(norm: Any) -> BertNormalizer | None:
    if norm is None:
        return None
    if _kind(norm) != "BertNormalizer":
        raise ValueError(f"normalizer {_short(_kind(norm))} is not supported (only BertNormalizer or none)")
    strip = norm.get("strip_accents")
    return BertNormalizer(_bool(norm.get("clean_text", True), "normalizer.clean_text"),
                          _bool(norm.get("handle_chinese_chars", True), "normalizer.handle_chinese_chars"),
                          None if strip is None else _bool(strip, "normalizer.strip_accents"),
                          _bool(norm.get("lowercase", True), "normalizer.lowercase"))


def _added_tokens(added: Any) -> dict[str, int]:
    if not isinstance(added, list) or len(added) > MAX_SPECIAL_TOKENS:
        raise ValueError(f"added_tokens must be a list of at most {MAX_SPECIAL_TOKENS:,} entries, "
                         f"got {_short(added)}")
    tokens: dict[str, int] = {}
    for i, token in enumerate(added):
        token = _object(token, f"added_tokens[{i}]")
        content = _string(token.get("content"), f"added_tokens[{i}].content")
        tokens[content] = _int(token.get("id"), f"added_tokens[{i}].id", 0, MAX_VOCAB_SIZE - 1)
        flags = [k for k in ("normalized", "lstrip", "rstrip", "single_word")
                 if _bool(token.get(k, False), f"added_tokens[{i}].{k}")]
        if flags:
            raise ValueError(f"added_tokens[{i}] ({content!r}): {', '.join(flags)} true is not supported")
    return tokens


def _post_processor(post: Any, ids: dict[str, int]) -> Template | None:
    kind = _kind(post)
    if post is None:
        return None
    if kind == "BertProcessing":
        (sep, sep_id), (cls, cls_id) = (_token_pair(post.get(k), f"post_processor.{k}") for k in ("sep", "cls"))
        return Template([("special", cls, 0), ("A", 0), ("special", sep, 0)],
                        [("special", cls, 0), ("A", 0), ("special", sep, 0), ("B", 1), ("special", sep, 1)],
                        {cls: [cls_id], sep: [sep_id]})
    if kind != "TemplateProcessing":
        raise ValueError(f"post_processor {_short(kind)} is not supported (TemplateProcessing, "
                         "BertProcessing or none)")
    specials = {}
    for name, entry in _object(post.get("special_tokens", {}), "post_processor.special_tokens").items():
        entry = _object(entry, f"post_processor.special_tokens[{name!r}]")
        token_ids = entry.get("ids")
        if not isinstance(token_ids, list) or len(token_ids) > MAX_SPECIAL_TOKENS:
            raise ValueError(f"post_processor.special_tokens[{name!r}].ids must be a list of ids")
        specials[name] = [_int(t, f"post_processor.special_tokens[{name!r}].ids", 0, MAX_VOCAB_SIZE - 1)
                          for t in token_ids]
    return Template(_pieces(post.get("single"), "single", specials, "A"),
                    _pieces(post.get("pair"), "pair", specials, "AB"), specials)


def _token_pair(value: Any, name: str) -> tuple[str, int]:
    if not (isinstance(value, list) and len(value) == 2):
        raise ValueError(f"{name} must be [token, id], got {_short(value)}")
    return _string(value[0], name), _int(value[1], name, 0, MAX_VOCAB_SIZE - 1)


def _pieces(pieces: Any, which: str, specials: dict[str, list[int]], sequences: str) -> list[tuple]:
    name = f"post_processor.{which}"
    if not isinstance(pieces, list) or len(pieces) > 64:
        raise ValueError(f"{name} must be a list of at most 64 pieces, got {_short(pieces)}")
    out: list[tuple] = []
    for i, piece in enumerate(pieces):
        piece = _object(piece, f"{name}[{i}]")
        (kind, body), = piece.items() if len(piece) == 1 else ((None, None),)
        body = _object(body, f"{name}[{i}]") if kind in ("SpecialToken", "Sequence") else None
        if body is None:
            raise ValueError(f"{name}[{i}] must be {{\"SpecialToken\": ...}} or {{\"Sequence\": ...}}, "
                             f"got {_short(piece)}")
        type_id = _int(body.get("type_id", 0), f"{name}[{i}].type_id", 0, MAX_VOCAB_SIZE - 1)
        if kind == "SpecialToken":
            if body.get("id") not in specials:
                raise ValueError(f"{name}[{i}] names special token {_short(body.get('id'))}, which "
                                 "post_processor.special_tokens does not define")
            out.append(("special", body["id"], type_id))
        elif body.get("id") in tuple(sequences):
            out.append((body["id"], type_id))
        else:
            raise ValueError(f"{name}[{i}]: sequence {_short(body.get('id'))} is not one of {list(sequences)}")
    return out


def _truncation(trunc: Any) -> int | None:
    if trunc is None:
        return None
    trunc = _object(trunc, "truncation")
    unsupported = {"strategy": trunc.get("strategy", "LongestFirst") != "LongestFirst",
                   "stride": trunc.get("stride", 0) != 0,
                   "direction": trunc.get("direction", "Right") != "Right"}
    bad = [f"{k}={_short(trunc.get(k))}" for k, is_set in unsupported.items() if is_set]
    if bad:
        raise ValueError(f"truncation {', '.join(bad)} is not supported (LongestFirst, stride 0, Right)")
    return _int(trunc.get("max_length"), "truncation.max_length", 0)


def _padding(pad: Any) -> Padding | None:
    if pad is None:
        return None
    pad = _object(pad, "padding")
    if pad.get("direction", "Right") != "Right":
        raise ValueError(f"padding direction {_short(pad.get('direction'))} is not supported (only Right)")
    strategy = pad.get("strategy", "BatchLongest")
    if isinstance(strategy, dict) and list(strategy) == ["Fixed"]:
        length = _int(strategy["Fixed"], "padding.strategy.Fixed")
    elif strategy == "BatchLongest":
        length = None
    else:
        raise ValueError(f"padding strategy {_short(strategy)} is not supported (BatchLongest or Fixed)")
    multiple = pad.get("pad_to_multiple_of")
    return Padding(length, None if multiple is None else _int(multiple, "padding.pad_to_multiple_of", 1),
                   _int(pad.get("pad_id", 0), "padding.pad_id", 0, MAX_VOCAB_SIZE - 1),
                   _int(pad.get("pad_type_id", 0), "padding.pad_type_id", 0, MAX_VOCAB_SIZE - 1),
                   _string(pad.get("pad_token", "[PAD]"), "padding.pad_token"))

"""``minitf tokenizer train|encode|decode``: the tokenizer on the command line.

The top-level CLI calls :func:`add_subparser`; each subcommand stores its handler in
``func``, which takes the parsed namespace and returns an exit code (0 ok, 1 error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

from .bpe import BPETokenizer


def add_subparser(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Register ``tokenizer`` with its ``train``, ``encode`` and ``decode`` subcommands."""
    parser = subparsers.add_parser("tokenizer", help="train and run a byte-level BPE tokenizer",
                                   description="Train and run a byte-level BPE tokenizer.")
    commands = parser.add_subparsers(dest="tokenizer_command", metavar="COMMAND")
    commands.required = True
    _add_train(commands)
    _add_encode(commands)
    _add_decode(commands)
    return parser


def _add_train(commands: "argparse._SubParsersAction") -> None:
    p = commands.add_parser("train", help="learn a tokenizer from text files",
                            description="Learn a byte-level BPE tokenizer from plain or .gz "
                                        "UTF-8 files, one text per line.")
    p.add_argument("--input", nargs="+", required=True, type=Path, metavar="FILE",
                   help="training files (plain or .gz)")
    p.add_argument("--vocab-size", type=int, required=True, metavar="N",
                   help="vocabulary size, specials and the 256 bytes included")
    p.add_argument("--output", type=Path, required=True, metavar="TOK.json",
                   help="where to write the tokenizer")
    p.add_argument("--special", nargs="*", default=[], metavar="TOK",
                   help="special tokens (ids 0.. in this order)")
    p.add_argument("--pattern", default="gpt4",
                   help="pre-split pattern: gpt4 (default), gpt2 or a regex")
    p.add_argument("--min-frequency", type=int, default=2, metavar="N",
                   help="stop when the best pair occurs fewer times (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_train)


def _add_encode(commands: "argparse._SubParsersAction") -> None:
    p = commands.add_parser("encode", help="encode stdin lines to ids",
                            description="Encode each line of stdin; print its ids, "
                                        "space separated, one line per input line.")
    p.add_argument("--tokenizer", type=Path, required=True, metavar="TOK.json")
    p.add_argument("--allow-special", action="store_true",
                   help="recognise special tokens written in the text")
    p.set_defaults(func=run_encode)


def _add_decode(commands: "argparse._SubParsersAction") -> None:
    p = commands.add_parser("decode", help="decode id lines from stdin to text",
                            description="Decode each line of space-separated ids on stdin "
                                        "to one line of text.")
    p.add_argument("--tokenizer", type=Path, required=True, metavar="TOK.json")
    p.add_argument("--errors", default="strict", choices=["strict", "replace"],
                   help="what to do with ids that do not form valid UTF-8")
    p.set_defaults(func=run_decode)


def run_train(args: argparse.Namespace) -> int:
    """Train on ``args.input`` and save to ``args.output``."""
    try:
        tok = BPETokenizer.train(args.input, args.vocab_size, min_frequency=args.min_frequency,
                                 special_tokens=args.special, pattern=args.pattern,
                                 progress=not args.quiet)
        tok.save(args.output)
    except (ValueError, OSError) as exc:
        return _fail(exc)
    print(f"wrote {args.output}: {tok.vocab_size} tokens, {len(tok.merges)} merges",
          file=sys.stderr)
    return 0


def run_encode(args: argparse.Namespace) -> int:
    """Print the ids of each stdin line."""
    try:
        tok = BPETokenizer.load(args.tokenizer)
        allowed = "all" if args.allow_special else ()
        for number, line in enumerate(_stdin_lines(), start=1):
            try:
                ids = tok.encode(line, allowed_special=allowed)
            except ValueError as exc:
                raise ValueError(f"stdin line {number}: {exc}") from None
            sys.stdout.write(" ".join(map(str, ids)) + "\n")
    except (ValueError, OSError) as exc:
        return _fail(exc)
    return 0


def run_decode(args: argparse.Namespace) -> int:
    """Print the text of each stdin line of ids."""
    try:
        tok = BPETokenizer.load(args.tokenizer)
        for number, line in enumerate(_stdin_lines(), start=1):
            try:
                text = tok.decode([int(x) for x in line.split()], errors=args.errors)
            except ValueError as exc:
                raise ValueError(f"stdin line {number}: {exc}") from None
            sys.stdout.write(text + "\n")
    except (ValueError, OSError) as exc:
        return _fail(exc)
    return 0


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin as UTF-8, without their terminators."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        for line in sys.stdin:
            yield _strip_terminator(line)
        return
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"stdin line {number} is not valid UTF-8") from None
        yield _strip_terminator(text)


def _strip_terminator(line: str) -> str:
    if line.endswith("\n"):
        return line[:-2] if line.endswith("\r\n") else line[:-1]
    return line


def _fail(exc: BaseException) -> int:
    """Report `exc` as the one `minitf: error: ...` line the `minitf` command gives for user errors."""
    print(f"minitf: error: {' '.join(str(exc).split())}", file=sys.stderr)
    return 1

"""`minitf evaluate` over one or more test sets: checking and reading them, where each set's
translations go, and each set's report.

A test set is a source file and its reference file (line i of one translates to line i of the
other), named after the source file (`test_2016_flickr.de.gz` -> `test_2016_flickr`) unless
named explicitly. Everything is checked before the model is loaded: the number of files, the
names, where translations would be written (never over an input file), every line of every file.
A report gives the cased, detokenized sacreBLEU, the lowercased BLEU and chrF2, each with
sacrebleu's signature, the number of sentences, and the decoding settings used.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..atomic_file import atomic_write
from ..data import read_parallel
from ..errors import ConfigError, InputError
from .metrics import corpus_scores

__all__ = ["EvalSet", "plan_sets", "read_sets", "write_hypotheses", "report", "format_report", "REPORT_FORMATS"]

REPORT_FORMATS = ("json", "text")
_MAX_NAME = 200


@dataclass(frozen=True)
class EvalSet:
    """One test set: its name, files, and the file its translations go to (None: not kept)."""
    name: str
    src: str
    ref: str
    output: Path | None = None


def set_name(src: str) -> str:
    """The name of the set whose source file is `src`: its file name without `.gz` and its last
    suffix (`data/test_2016_flickr.de.gz` -> `test_2016_flickr`)."""
    name = Path(src).name.removesuffix(".gz")
    stem = Path(name).stem
    return stem or name


def _hypothesis_file(name: str, ref: str) -> str:
    """`<name>.hyp<suffix of the reference file>`: test_2016_flickr.hyp.en for test_2016_flickr.en.gz."""
    return f"{name}.hyp{Path(Path(ref).name.removesuffix('.gz')).suffix}"


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or len(name) > _MAX_NAME or any(
            c in name for c in ("/", "\\", os.sep, "\0")) or not name.isprintable():
        shown = json.dumps(name[:60])
        raise ConfigError(f"--name {shown} is not a plain file name (1 to {_MAX_NAME} printable characters, "
                          "no / or \\, not . or ..): each set's translations are named after it")


def plan_sets(srcs: Sequence[str], refs: Sequence[str], names: Sequence[str] | None = None,
              output: str | None = None, output_dir: str | None = None,
              inputs: Mapping[str, str | Sequence[str]] | None = None) -> list[EvalSet]:
    """The test sets of `--src`, `--ref` (and `--name`), with where their translations go; reads nothing.

    `output`: one file for the translations of the only set; `output_dir`: a folder for every
    set's, `<name>.hyp<reference suffix>`. `inputs`: other files read ({"--checkpoint": path or
    paths}), which, like every source and reference file, no translation may overwrite.
    ConfigError names the flag at fault.
    """
    if len(srcs) != len(refs):
        raise ConfigError(f"--src gives {len(srcs)} file(s) but --ref {len(refs)}: give one reference file "
                          "per source file, in the same order")
    if names is not None and len(names) != len(srcs):
        raise ConfigError(f"--name gives {len(names)} name(s) for {len(srcs)} test set(s): give one name per "
                          "--src file, in the same order")
    if output is not None and output_dir is not None:
        raise ConfigError("give --output (the translations of one test set) or --output-dir (one file per "
                          "set), not both")
    if output is not None and len(srcs) > 1:
        raise ConfigError(f"--output holds the translations of one test set, but {len(srcs)} are given: use "
                          "--output-dir DIR for one file per set")
    names = list(names) if names is not None else [set_name(s) for s in srcs]
    for name in names:
        _check_name(name)
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        other = seen.setdefault(name.casefold(), index)
        if other != index:
            raise ConfigError(f"test sets {other + 1} and {index + 1} are both named {names[other]!r} "
                              f"({srcs[other]} and {srcs[index]}): give --name with one name per set")
    if output_dir is not None and Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise ConfigError(f"--output-dir {output_dir} is a file; give a folder (it is created if missing)")
    read = {"--src": list(srcs), "--ref": list(refs)}
    for flag, paths in (inputs or {}).items():
        read[flag] = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    sets = []
    for name, src, ref in zip(names, srcs, refs):
        path = Path(output) if output is not None else None
        if output_dir is not None:
            path = Path(output_dir) / _hypothesis_file(name, ref)
        if path is not None:
            _check_output(path, "--output" if output is not None else f"--output-dir {output_dir}:", read)
        sets.append(EvalSet(name, str(src), str(ref), path))
    return sets


def _check_output(output: Path, flag: str, read: Mapping[str, list]) -> None:
    """ConfigError if `output` is a folder, or one of the files read (writing would replace it)."""
    if output.is_dir():
        raise ConfigError(f"{flag} {output} is a folder; give a file name")
    for name, paths in read.items():
        for given in paths:
            path = Path(given)
            try:
                same = output.samefile(path)  # also a hard link or a symbolic link to it
            except OSError:  # one of them does not exist (yet)
                same = output.resolve() == path.resolve()
            if same:
                raise ConfigError(f"{flag} {output} is the {name} file {given}; writing the translations "
                                  "would replace it: give another file name")


def read_sets(sets: Iterable[EvalSet]) -> list[tuple[list[str], list[str]]]:
    """(sources, references) of each set; InputError (or CorpusFormatError, naming the file and line)
    for files of different lengths, an empty line, text that is not UTF-8, a set without lines.
    Then the folders of the sets' outputs are made, so that one that cannot be is an error now."""
    sets, corpora = list(sets), []
    for test in sets:
        corpus = read_parallel(test.src, test.ref)
        if not corpus.sources:
            raise InputError(f"{test.src} and {test.ref} hold no lines: test set {test.name!r} has nothing "
                             "to evaluate")
        corpora.append((corpus.sources, corpus.targets))
    for test in sets:
        if test.output is not None:
            test.output.parent.mkdir(parents=True, exist_ok=True)
    return corpora


_LINE_BREAKS = "\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029"  # str.splitlines' breaks, and tab
_OUTPUT_SAFE = str.maketrans({c: " " for c in _LINE_BREAKS}
                             | {chr(c): "\ufffd" for c in (*range(0x20), *range(0x7f, 0xa0)) if chr(c) not in _LINE_BREAKS})


def one_line(text: str) -> str:
    """A translation as one output line of plain text (translate's stdout, evaluate's --output):
    a decoded line break or tab becomes a space (it would misalign input and output lines or
    columns), any other C0/C1 control character U+FFFD (it would drive the terminal)."""
    return text.translate(_OUTPUT_SAFE)


def write_hypotheses(path: str | os.PathLike, lines: Iterable[str]) -> None:
    """One line per translation, written atomically (the old file or the new one, never half)."""
    text = "".join(line + "\n" for line in lines)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def report(test: EvalSet, hypotheses: Sequence[str], references: Sequence[str],
           options: Mapping[str, Any]) -> dict[str, Any]:
    """One set's scores (rounded to 2 decimals) with their signatures, its size, and the decoding
    settings used: `options` as given to Translator.translate, beam_size shown as "beam", without
    batch_size (which does not change the translations) and without the length penalty when
    greedy search (beam 1), which has none, made them."""
    scores = corpus_scores(hypotheses, references)
    settings = {("beam" if key == "beam_size" else key): value for key, value in options.items()
                if key != "batch_size"}
    if settings.get("beam") == 1 and "length_penalty" in settings:
        settings["length_penalty"] = None
    result = {"name": test.name, "sentences": len(hypotheses),
              **{key: round(value, 2) for key, value in scores.items() if not key.endswith("_signature")},
              **settings, "src": test.src, "ref": test.ref,
              **{key: value for key, value in scores.items() if key.endswith("_signature")}}
    if test.output is not None:
        result["hypotheses"] = str(test.output)
    return result


_TEXT_LINES = (("BLEU", "bleu"), ("BLEU lowercased", "bleu_lowercase"), ("chrF2", "chrf"))


def format_report(result: Mapping[str, Any], style: str = "json") -> str:
    """A report as one JSON line ("json") or as a few lines for people to read ("text")."""
    if style == "json":
        return json.dumps(result, ensure_ascii=False)
    if style != "text":
        raise ValueError(f"unknown report format {style!r}; the formats are {', '.join(REPORT_FORMATS)}")
    known = {"name", "sentences", "src", "ref", "hypotheses", *(k for _, k in _TEXT_LINES),
             *(f"{k}_signature" for _, k in _TEXT_LINES)}
    settings = " ".join(f"{key}={value}" for key, value in result.items() if key not in known and value is not None)
    lines = [f"{result['name']}: {result['sentences']} sentences ({result['src']} -> {result['ref']})"]
    lines += [f"  {label:<16} {result[key]:6.2f}  {result[key + '_signature']}" for label, key in _TEXT_LINES]
    lines.append(f"  {'decoding':<16} {settings}")
    if "hypotheses" in result:
        lines.append(f"  {'translations':<16} {result['hypotheses']}")
    return "\n".join(lines)

"""The `minitf` command: train, translate, evaluate, tokenizer.

    minitf train                      # the demo: synthetic number task, a few minutes on a CPU
    minitf train --src-train train.de.gz --tgt-train train.en.gz --src-val ... --tgt-val ...
    minitf train --resume runs/model/last.safetensors
    minitf translate --checkpoint runs/model/best.safetensors --beam 5 < input.txt > output.txt
    minitf evaluate --checkpoint runs/model/best.safetensors --src test.de --ref test.en
    minitf evaluate --checkpoint runs/model/best.safetensors --src a.de b.de --ref a.en b.en --output-dir hyps
    minitf score --checkpoint runs/model/best.safetensors --src test.de --ref test.en
    minitf plot runs/model --output curves.png
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Sequence

from .config import add_flags, given_flags
from .data.corpus import nul_byte_problem
from .distributed import abort_job
from .errors import ConfigError, InputError, UserError
from .cpu import get_num_threads
from .tokenizer.cli import add_subparser as add_tokenizer_subparser
from .translation import DEMO_CONFIG, PRESETS, Trainer, TrainConfig, Translator, load_checkpoint
from .translation import decoding_options
from .translation.decoding_options import check_decoding_options
from .translation import evaluate_sets
from .translation.evaluate_sets import one_line
from .translation.interactive import HINT, is_terminal, typed_lines
from .translation.nbest import nbest_line

# What the user got wrong (settings, files, devices, checkpoints), or what went wrong around
# minitf (the system, a hung or dead process of the job): one error line, exit 1.
# Anything else is a bug in minitf and keeps its traceback.
USER_ERRORS = (UserError, OSError)  # every error class of minitf's for bad input derives from UserError

def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        get_num_threads()  # an invalid MINITF_NUM_THREADS is an error before any work
        return args.func(args)
    except USER_ERRORS as exc:
        error_line(f"minitf: error: {_describe(exc)}")
        abort_job(1)  # under mpiexec: end every process, as the others may wait for this one (or a hung one)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside training's own handling (tokenizer, data, setup), or a second one
        error_line("minitf: interrupted")
        abort_job(130)
        return 130


def error_line(text: str) -> None:
    """`text` and its newline on stderr in one write, flushed: under mpiexec every rank shares
    the terminal, and a line written in two parts (print's text, then its newline) could be
    glued to another rank's."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _describe(exc: BaseException) -> str:
    """The error as one line; an OSError as "file: reason"."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minitf", description="Train and use tiny translation models.")
    sub = parser.add_subparsers(metavar="COMMAND")
    _add_train(sub)
    _add_translate(sub)
    _add_evaluate(sub)
    _add_average(sub)
    _add_score(sub)
    _add_plot(sub)
    add_tokenizer_subparser(sub)
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model (no arguments: the built-in demo task)",
        description="Train a translation model. Without data files it trains the built-in demo (English -> "
                    "German number words) with the demo's own settings, shown below as 'demo' where they "
                    "differ from the defaults for real data. Settings from --config and flags combine with "
                    "those defaults the same way; flags win over --config.")
    p.add_argument("--config", help="JSON file of settings (flags given too take precedence); not with --resume")
    p.add_argument("--preset", choices=sorted(PRESETS), help="start from these settings, which --config and flags "
                   "override: " + "; ".join(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
                                            for name, values in PRESETS.items()))
    p.add_argument("--resume", metavar="CKPT",
                   help="continue training from a checkpoint (last.safetensors) with its settings, writing next "
                        "to it or into --out-dir; flags that do not change the model (e.g. --epochs) apply")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an --out-dir that holds a run (deletes its log and checkpoints)")
    p.set_defaults(train_flags=add_flags(p, TrainConfig, other=DEMO_CONFIG))  # one per TrainConfig field
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from .cpu.memory import retain_freed_memory  # noqa: PLC0415

    retain_freed_memory()  # this process only trains: reuse freed activations (glibc)
    flags = given_flags(args, args.train_flags)
    if args.resume:
        if args.config or args.preset:
            what = f"--config {args.config}" if args.config else f"--preset {args.preset}"
            raise ConfigError(f"{what} cannot be combined with --resume: a resumed run keeps "
                              "its checkpoint's settings (give changes that do not alter the model as flags)")
        trainer = Trainer.from_checkpoint(args.resume, overwrite=args.overwrite, **flags)
    else:
        settings = _read_config(args.config) if args.config else {}
        given = {**PRESETS.get(args.preset, {}), **settings, **flags}
        real_data = given.get("src_train") is not None or given.get("train_tsv") is not None
        base = TrainConfig() if real_data else DEMO_CONFIG
        source = " and ".join(([f"--preset {args.preset}"] if args.preset else [])
                              + ([f"--config {args.config}"] if settings else []) + (["flags"] if flags else []))
        config = TrainConfig.from_dict({**dataclasses.asdict(base), **given}, source=source or "the demo")
        trainer = Trainer(config, overwrite=args.overwrite)
    trainer.fit()
    if trainer.stop_requested:
        return 130
    if trainer.config.synthetic and trainer.comm.is_main:
        _report_demo(trainer)
    return 0


def _read_config(path: str) -> dict:
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # also too long an integer, too deep a nesting, not UTF-8
        raise ConfigError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: expected a JSON object of settings, got {type(settings).__name__}")
    return settings


def _report_demo(trainer) -> None:
    """Evaluate the best checkpoint on the synthetic test split and show a few translations."""
    best = trainer.out_dir / "best.safetensors"
    if best.is_file():  # a run resumed into a new --out-dir may not have improved on its best yet
        state, _, _ = load_checkpoint(best, with_optimizer=False)
        trainer.model.load_state_dict(state, cast=True)
    test = trainer.splits["test"]
    scores = trainer.translation_scores(test)
    files = ", ".join(sorted(p.name for p in trainer.out_dir.iterdir() if p.is_file() and p.name[0] != "."))
    print(f"after {trainer.progress.step} steps: saved {files} in {trainer.out_dir}")
    print(f"test ({len(test)} held-out numbers): exact match {scores['exact_match']:.1%} "
          f"(translations identical to the reference), chrF {scores['chrf']:.2f}")
    for (src, ref), hyp in zip(test[:5], trainer.translate([s for s, _ in test[:5]])):
        print(f"  {src!r} -> {hyp!r}" + ("" if hyp == ref else f"  (reference {ref!r})"))


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate lines from stdin to stdout")
    _add_decoding_flags(p, sampling=True)
    p.add_argument("--nbest", type=int, metavar="K", help="print the K (<= --beam) best hypotheses of each line, "
                   "one per line: 'LINE ||| HYPOTHESIS ||| SCORE ||| LOG_PROB' (LINE from 0; SCORE with the length penalty)")
    p.add_argument("--attention-png", metavar="DIR", help="also draw each line's cross-attention (last decoder layer, "
                   "mean over heads) as DIR/<line number>.png (needs matplotlib: pip install \"minitf[plot]\")")
    p.set_defaults(func=cmd_translate)


def _add_decoding_flags(p: argparse.ArgumentParser, sampling: bool = False) -> None:
    p.add_argument("--checkpoint", required=True, nargs="+", metavar="CKPT",
                   help="a checkpoint written by `minitf train`; several: an ensemble averaging their probabilities")
    decoding_options.add_flags(p, sampling)  # --beam, --length-penalty ... (and --sample ...)
    p.add_argument("--device", default="cpu")


def _decoding_options(args: argparse.Namespace) -> dict:
    """The decoding flags, checked before the checkpoint is read: ConfigError names a flag out of range."""
    return decoding_options.options_from_args(args)


def cmd_translate(args: argparse.Namespace) -> int:
    options = _decoding_options(args)
    if args.attention_png:  # before any work: the folder, and matplotlib
        if len(args.checkpoint) > 1:
            raise ConfigError("--attention-png draws one model's cross-attention: give one --checkpoint, "
                              f"not {len(args.checkpoint)}")
        from .translation.plots import prepare_attention_dir, write_attention_pngs  # noqa: PLC0415
        prepare_attention_dir(args.attention_png)
    translator = Translator.from_checkpoint(args.checkpoint, device=args.device, log=_note)
    if is_terminal(sys.stdin):  # a person typing: translate each line as it is entered (see README)
        error_line(HINT)
        lines = []
        for number, line in typed_lines(sys.stdin, _text_line, lambda e: error_line(f"minitf: error: {e}")):
            _print_translations(translator, [line], options, args.nbest, number)
            sys.stdout.flush()
            lines += [""] * (number - 1 - len(lines)) + [line]  # --attention-png numbers the lines as typed
    else:
        lines = _stdin_lines()
        _print_translations(translator, lines, options, args.nbest)
    if args.attention_png:  # the pictures show the best translation of each line
        write_attention_pngs(translator, lines, args.attention_png, options)
    return 0


def _print_translations(translator, lines: list[str], options: dict, nbest: int | None, first: int = 1) -> None:
    """The translations of `lines` (line numbers from `first`) on stdout, or their --nbest lists."""
    if nbest is not None:
        translate = functools.partial(translator.translate_nbest, nbest=nbest)
        hyp_lists = _translate_lines(translator, lines, "line", options, translate, first)
        for number, hyps in enumerate(hyp_lists, first - 1):  # LINE counts from 0
            for hyp in hyps or ():  # none for a line left untranslated (its "")
                print(nbest_line(number, one_line(hyp.output), hyp))
    else:
        for out in _translate_lines(translator, lines, "line", options, first=first):
            print(one_line(out))


def _note(text: str) -> None:
    error_line(f"minitf: note: {text}")


def _stdin_lines() -> list[str]:
    """Standard input as UTF-8 lines without their "\n" or "\r\n" (and without a leading BOM).

    Read as bytes, so that a line that is not text (invalid UTF-8, a NUL byte) is an error
    naming the line rather than text with lone surrogates.
    """
    stream = getattr(sys.stdin, "buffer", None)  # None: stdin was replaced by a text stream
    if stream is None:
        stream = (line.encode("utf-8", "surrogateescape") for line in sys.stdin)
    lines = [_text_line(raw.removesuffix(b"\n").removesuffix(b"\r"), number)
             for number, raw in enumerate(stream, 1)]
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines


def _text_line(raw: bytes, number: int) -> str:
    """One line of standard input as text; ValueError naming the line if it is not text."""
    where, binary = f"standard input, line {number}", "binary input cannot be translated"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x} at byte {err.start + 1} "
                         f"of the line); {binary}") from None
    problem = nul_byte_problem(line)
    if problem:
        raise InputError(f"{where}: {problem}; {binary}")
    return line


def _translate_lines(translator, lines: list[str], where: str, options: dict, translate=None,
                     first: int = 1) -> list:
    """Translations of `lines`, aligned with them: an empty, blank or too long line gives "" and a
    warning on stderr naming it (`where` and its number, from `first`) instead of stopping the rest."""
    outputs = [""] * len(lines)
    kept = []
    for index, line in enumerate(lines):
        problem = translator.problem(line)
        if problem:
            print(f"minitf: warning: {where} {index + first} {problem}; its translation is left empty",
                  file=sys.stderr)
        else:
            kept.append(index)
    translations = (translate or translator.translate)([lines[i] for i in kept], **options)
    for index, out in zip(kept, translations):
        outputs[index] = out
    return outputs


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="translate test sets and score them with sacreBLEU and chrF",
                       description="Translate one or more test sets and print, for each, the cased detokenized "
                                   "sacreBLEU, the lowercased BLEU and chrF2 with their sacrebleu signatures, the "
                                   "number of sentences and the decoding settings.")
    _add_decoding_flags(p)
    p.add_argument("--src", required=True, nargs="+", metavar="FILE",
                   help="source sentences, one per line (plain or .gz); several files: several test sets")
    p.add_argument("--ref", required=True, nargs="+", metavar="FILE",
                   help="reference translations, aligned with --src (one file per --src file, same order)")
    p.add_argument("--name", nargs="+", help="a name per test set (default: each --src file's name without .gz "
                                             "and its last suffix: test_2016_flickr for test_2016_flickr.de.gz)")
    p.add_argument("--output", help="also write the translations to this file (one test set)")
    p.add_argument("--output-dir", metavar="DIR",
                   help="write each set's translations to DIR/NAME.hyp.LANG (LANG: the --ref file's suffix)")
    p.add_argument("--format", choices=evaluate_sets.REPORT_FORMATS, default="json",
                   help="one JSON line per test set (default), or text for people to read")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    options = _decoding_options(args)
    sets = evaluate_sets.plan_sets(args.src, args.ref, args.name, args.output, args.output_dir,
                                   inputs={"--checkpoint": args.checkpoint})
    corpora = evaluate_sets.read_sets(sets)  # every line of every file is checked before decoding
    translator = Translator.from_checkpoint(args.checkpoint, device=args.device, log=_note)
    for test, (sources, references) in zip(sets, corpora):
        hyps = _translate_lines(translator, sources, f"{test.src} line", options)
        if test.output is not None:
            evaluate_sets.write_hypotheses(test.output, map(one_line, hyps))
        result = evaluate_sets.report(test, hyps, references, options)
        print(evaluate_sets.format_report(result, args.format), flush=True)
    return 0


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="forced decoding: the model's log-probability of given translations",
                       description="Print, for each line of --ref as the translation of the same line of --src, "
                                   "the model's total log-probability (natural log, over its tokens and EOS), "
                                   "the mean per token, and the number of tokens, tab-separated.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `minitf train`")
    p.add_argument("--src", required=True, help="source sentences, one per line (plain or .gz)")
    p.add_argument("--ref", required=True, help="the translations to score, aligned with --src")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from .translation.forced import format_score, score_files  # noqa: PLC0415

    check_decoding_options(decoding_options.FLAGS, batch_size=args.batch_size)
    translator = Translator.from_checkpoint(args.checkpoint, device=args.device)
    for score in score_files(translator, args.src, args.ref, batch_size=args.batch_size):
        print(format_score(score))
    return 0


def _add_average(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("average", help="average the weights of several checkpoints into one",
                       description="Write the element-wise mean of checkpoints' weights as a checkpoint that translate "
                                   "and evaluate load (not resumable: it holds no optimizer state).")
    p.add_argument("sources", nargs="+", metavar="RUN_DIR|CKPT",
                   help="a run folder (its epoch checkpoints, kept by `train --keep-checkpoints N`) or checkpoint files")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--last", type=int, metavar="N", help="the N checkpoints of the latest training steps")
    which.add_argument("--best", type=int, metavar="N", help="the N checkpoints of the best validation scores")
    p.add_argument("--output", required=True, help="the averaged checkpoint to write")
    p.set_defaults(func=cmd_average)


def cmd_average(args: argparse.Namespace) -> int:
    from .translation.average import average_checkpoints, select_checkpoints  # noqa: PLC0415

    paths = select_checkpoints(args.sources, last=args.last, best=args.best)
    output = average_checkpoints(paths, args.output)
    print(f"averaged {len(paths)} checkpoint(s) ({', '.join(str(p) for p in paths)}) into {output}")
    return 0


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="draw a run's learning curves (loss, validation scores) as a PNG",
                       description="Draw the learning curves in a run's log.jsonl: training and validation loss by "
                                   "step, the learning rate, and BLEU, chrF and exact match by epoch and by training "
                                   'time. Needs matplotlib: pip install "minitf[plot]".')
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder of a run (its --out-dir)")
    p.add_argument("--output", required=True, metavar="FILE.png", help="the PNG file to write")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from .translation.plots import check_png_output, plot_curves, read_curves  # noqa: PLC0415

    check_png_output(args.output, "--output")
    print(f"saved {plot_curves(read_curves(args.run_dir), args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

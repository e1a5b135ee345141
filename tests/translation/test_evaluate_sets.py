"""`minitf evaluate` over several test sets (scores with signatures, --output-dir, bad input) and
forced decoding (`minitf score`, Translator.score) on tiny models."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import sacrebleu

from minitf.autograd import no_grad
from minitf.cli import main
from minitf.errors import ConfigError, InputError
from minitf.nn import Seq2SeqTransformer
from minitf.translation import Translator
from minitf.translation.evaluate_sets import EvalSet, format_report, report, set_name
from minitf.translation.forced import score_ids
from minitf.translation.metrics import corpus_scores
from tiny_runs import TINY_MODEL_CONFIG, TINY_TOKENIZER, tiny_trainer

SIGNATURES = {"bleu_signature": "case:mixed", "bleu_lowercase_signature": "case:lc", "chrf_signature": "nc:6"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trainer after three epochs on the number task, and its last.safetensors."""
    trainer = tiny_trainer(tmp_path_factory.mktemp("evaluate_sets") / "run", epochs=3)
    trainer.fit()
    return trainer, str(trainer.out_dir / "last.safetensors")


@pytest.fixture(scope="module")
def translator(trained):
    return Translator.from_checkpoint(trained[1])


def write_lines(path, lines) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def write_set(folder, name, pairs, src_suffix="en", ref_suffix="de") -> tuple[str, str]:
    return (write_lines(folder / f"{name}.{src_suffix}", [s for s, _ in pairs]),
            write_lines(folder / f"{name}.{ref_suffix}", [t for _, t in pairs]))


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_sets(tmp_path, trained):
    """val (8 pairs) and test (5 pairs) of the tiny task as files: ((src, ref), (src, ref))."""
    splits = trained[0].splits
    return write_set(tmp_path, "val", splits["val"][:8]), write_set(tmp_path, "test", splits["test"][:5])


# ---- metrics with signatures ---------------------------------------------------------------------

def test_corpus_scores_are_sacrebleus_with_its_signatures():
    hyps, refs = ["The Cat sat on the mat .", "A dog barked"], ["the cat sat on the mat .", "a dog barked loudly"]
    scores = corpus_scores(hyps, refs)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert scores["bleu_lowercase"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], lowercase=True).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert scores["bleu_lowercase"] > scores["bleu"]
    version = sacrebleu.__version__
    assert scores["bleu_signature"] == f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{version}"
    assert scores["bleu_lowercase_signature"] == f"nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:{version}"
    assert scores["chrf_signature"] == f"nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{version}"
    with pytest.raises(ValueError, match="no sentences to score"):
        corpus_scores([], [])


@pytest.mark.parametrize("src, name", [("data/test_2016_flickr.de.gz", "test_2016_flickr"), ("a.en", "a"),
                                       ("newstest2014-deen.de", "newstest2014-deen"), ("plain", "plain")])
def test_a_set_is_named_after_its_source_file(src, name):
    assert set_name(src) == name


def test_greedy_reports_carry_no_length_penalty_and_text_names_every_setting():
    test = EvalSet("t", "t.en", "t.de")
    options = dict(beam_size=1, batch_size=8, length_penalty=0.6, max_len_a=1.5, max_len_b=10)
    result = report(test, ["a b c d"], ["a b c d"], options)
    assert result["beam"] == 1 and result["length_penalty"] is None and "batch_size" not in result
    assert report(test, ["a b c d"], ["a b c d"], {**options, "beam_size": 4})["length_penalty"] == 0.6
    text = format_report(result, "text").splitlines()
    assert text[0] == "t: 1 sentences (t.en -> t.de)"
    assert re.fullmatch(r"  BLEU lowercased +100\.00  nrefs:1\|case:lc\|.*", text[2])
    assert text[4].split() == ["decoding", "beam=1", "max_len_a=1.5", "max_len_b=10"]


# ---- minitf evaluate over several sets -----------------------------------------------------------

def test_two_sets_in_one_call_print_both_with_signatures(tmp_path, capsys, trained, two_sets):
    (val_src, val_ref), (test_src, test_ref) = two_sets
    code, out, err = run(["evaluate", "--checkpoint", trained[1], "--src", val_src, test_src,
                          "--ref", val_ref, test_ref, "--beam", 2, "--length-penalty", 1.0], capsys)
    assert code == 0, err
    reports = [json.loads(line) for line in out.splitlines()]
    assert [(r["name"], r["sentences"], r["src"], r["ref"]) for r in reports] == [
        ("val", 8, val_src, val_ref), ("test", 5, test_src, test_ref)]
    for r in reports:
        assert (r["beam"], r["length_penalty"], r["max_len_a"], r["max_len_b"]) == (2, 1.0, 1.5, 10)
        for key, part in SIGNATURES.items():
            assert part in r[key] and f"version:{sacrebleu.__version__}" in r[key]
        assert all(0 <= r[key] <= 100 for key in ("bleu", "bleu_lowercase", "chrf"))
    # each set scores as it would alone
    code, alone, _ = run(["evaluate", "--checkpoint", trained[1], "--src", test_src, "--ref", test_ref,
                          "--beam", 2, "--length-penalty", 1.0], capsys)
    assert code == 0 and json.loads(alone) == reports[1]
    code, text, _ = run(["evaluate", "--checkpoint", trained[1], "--src", val_src, test_src,
                         "--ref", val_ref, test_ref, "--beam", 2, "--length-penalty", 1.0, "--format", "text"],
                        capsys)
    assert code == 0
    heads = [line for line in text.splitlines() if not line.startswith(" ")]
    assert heads == [f"val: 8 sentences ({val_src} -> {val_ref})", f"test: 5 sentences ({test_src} -> {test_ref})"]
    assert text.count("case:mixed|eff:no|tok:13a") == 2 and text.count("case:lc") == 2
    assert text.count("beam=2 length_penalty=1.0 max_len_a=1.5 max_len_b=10") == 2


def test_output_dir_keeps_each_sets_translations(tmp_path, capsys, trained, translator, two_sets):
    (val_src, val_ref), (test_src, test_ref) = two_sets
    out_dir = tmp_path / "hyps" / "beam1"
    code, out, err = run(["evaluate", "--checkpoint", trained[1], "--src", val_src, test_src,
                          "--ref", val_ref, test_ref, "--beam", 1, "--output-dir", out_dir], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["test.hyp.de", "val.hyp.de"]  # no temporary left
    reports = [json.loads(line) for line in out.splitlines()]
    assert [r["hypotheses"] for r in reports] == [str(out_dir / "val.hyp.de"), str(out_dir / "test.hyp.de")]
    for src, name in ((val_src, "val"), (test_src, "test")):
        sources = open(src, encoding="utf-8").read().splitlines()
        written = (out_dir / f"{name}.hyp.de").read_text(encoding="utf-8").splitlines()
        assert written == translator.translate(sources, beam_size=1) and any(written)


def test_lowercased_bleu_is_at_least_the_cased_one_on_mixed_case_text(tmp_path, capsys, trained, monkeypatch):
    # the tiny model writes one word a sentence (no 4-grams: BLEU 0), so its translations are set here
    hyps = ["The Cat sat on the Mat .", "a dog barked at The Postman", "Two men play chess in A park"]
    monkeypatch.setattr(Translator, "translate", lambda self, lines, **kw: hyps[:len(lines)])
    src = write_lines(tmp_path / "t.en", ["one", "two", "three"])
    for refs, lower_wins in (([h.lower() for h in hyps], True), (hyps, False)):
        ref = write_lines(tmp_path / "t.de", refs)
        code, out, err = run(["evaluate", "--checkpoint", trained[1], "--src", src, "--ref", ref], capsys)
        assert code == 0, err
        scores = json.loads(out)
        assert scores["bleu_lowercase"] == 100 and scores["bleu_lowercase"] >= scores["bleu"]
        assert (scores["bleu"] < 100) == lower_wins
        assert scores["bleu"] == round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)


def test_names_from_the_name_flag_name_the_files(tmp_path, capsys, trained):
    pairs = trained[0].splits["test"][:3]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = write_set(tmp_path / "a", "test", pairs), write_set(tmp_path / "b", "test", pairs[:2])
    argv = ["evaluate", "--checkpoint", trained[1], "--src", first[0], second[0], "--ref", first[1], second[1],
            "--beam", 1, "--output-dir", tmp_path / "out"]
    code, _, err = run(argv, capsys)
    assert code == 1 and "test sets 1 and 2 are both named 'test'" in err and "--name" in err
    code, out, err = run([*argv, "--name", "flickr", "coco"], capsys)
    assert code == 0, err
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["flickr", "coco"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["coco.hyp.de", "flickr.hyp.de"]


def files(tmp, *names_and_lines):
    """Write each (file name, lines) under tmp; their paths."""
    return [write_lines(tmp / name, lines) for name, lines in names_and_lines]


def ok(tmp):
    return files(tmp, ("ok.en", ["one", "two"]), ("ok.de", ["eins", "zwei"]))


BAD_EVALUATIONS = {
    "more --src files than --ref files": (
        lambda tmp: ["--src", *ok(tmp)[:1], ok(tmp)[0], "--ref", ok(tmp)[1]],
        "--src gives 2 file(s) but --ref 1: give one reference file per source file"),
    "a --name count that is not the --src count": (
        lambda tmp: ["--src", ok(tmp)[0], "--ref", ok(tmp)[1], "--name", "a", "b"],
        "--name gives 2 name(s) for 1 test set(s)"),
    "a --name that is a path": (
        lambda tmp: ["--src", ok(tmp)[0], "--ref", ok(tmp)[1], "--name", "../x", "--output-dir", tmp / "o"],
        '--name "../x" is not a plain file name'),
    "an empty pair of files": (
        lambda tmp: ["--src", *files(tmp, ("e.en", [])), "--ref", *files(tmp, ("e.de", []))],
        "e.en and {tmp}/e.de hold no lines: test set 'e' has nothing to evaluate"),
    "a source and a reference of different lengths": (
        lambda tmp: ["--src", ok(tmp)[0], *files(tmp, ("long.en", ["one", "two", "three"])),
                     "--ref", ok(tmp)[1], *files(tmp, ("short.de", ["eins", "zwei"]))],
        "long.en, line 3: parallel files differ in length: {tmp}/short.de has 2 lines, {tmp}/long.en more"),
    "an empty line in the second set": (
        lambda tmp: ["--src", ok(tmp)[0], *files(tmp, ("b.en", ["one", ""])), "--ref", ok(tmp)[1],
                     *files(tmp, ("b.de", ["eins", "zwei"]))],
        "b.en, line 2: empty line"),
    "--output with two sets": (
        lambda tmp: ["--src", ok(tmp)[0], *files(tmp, ("b.en", ["one"])), "--ref", ok(tmp)[1],
                     *files(tmp, ("b.de", ["eins"])), "--output", tmp / "hyp.de"],
        "--output holds the translations of one test set, but 2 are given: use --output-dir"),
    "--output and --output-dir": (
        lambda tmp: ["--src", ok(tmp)[0], "--ref", ok(tmp)[1], "--output", tmp / "h", "--output-dir", tmp / "o"],
        "give --output (the translations of one test set) or --output-dir (one file per set), not both"),
    "a file as --output-dir": (
        lambda tmp: ["--src", ok(tmp)[0], "--ref", ok(tmp)[1], "--output-dir", ok(tmp)[1]],
        "--output-dir {tmp}/ok.de is a file; give a folder"),
    "an --output-dir file that is a reference file": (
        lambda tmp: ["--src", *files(tmp, ("t.en", ["one"])), "--ref", *files(tmp, ("t.hyp.de", ["eins"])),
                     "--output-dir", tmp],
        "--output-dir {tmp}: {tmp}/t.hyp.de is the --ref file {tmp}/t.hyp.de; writing the translations would "
        "replace it"),
    "an --output-dir file that is a folder": (
        lambda tmp: ["--src", ok(tmp)[0], "--ref", ok(tmp)[1], "--output-dir", (tmp / "ok.hyp.de").mkdir() or tmp],
        "{tmp}/ok.hyp.de is a folder; give a file name"),
}


@pytest.mark.parametrize("name", BAD_EVALUATIONS)
def test_bad_evaluations_fail_with_one_clear_line_before_any_translation(tmp_path, capsys, name):
    make_argv, message = BAD_EVALUATIONS[name]
    # the checkpoint does not exist: every check comes before the model is loaded
    code, out, err = run(["evaluate", "--checkpoint", tmp_path / "model.safetensors", *make_argv(tmp_path)], capsys)
    assert code == 1 and out == ""
    assert err.startswith("minitf: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message.format(tmp=tmp_path) in err, err
    assert "model.safetensors" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "h").exists()


# ---- forced decoding -----------------------------------------------------------------------------

def hand_scored(model, tokenizer, source: str, reference: str) -> float:
    """log p(reference + EOS | source) from one unbatched forward pass and a log-softmax by hand."""
    pad, bos, eos = (tokenizer.special_id(t) for t in ("<pad>", "<bos>", "<eos>"))
    src, tgt = tokenizer.encode(source), tokenizer.encode(reference)
    model.eval()
    with no_grad():
        logits = model(np.array([src]), np.array([[bos, *tgt]]), np.ones((1, len(src)), dtype=bool))
    x = np.asarray(logits.data, dtype=np.float64)[0]
    log_probs = x - x.max(axis=-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=-1, keepdims=True))
    return float(sum(log_probs[t, token] for t, token in enumerate([*tgt, eos])))


def test_forced_decoding_sums_the_models_log_softmax_at_the_reference_tokens(trained, translator):
    pairs = trained[0].splits["val"][:6]
    sources = [s for s, _ in pairs]
    references = [t for _, t in pairs[:3]] + ["zwei", "", "eins zwei drei vier fünf sechs"]
    scores = translator.score(sources, references, batch_size=4)  # padded batches of different lengths
    for score, source, reference in zip(scores, sources, references):
        assert score.tokens == len(translator.tokenizer.encode(reference)) + 1
        assert score.total == pytest.approx(hand_scored(translator.model, translator.tokenizer, source, reference),
                                            rel=1e-5, abs=1e-5)
        assert score.per_token == pytest.approx(score.total / score.tokens)
        assert all(p <= 0 for p in score.token_log_probs)
    one_by_one = [translator.score([s], [r])[0].total for s, r in zip(sources, references)]
    assert [s.total for s in scores] == pytest.approx(one_by_one, rel=1e-5, abs=1e-5)


def test_forced_decoding_of_an_untrained_model_is_its_log_softmax_too():
    model = Seq2SeqTransformer(TINY_MODEL_CONFIG)
    translator = Translator(model, TINY_TOKENIZER)
    score = translator.score(["ab"], ["xyz"])[0]
    assert score.total == pytest.approx(hand_scored(model, TINY_TOKENIZER, "ab", "xyz"), rel=1e-6)


def test_the_better_of_two_references_scores_higher_on_a_trained_model(trained, translator):
    pairs = trained[0].splits["val"][:10]
    sources, good = [s for s, _ in pairs], [t for _, t in pairs]
    bad = [t[::-1] for t in good]  # the same characters, backwards
    good_scores, bad_scores = translator.score(sources, good), translator.score(sources, bad)
    for better, worse in zip(good_scores, bad_scores):
        assert better.total > worse.total and better.per_token > worse.per_token


def test_a_reference_longer_than_the_models_positions_is_refused(translator):
    limit = translator.model.config.max_len - 1
    with pytest.raises(InputError, match=rf"reference 2 has \d+ tokens, more than the model's maximum of {limit} "):
        translator.score(["one", "two"], ["eins", "zwei " * 100])
    with pytest.raises(InputError, match="sentence 1 is empty"):
        translator.score([""], ["eins"])
    with pytest.raises(InputError, match="got 2 sentences but 1 references"):
        translator.score(["one", "two"], ["eins"])
    with pytest.raises(TypeError, match="list of sentences"):
        translator.score("one", "eins")
    with pytest.raises(ValueError, match=f"pair 2: a source of 1 and a target of {limit + 1} tokens do not fit"):
        score_ids(translator.model, [[5], [5]], [[5], [5] * (limit + 1)], bos_id=1, eos_id=2, pad_id=0)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1, got 0"):
        translator.score(["one"], ["eins"], batch_size=0)


def test_minitf_score_prints_each_references_log_probability(tmp_path, capsys, trained, translator):
    pairs = trained[0].splits["val"][:5]
    src, ref = write_set(tmp_path, "val", pairs)
    code, out, err = run(["score", "--checkpoint", trained[1], "--src", src, "--ref", ref, "--batch-size", 2],
                         capsys)
    assert code == 0, err
    expected = translator.score([s for s, _ in pairs], [t for _, t in pairs])
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == 5
    for (total, per_token, tokens), score in zip(rows, expected):
        assert float(total) == pytest.approx(score.total, abs=1e-4)
        assert float(per_token) == pytest.approx(score.per_token, abs=1e-4)
        assert int(tokens) == score.tokens and math.isfinite(float(total))


BAD_SCORES = {
    "a reference too long": (lambda tmp: files(tmp, ("s.en", ["one", "two"]), ("r.de", ["eins", "zwei " * 100])),
                             r"{tmp}/r.de, line 2: the reference has \d+ tokens, more than the model's maximum of 95 "
                             r"\(its 96 positions hold BOS and the tokens\)"),
    "a source too long": (lambda tmp: files(tmp, ("s.en", ["one " * 100]), ("r.de", ["eins"])),
                          r"{tmp}/s.en, line 1: the source has \d+ tokens, more than the model's maximum of 95; "
                          "it cannot be scored"),
    "files of different lengths": (lambda tmp: files(tmp, ("s.en", ["one", "two"]), ("r.de", ["eins"])),
                                   r"{tmp}/s.en, line 2: parallel files differ in length: {tmp}/r.de has 1 lines"),
    "empty files": (lambda tmp: files(tmp, ("s.en", []), ("r.de", [])),
                    r"{tmp}/s.en and {tmp}/r.de hold no lines: nothing to score"),
}


@pytest.mark.parametrize("name", BAD_SCORES)
def test_minitf_score_refuses_bad_input_naming_the_file_and_line(tmp_path, capsys, trained, name):
    make_files, message = BAD_SCORES[name]
    src, ref = make_files(tmp_path)
    code, out, err = run(["score", "--checkpoint", trained[1], "--src", src, "--ref", ref], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert re.fullmatch("minitf: error: " + message.format(tmp=re.escape(str(tmp_path))) + ".*\n", err), err


def test_minitf_score_checks_the_batch_size_before_loading(tmp_path, capsys):
    code, _, err = run(["score", "--checkpoint", tmp_path / "none", "--src", "a", "--ref", "b",
                        "--batch-size", 0], capsys)
    assert code == 1 and err == "minitf: error: --batch-size must be an integer >= 1, got 0\n"

"""Ensembles (several checkpoints averaging their probabilities) and n-best lists, on tiny untrained models."""
from __future__ import annotations

import dataclasses
import io
import sys

import numpy as np
import pytest

import minitf
from minitf.cli import main
from minitf.errors import ConfigError
from minitf.nn import Seq2SeqTransformer, TransformerConfig
from minitf.tokenizer import BPETokenizer
from minitf.translation import CheckpointError, Translator, save_checkpoint
from minitf.translation.decode import beam_search, greedy_decode, length_penalty_factor, translate_ids
from minitf.translation.ensemble import Ensemble, load_ensemble
from minitf.translation.nbest import Finished, Hypothesis, nbest_line
from minitf.translation.tokens import SPECIAL_TOKENS

TEXTS = ["one two three four five six seven", "eight nine ten eleven twelve"] * 3
TOKENIZER = BPETokenizer.train(TEXTS, 280, special_tokens=SPECIAL_TOKENS)
IDS = dict(zip(("pad_id", "bos_id", "eos_id"), (TOKENIZER.special_id(t) for t in SPECIAL_TOKENS)))
SEARCH = dict(bos_id=IDS["bos_id"], eos_id=IDS["eos_id"], banned_ids=[IDS["pad_id"]])
CONFIG = TransformerConfig(src_vocab_size=TOKENIZER.vocab_size, tgt_vocab_size=TOKENIZER.vocab_size, d_model=16,
                           n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32, dropout=0.0, max_len=24,
                           pad_id=IDS["pad_id"])
SOURCES = [TOKENIZER.encode(s) for s in ("one two", "three four five", "twelve", "six seven eight nine")]


def model(seed: int, **changes) -> Seq2SeqTransformer:
    """An untrained model with confident logits (8 times larger: the final norm's gain and bias), so that
    models of different seeds disagree; a plain Seq2SeqTransformer, so that a checkpoint holds it as it is."""
    minitf.manual_seed(seed)
    net = Seq2SeqTransformer(dataclasses.replace(CONFIG, **changes)).eval()
    for p in (net.decoder_norm.weight, net.decoder_norm.bias):
        p.data *= 8.0
    return net


@pytest.fixture(scope="module")
def models():
    return model(1), model(2)


def batch(sources):
    width = max(map(len, sources))
    src = np.full((len(sources), width), IDS["pad_id"], dtype=np.int64)
    for row, ids in enumerate(sources):
        src[row, :len(ids)] = ids
    return src, np.arange(width) < np.array([len(s) for s in sources])[:, None]


def limit(source) -> int:
    """Decoding's default output limit for `source`: floor(1.5 * its length + 10), at most max_len - 1."""
    return min(int(1.5 * len(source) + 10), CONFIG.max_len - 1)


def save(path, net: Seq2SeqTransformer, tokenizer: BPETokenizer = TOKENIZER):
    meta = {"model_config": net.config.to_dict(), "tokenizer": tokenizer.to_dict()}
    return str(save_checkpoint(path, net.state_dict(), meta))


# ---- the ensemble's distribution -----------------------------------------------------------

@pytest.mark.parametrize("beam", [1, 2, 4])
def test_an_ensemble_of_one_decodes_exactly_as_its_model(models, beam):
    alone = translate_ids(models[0], SOURCES, beam_size=beam, nbest=1, **IDS)
    assert translate_ids(Ensemble([models[0]]), SOURCES, beam_size=beam, nbest=1, **IDS) == alone
    assert translate_ids(Ensemble([models[0]]), SOURCES, beam_size=beam, **IDS) == \
        translate_ids(models[0], SOURCES, beam_size=beam, **IDS) == [h[0].output for h in alone]


def test_the_first_step_is_the_log_of_the_mean_of_the_softmaxes(models):
    src, mask = batch(SOURCES)
    ensemble = Ensemble(models)
    tokens = np.full((len(SOURCES), 1), IDS["bos_id"], dtype=np.int64)
    got = ensemble.decode(tokens, ensemble.encode(src, mask), mask, ensemble.new_caches(), start=0)
    probs = []
    for m in models:  # by hand, in float64: exp, normalise, average, log
        logits = m.decode(tokens, m.encode(src, mask), mask).data.astype(np.float64)
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs.append(e / e.sum(axis=-1, keepdims=True))
    expected = np.log((probs[0] + probs[1]) / 2)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert np.allclose(np.exp(got).sum(axis=-1), 1.0)
    # the two models disagree, so the ensemble's first choice differs from at least one of theirs
    assert not np.allclose(probs[0], probs[1], atol=1e-3)


class Leaning(Seq2SeqTransformer):
    """A model that gives token `first` probability ~0.6 and token `second` ~0.4 at every step."""

    first = second = 0

    def decode(self, *args, **kwargs):
        logits = super().decode(*args, **kwargs)
        logits.data *= 0.001
        logits.data[..., self.first] += 30.0
        logits.data[..., self.second] += 30.0 - np.log(1.5)
        return logits


@pytest.mark.parametrize("beam", [1, 3])
def test_two_models_give_an_ensemble_that_differs_from_each(beam):
    (x, y, z), pair = TOKENIZER.encode("one two three")[:3], []
    for seed, first in ((1, x), (2, z)):  # 0.6 x + 0.4 y, and 0.6 z + 0.4 y: their mean prefers y (0.4)
        minitf.manual_seed(seed)
        pair.append(Leaning(CONFIG).eval())
        pair[-1].first, pair[-1].second = first, y
    options = dict(beam_size=beam, max_len_a=0, max_len_b=3, **IDS)
    outputs = [translate_ids(m, SOURCES, **options) for m in (*pair, Ensemble(pair))]
    assert outputs == [[[x] * 3] * 4, [[z] * 3] * 4, [[y] * 3] * 4]
    assert translate_ids(Ensemble(pair[::-1]), SOURCES, **options) == outputs[2]


def test_greedy_ensemble_follows_the_averaged_arg_max_step_by_step(models):
    src, mask = batch(SOURCES[:1])
    ensemble = Ensemble(models)
    (out,) = greedy_decode(ensemble, src, mask, max_len_b=3, max_len_a=0, **SEARCH)
    prefix = [IDS["bos_id"]]  # re-decode each prefix without the cache: the arg-max of the mean
    for token in out:
        step = ensemble.decode(np.array([prefix]), ensemble.encode(src, mask), mask)[0, -1]
        step[[IDS["bos_id"], IDS["pad_id"]]] = -np.inf
        assert token == int(step.argmax())
        prefix.append(token)


def test_ensemble_beam_scores_are_its_log_probabilities(models):
    src, mask = batch(SOURCES[:1])
    ensemble = Ensemble(models)
    (hyps,) = beam_search(ensemble, src, mask, beam_size=3, nbest=3, length_penalty=0.0, **SEARCH)
    for hyp in hyps:  # forced decoding of each hypothesis adds up to its log-prob
        ended = len(hyp.output) < limit(SOURCES[0])
        target = [*hyp.output, IDS["eos_id"]] if ended else hyp.output
        steps = ensemble.decode(np.array([[IDS["bos_id"], *target[:-1]]]), ensemble.encode(src, mask), mask)[0]
        total = sum(steps[i, token] for i, token in enumerate(target))
        # (float32 models: the cached and the whole-prefix decoder round differently)
        assert hyp.log_prob == pytest.approx(total, abs=1e-5) and hyp.score == hyp.log_prob


def test_the_ensemble_limit_is_the_smallest_max_len(models):
    short = model(3, max_len=8)
    ensemble = Ensemble([models[0], short])
    assert ensemble.config.max_len == 8
    outputs = translate_ids(ensemble, SOURCES[:3], beam_size=2, max_len_b=50, **IDS)  # sources of <= 7 tokens
    assert max(map(len, outputs)) <= 7


# ---- n-best ---------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_nbest_lists_are_ordered_and_scored(models, alpha):
    lists = translate_ids(models[0], SOURCES, beam_size=4, nbest=4, length_penalty=alpha, **IDS)
    best = translate_ids(models[0], SOURCES, beam_size=4, length_penalty=alpha, **IDS)
    for hyps, top, source in zip(lists, best, SOURCES):
        assert len(hyps) == 4 and hyps[0].output == top
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.output) for h in hyps}) == 4
        for h in hyps:
            n = len(h.output) + (len(h.output) < limit(source))  # EOS counted unless the limit stopped it
            assert h.score == pytest.approx(h.log_prob / length_penalty_factor(n, alpha)) and h.log_prob < 0


def test_finished_keeps_the_k_best_and_the_earlier_of_ties():
    finished = Finished(batch=2, size=2)
    for score, tokens in ((-3.0, [1]), (-1.0, [2]), (-1.0, [3]), (-2.0, [4]), (-1.0, [5])):
        finished.add(0, score, 2 * score, np.array(tokens))
    assert finished.rows[0] == [Hypothesis([2], -1.0, -2.0), Hypothesis([3], -1.0, -2.0)]
    assert finished.threshold(np.array([0, 1])).tolist() == [-1.0, -np.inf]  # row 1 is not full yet
    assert finished.best_tokens() == [[2], []]
    assert finished.hypotheses()[1] == [Hypothesis([], 0.0, 0.0)]  # a row that decoded nothing


def test_fewer_best_of_a_beam_are_its_first(models):
    four = translate_ids(models[1], SOURCES, beam_size=4, nbest=4, **IDS)
    two = translate_ids(models[1], SOURCES, beam_size=4, nbest=2, **IDS)
    assert all(len(t) == 2 for t in two) and [f[:1] for f in four] == [t[:1] for t in two]


def test_greedy_nbest_scores_its_one_output(models):
    (hyps,) = translate_ids(models[0], SOURCES[:1], beam_size=1, nbest=1, length_penalty=0.0, **IDS)
    (again,) = translate_ids(models[0], SOURCES[:1], beam_size=2, nbest=2, length_penalty=0.0, **IDS)
    assert len(hyps) == 1 and hyps[0].log_prob < 0 and hyps[0].score == hyps[0].log_prob
    assert hyps[0].log_prob <= again[0].log_prob + 1e-12  # beam 2 finds at least as likely an output
    if hyps[0].output == again[0].output:
        assert hyps[0].log_prob == pytest.approx(again[0].log_prob, abs=1e-12)


def test_translator_nbest_gives_texts_and_the_line_format(models):
    translator = Translator(models[0], TOKENIZER)
    lists = translator.translate_nbest(["one two", "six"], nbest=3, beam_size=3)
    assert [h[0].output for h in lists] == translator.translate(["one two", "six"], beam_size=3)
    hyp = lists[1][2]
    assert nbest_line(1, hyp.output, hyp) == f"1 ||| {hyp.output} ||| {hyp.score:.6f} ||| {hyp.log_prob:.6f}"


@pytest.mark.parametrize("nbest, beam, message", [
    (3, 2, "nbest 3 is more than beam_size 2: beam search keeps only 2 hypotheses"),
    (0, 2, "nbest must be None or an integer >= 1, got 0"),
    (2.0, 2, "nbest must be None or an integer >= 1, got 2.0"), ("2", 2, "nbest must be None or an int, got str")])
def test_bad_nbest_is_refused(models, nbest, beam, message):
    with pytest.raises(ConfigError, match=message):
        translate_ids(models[0], SOURCES, beam_size=beam, nbest=nbest, **IDS)
    with pytest.raises(ConfigError, match=message):
        Translator(models[0], TOKENIZER).translate_nbest(["one"], nbest=nbest, beam_size=beam)


# ---- loading several checkpoints ------------------------------------------------------------

def test_translator_loads_an_ensemble_from_several_checkpoints(tmp_path, models):
    paths = [save(tmp_path / f"m{i}.safetensors", m) for i, m in enumerate(models)]
    translator = Translator.from_checkpoint(paths)
    assert isinstance(translator.model, Ensemble) and len(translator.model) == 2
    sentences = ["one two", "eight nine"]
    assert translator.translate(sentences, beam_size=3) == \
        Translator(Ensemble(models), TOKENIZER).translate(sentences, beam_size=3)
    single = Translator.from_checkpoint(paths[:1])
    assert not isinstance(single.model, Ensemble)
    assert single.translate(sentences) == Translator(models[0], TOKENIZER).translate(sentences)


def test_different_max_len_is_allowed_with_a_note(tmp_path, models):
    paths = [save(tmp_path / "a.safetensors", models[0]), save(tmp_path / "b.safetensors", model(3, max_len=10))]
    notes = []
    ensemble, _ = load_ensemble(paths, log=notes.append)
    assert ensemble.config.max_len == 10 and Translator(ensemble, TOKENIZER).max_source_tokens == 9
    assert notes == ["the checkpoints' models hold 24, 10 positions (max_len); the ensemble uses the smallest, "
                     "10: longer sentences are refused and outputs cut to it"]


def test_different_tokenizers_are_refused_naming_both_files(tmp_path, models):
    other = BPETokenizer.train(TEXTS, 270, special_tokens=SPECIAL_TOKENS)
    a = save(tmp_path / "a.safetensors", models[0])
    b = save(tmp_path / "b.safetensors", model(2, src_vocab_size=other.vocab_size, tgt_vocab_size=other.vocab_size),
             other)
    with pytest.raises(CheckpointError, match=f"checkpoints {a} and {b} have different tokenizers "
                                              f"\\(280 and 270 tokens\\)"):
        Translator.from_checkpoint([a, b])


def test_same_size_tokenizers_with_other_merges_are_refused(tmp_path, models):
    other = BPETokenizer.train(["alpha beta gamma delta epsilon zeta eta theta"] * 5, 280, special_tokens=SPECIAL_TOKENS)
    assert other.vocab_size == TOKENIZER.vocab_size
    a, b = save(tmp_path / "a.safetensors", models[0]), save(tmp_path / "b.safetensors", models[1], other)
    with pytest.raises(CheckpointError, match=f"checkpoints {a} and {b} have different tokenizers \\(both of 280 "
                                              "tokens, but not the same merges or settings\\)"):
        load_ensemble([a, b])


def test_different_special_token_ids_are_refused(tmp_path, models):
    other = BPETokenizer.train(TEXTS, 280, special_tokens=[SPECIAL_TOKENS[1], SPECIAL_TOKENS[0], SPECIAL_TOKENS[2]])
    a = save(tmp_path / "a.safetensors", models[0])
    b = save(tmp_path / "b.safetensors", model(2, pad_id=other.special_id(SPECIAL_TOKENS[0])), other)
    with pytest.raises(CheckpointError, match=f"checkpoints {a} and {b} give different special-token ids "
                                              r"\(\(pad, bos, eos\) = \(0, 1, 2\) and \(1, 0, 2\)\)"):
        load_ensemble([a, b])


def test_a_missing_checkpoint_is_named(tmp_path, models):
    a = save(tmp_path / "a.safetensors", models[0])
    missing = str(tmp_path / "none.safetensors")
    with pytest.raises(CheckpointError, match=f"checkpoint {missing} does not exist"):
        Translator.from_checkpoint([a, missing])


def test_an_empty_list_of_checkpoints_is_refused():
    with pytest.raises(CheckpointError, match="no checkpoint given"):
        Translator.from_checkpoint([])


def test_models_of_different_vocabulary_sizes_cannot_form_an_ensemble(models):
    with pytest.raises(ValueError, match="vocabularies differ in size"):
        Ensemble([models[0], model(3, src_vocab_size=300, tgt_vocab_size=300)])
    with pytest.raises(ValueError, match="at least one model"):
        Ensemble([])


# ---- the command line -----------------------------------------------------------------------

@pytest.fixture
def checkpoints(tmp_path, models):
    return [save(tmp_path / f"m{i}.safetensors", m) for i, m in enumerate(models)]


def run(argv, capsys, monkeypatch, stdin="one two\n\nsix\n"):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8"))
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_translates_with_an_ensemble(checkpoints, models, capsys, monkeypatch):
    code, out, err = run(["translate", "--checkpoint", *checkpoints, "--beam", "3"], capsys, monkeypatch)
    assert code == 0 and "line 2 is empty" in err
    expected = Translator(Ensemble(models), TOKENIZER).translate(["one two", "six"], beam_size=3)
    assert out.splitlines() == [expected[0], "", expected[1]]


def test_cli_prints_nbest_lists(checkpoints, models, capsys, monkeypatch):
    code, out, err = run(["translate", "--checkpoint", checkpoints[0], "--beam", "3", "--nbest", "2"],
                         capsys, monkeypatch)
    assert code == 0
    lists = Translator(models[0], TOKENIZER).translate_nbest(["one two", "six"], nbest=2, beam_size=3)
    assert out.splitlines() == [nbest_line(number, h.output, h) for number, hyps in ((0, lists[0]), (2, lists[1]))
                                for h in hyps]
    assert [line.split(" ||| ")[0] for line in out.splitlines()] == ["0", "0", "2", "2"]


@pytest.mark.parametrize("flags, message", [
    (["--beam", "2", "--nbest", "3"], "--nbest 3 is more than --beam 2"),
    (["--nbest", "0"], "--nbest must be None or an integer >= 1, got 0")])
def test_cli_refuses_a_bad_nbest(checkpoints, capsys, monkeypatch, flags, message):
    code, out, err = run(["translate", "--checkpoint", checkpoints[0], *flags], capsys, monkeypatch)
    assert code == 1 and out == "" and err.startswith("minitf: error: ") and message in err


def test_cli_evaluates_an_ensemble_and_names_a_missing_checkpoint(tmp_path, checkpoints, capsys, monkeypatch):
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("one two\nsix\n", encoding="utf-8")
    ref.write_text("one two\nsix\n", encoding="utf-8")
    code, out, _ = run(["evaluate", "--checkpoint", *checkpoints, "--src", src, "--ref", ref, "--beam", "2"],
                       capsys, monkeypatch)
    assert code == 0 and '"sentences": 2' in out
    missing = tmp_path / "gone.safetensors"
    code, out, err = run(["evaluate", "--checkpoint", checkpoints[0], missing, "--src", src, "--ref", ref],
                         capsys, monkeypatch)
    assert code == 1 and err == f"minitf: error: checkpoint {missing} does not exist\n"


def test_cli_notes_the_smaller_max_len(tmp_path, checkpoints, capsys, monkeypatch):
    short = save(tmp_path / "short.safetensors", model(3, max_len=10))
    code, out, err = run(["translate", "--checkpoint", checkpoints[0], short], capsys, monkeypatch)
    assert code == 0 and "minitf: note: the checkpoints' models hold 24, 10 positions" in err

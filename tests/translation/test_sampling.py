"""Sampling (translate --sample, translate_ids(sample=True)): temperature, top-k, top-p and the seed,
on tiny random Transformers and on a fake model with a flat distribution; bad values refused."""
from types import SimpleNamespace

import numpy as np
import pytest

import minitf
from minitf import cli
from minitf.errors import ConfigError
from minitf.nn.transformer import Seq2SeqTransformer, TransformerConfig
from minitf.translation.decode import greedy_decode, translate_ids
from minitf.translation.sampling import Sampling, sampling_probs, top_k_filter, top_p_filter
from minitf.translation.translator import Translator
from tiny_runs import TINY_MODEL_CONFIG, TINY_TOKENIZER

IDS = dict(bos_id=1, eos_id=2, pad_id=0)
SOURCES = [[3, 4, 5], [6], [7, 3, 3, 4, 5, 6], [5, 5], [9, 8, 7, 6]]


def tiny_model(seed=5):
    minitf.manual_seed(seed)
    config = TransformerConfig(src_vocab_size=10, tgt_vocab_size=10, d_model=16, n_heads=2, n_encoder_layers=1,
                               n_decoder_layers=1, d_ff=32, dropout=0.0, max_len=40, tie_output=False)
    model = Seq2SeqTransformer(config)
    model.output_weight.data *= 3.0
    return model


class Flat:
    """A fake model: every token equally likely at every step, but EOS (id 2) rarer."""

    def __init__(self, vocab=10):
        self.vocab, self.config, self.training = vocab, SimpleNamespace(max_len=40), False

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def encode(self, src, src_mask):
        return np.zeros((len(src), 1, 1))

    def new_caches(self):
        return []

    def decode(self, tgt_in, memory, src_mask, caches=None, start=0):
        logits = np.zeros((len(tgt_in), 1, self.vocab), dtype=np.float32)
        logits[:, :, 2] = -2.0
        return minitf.tensor(logits)


def test_top_k_1_is_greedy_search():
    model = tiny_model()
    greedy = translate_ids(model, SOURCES, **IDS, beam_size=1)
    for temperature in (0.5, 1.0, 3.0):
        assert translate_ids(model, SOURCES, **IDS, sample=True, top_k=1, temperature=temperature, seed=4) == greedy


def test_a_temperature_near_zero_is_greedy_search_and_one_is_not():
    model = tiny_model()
    greedy = translate_ids(model, SOURCES, **IDS, beam_size=1)
    assert translate_ids(model, SOURCES, **IDS, sample=True, temperature=1e-4) == greedy
    assert translate_ids(model, SOURCES, **IDS, sample=True, temperature=1e-300) == greedy  # no overflow, no nan
    assert translate_ids(model, SOURCES, **IDS, sample=True, temperature=3.0) != greedy


def test_top_p_keeps_the_smallest_set_with_at_least_that_mass():
    probs = np.array([[0.15, 0.5, 0.05, 0.3]])
    assert top_p_filter(probs, 0.5).tolist() == [[0.0, 1.0, 0.0, 0.0]]  # 0.5 alone reaches 0.5
    np.testing.assert_allclose(top_p_filter(probs, 0.75), [[0.0, 0.625, 0.0, 0.375]])
    np.testing.assert_allclose(top_p_filter(probs, 0.81), [[0.15, 0.5, 0.0, 0.3]] / np.float64(0.95))
    np.testing.assert_allclose(top_p_filter(probs, 0.1), [[0.0, 1.0, 0.0, 0.0]])
    assert top_p_filter(probs, 1.0) is probs
    tied = np.array([[0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_allclose(top_p_filter(tied, 0.4), [[0.5, 0.5, 0.0, 0.0]])  # ties: the lower ids first


def test_top_k_keeps_the_k_best_and_the_lower_id_on_ties():
    scores = np.array([[1.0, 3.0, 3.0, -np.inf, 2.0]])
    assert top_k_filter(scores, 2).tolist() == [[-np.inf, 3.0, 3.0, -np.inf, -np.inf]]
    assert top_k_filter(scores, 1).tolist() == [[-np.inf, 3.0, -np.inf, -np.inf, -np.inf]]
    assert top_k_filter(scores, 9) is scores


def test_draws_follow_the_filtered_distribution():
    logits = np.log(np.array([[0.1, 0.4, 0.2, 0.3]]))
    np.testing.assert_allclose(sampling_probs(logits, top_k=2), [[0.0, 4 / 7, 0.0, 3 / 7]])
    np.testing.assert_allclose(sampling_probs(logits, temperature=0.5), [[0.01, 0.16, 0.04, 0.09]] / np.float64(0.3))
    generator = np.random.default_rng(0)
    draws = Sampling(top_k=3, seed=0).draw(np.repeat(logits, 20000, axis=0), [generator] * 20000)
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 20000, [0.0, 4 / 9, 2 / 9, 3 / 9], atol=0.015)


def test_the_same_seed_gives_the_same_output_and_other_seeds_differ():
    runs = {seed: translate_ids(Flat(), SOURCES, **IDS, sample=True, seed=seed, max_len_b=20) for seed in (0, 1, 2)}
    assert translate_ids(Flat(), SOURCES, **IDS, sample=True, seed=1, max_len_b=20) == runs[1]
    assert runs[0] != runs[1] != runs[2] != runs[0]
    assert len({tuple(out) for out in runs[0]}) == len(SOURCES)  # each sentence its own draws
    assert all(set(out) <= set(range(3, 10)) for run in runs.values() for out in run)  # no special token but EOS
    # a sentence's draws do not depend on its batch
    assert translate_ids(Flat(), SOURCES, **IDS, sample=True, seed=1, max_len_b=20, batch_size=2) == runs[1]


def test_greedy_decode_samples_too_and_checks_its_sampling():
    src, mask = np.array([[3], [4]]), np.array([[True], [True]])
    out = greedy_decode(Flat(), src, mask, bos_id=1, eos_id=2, banned_ids=[0], sampling=Sampling(seed=7), sentences=[3, 4])
    assert out == translate_ids(Flat(), [[5], [5], [5], [3], [4]], **IDS, sample=True, seed=7)[3:]
    with pytest.raises(ConfigError, match=r"^temperature must be a finite number > 0, got -1"):
        greedy_decode(Flat(), src, mask, bos_id=1, eos_id=2, sampling=Sampling(temperature=-1))


BAD = [({"temperature": 0}, "temperature must be a finite number > 0, got 0"),
       ({"temperature": float("inf")}, "temperature must be a finite number > 0, got inf"),
       ({"top_k": 0}, "top_k must be an integer >= 1, got 0"),
       ({"top_p": 0.0}, "top_p must be a number in (0, 1], got 0.0"),
       ({"top_p": 1.5}, "top_p must be a number in (0, 1], got 1.5"),
       ({"seed": -1}, "seed must be an integer >= 0, got -1"),
       ({"beam_size": 5}, "sample draws one translation token by token: not with beam_size 5"),
       ({"sample": False, "top_k": 3}, "top_k applies only to sampling: give sample too")]


@pytest.mark.parametrize("options, message", BAD)
def test_bad_sampling_options_are_refused_by_the_api(options, message):
    translator = Translator(Seq2SeqTransformer(TINY_MODEL_CONFIG), TINY_TOKENIZER)
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        translator.translate(["one"], **{"sample": True, **options})


@pytest.mark.parametrize("flags, message", [
    (["--sample", "--temperature", "0"], "--temperature must be a finite number > 0, got 0.0"),
    (["--sample", "--top-k", "0"], "--top-k must be an integer >= 1, got 0"),
    (["--sample", "--top-p", "1.5"], "--top-p must be a number in (0, 1], got 1.5"),
    (["--sample", "--seed", "-3"], "--seed must be an integer >= 0, got -3"),
    (["--sample", "--beam", "4"], "--sample draws one translation token by token: not with --beam 4"),
    (["--sample", "--nbest", "2"], "--sample draws one translation per sentence: not with --nbest"),
    (["--top-p", "0.9"], "--top-p applies only to sampling: give --sample too"),
])
def test_the_cli_refuses_bad_sampling_flags_in_one_line(capsys, tmp_path, flags, message):
    assert cli.main(["translate", "--checkpoint", str(tmp_path / "none.safetensors"), *flags]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minitf: error: " + message), err


def test_the_cli_samples_reproducibly(capsys, monkeypatch):
    translator = Translator(Seq2SeqTransformer(TINY_MODEL_CONFIG), TINY_TOKENIZER)
    monkeypatch.setattr(cli.Translator, "from_checkpoint", lambda *a, **k: translator)
    lines = "one two\nthree\nfour five six\n"

    def run(*flags):
        monkeypatch.setattr("sys.stdin", SimpleNamespace(buffer=iter(lines.encode().splitlines(True))))
        assert cli.main(["translate", "--checkpoint", "x", *flags]) == 0
        return capsys.readouterr().out

    sampled = run("--sample", "--seed", "3", "--top-p", "0.9", "--temperature", "1.5")
    assert len(sampled.splitlines()) == 3
    assert run("--sample", "--seed", "3", "--top-p", "0.9", "--temperature", "1.5") == sampled
    assert run("--sample", "--top-k", "1") == run("--beam", "1")


def test_the_translator_samples_reproducibly():
    translator = Translator(Seq2SeqTransformer(TINY_MODEL_CONFIG), TINY_TOKENIZER)
    sentences = ["one two", "three", "four five"]
    sampled = translator.translate(sentences, sample=True, seed=5, temperature=2.0)
    assert translator.translate(sentences, sample=True, seed=5, temperature=2.0) == sampled
    assert translator.translate(sentences, sample=True, top_k=1, seed=5) == translator.translate(sentences)

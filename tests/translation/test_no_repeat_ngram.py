"""--no-repeat-ngram-size: greedy and beam search never complete an n-gram a hypothesis already has
(EOS never blocked), on a fake model that loves to repeat itself and on a tiny Transformer; 0 is
today's decoding bit for bit."""
from types import SimpleNamespace

import numpy as np
import pytest

import minitf
from minitf.cli import main
from minitf.errors import ConfigError
from minitf.nn.transformer import Seq2SeqTransformer, TransformerConfig
from minitf.translation.decode import beam_search, greedy_decode, translate_ids
from minitf.translation.search_steps import _mask_repeats

PAD, BOS, EOS, A, B, C = range(6)
IDS = dict(bos_id=BOS, eos_id=EOS, banned_ids=[PAD])
# next-token logits by the last token: A B A B ... unless stopped
NEXT = {BOS: {A: 5.0}, A: {B: 5.0, C: 3.0, EOS: 1.0}, B: {A: 5.0, EOS: 2.0, C: 1.0}, C: {A: 5.0, EOS: 4.0, B: 1.0}}


class LastTokenCache:
    def __init__(self):
        self.tokens = None

    def reorder(self, index):
        self.tokens = self.tokens[np.asarray(index)]


class Repeater:
    """A fake model whose next-token logits depend on the last token only (NEXT)."""

    def __init__(self, max_len=32):
        self.config, self.training = SimpleNamespace(max_len=max_len), False

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def encode(self, src, src_mask):
        return np.zeros((len(src), 1, 1))

    def new_caches(self):
        return [{"self": LastTokenCache()}]

    def decode(self, tgt_in, memory, src_mask, caches=None, start=0):
        cache = caches[0]["self"]
        cache.tokens = tgt_in if cache.tokens is None else np.concatenate([cache.tokens, tgt_in], axis=1)
        logits = np.zeros((len(tgt_in), 1, 6))
        for row, last in enumerate(cache.tokens[:, -1].tolist()):
            for token, value in NEXT[last].items():
                logits[row, 0, token] = value
        return minitf.tensor(logits)


def ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


SRC, MASK = np.array([[7], [7]]), np.array([[True], [True]])
LIMIT = dict(max_len_a=0, max_len_b=6)


@pytest.mark.parametrize("size, expected", [(0, [A, B, A, B, A, B]), (1, [A, B]), (2, [A, B, A, C, A]),
                                            (3, [A, B, A, B])])
def test_greedy_search_does_not_repeat_an_ngram(size, expected):
    out = greedy_decode(Repeater(), SRC, MASK, **IDS, **LIMIT, no_repeat_ngram_size=size)
    assert out == [expected, expected]
    if size:
        assert len(set(ngrams(expected, size))) == len(ngrams(expected, size))


def test_zero_is_todays_decoding():
    assert greedy_decode(Repeater(), SRC, MASK, **IDS, **LIMIT, no_repeat_ngram_size=0) == \
        greedy_decode(Repeater(), SRC, MASK, **IDS, **LIMIT)
    for beam in (1, 3):
        assert beam_search(Repeater(), SRC, MASK, **IDS, **LIMIT, beam_size=beam, nbest=beam, no_repeat_ngram_size=0) \
            == beam_search(Repeater(), SRC, MASK, **IDS, **LIMIT, beam_size=beam, nbest=beam)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_beam_search_hypotheses_do_not_repeat_an_ngram(size):
    free = beam_search(Repeater(), SRC, MASK, **IDS, **LIMIT, beam_size=3, nbest=3, length_penalty=0.0)
    assert any(len(set(ngrams(h.output, size))) < len(ngrams(h.output, size)) for h in free[0])
    lists = beam_search(Repeater(), SRC, MASK, **IDS, **LIMIT, beam_size=3, nbest=3, length_penalty=0.0,
                        no_repeat_ngram_size=size)
    for hyps in lists:
        assert hyps and all(np.isfinite(h.score) for h in hyps)
        for h in hyps:
            assert len(set(ngrams(h.output, size))) == len(ngrams(h.output, size)), h
    best = beam_search(Repeater(), SRC, MASK, **IDS, **LIMIT, beam_size=3, length_penalty=0.0, no_repeat_ngram_size=size)
    assert best == [hyps[0].output for hyps in lists]


def test_the_mask_blocks_what_would_complete_a_seen_ngram_but_never_eos():
    history = np.array([[A, B, A], [A, B, C], [C, C, C], [A, EOS, A]])
    scores = np.zeros((4, 6))
    _mask_repeats(scores, history, 2, EOS)
    assert np.argwhere(np.isinf(scores)).tolist() == [[0, B], [2, C]]  # row 3: A EOS is seen, EOS is not blocked
    scores = np.zeros((1, 6))
    assert not np.isinf(_mask_repeats(scores, history[:1, :1], 2, EOS)).any()  # no bigram yet


def test_a_tiny_transformer_never_repeats_an_ngram_and_zero_changes_nothing():
    minitf.manual_seed(3)
    config = TransformerConfig(src_vocab_size=8, tgt_vocab_size=8, d_model=16, n_heads=2, n_encoder_layers=1,
                               n_decoder_layers=1, d_ff=32, dropout=0.0, max_len=40, tie_output=False)
    model = Seq2SeqTransformer(config)
    model.output_weight.data *= 3.0
    sources = [[3, 4, 5], [6], [7, 3, 3, 4, 5, 6], [5, 5]]
    ids = dict(bos_id=1, eos_id=2, pad_id=0, max_len_a=3.0, max_len_b=8)
    for beam in (1, 3):
        today = translate_ids(model, sources, beam_size=beam, nbest=1, **ids)
        assert translate_ids(model, sources, beam_size=beam, nbest=1, no_repeat_ngram_size=0, **ids) == today
        for size in (1, 2):
            for (hyp,) in translate_ids(model, sources, beam_size=beam, nbest=1, no_repeat_ngram_size=size, **ids):
                assert len(set(ngrams(hyp.output, size))) == len(ngrams(hyp.output, size))


@pytest.mark.parametrize("value", [-1, 1.5, None])
def test_a_bad_size_is_refused(value):
    with pytest.raises(ConfigError, match="^no_repeat_ngram_size must be"):
        greedy_decode(Repeater(), SRC, MASK, **IDS, no_repeat_ngram_size=value)


def test_the_cli_names_the_flag(capsys, tmp_path):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.safetensors"), "--src", "a", "--ref", "b",
                 "--no-repeat-ngram-size", "-1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["minitf: error: --no-repeat-ngram-size must be an integer >= 0 (0: off), got -1"]

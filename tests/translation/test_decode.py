"""Greedy decoding and beam search (minitf.translation.decode) on tiny random Transformers and on
a scripted fake model whose next-token distributions are written out by hand."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

import minitf
from minitf import no_grad
from minitf.nn.transformer import Seq2SeqTransformer, TransformerConfig
from minitf.translation.decode import (beam_search, greedy_decode, length_limits,
                                     length_penalty_factor, translate_ids)

V = 12
PAD, BOS, EOS = 0, 1, 2


def tiny_model(seed, scale=3.0, max_len=64):
    """A random tiny Transformer; a scaled-up untied output layer makes its choices varied."""
    minitf.manual_seed(seed)
    config = TransformerConfig(src_vocab_size=V, tgt_vocab_size=V, d_model=16, n_heads=2,
                               n_encoder_layers=1, n_decoder_layers=1, d_ff=32, dropout=0.0,
                               max_len=max_len, tie_output=False)
    model = Seq2SeqTransformer(config)
    model.output_weight.data *= scale
    return model


def random_batch(seed, batch=6, width=7):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, width + 1, batch)
    lengths[0] = width
    src = rng.integers(3, V, (batch, width))
    mask = np.arange(width) < lengths[:, None]
    src[~mask] = PAD
    return src, mask


def log_probs(logits):
    logits = logits.astype(np.float64)
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))


def model_score(model, src_row, mask_row, hyp, limit):
    """Sum of log-probs of `hyp` (+ EOS if it ended by EOS, i.e. is shorter than its limit),
    by one teacher-forced forward pass over the whole sequence."""
    targets = list(hyp) + ([EOS] if len(hyp) < limit else [])
    if not targets:
        return 0.0
    tgt_in = np.array([[BOS] + list(hyp)])[:, :len(targets)]
    with no_grad():
        logits = model(src_row[None], tgt_in, mask_row[None]).data[0]
    return float(log_probs(logits)[np.arange(len(targets)), targets].sum())


def greedy_no_cache(model, src, mask, limits, banned=(BOS,)):
    """Reference greedy search: re-run the decoder over the whole prefix at every step; the
    `banned` ids are never taken."""
    outputs = [[] for _ in range(len(src))]
    done = limits <= 0
    tokens = np.full((len(src), 1), BOS)
    with no_grad():
        memory = model.encode(src, mask)
        while not done.all():
            logits = model.decode(tokens, memory, mask).data[:, -1].copy()
            logits[:, list(banned)] = -np.inf
            nxt = logits.argmax(axis=-1)
            for i in np.flatnonzero(~done):
                if nxt[i] == EOS:
                    done[i] = True
                else:
                    outputs[i].append(int(nxt[i]))
                    done[i] = len(outputs[i]) >= limits[i]
            tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
    return outputs


# ---- random Transformers ------------------------------------------------------------------

def test_length_limits():
    model = tiny_model(0, max_len=20)
    mask = np.arange(8) < np.array([8, 3, 0])[:, None]
    assert length_limits(model, mask, 1.5, 10).tolist() == [19, 14, 10]  # 22 capped at 20 - 1
    assert length_limits(model, mask, 1.5, 10, max_len=12).tolist() == [12, 12, 10]
    assert length_limits(model, mask, 0.5, 0).tolist() == [4, 1, 0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_greedy_with_cache_matches_full_recompute(seed):
    model = tiny_model(seed)
    src, mask = random_batch(seed)
    limits = length_limits(model, mask, 1.5, 4)
    expected = greedy_no_cache(model, src, mask, limits.copy())
    assert greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=4) == expected


def test_greedy_covers_eos_and_limit_endings():
    ended_by_eos = ended_by_limit = 0
    for seed in range(4):
        model = tiny_model(seed)
        src, mask = random_batch(seed)
        limits = length_limits(model, mask, 1.5, 4)
        for hyp, limit in zip(greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=4),
                              limits):
            assert len(hyp) <= limit and EOS not in hyp
            ended_by_eos += len(hyp) < limit
            ended_by_limit += len(hyp) == limit
    assert ended_by_eos and ended_by_limit  # the seeds exercise both ways of ending


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_beam_size_one_is_greedy(seed):
    model = tiny_model(seed)
    src, mask = random_batch(seed)
    greedy = greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=4)
    for alpha in (0.0, 0.6):
        beam = beam_search(model, src, mask, bos_id=BOS, eos_id=EOS, beam_size=1,
                           length_penalty=alpha, max_len_b=4)
        assert beam == greedy


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 6])
def test_beam_scores_at_least_greedy(seed):
    # Not a theorem for beam search in general, but on these models (deterministic seeds) the
    # wider search finds an equal or better total log-prob on every row. (Seed 4 is a counter-
    # example since BOS is never generated: greedy's short [3, 6, EOS] falls out of the beam.) With length_penalty 0
    # beam search ranks by raw log-prob, the quantity compared here; a hypothesis that hit its
    # length limit is scored without EOS, one that ended by EOS with it.
    model = tiny_model(seed)
    src, mask = random_batch(seed)
    limits = length_limits(model, mask, 1.5, 5)
    greedy = greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=5)
    beam = beam_search(model, src, mask, bos_id=BOS, eos_id=EOS, beam_size=4, length_penalty=0.0,
                       max_len_b=5)
    for i in range(len(src)):
        assert len(beam[i]) <= limits[i]
        g = model_score(model, src[i], mask[i], greedy[i], limits[i])
        b = model_score(model, src[i], mask[i], beam[i], limits[i])
        assert b >= g - 1e-4, (i, greedy[i], g, beam[i], b)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_length_limits_respected(search):
    model = tiny_model(1, max_len=9)
    src, mask = random_batch(5)
    kwargs = {} if search == "greedy" else {"beam_size": 3}
    fn = greedy_decode if search == "greedy" else beam_search
    for a, b, max_len in [(1.5, 10, None), (0.5, 1, None), (1.0, 3, 4), (0.0, 0, None), (2, 2, 0)]:
        out = fn(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_a=a, max_len_b=b,
                 max_len=max_len, **kwargs)
        limits = length_limits(model, mask, a, b, max_len)
        assert all(len(h) <= lim for h, lim in zip(out, limits))
        assert all(lim <= 8 for lim in limits)  # config.max_len - 1
        if limits.max() == 0:
            assert out == [[] for _ in range(len(src))]


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_batch_equals_one_at_a_time(search):
    model = tiny_model(3)
    src, mask = random_batch(7)
    fn = greedy_decode if search == "greedy" else beam_search
    kwargs = {"max_len_b": 4} if search == "greedy" else {"max_len_b": 4, "beam_size": 3}
    batched = fn(model, src, mask, bos_id=BOS, eos_id=EOS, **kwargs)
    for i in range(len(src)):
        n = int(mask[i].sum())
        single = fn(model, src[i:i + 1, :n], mask[i:i + 1, :n], bos_id=BOS, eos_id=EOS, **kwargs)
        assert single == [batched[i]]


def test_translate_ids_keeps_input_order():
    model = tiny_model(2)
    rng = np.random.default_rng(11)
    sources = [rng.integers(3, V, rng.integers(1, 9)).tolist() for _ in range(11)] + [[]]
    for beam_size in (1, 3):
        kw = {"max_len_b": 3, "length_penalty": 0.6}
        got = translate_ids(model, sources, bos_id=BOS, eos_id=EOS, pad_id=PAD,
                            beam_size=beam_size, batch_size=4, **kw)
        assert len(got) == len(sources)
        for ids, out in zip(sources, got):
            width = max(1, len(ids))
            src = np.array([ids + [PAD] * (width - len(ids))])
            mask = np.arange(width)[None] < len(ids)
            if beam_size == 1:
                single = greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=3,
                                       banned_ids=[PAD])
            else:
                single = beam_search(model, src, mask, bos_id=BOS, eos_id=EOS, beam_size=3,
                                     banned_ids=[PAD], **kw)
            assert [out] == single
    assert translate_ids(model, [], bos_id=BOS, eos_id=EOS, pad_id=PAD) == []


def untrained_model(seed):
    """A freshly initialised Transformer with the default (tied) output layer."""
    minitf.manual_seed(seed)
    return Seq2SeqTransformer(TransformerConfig(src_vocab_size=V, tgt_vocab_size=V, d_model=16, n_heads=2,
                                                n_encoder_layers=1, n_decoder_layers=1, d_ff=32, dropout=0.0,
                                                max_len=32))


@pytest.mark.parametrize("beam_size", [1, 3])
def test_untrained_model_never_generates_bos_or_padding(beam_size):
    sources = [np.random.default_rng(i).integers(3, V, 1 + i % 6).tolist() for i in range(12)]
    unmasked_picks_special = False
    for seed in range(4):
        model = untrained_model(seed)
        out = translate_ids(model, sources, bos_id=BOS, eos_id=EOS, pad_id=PAD, beam_size=beam_size,
                            max_len_b=6)
        assert not any({BOS, PAD} & set(hyp) for hyp in out), seed
        if beam_size == 1:
            src, mask = random_batch(seed)
            limits = length_limits(model, mask, 1.5, 6)
            expected = greedy_no_cache(model, src, mask, limits.copy(), banned=(BOS, PAD))
            assert greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=6,
                                 banned_ids=[PAD]) == expected
            unmasked = greedy_no_cache(model, src, mask, limits.copy(), banned=())
            unmasked_picks_special |= any({BOS, PAD} & set(hyp) for hyp in unmasked)
    assert unmasked_picks_special or beam_size != 1  # these models do prefer BOS or PAD at times


def test_training_mode_restored_and_no_graph():
    model = tiny_model(0, scale=1.0)
    model.train()
    src, mask = random_batch(0)
    greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=2)
    beam_search(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=2)
    assert model.training and model.dropout.training
    model.eval()
    greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_b=2)
    assert not model.training
    assert minitf.is_grad_enabled()


# ---- a scripted fake model ----------------------------------------------------------------

A, B, C = 3, 4, 5
SV = 6  # vocabulary: pad, bos, eos, A, B, C
UNIFORM = {A: 1 / 3, B: 1 / 3, C: 1 / 3}


class HistoryCache:
    """A stand-in KV cache: remembers each row's tokens and source key; reorder follows parents."""

    def __init__(self):
        self.tokens = None
        self.keys = None

    def reorder(self, index):
        if self.tokens is not None:
            self.tokens, self.keys = self.tokens[index], self.keys[index]


class ScriptedModel:
    """Next-token probabilities from a table {(source key, prefix without BOS): {token: p}}.

    The source key is the first source token; an unlisted prefix continues with A, B or C
    (1/3 each, lowest id first on the tie) and never ends by itself. Checks the calling
    protocol: eval mode, one position per step at `start` = prefix length, memory rows aligned
    with cache rows.
    """

    def __init__(self, table, max_len=64):
        self.table = table
        self.config = SimpleNamespace(max_len=max_len)
        self.training = True
        self.steps = 0

    def eval(self):
        return self.train(False)

    def train(self, mode=True):
        self.training = mode
        return self

    def encode(self, src, src_mask):
        return np.array(src)

    def new_caches(self):
        return [{"self": HistoryCache()}]

    def decode(self, tgt_in, memory, src_mask, caches=None, start=0):
        assert not self.training and not minitf.is_grad_enabled()
        assert caches is not None and tgt_in.shape[1] == 1
        assert len(memory) == len(src_mask) == len(tgt_in)
        cache = caches[0]["self"]
        if cache.tokens is None:
            assert start == 0 and (tgt_in == BOS).all()
            cache.tokens, cache.keys = tgt_in, memory[:, 0].copy()
        else:
            cache.tokens = np.concatenate([cache.tokens, tgt_in], axis=1)
        assert cache.tokens.shape[1] == start + 1
        assert (cache.keys == memory[:, 0]).all()  # memory follows the rows
        self.steps += 1
        logits = np.stack([self.next_logits(int(memory[row, 0]),
                                            tuple(int(t) for t in cache.tokens[row, 1:]))
                           for row in range(len(tgt_in))])[:, None]
        return minitf.tensor(logits)

    def next_logits(self, key, prefix):
        """(SV,) logits of the token after `prefix` for the source key `key`."""
        logits = np.full(SV, -30.0)
        for token, p in self.table.get((key, prefix), UNIFORM).items():
            logits[token] = math.log(p)
        return logits


def scripted_score(table, key, hyp, ended_by_eos=True):
    total = 0.0
    seq = list(hyp) + ([EOS] if ended_by_eos else [])
    for i, token in enumerate(seq):
        dist = table.get((key, tuple(hyp[:i])), UNIFORM)
        total += math.log(dist[token])
    return total


# key 7: greedy takes A (0.6) and then the best next token, EOS (0.4): total 0.24.
# Beam search finds B, EOS: 0.4 * 0.9 = 0.36, the best complete sequence.
# key 8: a chain C, C, A, EOS (0.504) that every search agrees on; its alternatives never end.
TRAP = {
    (7, ()): {A: 0.6, B: 0.4},
    (7, (A,)): {A: 0.3, B: 0.3, EOS: 0.4},
    (7, (A, A)): {EOS: 1.0},
    (7, (A, B)): {EOS: 1.0},
    (7, (B,)): {EOS: 0.9, C: 0.1},
    (8, ()): {C: 0.9, A: 0.1},
    (8, (C,)): {C: 0.8, A: 0.2},
    (8, (C, C)): {A: 0.7, B: 0.3},
    (8, (C, C, A)): {EOS: 1.0},
    (9, ()): {EOS: 1.0},
}


def test_scripted_greedy_falls_into_the_trap_and_beam_does_not():
    src = np.array([[7, 3], [8, 3], [7, 0]])
    mask = np.array([[True, True], [True, True], [True, False]])
    model = ScriptedModel(TRAP)
    assert greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS) == [[A], [C, C, A], [A]]
    assert model.training  # restored
    for k in (2, 3, 5):
        out = beam_search(model, src, mask, bos_id=BOS, eos_id=EOS, beam_size=k, length_penalty=0.0)
        assert out == [[B], [C, C, A], [B]]
    assert beam_search(model, src, mask, bos_id=BOS, eos_id=EOS, beam_size=1) == [[A], [C, C, A], [A]]
    assert scripted_score(TRAP, 7, [B]) > scripted_score(TRAP, 7, [A])


def test_scripted_length_penalty_formula():
    # Step 1 finishes [A] (0.3, 2 tokens with EOS) and keeps [B, B] (0.36) and [A, C] (0.3) live;
    # step 2 finishes [B, B] (0.252, 3 tokens with EOS). Raw log-prob prefers the short one, a
    # strong length penalty the long one; with the limit of 6 tokens (max_len_b=5) no live
    # hypothesis (they go on with 1/3 a token) can beat them, with the default limit of 11 and
    # alpha = 3, [A, C, C] + 8 tokens (0.297 / 3 ** 8, /(16/6) ** 3) can.
    table = {
        (7, ()): {A: 0.6, B: 0.4},
        (7, (A,)): {EOS: 0.5, C: 0.5},
        (7, (B,)): {B: 0.9, EOS: 0.1},
        (7, (B, B)): {EOS: 0.7, B: 0.3},
        (7, (A, C)): {C: 0.99, EOS: 0.01},
    }
    src, mask = np.array([[7]]), np.array([[True]])
    hyps = {(A,): scripted_score(table, 7, [A]), (B, B): scripted_score(table, 7, [B, B])}
    for alpha in (0.0, 0.6, 1.0, 2.0, 3.0):
        out = beam_search(ScriptedModel(table), src, mask, bos_id=BOS, eos_id=EOS, beam_size=2,
                          length_penalty=alpha, max_len_b=5)
        expected = max(hyps, key=lambda h: hyps[h] / length_penalty_factor(len(h) + 1, alpha))
        assert out == [list(expected)], alpha
    assert length_penalty_factor(3, 0.6) == pytest.approx((8 / 6) ** 0.6)
    short = beam_search(ScriptedModel(table), src, mask, bos_id=BOS, eos_id=EOS, beam_size=2,
                        length_penalty=0.0)
    long = beam_search(ScriptedModel(table), src, mask, bos_id=BOS, eos_id=EOS, beam_size=2,
                       length_penalty=3.0, max_len_b=5)
    longest = beam_search(ScriptedModel(table), src, mask, bos_id=BOS, eos_id=EOS, beam_size=2,
                          length_penalty=3.0)
    assert short == [[A]] and long == [[B, B]] and longest == [[A, C, C] + [A] * 8]


def test_scripted_limit_finishes_live_beams():
    # Nothing ever ends: every prefix continues with A (0.7) or B (0.3) and never EOS.
    table = {}
    for n in range(6):
        for prefix in np.ndindex(*(2,) * n):
            table[(7, tuple(A if p == 0 else B for p in prefix))] = {A: 0.7, B: 0.3}
    src, mask = np.array([[7, 7]]), np.array([[True, True]])
    for k in (1, 3):
        model = ScriptedModel(table)
        out = beam_search(model, src, mask, bos_id=BOS, eos_id=EOS, beam_size=k, max_len_a=1,
                          max_len_b=2)
        assert out == [[A] * 4]
        assert model.steps == 4
    model = ScriptedModel(table)
    assert greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS, max_len_a=1, max_len_b=2) == [[A] * 4]
    assert model.steps == 4
    # the model's own positional limit caps the output at config.max_len - 1 tokens
    out = beam_search(ScriptedModel(table, max_len=3), src, mask, bos_id=BOS, eos_id=EOS, beam_size=2)
    assert out == [[A, A]]


def test_scripted_rows_finish_independently():
    # Rows finish at different steps; finished rows leave the batch without disturbing others.
    src = np.array([[8, 0, 0], [7, 1, 1], [9, 0, 0], [8, 5, 5]])
    mask = np.array([[1, 0, 0], [1, 1, 1], [1, 0, 0], [1, 1, 0]], dtype=bool)
    model = ScriptedModel(TRAP)
    assert greedy_decode(model, src, mask, bos_id=BOS, eos_id=EOS) == [[C, C, A], [A], [], [C, C, A]]
    assert model.steps == 4
    out = beam_search(ScriptedModel(TRAP), src, mask, bos_id=BOS, eos_id=EOS, beam_size=2,
                      length_penalty=0.0)
    assert out == [[C, C, A], [B], [], [C, C, A]]


# Specials are the most likely tokens: searches take the best of the others.
FAVOURS_SPECIALS = {
    (7, ()): {BOS: 0.5, PAD: 0.3, A: 0.15, B: 0.05},
    (7, (A,)): {PAD: 0.6, C: 0.3, EOS: 0.1},
    (7, (A, C)): {BOS: 0.9, EOS: 0.1},
    (7, (B,)): {EOS: 1.0},
}


@pytest.mark.parametrize("beam_size", [1, 2, 3])
def test_scripted_specials_are_never_generated(beam_size):
    src, mask = np.array([[7]]), np.array([[True]])
    out = translate_ids(ScriptedModel(FAVOURS_SPECIALS), [[7]], bos_id=BOS, eos_id=EOS, pad_id=PAD,
                        beam_size=beam_size, length_penalty=0.0)
    # greedy: A (0.15), C (0.3), EOS (0.1) = 0.0045; beam finds B, EOS = 0.05
    assert out == ([[A, C]] if beam_size == 1 else [[B]])
    search = greedy_decode if beam_size == 1 else beam_search
    kw = {} if beam_size == 1 else {"beam_size": beam_size, "length_penalty": 0.0}
    banned_b = search(ScriptedModel(FAVOURS_SPECIALS), src, mask, bos_id=BOS, eos_id=EOS,
                      banned_ids=[PAD, B], **kw)
    assert banned_b == ([[A, C]] if beam_size == 1 else [[A]])  # beam: A, EOS (0.015) beats A, C, EOS
    only_bos_banned = search(ScriptedModel(FAVOURS_SPECIALS), src, mask, bos_id=BOS, eos_id=EOS, **kw)
    assert only_bos_banned[0][0] == PAD and BOS not in only_bos_banned[0]  # PAD only if not banned


@pytest.mark.parametrize("search", [greedy_decode, beam_search])
def test_bad_banned_ids(search):
    src, mask = np.array([[7]]), np.array([[True]])
    with pytest.raises(ValueError, match="banned_ids contain the EOS id 2"):
        search(ScriptedModel(TRAP), src, mask, bos_id=BOS, eos_id=EOS, banned_ids=[PAD, EOS])
    with pytest.raises(ValueError, match=r"banned token id 6 is outside the model's vocabulary \[0, 6\)"):
        search(ScriptedModel(TRAP), src, mask, bos_id=BOS, eos_id=EOS, banned_ids=[SV])


def test_bad_beam_size():
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(ScriptedModel(TRAP), np.array([[7]]), np.array([[True]]), bos_id=BOS,
                    eos_id=EOS, beam_size=0)


# ---- the stopping rule against exhaustive search -------------------------------------------

# Key 7: EOS (0.3) finishes at step 1, B, EOS (0.18) and A, EOS (0.05) at step 2, while
# [A, A] (0.45) is still live and ends for sure. The old rule (stop once K hypotheses have
# finished) returned the empty output; [A, A] beats it under every length penalty tried here.
EARLY_EOS = {
    (7, ()): {A: 0.5, EOS: 0.3, B: 0.2},
    (7, (A,)): {A: 0.9, EOS: 0.1},
    (7, (A, A)): {EOS: 1.0},
    (7, (B,)): {EOS: 0.9, C: 0.1},
}


@pytest.mark.parametrize("beam_size", [2, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_scripted_live_hypothesis_that_can_still_win_is_not_dropped(beam_size, alpha):
    src, mask = np.array([[7]]), np.array([[True]])
    out = beam_search(ScriptedModel(EARLY_EOS), src, mask, bos_id=BOS, eos_id=EOS,
                      beam_size=beam_size, length_penalty=alpha)
    assert out == [[A, A]]
    assert scripted_score(EARLY_EOS, 7, [A, A]) > scripted_score(EARLY_EOS, 7, [])


def test_search_stops_once_no_live_hypothesis_can_win():
    # After [A, A, EOS] (0.45) finishes at step 3, the best live score is 0.0067 (B, C, A; every
    # token 1/3 after B, C): it cannot win even with the length limit's penalty, so the row
    # stops at step 3 rather than at its limit of 41 tokens.
    model = ScriptedModel(EARLY_EOS)
    out = beam_search(model, np.array([[7]]), np.array([[True]]), bos_id=BOS, eos_id=EOS,
                      beam_size=2, length_penalty=0.6, max_len_b=40)
    assert out == [[A, A]] and model.steps == 3


class RandomTreeModel(ScriptedModel):
    """Random next-token logits for every (source key, prefix): EOS is possible with
    probability 0.8, each of A, B, C with 0.25 (one of the four at least), the others are
    -inf; possible ones are drawn from a normal of a random spread (up to a very confident
    model). PAD and BOS are -30 (banned by the search). Such narrow trees keep the beam that
    never prunes narrow, so that K hypotheses finish before the whole tree is searched."""

    def __init__(self, seed):
        super().__init__({})
        self.seed = seed

    def next_logits(self, key, prefix):
        rng = np.random.default_rng([self.seed, key, len(prefix), *prefix])
        logits = np.full(SV, -30.0)
        possible = rng.random(4) < np.array([0.8, 0.25, 0.25, 0.25])
        possible[rng.integers(4)] = True
        spread = rng.choice([0.3, 2.0, 8.0])
        logits[[EOS, A, B, C]] = np.where(possible, rng.normal(size=4) * spread, -np.inf)
        return logits


def search_tree(model, key, limit, alpha):
    """Exhaustive search over every possible output of at most `limit` tokens of A, B, C (one
    shorter than the limit ends with EOS, one at the limit ends there).

    Returns (the best output, its normalized score, the most candidates of nonzero probability
    at any step: a beam that wide never drops a live hypothesis)."""
    best, best_score, widest = None, -math.inf, 0
    live = [((), 0.0)]  # possible prefixes and their log-probs
    for t in range(limit + 1):
        grown = []
        for prefix, total in live:
            lp = log_probs(model.next_logits(key, prefix))
            if t == limit:  # at the limit: ends as it is
                ends = [(prefix, total)]
            else:
                ends = [(prefix, total + lp[EOS])] if np.isfinite(lp[EOS]) else []
                grown += [(prefix + (c,), total + lp[c]) for c in (A, B, C) if np.isfinite(lp[c])]
            for hyp, score in ends:
                n = len(hyp) + (t < limit)
                if score / length_penalty_factor(n, alpha) > best_score:
                    best, best_score = list(hyp), score / length_penalty_factor(n, alpha)
        if t < limit:
            widest = max(widest, len(grown) + sum(np.isfinite(log_probs(
                model.next_logits(key, p))[EOS]) for p, _ in live))
        live = grown
    return best, best_score, widest


@pytest.mark.parametrize("seed", range(40))
def test_beam_that_never_prunes_matches_exhaustive_search(seed):
    # A beam as wide as the most candidates of any step keeps every possible hypothesis, so only
    # the stopping rule can miss the best output: each row alone with its own width, then all
    # rows in one batch with the widest. Rows of source lengths 3..6 have limits 3..6
    # (max_len_a 1, max_len_b 0); alphas zero, positive, negative and a random one in [-1.5, 3].
    rng = np.random.default_rng(seed)
    model = RandomTreeModel(seed)
    limits = (6, 5, 4, 3)
    src = np.array([[10 * (row + 1) + seed] + [3] * (limit - 1) + [PAD] * (6 - limit)
                    for row, limit in enumerate(limits)])
    mask = src != PAD
    kw = dict(bos_id=BOS, eos_id=EOS, max_len_a=1, max_len_b=0, banned_ids=[PAD])
    for alpha in (0.0, 0.6, -0.8, float(rng.uniform(-1.5, 3.0))):
        searched = [search_tree(model, int(src[row, 0]), limit, alpha)
                    for row, limit in enumerate(limits)]
        for row, (hyp, _, widest) in enumerate(searched):
            n = limits[row]
            out = beam_search(model, src[row:row + 1, :n], mask[row:row + 1, :n],
                              beam_size=max(2, widest), length_penalty=alpha, **kw)
            assert out == [hyp], (alpha, row, widest)
        width = max(2, max(widest for _, _, widest in searched))
        out = beam_search(model, src, mask, beam_size=width, length_penalty=alpha, **kw)
        assert out == [hyp for hyp, _, _ in searched], (alpha, width)

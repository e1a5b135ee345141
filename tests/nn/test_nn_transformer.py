"""minitf.nn.Seq2SeqTransformer: incremental decoding with key/value caches, masks, input checks,
and a short training run that must learn to copy.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

import minitf
import minitf.functional as F
from minitf import backend, no_grad
from minitf.nn import KVCache, Seq2SeqTransformer, TransformerConfig, sinusoidal_positions
from minitf.optim import Adam


def config(**overrides) -> TransformerConfig:
    options = dict(src_vocab_size=13, tgt_vocab_size=13, d_model=16, n_heads=4, n_encoder_layers=2,
                   n_decoder_layers=2, d_ff=24, dropout=0.1, max_len=12)
    options.update(overrides)
    return TransformerConfig(**options)


def make_model(device="cpu", seed=0, **overrides) -> Seq2SeqTransformer:
    minitf.manual_seed(seed)
    model = Seq2SeqTransformer(config(**overrides))
    rng = np.random.default_rng(seed)
    for p in model.parameters():  # non-trivial biases and norm gains
        p.data = p.data + (0.2 * rng.standard_normal(p.shape)).astype(p.dtype)
    return model.to(device).eval()


def batch(xp=np):
    src = np.array([[5, 6, 7, 8, 9, 0, 0], [3, 4, 5, 6, 7, 8, 9], [10, 11, 0, 0, 0, 0, 0]])
    tgt = np.array([[1, 5, 6, 7, 8, 9], [1, 3, 4, 5, 6, 7], [1, 10, 11, 2, 2, 2]])
    return xp.asarray(src), xp.asarray(tgt), xp.asarray(src != 0)


def test_sinusoidal_positions():
    table = sinusoidal_positions(10, 6)
    assert table.shape == (10, 6) and table.dtype == np.float32
    pos, i = 7, 2  # feature pair (4, 5) has frequency 10000^(-4/6)
    np.testing.assert_allclose(table[pos, 2 * i], np.sin(pos * 10000 ** (-2 * i / 6)), rtol=1e-6)
    np.testing.assert_allclose(table[pos, 2 * i + 1], np.cos(pos * 10000 ** (-2 * i / 6)), rtol=1e-6)
    np.testing.assert_array_equal(table[0, 0::2], 0)
    np.testing.assert_array_equal(table[0, 1::2], 1)
    assert sinusoidal_positions(4, 5).shape == (4, 5)  # odd width


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_incremental_decoding_matches_full_decode(norm_first, device):
    model = make_model(device, norm_first=norm_first)
    xp = backend.get_array_module(model.parameters()[0].data)
    src, tgt, src_mask = batch(xp)
    with no_grad():
        memory = model.encode(src, src_mask)
        full = model.decode(tgt, memory, src_mask).numpy()
        caches = model.new_caches()
        assert len(caches) == 2 and all(c["self"].k is None and c["cross"].k is None for c in caches)
        steps = []
        for t in range(tgt.shape[1]):
            steps.append(model.decode(tgt[:, t:t + 1], memory, src_mask, caches, start=t).numpy())
            assert caches[0]["self"].k.shape == (3, 4, t + 1, 4)
            assert caches[1]["cross"].k.shape == (3, 4, 7, 4)
        # a prefix of several positions first (the cache is empty: causal), then one at a time
        caches2 = model.new_caches()
        prefix = model.decode(tgt[:, :3], memory, src_mask, caches2, start=0).numpy()
        rest = [model.decode(tgt[:, t:t + 1], memory, src_mask, caches2, start=t).numpy()
                for t in range(3, tgt.shape[1])]
    incremental = np.concatenate(steps, axis=1)
    assert incremental.shape == full.shape == (3, 6, 13)
    np.testing.assert_allclose(incremental, full, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(np.concatenate([prefix] + rest, axis=1), full, atol=1e-5, rtol=1e-5)
    # the cross-attention keys are projected once and then reused
    cross = caches[0]["cross"].k
    with no_grad():
        model.decode(tgt[:, :1], memory, src_mask, [{"self": KVCache(), "cross": c["cross"]} for c in caches])
    assert caches[0]["cross"].k is cross


def test_kv_cache_reorder_selects_rows():
    cache = KVCache()
    cache.reorder(np.array([0]))  # empty: nothing to do
    assert cache.k is None
    k = np.arange(3 * 2 * 4 * 5, dtype=np.float32).reshape(3, 2, 4, 5)
    cache.k, cache.v = minitf.tensor(k), minitf.tensor(-k)
    cache.reorder(np.array([2, 0, 0, 1]))
    np.testing.assert_array_equal(cache.k.numpy(), k[[2, 0, 0, 1]])
    np.testing.assert_array_equal(cache.v.numpy(), -k[[2, 0, 0, 1]])


def test_reordered_caches_continue_the_chosen_rows():
    """Beam search: after reorder(index) the caches decode as if row index[i] had been row i."""
    model = make_model()
    src, tgt, src_mask = batch()
    index = np.array([2, 2, 0, 1])
    with no_grad():
        memory = model.encode(src, src_mask)
        caches = model.new_caches()
        for t in range(3):
            model.decode(tgt[:, t:t + 1], memory, src_mask, caches, start=t)
        for cache in caches:
            cache["self"].reorder(index)
            cache["cross"].reorder(index)
        steps = [model.decode(tgt[index, t:t + 1], memory[index], src_mask[index], caches, start=t).numpy()
                 for t in range(3, 6)]
        full = model.decode(tgt[index], model.encode(src[index], src_mask[index]), src_mask[index]).numpy()
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full[:, 3:], atol=1e-5, rtol=1e-5)


def test_filled_cache_takes_one_position_at_a_time():
    model = make_model()
    src, tgt, src_mask = batch()
    memory = model.encode(src, src_mask)
    caches = model.new_caches()
    model.decode(tgt[:, :2], memory, src_mask, caches, start=0)
    with pytest.raises(ValueError, match="one position at a time"):
        model.decode(tgt[:, 2:4], memory, src_mask, caches, start=2)


def test_shared_embeddings_need_one_vocabulary():
    with pytest.raises(ValueError, match="share_embeddings.*13.*14"):
        Seq2SeqTransformer(config(tgt_vocab_size=14))
    model = Seq2SeqTransformer(config(tgt_vocab_size=14, share_embeddings=False))
    assert model.src_embed.weight.shape == (13, 16) and model.tgt_embed.weight.shape == (14, 16)


def test_sequence_longer_than_max_len_raises():
    model = make_model()
    long_src = np.full((1, 13), 5)
    with pytest.raises(ValueError, match="13 exceeds max_len 12"):
        model.encode(long_src, long_src != 0)
    src = np.full((1, 12), 5)
    memory = model.encode(src, src != 0)  # exactly max_len is fine
    with pytest.raises(ValueError, match="max_len 12"):
        model.decode(np.full((1, 13), 5), memory, src != 0)
    caches = model.new_caches()
    with pytest.raises(ValueError, match="13 exceeds max_len 12"):
        model.decode(np.full((1, 1), 5), memory, src != 0, caches, start=12)


def test_padded_source_positions_do_not_matter():
    model = make_model()
    src, tgt, src_mask = batch()
    with no_grad():
        logits = model(src, tgt, src_mask).numpy()
        changed = src.copy()
        changed[0, 5:] = [3, 12]  # ids where row 0 is padded; the mask stays as it was
        changed[2, 2:] = [4, 5, 6, 7, 8]
        np.testing.assert_allclose(model(changed, tgt, src_mask).numpy(), logits, atol=1e-6, rtol=1e-6)
        # while a real source token does change the output of its row, and only that row
        changed = src.copy()
        changed[1, 3] = 12
        other = model(changed, tgt, src_mask).numpy()
    assert np.abs(other[1] - logits[1]).max() > 1e-3
    np.testing.assert_allclose(other[[0, 2]], logits[[0, 2]], atol=1e-6, rtol=1e-6)


def test_decoder_is_causal():
    model = make_model()
    src, tgt, src_mask = batch()
    with no_grad():
        logits = model(src, tgt, src_mask).numpy()
        changed = tgt.copy()
        changed[:, 4:] = 12
        other = model(src, changed, src_mask).numpy()
    np.testing.assert_allclose(other[:, :4], logits[:, :4], atol=1e-6, rtol=1e-6)
    assert np.abs(other[:, 4:] - logits[:, 4:]).max() > 1e-3


def test_learns_to_copy():
    """A tiny model must learn to copy random sequences: a broken layer or optimizer cannot."""
    minitf.manual_seed(0)
    vocab, length, bos, pad = 12, 5, 1, 0
    model = Seq2SeqTransformer(TransformerConfig(vocab, vocab, d_model=32, n_heads=4, n_encoder_layers=1,
                                                 n_decoder_layers=1, d_ff=64, dropout=0.0, max_len=16))
    opt = Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    rng = np.random.default_rng(0)
    losses = []
    start = time.perf_counter()
    for _ in range(150):
        seq = rng.integers(2, vocab, (32, length))
        tgt_in = np.concatenate([np.full((32, 1), bos), seq[:, :-1]], axis=1)
        loss = F.cross_entropy(model(seq, tgt_in, seq != pad), seq)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    elapsed = time.perf_counter() - start
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert first > 2.0  # about log(10) at the start
    assert last < first / 10, (first, last, elapsed)
    # greedy decoding with the caches reproduces unseen sequences
    model.eval()
    seq = rng.integers(2, vocab, (16, length))
    with no_grad():
        memory = model.encode(seq, seq != pad)
        caches = model.new_caches()
        token = np.full((16, 1), bos)
        out = []
        for t in range(length):
            token = model.decode(token, memory, seq != pad, caches, start=t).numpy().argmax(-1)
            out.append(token)
    accuracy = (np.concatenate(out, axis=1) == seq).mean()
    assert accuracy > 0.9

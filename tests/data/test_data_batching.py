"""Encoding, padding and token-budget batching."""

import ast
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitf.data
from minitf.data import (
    Batch,
    Example,
    TokenBatcher,
    encode_pairs,
    make_batch,
    padding_efficiency,
    token_batches,
)

PAD, BOS, EOS = 0, 1, 2


class ByteTokenizer:
    """Fake tokenizer: one token per UTF-8 byte, ids shifted past PAD/BOS/EOS."""

    def encode(self, text: str) -> list[int]:
        return [b + 3 for b in text.encode()]


ids = st.lists(st.integers(3, 50), min_size=0, max_size=30)
examples_strategy = st.lists(
    st.tuples(ids.filter(len), ids).map(lambda p: Example(np.array(p[0]), np.array(p[1]))),
    min_size=1,
    max_size=60,
)


def batcher(examples, max_tokens=64, **kwargs):
    return TokenBatcher(examples, max_tokens, pad_id=PAD, bos_id=BOS, eos_id=EOS, **kwargs)


def batches_of(examples, max_tokens, **kwargs):
    return token_batches(
        examples, max_tokens=max_tokens, pad_id=PAD, bos_id=BOS, eos_id=EOS, **kwargs
    )


# --- encode_pairs -------------------------------------------------------------


def test_encode_pairs_drops_and_counts_long_pairs():
    pairs = [("abc", "de"), ("abcdef", "x"), ("a", "uvwxyz"), ("abcde", "vwxyz"), ("", "x")]
    examples, n_dropped = encode_pairs(pairs, ByteTokenizer(), max_len=5)
    assert n_dropped == 3  # too-long source, too-long target, empty source
    assert [e.src.tolist() for e in examples] == [[100, 101, 102], [100, 101, 102, 103, 104]]
    assert [e.tgt.tolist() for e in examples] == [[103, 104], [121, 122, 123, 124, 125]]
    assert all(e.src.dtype == np.int64 and e.tgt.dtype == np.int64 for e in examples)


def test_encode_pairs_keeps_empty_target():
    examples, n_dropped = encode_pairs([("a", "")], ByteTokenizer(), max_len=3)
    assert n_dropped == 0 and examples[0].tgt.shape == (0,)


def test_encode_pairs_rejects_bad_max_len():
    with pytest.raises(ValueError, match="max_len"):
        encode_pairs([("a", "b")], ByteTokenizer(), max_len=0)


# --- make_batch ---------------------------------------------------------------


def test_make_batch_hand_example():
    batch = make_batch([([5, 6, 7], [8]), ([9], [10, 11, 12])], PAD, BOS, EOS)
    np.testing.assert_array_equal(batch.src, [[5, 6, 7], [9, 0, 0]])
    np.testing.assert_array_equal(batch.tgt_in, [[1, 8, 0, 0], [1, 10, 11, 12]])
    np.testing.assert_array_equal(batch.tgt_out, [[8, 2, 0, 0], [10, 11, 12, 2]])
    np.testing.assert_array_equal(batch.src_mask, [[1, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(batch.tgt_mask, [[1, 1, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(batch.indices, [0, 1])
    assert batch.src.dtype == batch.tgt_in.dtype == batch.tgt_out.dtype == np.int64
    assert batch.src_mask.dtype == batch.tgt_mask.dtype == np.bool_
    assert (batch.size, batch.n_src_tokens, batch.n_tgt_tokens) == (2, 4, 6)
    assert batch.n_cells == 6 + 8
    assert batch.efficiency == pytest.approx(10 / 14)


def test_make_batch_empty_raises():
    with pytest.raises(ValueError, match="no examples"):
        make_batch([], PAD, BOS, EOS)


@given(examples_strategy)
def test_make_batch_masks_and_shift(examples):
    batch = make_batch(examples, PAD, BOS, EOS)
    src_len = np.array([len(e.src) for e in examples])
    tgt_len = np.array([len(e.tgt) for e in examples])
    assert batch.src.shape == (len(examples), src_len.max())
    assert batch.tgt_in.shape == batch.tgt_out.shape == (len(examples), tgt_len.max() + 1)
    np.testing.assert_array_equal(batch.src_mask.sum(1), src_len)
    np.testing.assert_array_equal(batch.tgt_mask.sum(1), tgt_len + 1)
    # Padding exactly where the masks are False (real ids are >= 3).
    assert np.all((batch.src == PAD) == ~batch.src_mask)
    assert np.all((batch.tgt_in == PAD) == ~batch.tgt_mask)
    assert np.all((batch.tgt_out == PAD) == ~batch.tgt_mask)
    for row, example in enumerate(examples):
        n = len(example.tgt)
        np.testing.assert_array_equal(batch.src[row, : len(example.src)], example.src)
        np.testing.assert_array_equal(batch.tgt_in[row, : n + 1], [BOS, *example.tgt])
        np.testing.assert_array_equal(batch.tgt_out[row, : n + 1], [*example.tgt, EOS])
        # Teacher forcing: the input is the output shifted right by one.
        np.testing.assert_array_equal(batch.tgt_in[row, 1 : n + 1], batch.tgt_out[row, :n])


# --- TokenBatcher -------------------------------------------------------------


@given(examples_strategy, st.integers(1, 200), st.integers(1, 20), st.integers(0, 10**6))
def test_every_example_exactly_once_and_budget_respected(examples, max_tokens, bucket, seed):
    b = batcher(examples, max_tokens, bucket_size=bucket, seed=seed)
    batches = list(b.epoch(3))
    seen = np.concatenate([batch.indices for batch in batches])
    assert sorted(seen.tolist()) == list(range(len(examples)))
    for batch in batches:
        longest = max(batch.src.shape[1], batch.tgt_out.shape[1])
        assert batch.size * longest <= max_tokens or batch.size == 1
        for row, i in enumerate(batch.indices):
            np.testing.assert_array_equal(batch.src[row][batch.src_mask[row]], examples[i].src)
            real_out = batch.tgt_out[row][batch.tgt_mask[row]]
            np.testing.assert_array_equal(real_out[:-1], examples[i].tgt)


@given(examples_strategy, st.integers(0, 10**6), st.integers(0, 50))
def test_epochs_are_deterministic_for_a_seed(examples, seed, epoch):
    first = [batch.indices.tolist() for batch in batcher(examples, seed=seed).epoch(epoch)]
    again = batcher(examples, seed=seed)
    again.plan(epoch + 1)  # drawing other epochs first does not matter
    assert [batch.indices.tolist() for batch in again.epoch(epoch)] == first


def test_different_epochs_and_seeds_give_different_orders():
    rng = np.random.default_rng(0)
    examples = [
        Example(rng.integers(3, 9, rng.integers(1, 20)), rng.integers(3, 9, 5)) for _ in range(500)
    ]
    b = batcher(examples, max_tokens=100, bucket_size=100)
    order = lambda plan: np.concatenate(plan).tolist()  # noqa: E731
    assert order(b.plan(0)) != order(b.plan(1))
    assert order(b.plan(0)) != order(batcher(examples, 100, bucket_size=100, seed=1).plan(0))
    assert sorted(order(b.plan(1))) == list(range(500))


def test_no_shuffle_keeps_bucket_order_and_is_epoch_independent():
    lengths = [5, 1, 3, 2, 4, 6]
    examples = [Example(np.full(n, 7), np.full(1, 8)) for n in lengths]
    b = batcher(examples, max_tokens=8, shuffle=False, bucket_size=3)
    # Bucket [5, 1, 3] sorted -> 1, 3, 5; then bucket [2, 4, 6] -> 2, 4, 6.
    plan = [p.tolist() for p in b.plan(0)]
    assert plan == [[1, 2], [0], [3, 4], [5]]
    assert [p.tolist() for p in b.plan(7)] == plan


def test_buckets_sort_by_length_to_reduce_padding():
    rng = np.random.default_rng(1)
    examples = [Example(np.full(n, 5), np.full(n, 6)) for n in rng.integers(1, 40, 2000)]
    bucketed = batches_of(examples, 400, bucket_size=2000)
    unsorted = batches_of(examples, 400, bucket_size=1)
    assert padding_efficiency(bucketed) > 0.95
    assert padding_efficiency(unsorted) == 1.0  # batches of one: no padding, but tiny
    assert len(bucketed) < len(unsorted) / 5


def test_token_budget_packs_greedily():
    examples = [Example(np.full(4, 9), np.full(3, 9)) for _ in range(10)]  # cost max(4, 3+1) = 4
    batches = batches_of(examples, 12)
    assert sorted(batch.size for batch in batches) == [1, 3, 3, 3]
    for batch in batches:
        assert batch.src.shape == batch.tgt_in.shape == (batch.size, 4)


@pytest.mark.parametrize("max_tokens, sizes", [(8, [2, 2, 2]), (9, [3, 3]), (17, [5, 1])])
def test_token_budget_boundary(max_tokens, sizes):
    examples = [Example(np.full(3, 9), np.full(2, 9)) for _ in range(6)]  # cost 3
    assert sorted((b.size for b in batches_of(examples, max_tokens)), reverse=True) == sizes


def test_target_plus_one_counts_toward_the_budget():
    examples = [Example(np.full(2, 9), np.full(4, 9)) for _ in range(4)]  # T = 5
    assert [b.size for b in batches_of(examples, 10)] == [2, 2]


def test_oversized_example_forms_a_batch_of_one():
    examples = [Example(np.full(50, 9), np.full(2, 9)), Example(np.full(2, 9), np.full(2, 9))]
    batches = batches_of(examples, 10, shuffle=False)
    assert [b.indices.tolist() for b in batches] == [[1], [0]]


def test_num_batches_and_validation():
    examples = [Example(np.full(3, 9), np.full(3, 9))] * 10
    assert batcher(examples, max_tokens=8).num_batches() == 5
    with pytest.raises(ValueError, match="max_tokens"):
        batcher(examples, max_tokens=0)
    with pytest.raises(ValueError, match="bucket_size"):
        batcher(examples, bucket_size=0)


def test_encode_then_batch_end_to_end():
    pairs = [("one", "eins"), ("twenty-one", "einundzwanzig"), ("six", "sechs")]
    examples, n_dropped = encode_pairs(pairs, ByteTokenizer(), max_len=16)
    (batch,) = batches_of(examples, 1000, shuffle=False)
    assert n_dropped == 0 and isinstance(batch, Batch)
    assert batch.src.shape == (3, 10) and batch.tgt_out.shape == (3, 14)
    decoded = {
        int(i): bytes((batch.tgt_out[r][batch.tgt_mask[r]][:-1] - 3).tolist()).decode()
        for r, i in enumerate(batch.indices)
    }
    assert decoded == {0: "eins", 1: "einundzwanzig", 2: "sechs"}


def test_data_layer_does_not_import_the_engine():
    package = pathlib.Path(minitf.data.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
                assert node.level == 0, f"{path.name}: use absolute minitf.data imports"
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                # minitf.errors (the user-error classes) imports nothing: the bottom layer
                allowed = top != "minitf" or name.startswith("minitf.data") or name == "minitf.errors"
                assert allowed, f"{path.name} imports {name}"

"""minitf.rng: the generators, seeding, resume state and dropout keep masks of both devices."""
import json

import numpy as np
import pytest

import minitf as mt
from minitf import cpu, rng
from minitf.cpu import blocking


@pytest.fixture
def split_small(monkeypatch):
    """Draw even tiny masks in blocks; restore the thread count afterwards."""
    monkeypatch.setattr(blocking, "MIN_BLOCK_ELEMENTS", 1)
    before = cpu.get_num_threads()
    yield
    cpu.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_manual_seed_makes_randn_repeat(device, dtype):
    mt.manual_seed(123)
    first = mt.randn(3, 4, dtype=dtype, device=device).numpy()
    second = mt.randn(3, 4, dtype=dtype, device=device).numpy()
    mt.manual_seed(123)
    again = mt.randn((3, 4), dtype=dtype, device=device)
    assert again.dtype == dtype and again.shape == (3, 4) and not again.requires_grad
    np.testing.assert_array_equal(again.numpy(), first)
    assert not np.array_equal(first, second)
    mt.manual_seed(124)
    assert not np.array_equal(mt.randn(3, 4, dtype=dtype, device=device).numpy(), first)


def test_random_uniform_is_in_range():
    mt.manual_seed(0)
    u = rng.random_uniform(np, (1000,), np.float32)
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1 and 0.4 < u.mean() < 0.6


def test_resume_state_round_trips_through_json_and_repeats_the_draws():
    mt.manual_seed(5)
    rng.random_normal(np, (3,), np.float32)
    state = json.loads(json.dumps(rng.rng_state()))  # as a checkpoint stores it
    after = [rng.random_uniform(np, (4,), np.float64), rng.keep_mask(np, (9,), 0.3)]
    mt.manual_seed(99)  # elsewhere in the stream
    rng.set_rng_state(state)
    again = [rng.random_uniform(np, (4,), np.float64), rng.keep_mask(np, (9,), 0.3)]
    for a, b in zip(after, again):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("has_uint32"), "keys"),
    (lambda s: s.update(bit_generator="MT19937"), "'PCG64'"),
    (lambda s: s["state"].update(inc=2), "state.inc must be odd"),
    (lambda s: s.update(has_uint32=2), "has_uint32 must be 0 or 1"),
    (lambda s: s.update(uinteger=1 << 32), "uinteger must be below 2"),
    (lambda s: s["state"].update(state=-1), "integer in 0 .. 2"),
])
def test_a_damaged_resume_state_is_refused_and_the_generator_kept(change, message):
    mt.manual_seed(1)
    before = rng.rng_state()
    state = json.loads(json.dumps(before))
    change(state)
    with pytest.raises(ValueError, match=message):
        rng.set_rng_state(state)
    assert rng.rng_state() == before


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_numpy_keep_mask_follows_the_documented_rule(p):
    """NumPy: raw 64-bit words cut into 16-bit integers, kept where >= round(p * 65536)."""
    mt.manual_seed(3)
    words = np.random.default_rng(3).bit_generator.random_raw(3)  # 3 words: 12 entries, 10 used
    mask = rng.keep_mask(np, (2, 5), p)
    expected = (words.view(np.uint16)[:10] >= round(p * 65536)).reshape(2, 5)
    np.testing.assert_array_equal(mask, expected)
    keep, scale = rng.dropout_keep(np, (2, 5), p, np.float32)
    assert keep.dtype == bool and scale == (1 / (1 - p) if p < 1 else 0.0)


def test_dropout_mask_is_the_keep_mask_times_the_scale():
    mt.manual_seed(8)
    keep = rng.keep_mask(np, (6, 7), 0.25)
    mt.manual_seed(8)
    mask = rng.dropout_mask(np, (6, 7), 0.25, np.float32)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, keep * np.float32(1 / 0.75))


@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 5), (1,), (2, 3)])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_keep_masks_drawn_in_blocks_are_the_serial_draws(split_small, shape, p):
    """Blocks of words on 3 threads (PCG64's jump-ahead) give one serial draw's bits and leave
    the generator where that draw leaves it."""
    masks, states = [], []
    for threads in (1, 3):
        cpu.set_num_threads(threads)
        mt.manual_seed(4)
        masks.append(rng.keep_mask(np, shape, p))
        states.append(rng.rng_state())
    mt.manual_seed(4)
    words = rng.generator(np).bit_generator.random_raw((int(np.prod(shape)) + 3) // 4)
    serial = rng.keep_from_words(words, int(np.prod(shape)), p).reshape(shape)
    for mask, state in zip(masks, states):
        np.testing.assert_array_equal(mask, serial)
        assert state == rng.rng_state()  # advanced as one draw would


def test_reseeding_device_generators_leaves_numpys_stream_alone():
    mt.manual_seed(2)
    before = rng.rng_state()
    rng.reseed_device_generators(2, 7)
    assert rng.rng_state() == before

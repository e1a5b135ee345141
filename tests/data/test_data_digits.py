"""minitf.data.make_digits: the generated offline digit set."""
import numpy as np
import pytest

from minitf.data import make_digits


def test_digits_are_deterministic_balanced_and_in_range():
    images, labels = make_digits(200, seed=3)
    again, same = make_digits(200, seed=3)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, same)
    assert images.shape == (200, 8, 8) and images.dtype == np.float32 and labels.dtype == np.int64
    assert images.min() >= 0 and images.max() <= 1
    assert np.bincount(labels).tolist() == [20] * 10
    assert not np.array_equal(make_digits(200, seed=4)[0], images)


def test_digit_classes_differ_more_than_samples_within_a_class():
    """The class means are far apart compared with the spread around them (a learnable set)."""
    images, labels = make_digits(400, seed=0, noise=0.0)
    flat = images.reshape(len(images), -1)
    means = np.stack([flat[labels == d].mean(axis=0) for d in range(10)])
    nearest = np.argmin(((flat[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.6  # a nearest-class-mean classifier already does well
    assert images.max() > 0.9  # strokes reach full ink
    assert make_digits(3, size=12)[0].shape == (3, 12, 12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n=0"):
        make_digits(0)
    with pytest.raises(ValueError, match="size=2"):
        make_digits(10, size=2)

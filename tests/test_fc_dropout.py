"""Chapter 10's helpers: inverted-dropout statistics and the generalisation gap of a history."""

import numpy as np
import pytest

from vgglab import analysis as A


@pytest.mark.parametrize("rate", [0.5, 0.3])
def test_dropout_statistics_is_inverted_dropout(rate):
    x = np.array([1.0, -2.0, 0.5, 3.0], "float32")
    s = A.dropout_statistics(x, rate, samples=20_000, seed=1)
    assert s["samples"].shape == (20_000, 4)
    # every kept entry is x / (1 - rate); every other entry is exactly 0
    assert s["scales"] == [pytest.approx(1 / (1 - rate), rel=1e-5)]
    y = s["samples"]
    assert np.all((y == 0) | np.isclose(y, x / (1 - rate), rtol=1e-5))
    assert abs(s["kept_fraction"] - (1 - rate)) < 0.01
    # expectation unchanged, variance x^2 p / (1 - p)
    assert np.allclose(s["mean"], x, atol=0.06)
    assert np.allclose(s["var"], x**2 * rate / (1 - rate), rtol=0.06)
    np.testing.assert_array_equal(s["inference"], x)


def test_dropout_statistics_rate_zero_is_identity_and_zeros_are_ignored():
    s = A.dropout_statistics([0.0, 2.0], 0.0, samples=50)
    assert s["kept_fraction"] == 1.0 and s["scales"] == [1.0]
    assert np.all(s["samples"] == np.array([0.0, 2.0]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=[1.0], rate=1.0), "rate"), (dict(x=[1.0], rate=-0.1), "rate"), (dict(x=[1.0], rate=True), "rate"),
    (dict(x=[[1.0]], rate=0.5), "1-D"), (dict(x=[], rate=0.5), "1-D"), (dict(x=[np.nan], rate=0.5), "finite"),
    (dict(x=[1.0], rate=0.5, samples=0), "samples"),
])
def test_dropout_statistics_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A.dropout_statistics(**kwargs)


def test_generalization_gap():
    h = {"accuracy": [0.5, 0.9, 1.0], "val_accuracy": [0.4, 0.5, 0.6], "loss": [1.0, 0.2, 0.1],
         "val_loss": [1.2, 1.5, 2.1]}
    assert A.generalization_gap(h) == pytest.approx(0.4)
    assert A.generalization_gap(h, last=2) == pytest.approx((0.95 - 0.55))
    assert A.generalization_gap(h, "loss") == pytest.approx(2.0)  # validation minus training loss
    assert A.generalization_gap({"accuracy": [0.3], "val_accuracy": [0.5]}) == pytest.approx(-0.2)


@pytest.mark.parametrize("history, kwargs, error", [
    ([0.1], {}, TypeError),
    ({"accuracy": [0.5]}, {}, ValueError),
    ({"accuracy": [0.5, 0.6], "val_accuracy": [0.5]}, {}, ValueError),
    ({"accuracy": [0.5], "val_accuracy": [0.5]}, {"last": 2}, ValueError),
    ({"accuracy": [0.5], "val_accuracy": [0.5]}, {"last": 0}, ValueError),
    ({"accuracy": [0.5], "val_accuracy": [0.5]}, {"metric": "top5"}, ValueError),
])
def test_generalization_gap_rejects_bad_input(history, kwargs, error):
    with pytest.raises(error):
        A.generalization_gap(history, **kwargs)

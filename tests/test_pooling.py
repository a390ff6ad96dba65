"""Chapter 09 (풀링): shift_images, shift_sensitivity and downsampling_net."""

import keras
import numpy as np
import pytest

from vgglab import analysis as A
from vgglab.models import downsampling_net


def _images(n=6, size=8, c=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, c)).astype("float32")


def _gap_dense(size=8, c=3, classes=4):
    inp = keras.Input((size, size, c))
    x = keras.layers.Conv2D(5, 1, activation="relu", name="pixelwise")(inp)  # 1x1: sees one pixel at a time
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax", name="out")(x))


def _flatten_dense(size=8, c=3, classes=4):
    inp = keras.Input((size, size, c))
    x = keras.layers.Flatten(name="flat")(inp)
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax", name="out")(x))


def test_shift_images_circular_and_zeros():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    right = A.shift_images(x, 0, 1, "circular")
    assert np.array_equal(right, np.roll(x, 1, axis=2))
    assert np.array_equal(A.shift_images(right, 0, -1, "circular"), x)
    down = A.shift_images(x, 1, 0, "zeros")[0, :, :, 0]
    assert np.array_equal(down[0], np.zeros(4)) and np.array_equal(down[1:], x[0, :3, :, 0])
    up_left = A.shift_images(x, -2, -1, "zeros")[0, :, :, 0]
    assert np.array_equal(up_left[:2, :3], x[0, 2:, 1:, 0]) and up_left[2:].sum() == 0 and up_left[:, 3].sum() == 0
    assert np.array_equal(A.shift_images(x, 0, 0, "zeros"), x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dy=4, dx=0), r"\(4, 0\)"), (dict(dy=0, dx=-5), r"\(0, -5\)"), (dict(dy=1.5, dx=0), "1.5"),
    (dict(dy=1, dx=0, mode="reflect"), "'reflect'"),
])
def test_shift_images_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A.shift_images(np.zeros((1, 4, 4, 1)), **kwargs)
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        A.shift_images(np.zeros((4, 4)), 0, 0)


def test_gap_model_is_exactly_invariant_to_circular_shifts_but_not_to_zero_fill():
    model, x = _gap_dense(), _images()
    circ = A.shift_sensitivity(model, x, [0, 1, 3], layer="gap", mode="circular")
    assert [r["shift"] for r in circ] == [0, 1, 3]
    for r in circ:
        assert r["feature_distance"] < 1e-6 and r["cosine"] > 1 - 1e-6
        assert r["flip_rate"] == 0 and r["prob_change"] < 1e-6
    zeros = A.shift_sensitivity(model, x, [1, 3], layer="gap", mode="zeros")
    assert 0 < zeros[0]["feature_distance"] < zeros[1]["feature_distance"]


def test_zero_shift_changes_nothing_and_a_flatten_model_is_not_invariant():
    model, x = _flatten_dense(), _images(n=40)
    y = np.arange(40) % 4
    rows = A.shift_sensitivity(model, x, (0, 1, 2), y=y)  # layer=None: the input of the last layer
    r0 = rows[0]
    assert r0["feature_distance"] == 0 and r0["cosine"] == pytest.approx(1) and r0["flip_rate"] == 0
    assert r0["prob_change"] == 0
    pred = model.predict(x, verbose=0).argmax(-1)
    assert r0["accuracy"] == pytest.approx(np.mean(pred == y))
    # A flattened image is a permutation of pixels, so a circular shift keeps the feature norm: distance is
    # sqrt(2 - 2 cos) when every image has the same norm; here only check that it is clearly positive.
    assert rows[1]["feature_distance"] > 0.5 and rows[1]["flip_rate"] > 0 and rows[1]["cosine"] < 0.9


def test_each_image_moves_exactly_s_pixels_in_one_direction():
    """A model that returns its input: the feature distance equals that of a known shift per image."""
    x = _images(n=32, size=6, c=1)
    inp = keras.Input((6, 6, 1))
    flat = keras.layers.Flatten(name="flat")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="out")(flat))
    row = A.shift_sensitivity(model, x, [2], layer="flat", seed=3)[0]
    direction = np.random.default_rng(3).integers(0, 4, size=len(x))
    moved = np.stack([A.shift_images(x[i:i + 1], 2 * A.SHIFT_DIRECTIONS[d][0], 2 * A.SHIFT_DIRECTIONS[d][1])[0]
                      for i, d in enumerate(direction)])
    expected = np.sqrt(np.mean(np.sum((moved - x) ** 2, axis=(1, 2, 3))) / np.mean(np.sum(x**2, axis=(1, 2, 3))))
    assert row["feature_distance"] == pytest.approx(expected, rel=1e-5)


def test_shift_sensitivity_rejects_bad_arguments():
    model, x = _gap_dense(), _images()
    for shifts, bad in (([1, -1], "-1"), ([8], "8"), ([1, 2.0], "2.0"), (3, "3")):
        with pytest.raises(ValueError, match=bad):
            A.shift_sensitivity(model, x, shifts)
    with pytest.raises(ValueError, match="'block9_pool'.*pixelwise, gap, out"):
        A.shift_sensitivity(model, x, [1], layer="block9_pool")
    with pytest.raises(ValueError, match="'wrap'"):
        A.shift_sensitivity(model, x, [1], mode="wrap")
    with pytest.raises(ValueError, match=r"\(6, 9, 9, 3\)"):
        A.shift_sensitivity(model, _images(size=9), [1])
    with pytest.raises(ValueError, match="one integer label per image"):
        A.shift_sensitivity(model, x, [1], y=np.zeros(5, int))
    with pytest.raises(TypeError, match="Keras model"):
        A.shift_sensitivity("model", x, [1])


def test_downsampling_net_three_ways():
    cfg = [8, "M", 16, "M"]
    nets = {d: downsampling_net(cfg, downsample=d, input_shape=(16, 16, 3)) for d in ("max", "avg", "conv")}
    for d, m in nets.items():
        assert m.output_shape == (None, 10)
        assert m.get_layer("block2_act1").output.shape[1:] == (8, 8, 16)
        assert m.get_layer("avg_pool").input.shape[1:] == (4, 4, 16)
    assert isinstance(nets["max"].get_layer("block1_pool"), keras.layers.MaxPooling2D)
    assert isinstance(nets["avg"].get_layer("block1_pool"), keras.layers.AveragePooling2D)
    assert nets["max"].count_params() == nets["avg"].count_params()
    # Each stride-2 convolution adds 9 C^2 weights (no bias: batch norm follows) and 4 C batch-norm values.
    extra = sum(9 * c * c + 4 * c for c in (8, 16))
    assert nets["conv"].count_params() - nets["max"].count_params() == extra
    down = nets["conv"].get_layer("block1_down")
    assert down.strides == (2, 2) and down.kernel_size == (3, 3) and down.filters == 8
    small = downsampling_net(cfg, downsample="avg", input_shape=(16, 16, 3), head="small", width=0.5)
    assert small.get_layer("fc1").units == 256 and small.get_layer("block2_conv1").filters == 8


def test_downsampling_net_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'blur'"):
        downsampling_net([8, "M"], downsample="blur")
    with pytest.raises(ValueError, match="'paper'"):
        downsampling_net([8, "M"], head="paper")
    with pytest.raises(ValueError, match="LRN"):
        downsampling_net([8, "LRN", "M"])
    with pytest.raises(ValueError, match="too small"):
        downsampling_net([8, "M", 8, "M", 8, "M"], input_shape=(4, 4, 3))


def test_downsampling_net_layers_of_equal_shape_start_different():
    m = downsampling_net([8, 8, "M", 8], downsample="conv", input_shape=(8, 8, 3))
    kernels = [m.get_layer(n).get_weights()[0] for n in ("block1_conv2", "block1_down", "block2_conv1")]
    assert kernels[0].shape == kernels[1].shape == kernels[2].shape
    assert not np.allclose(kernels[0], kernels[1]) and not np.allclose(kernels[1], kernels[2])

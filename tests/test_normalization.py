"""vgglab.analysis: batch normalisation by hand against Keras, layer outputs, patch moment eigenvalues."""

import keras
import numpy as np
import pytest

from vgglab import analysis


def _bn_layer(c, momentum=0.9, epsilon=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    layer.build((None, 4, 4, c))
    gamma, beta = rng.uniform(0.5, 2, c), rng.normal(size=c)
    mean, var = rng.normal(size=c), rng.uniform(0.5, 3, c)
    for var_, value in zip((layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance), (gamma, beta, mean, var)):
        var_.assign(value.astype("float32"))
    return layer, gamma, beta, mean, var


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_reference_equals_keras(training):
    c = 5
    layer, gamma, beta, mean, var = _bn_layer(c)
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(8, 4, 4, c)).astype("float32")
    y_keras = keras.ops.convert_to_numpy(layer(x, training=training))
    y, new_mean, new_var = analysis.batch_norm_reference(x, gamma, beta, mean, var, epsilon=1e-3, momentum=0.9,
                                                         training=training)
    np.testing.assert_allclose(y_keras, y, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), new_mean, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), new_var, atol=1e-5)
    if training:  # the batch statistics: per channel mean 0 and variance 1 before gamma, beta
        z = (y - beta) / gamma
        np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0, atol=1e-6)
        np.testing.assert_allclose(z.var(axis=(0, 1, 2)), x.var(axis=(0, 1, 2)) / (x.var(axis=(0, 1, 2)) + 1e-3),
                                   rtol=1e-6)
        assert not np.allclose(new_mean, mean)
    else:
        assert np.array_equal(new_mean, mean) and np.array_equal(new_var, var)


def test_moving_statistics_follow_the_exponential_average():
    layer, gamma, beta, mean, var = _bn_layer(3, momentum=0.5)
    rng = np.random.default_rng(2)
    m, v = mean, var
    for _ in range(4):
        x = rng.normal(5.0, 3.0, size=(16, 2, 2, 3)).astype("float32")
        layer(x, training=True)
        _, m, v = analysis.batch_norm_reference(x, gamma, beta, m, v, momentum=0.5, training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), m, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), v, rtol=1e-5)


def test_batch_norm_reference_rejects_bad_arguments():
    x = np.zeros((4, 3))
    ones = np.ones(3)
    with pytest.raises(ValueError, match="gamma must have shape"):
        analysis.batch_norm_reference(x, np.ones(2), ones, ones, ones)
    with pytest.raises(ValueError, match="momentum"):
        analysis.batch_norm_reference(x, ones, ones, ones, ones, momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        analysis.batch_norm_reference(x, ones, ones, ones, ones, epsilon=0)
    with pytest.raises(ValueError, match="batch axis"):
        analysis.batch_norm_reference(np.zeros(3), ones, ones, ones, ones)


def test_layer_outputs():
    inputs = keras.Input((4, 4, 2))
    h = keras.layers.Conv2D(3, 1, use_bias=False, kernel_initializer="ones", name="c")(inputs)
    out = keras.layers.ReLU(name="r")(h)
    model = keras.Model(inputs, keras.layers.Flatten(name="f")(out))
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype("float32")
    outs = analysis.layer_outputs(model, x, ["c", "r"])
    assert list(outs) == ["c", "r"] and outs["c"].shape == (2, 4, 4, 3)
    np.testing.assert_allclose(outs["c"][..., 0], x.sum(-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs["r"], np.maximum(outs["c"], 0))
    assert list(analysis.layer_outputs(model, x, "f")) == ["f"]
    with pytest.raises(ValueError, match="unknown layer 'z'"):
        analysis.layer_outputs(model, x, ["z"])
    with pytest.raises(ValueError, match="at least one"):
        analysis.layer_outputs(model, x, [])
    with pytest.raises(TypeError, match="Keras model"):
        analysis.layer_outputs("model", x, ["c"])
    with pytest.raises(ValueError, match=r"shape \(N, 4, 4, 2\)"):
        analysis.layer_outputs(model, x[..., :1], ["c"])


def test_layer_outputs_training_mode_uses_batch_statistics():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(inputs))
    x = np.random.default_rng(0).normal(10.0, 4.0, size=(64, 3)).astype("float32")
    train = analysis.layer_outputs(model, x, ["bn"], training=True)["bn"]
    infer = analysis.layer_outputs(model, x, ["bn"], training=False)["bn"]
    assert abs(train.mean()) < 1e-4 and abs(train.std() - 1) < 0.01
    assert infer.mean() > 9  # moving statistics barely moved from (0, 1) after one call


def test_patch_moment_eigenvalues():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(200, 8, 8, 3))
    ev = analysis.patch_moment_eigenvalues(x, size=3, max_patches=5_000)
    assert ev.shape == (27,) and np.all(np.diff(ev) <= 0) and ev[-1] > 0
    # scaling the inputs by c scales every eigenvalue by c^2 (and keeps the condition number)
    np.testing.assert_allclose(analysis.patch_moment_eigenvalues(255 * x, size=3, max_patches=5_000), 255**2 * ev,
                               rtol=1e-9)
    # independent uniform(0, 1) pixels: E[p p^T] = 1/12 I + 1/4 (all ones); the top eigenvalue is 1/12 + 27/4
    assert abs(ev[0] - (1 / 12 + 27 / 4)) < 0.1 and abs(np.median(ev) - 1 / 12) < 0.01
    centred = analysis.patch_moment_eigenvalues(x - 0.5, size=3, max_patches=5_000)
    assert centred[0] / centred[-1] < 3 and ev[0] / ev[-1] > 50  # centring removes the mean direction
    with pytest.raises(ValueError, match="size"):
        analysis.patch_moment_eigenvalues(x, size=9)
    with pytest.raises(ValueError, match="shape"):
        analysis.patch_moment_eigenvalues(x[0])

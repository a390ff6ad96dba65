"""Input-gradient maps, the effective receptive field, and activation counts (chapter 03)."""

import keras
import numpy as np
import pytest

from vgglab import analysis as A
from vgglab.models import conv_stack, vgg


def _ones(kernels, size=11):
    """A linear single-channel stack whose kernels are all ones: its gradient counts paths."""
    m = conv_stack(kernels, 1, size=size, use_bias=False)
    for layer in m.layers[1:]:
        layer.kernel.assign(np.ones(layer.kernel.shape, "float32"))
    return m


def test_all_ones_stack_gives_the_path_counts():
    g = A.input_gradient_map(_ones([3, 3, 3]), samples=2)
    row = np.array([0, 0, 1, 3, 6, 7, 6, 3, 1, 0, 0], float)  # coefficients of (1 + t + t^2)^3
    np.testing.assert_allclose(g, np.outer(row, row), atol=1e-4)
    assert A.gradient_mass_fraction(g, 3) == pytest.approx((19 / 27) ** 2)
    assert A.gradient_mass_fraction(g, 7) == pytest.approx(1.0)


def test_one_7x7_layer_is_flat_inside_its_field():
    g = A.input_gradient_map(_ones([7]), samples=1, power=2)
    assert np.count_nonzero(g) == 49 and np.allclose(g[2:9, 2:9], 1.0)
    assert A.gradient_mass_fraction(g, 3) == pytest.approx(9 / 49)


def test_support_of_random_relu_stacks_is_the_receptive_field():
    keras.utils.set_random_seed(0)
    for n in (1, 2, 3):
        m = conv_stack([3] * n, 16, size=13, in_channels=3, activation="relu")
        g = A.input_gradient_map(m, samples=8, seed=1, power=2)
        assert g.shape == (13, 13)
        rows, cols = np.flatnonzero(g.sum(1)), np.flatnonzero(g.sum(0))
        assert rows[-1] - rows[0] + 1 == cols[-1] - cols[0] + 1 == 2 * n + 1
        assert A.gradient_receptive_field(m) == 2 * n + 1
        if n > 1:  # the centre weighs more than a flat field would give it
            assert A.gradient_mass_fraction(g, 3) > 1.3 * 9 / (2 * n + 1) ** 2


def test_power_and_explicit_batch():
    keras.utils.set_random_seed(1)
    m = conv_stack([3, 3], 4, size=9, in_channels=2)  # linear: the gradient does not depend on x
    x = np.random.default_rng(0).normal(size=(3, 9, 9, 2))
    g1, g2 = A.input_gradient_map(m, x, power=1), A.input_gradient_map(m, x, power=2)
    single = A.input_gradient_map(m, x[:1], power=1)
    np.testing.assert_allclose(g1, single, rtol=1e-5)
    assert np.all(g2 <= g1 * g1.max() + 1e-6) and np.count_nonzero(g2) == np.count_nonzero(g1) == 25


def test_bad_arguments():
    m = conv_stack([3], 2, size=8)
    with pytest.raises(TypeError, match="Keras model"):
        A.input_gradient_map("conv")
    with pytest.raises(ValueError, match="power"):
        A.input_gradient_map(m, power=3)
    with pytest.raises(ValueError, match="samples"):
        A.input_gradient_map(m, samples=0)
    with pytest.raises(ValueError, match="batch of shape"):
        A.input_gradient_map(m, np.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="image input and output"):
        A.input_gradient_map(vgg("A", input_shape=(32, 32, 3), num_classes=10, head="gap"))
    g = np.ones((7, 7))
    for size in (2, 9, 0, True):
        with pytest.raises(ValueError, match="odd integer"):
            A.gradient_mass_fraction(g, size)
    with pytest.raises(ValueError, match="2-D"):
        A.gradient_mass_fraction(np.ones(7), 3)
    with pytest.raises(ValueError, match="not all zero"):
        A.gradient_mass_fraction(np.zeros((7, 7)), 3)


def test_activation_counts():
    assert A.activation_counts(conv_stack([3, 3, 3], 4, activation="relu")) == {"relu": 3}
    assert A.activation_counts(conv_stack([7], 4, activation="relu")) == {"relu": 1}
    assert A.activation_counts(conv_stack([3], 4)) == {}
    small = dict(input_shape=(32, 32, 3), num_classes=10, width=0.125)
    # C and D have the same 13 convolutions + 2 hidden FC layers; B has three fewer.
    assert A.activation_counts(vgg("C", **small)) == A.activation_counts(vgg("D", **small)) == {"relu": 15, "softmax": 1}
    assert A.activation_counts(vgg("B", **small)) == {"relu": 12, "softmax": 1}
    bn = vgg("D", batch_norm=True, head="gap", **small)  # ReLU in Activation layers after batch norm
    assert A.activation_counts(bn) == {"relu": 13, "softmax": 1}
    inner = conv_stack([3, 3], 4, size=8, activation="relu")
    outer = keras.Sequential([keras.Input((8, 8, 4)), inner, keras.layers.ReLU()])
    assert A.activation_counts(outer) == {"relu": 3}
    with pytest.raises(TypeError, match="Keras model"):
        A.activation_counts([1, 2])


def test_equivalent_kernel_of_a_linear_stack():
    keras.utils.set_random_seed(2)
    stack = conv_stack([3, 3, 3], 4, size=16, in_channels=3, use_bias=False)
    k = A.equivalent_kernel(stack)
    assert k.shape == (7, 7, 3, 4)
    one = conv_stack([7], 4, size=16, in_channels=3, use_bias=False)
    one.get_layer("conv1").kernel.assign(k)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    a, b = (keras.ops.convert_to_numpy(m(x)) for m in (stack, one))
    np.testing.assert_allclose(a[:, 2:-2, 2:-2], b[:, 2:-2, 2:-2], atol=1e-4)  # equal away from the borders
    assert np.abs(a - b).max() > 1e-3  # the zero padding of the inner layers differs at the border
    # A single layer is its own kernel; mixed kernel sizes add up.
    single = conv_stack([5], 2, size=8, use_bias=False)
    np.testing.assert_allclose(A.equivalent_kernel(single), single.get_layer("conv1").kernel.numpy(), atol=1e-6)
    assert A.equivalent_kernel(conv_stack([3, 5, 1], 2, size=9, use_bias=False)).shape == (7, 7, 2, 2)


def test_equivalent_kernel_rejects_what_does_not_compose():
    with pytest.raises(ValueError, match="activation 'relu'"):
        A.equivalent_kernel(conv_stack([3, 3], 2, size=8, use_bias=False, activation="relu"))
    with pytest.raises(ValueError, match="a bias"):
        A.equivalent_kernel(conv_stack([3, 3], 2, size=8))
    with pytest.raises(ValueError, match="at least as large"):
        A.equivalent_kernel(conv_stack([3, 3, 3], 2, size=5, use_bias=False))
    with pytest.raises(ValueError, match="MaxPooling2D"):
        A.equivalent_kernel(keras.Sequential([keras.Input((8, 8, 1)), keras.layers.MaxPooling2D(2)]))
    with pytest.raises(TypeError, match="Keras model"):
        A.equivalent_kernel(None)

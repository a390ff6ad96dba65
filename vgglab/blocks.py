"""The pieces every network of the book is made of: the convolution unit, LRN, and the input checks.

``conv_bn_act`` is the unit that VGG, the pooling variants, GoogLeNet and ResNet all repeat: a convolution, then
(with batch normalisation) BN and the activation as layers of their own; without BN the convolution carries its
bias and the activation itself, as in the 2014 networks.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops


def scaled(units: int, width: float) -> int:
    """``units`` times the width multiplier, at least 1."""
    return max(1, int(round(units * width)))


def fresh(init):
    """A copy of ``init`` for one layer. A Keras initializer object draws with one fixed seed, so layers of the
    same shape that shared it would all start with identical weights."""
    if isinstance(init, keras.initializers.Initializer):
        return init.__class__.from_config(init.get_config())
    return init


def conv_bn_act(x, filters: int, kernel=3, *, strides: int = 1, batch_norm: bool = True, activation="relu",
                initializer="he_normal", regularizer=None, names=("conv", "bn", "act")):
    """A "same" convolution of ``filters`` ``kernel`` x ``kernel`` filters on ``x``, then batch norm and the activation.

    Args:
        x: a 4-D tensor (batch, height, width, channels) of a functional model.
        filters, kernel, strides: the convolution's filters, kernel size and stride.
        batch_norm: BN between the convolution (then without bias) and the activation.
        activation: a Keras activation, or None for none (a ResNet block adds its shortcut before the ReLU).
        initializer, regularizer: for the convolution's kernel.
        names: the names of the convolution, BN and activation layers.

    Returns:
        The output tensor.
    """
    conv, bn, act = names
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=not batch_norm,
                      kernel_initializer=fresh(initializer), kernel_regularizer=regularizer,
                      activation=None if batch_norm else activation, name=conv)(x)
    if not batch_norm:
        return x
    x = layers.BatchNormalization(momentum=0.9, name=bn)(x)
    return x if activation is None else layers.Activation(activation, name=act)(x)


def augmented(x, augmentation):
    """``x`` through the augmentation layers (a list of Keras preprocessing layers, or None): they act in training
    only, so a model built on the result predicts as the same model without them."""
    if augmentation is None:
        return x
    if not isinstance(augmentation, (list, tuple)) or not all(isinstance(a, layers.Layer) for a in augmentation):
        raise TypeError(f"augmentation must be a list of Keras layers such as vgglab.augment.augmentation_layers("
                        f"recipe), not {augmentation!r}")
    for layer in augmentation:
        x = layer(x)
    return x


def check_input(input_shape, num_classes, pools: int = 0, *, width: float = 1.0, dropout: float = 0.0) -> tuple:
    """The builders' shared arguments checked once: ``input_shape`` large enough for ``pools`` halvings, at least two
    classes, a positive width and a dropout rate in [0, 1). Returns ``input_shape`` as a tuple."""
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_shape)):
        raise ValueError(f"input_shape must be (height, width, channels) of positive integers, not {input_shape!r}")
    need = 2**pools
    if input_shape[0] < need or input_shape[1] < need:
        raise ValueError(f"input_shape {tuple(input_shape)} is too small for {pools} max-pooling layers: "
                         f"each side must be at least {need} pixels")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2, not {num_classes!r}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width must be a positive number, not {width!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1), not {dropout!r}")
    return tuple(input_shape)


def check_image_tensor(x) -> None:
    """``x`` is a 4-D image tensor, or a TypeError naming what it is."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4:
        raise TypeError(f"x must be an image tensor (batch, height, width, channels) such as keras.Input((32, 32, 3)), "
                        f"not {type(x).__name__} {x!r}")


@keras.saving.register_keras_serializable(package="vgglab")
class LocalResponseNormalization(layers.Layer):
    """AlexNet's LRN across channels: a / (k + alpha * sum of a^2 over ``size`` neighbours) ** beta.

    The VGG paper used it only in configuration A-LRN, and found it did not help.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"LRN size must be a positive odd integer, not {size!r}")
        for label, v in (("alpha", alpha), ("beta", beta), ("k", k)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"LRN {label} must be a finite non-negative number, not {v!r}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, x):
        half = self.size // 2
        sq = ops.pad(ops.square(x), [[0, 0], [0, 0], [0, 0], [half + 1, half]])
        cs = ops.cumsum(sq, axis=-1)
        window = cs[..., self.size:] - cs[..., : -self.size]  # sum over channels c-half .. c+half
        return x / ops.power(self.k + self.alpha * window, self.beta)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}

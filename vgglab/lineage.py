"""The lineage: LeNet-5, AlexNet, GoogLeNet's Inception module, and the CIFAR ResNets with their plain twins.

Every builder defaults to CIFAR-10 (32x32x3 inputs, 10 classes); each docstring says what was changed from the
original network.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from vgglab.blocks import (LocalResponseNormalization, augmented, check_image_tensor, check_input, conv_bn_act,
                           fresh, scaled)
from vgglab.checks import keras_object, positive_int

# GoogLeNet's Table 1 (Szegedy et al. 2015): #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_SPECS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
SHORTCUTS = ("projection", "pad")


def lenet5(*, input_shape=(32, 32, 3), num_classes: int = 10, activation="tanh", name: str = "lenet5") -> keras.Model:
    """LeNet-5 (LeCun et al. 1998), with the paper's layer names C1, S2, C3, S4, C5, F6.

    C1: 6 maps 5x5 ("valid", 32 -> 28), S2: 2x2 average pooling, C3: 16 maps 5x5 (14 -> 10), S4: 2x2
    average pooling, C5: 120 units over the 5x5x16 maps, F6: 84 units, then the output layer; tanh.
    Changed from the paper: RGB input instead of a grey one; C3 sees all six S2 maps (the paper
    connected each C3 map to a subset of them); S2/S4 are plain averages (the paper's had a trainable
    coefficient and bias, then a squashing function); plain tanh (the paper scaled it, 1.7159 tanh(2a/3));
    a softmax output instead of the paper's Euclidean RBF units. C5 is a 5x5 convolution on a 5x5 map,
    which is the same as a dense layer on the flattened map, and is written as one.
    """
    input_shape = check_input(input_shape, num_classes, 2)
    if input_shape[0] < 16 or input_shape[1] < 16:  # 5x5 conv, pool, 5x5 conv, pool must leave a map
        raise ValueError(f"input_shape {input_shape} is too small for LeNet-5: each side must be at least 16 pixels")
    act = keras_object("activation", keras.activations.get, activation)
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Conv2D(6, 5, activation=act, name="c1_conv")(inputs)
    x = layers.AveragePooling2D(2, name="s2_pool")(x)
    x = layers.Conv2D(16, 5, activation=act, name="c3_conv")(x)
    x = layers.AveragePooling2D(2, name="s4_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation=act, name="c5_fc")(x)
    x = layers.Dense(84, activation=act, name="f6_fc")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def alexnet(*, input_shape=(32, 32, 3), num_classes: int = 10, width: float = 1.0, dropout: float = 0.5,
            lrn: bool = True, stem: str = "cifar", augmentation=None, name: str = "alexnet") -> keras.Model:
    """AlexNet (Krizhevsky et al. 2012) as one tower: 5 convolutions (96, 256, 384, 384, 256 filters
    times ``width``), ReLU, LRN after conv1 and conv2, overlapping 3x3 max pooling with stride 2 after
    conv1, conv2 and conv5, then fc6 and fc7 (4096 x ``width`` units, dropout 0.5) and the output layer.

    ``stem="imagenet"`` is the original first layer: 11x11 filters with stride 4 and no padding, for
    227x227 inputs (227 -> 55 -> 27 -> 13 -> 6). ``stem="cifar"`` (the default) adapts it to 32x32:
    conv1 has 5x5 filters with stride 1 and "same" padding (a stride of 4 would leave an 8x8 map after the
    first layer), so 32 -> 15 -> 7 -> 3 after the three poolings. Both drop the paper's split over two GPUs
    (conv2, conv4 and conv5 saw only the half of the previous maps on their own GPU), so they have a
    little more parameters than the paper's network.
    """
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"unknown stem {stem!r}; choose 'cifar' (5x5, stride 1) or 'imagenet' (11x11, stride 4)")
    input_shape = check_input(input_shape, num_classes, width=width, dropout=dropout)
    need = 67 if stem == "imagenet" else 15
    if input_shape[0] < need or input_shape[1] < need:
        raise ValueError(f"input_shape {input_shape} is too small for AlexNet with stem {stem!r}: "
                         f"each side must be at least {need} pixels")
    inputs = keras.Input(shape=input_shape, name="input")
    x = augmented(inputs, augmentation)
    first = (11, 4, "valid") if stem == "imagenet" else (5, 1, "same")  # kernel, stride, padding of conv1
    convs = [(96, *first), (256, 5, 1, "same"), (384, 3, 1, "same"), (384, 3, 1, "same"), (256, 3, 1, "same")]
    for i, (filters, k, s, padding) in enumerate(convs, start=1):
        x = layers.Conv2D(scaled(filters, width), k, strides=s, padding=padding, activation="relu",
                          name=f"conv{i}")(x)
        if lrn and i <= 2:
            x = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0, name=f"conv{i}_lrn")(x)
        if i in (1, 2, 5):
            x = layers.MaxPooling2D(3, strides=2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for j in (6, 7):
        x = layers.Dense(scaled(4096, width), activation="relu", name=f"fc{j}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{j}_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def _inception_spec(spec, width: float = 1.0) -> tuple[int, ...]:
    if isinstance(spec, str):
        if spec not in INCEPTION_SPECS:
            raise ValueError(f"unknown Inception module {spec!r}; choose one of {', '.join(INCEPTION_SPECS)}")
        spec = INCEPTION_SPECS[spec]
    if (not isinstance(spec, (tuple, list)) or len(spec) != 6
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in spec)):
        raise ValueError(f"an Inception spec is six positive integers (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, "
                         f"pool proj) or a name such as '3a', not {spec!r}")
    return tuple(scaled(v, width) for v in spec)


def inception_module(x, spec="3a", *, reduce: bool = True, width: float = 1.0, batch_norm: bool = False,
                     name: str = "inception"):
    """GoogLeNet's Inception module (Szegedy et al. 2015, Figure 2) applied to the tensor ``x``.

    ``spec`` is a row of the paper's Table 1 (a name such as ``"3a"`` or six filter counts: 1x1,
    3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), each multiplied by ``width``. Four branches see
    the same input and their outputs are concatenated along the channels:

    - ``{name}_1x1``: 1x1 convolution;
    - ``{name}_3x3_reduce`` -> ``{name}_3x3``: 1x1 reduction, then 3x3 convolution;
    - ``{name}_5x5_reduce`` -> ``{name}_5x5``: 1x1 reduction, then 5x5 convolution;
    - ``{name}_pool`` -> ``{name}_pool_proj``: 3x3 max pooling (stride 1), then 1x1 projection.

    ``reduce=False`` is the paper's "naive" module (Figure 2a): no 1x1 reductions before the 3x3
    and 5x5 convolutions and no projection after the pooling, so the pooling branch passes every input
    channel on. Every convolution is followed by ReLU (and by batch normalisation first, if asked:
    the original had none).
    """
    check_image_tensor(x)
    c1, r3, c3, r5, c5, pp = _inception_spec(spec, width)

    def conv(t, filters, k, tag):
        return conv_bn_act(t, filters, k, batch_norm=batch_norm,
                           names=(f"{name}_{tag}", f"{name}_{tag}_bn", f"{name}_{tag}_relu"))

    b1 = conv(x, c1, 1, "1x1")
    b3 = conv(conv(x, r3, 1, "3x3_reduce") if reduce else x, c3, 3, "3x3")
    b5 = conv(conv(x, r5, 1, "5x5_reduce") if reduce else x, c5, 5, "5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    if reduce:
        bp = conv(bp, pp, 1, "pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])


def inception_block_model(spec="3a", *, in_channels: int = 192, size: int = 28, reduce: bool = True,
                          width: float = 1.0, name: str | None = None) -> keras.Model:
    """One Inception module on a ``size x size x in_channels`` input, as a model of its own, to count
    its parameters and FLOPs with ``vgglab.analysis``. The defaults are inception (3a) of GoogLeNet:
    192 input channels on a 28x28 map."""
    positive_int(in_channels, "in_channels")
    positive_int(size, "size")
    inputs = keras.Input(shape=(size, size, in_channels), name="input")
    tag = spec if isinstance(spec, str) else "custom"
    outputs = inception_module(inputs, spec, reduce=reduce, width=width, name=f"inception_{tag}")
    return keras.Model(inputs, outputs, name=name or f"inception_{tag}_{'reduced' if reduce else 'naive'}")


def inception_params(spec="3a", in_channels: int = 192, *, reduce: bool = True, bias: bool = True) -> int:
    """The hand formula for an Inception module's parameters (what ``inception_block_model`` counts)."""
    c1, r3, c3, r5, c5, pp = _inception_spec(spec)
    positive_int(in_channels, "in_channels")
    c = in_channels
    if reduce:
        weights = c * c1 + c * r3 + 9 * r3 * c3 + c * r5 + 25 * r5 * c5 + c * pp
        filters = c1 + r3 + c3 + r5 + c5 + pp
    else:
        weights = c * c1 + 9 * c * c3 + 25 * c * c5
        filters = c1 + c3 + c5
    return weights + (filters if bias else 0)


def googlenet_mini(*, input_shape=(32, 32, 3), num_classes: int = 10, width: float = 1.0,
                   modules=("3a", "3b", "M", "4a", "4b", "M", "5a", "5b"), reduce: bool = True,
                   batch_norm: bool = False, dropout: float = 0.4, augmentation=None,
                   name: str = "googlenet_mini") -> keras.Model:
    """A small GoogLeNet for 32x32 inputs, built from the paper's own Inception modules.

    The original stem (7x7 conv with stride 2, max pooling, 1x1 and 3x3 convs, max pooling: 224 -> 28)
    becomes a 3x3 conv with 64 filters, one 3x3 max pooling with stride 2 (32 -> 16), a 1x1 conv with
    64 and a 3x3 conv with 192 filters. Then come ``modules`` (names from ``INCEPTION_SPECS``; ``"M"``
    is a 3x3 max pooling with stride 2), global average pooling, dropout 0.4 and the classifier, as in
    the paper. Dropped: the stem's LRN and the two auxiliary classifiers. All filter counts are
    multiplied by ``width``.
    """
    if not isinstance(modules, (list, tuple)):
        raise TypeError(f"modules must be a list of Inception names and 'M' such as ('3a', '3b', 'M'), not {modules!r}")
    input_shape = check_input(input_shape, num_classes, 1 + list(modules).count("M"), width=width, dropout=dropout)
    for m in modules:
        if m != "M" and m not in INCEPTION_SPECS:
            raise ValueError(f"unknown module {m!r} in modules; use names from {', '.join(INCEPTION_SPECS)} or 'M'")
    inputs = keras.Input(shape=input_shape, name="input")
    x = augmented(inputs, augmentation)

    def conv(t, filters, k, tag):
        return conv_bn_act(t, scaled(filters, width), k, batch_norm=batch_norm, names=(tag, f"{tag}_bn", f"{tag}_relu"))

    x = conv(x, 64, 3, "stem_conv1")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool1")(x)
    x = conv(x, 64, 1, "stem_conv2")
    x = conv(x, 192, 3, "stem_conv3")
    pools = 1
    for m in modules:
        if m == "M":
            pools += 1
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{pools}")(x)
        else:
            x = inception_module(x, m, reduce=reduce, width=width, batch_norm=batch_norm, name=f"inception{m}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="vgglab")
class PadShortcut(layers.Layer):
    """The parameter-free shortcut of He et al. (2016), option A: take every ``stride``-th pixel and
    append zero channels up to ``filters``."""

    def __init__(self, filters: int, stride: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.stride = positive_int(filters, "filters"), positive_int(stride, "stride")

    def call(self, x):
        x = x[:, :: self.stride, :: self.stride, :]
        extra = self.filters - x.shape[-1]
        if extra < 0:
            raise ValueError(f"PadShortcut cannot reduce {x.shape[-1]} channels to {self.filters}")
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]]) if extra else x

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        down = lambda v: None if v is None else -(-v // self.stride)  # noqa: E731
        return (n, down(h), down(w), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}


def residual_block(x, filters: int, *, stride: int = 1, residual: bool = True, shortcut: str = "projection",
                   initializer="he_normal", regularizer=None, name: str = "block"):
    """The basic block of He et al. (2016): 3x3 conv (``stride``) - BN - ReLU - 3x3 conv - BN, plus the
    shortcut, then ReLU.

    The shortcut is the identity when the input already has ``filters`` channels and ``stride`` is 1.
    Otherwise ``shortcut="projection"`` uses a strided 1x1 convolution with BN (the paper's option B) and
    ``shortcut="pad"`` the parameter-free option A (subsample, pad with zero channels), which the paper
    used on CIFAR-10. ``residual=False`` leaves the shortcut and the addition out: the "plain" block.
    """
    check_image_tensor(x)
    positive_int(filters, "filters")
    positive_int(stride, "stride")
    if shortcut not in SHORTCUTS:
        raise ValueError(f"unknown shortcut {shortcut!r}; choose one of {', '.join(SHORTCUTS)}")
    init = keras_object("initializer", keras.initializers.get, initializer)
    reg = keras_object("regularizer", keras.regularizers.get, regularizer)

    def conv_bn(t, s, tag):  # no activation yet: the second one's comes after the shortcut is added
        return conv_bn_act(t, filters, 3, strides=s, activation=None, initializer=init, regularizer=reg,
                           names=(f"{name}_conv{tag}", f"{name}_bn{tag}", None))

    y = layers.Activation("relu", name=f"{name}_relu1")(conv_bn(x, stride, 1))
    y = conv_bn(y, 1, 2)
    if residual:
        s = x
        if stride != 1 or x.shape[-1] != filters:
            if shortcut == "projection":
                s = layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_initializer=fresh(init),
                                  kernel_regularizer=reg, name=f"{name}_shortcut_conv")(x)
                s = layers.BatchNormalization(momentum=0.9, name=f"{name}_shortcut_bn")(s)
            else:
                s = PadShortcut(filters, stride, name=f"{name}_shortcut_pad")(x)
        y = layers.Add(name=f"{name}_add")([y, s])
    return layers.Activation("relu", name=f"{name}_relu2")(y)


def resnet_depth(depth: int) -> int:
    """The number of blocks per stage, n, of a CIFAR ResNet with ``depth`` = 6n + 2 weighted layers."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 for a whole n >= 1 (8, 14, 20, 26, 32, 44, 56, 110, ...), "
                         f"not {depth!r}")
    return (depth - 2) // 6


def cifar_resnet(depth: int = 20, *, residual: bool = True, width: float = 1.0, shortcut: str = "projection",
                 input_shape=(32, 32, 3), num_classes: int = 10, initializer="he_normal", regularizer=None,
                 augmentation=None, name: str | None = None) -> keras.Model:
    """The CIFAR-10 networks of He et al. (2016), section 4.2: ResNet-20/32/44/56/110 and their plain twins.

    A 3x3 convolution with 16 filters, then three stages of n basic blocks each on 32x32, 16x16 and
    8x8 maps with 16, 32 and 64 filters (times ``width``; the first block of stages 2 and 3 has stride 2),
    global average pooling and a 10-way classifier: 6n + 2 weighted layers. With ``residual=False`` the
    same layers without shortcuts: the "plain" network, with exactly the parameters of the residual one
    less those of the projection shortcuts (none with ``shortcut="pad"``, the paper's choice for CIFAR).
    Layers are named ``stem_conv``, ``stage2_block1_conv1``, ``stage2_block1_shortcut_conv``, ...
    """
    n = resnet_depth(depth)
    input_shape = check_input(input_shape, num_classes, 2, width=width)
    inputs = keras.Input(shape=input_shape, name="input")
    x = augmented(inputs, augmentation)
    init = keras_object("initializer", keras.initializers.get, initializer)
    reg = keras_object("regularizer", keras.regularizers.get, regularizer)
    x = conv_bn_act(x, scaled(16, width), 3, initializer=init, regularizer=reg,
                    names=("stem_conv", "stem_bn", "stem_relu"))
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, n + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = residual_block(x, scaled(filters, width), stride=stride, residual=residual, shortcut=shortcut,
                               initializer=initializer, regularizer=regularizer, name=f"stage{stage}_block{block}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=fresh(init), kernel_regularizer=reg,
                           name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name or f"{'resnet' if residual else 'plain'}{depth}")

"""The book's small CNNs: the first CNN, plain convolution stacks, and VGG with three ways to downsample."""

from __future__ import annotations

import keras
from keras import layers

from vgglab.blocks import augmented, check_input, conv_bn_act, fresh, scaled
from vgglab.checks import keras_object, positive_int
from vgglab.vggnet import resolve_config

def basic_cnn(*, input_shape=(32, 32, 3), num_classes: int = 10, activation="sigmoid", filters=(32, 64),
              fc_units: int = 384, initializer="glorot_uniform", augmentation=None, name: str = "basic_cnn") -> keras.Model:
    """The first CNN of the book: two 5x5 convolution + 2x2 max-pooling stages, one FC layer of 384, sigmoid."""
    if not isinstance(filters, (list, tuple)) or not all(
            isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in filters):
        raise ValueError(f"filters must be a list of positive filter counts such as (32, 64), not {filters!r}")
    positive_int(fc_units, "fc_units")
    check_input(input_shape, num_classes, len(filters))
    act = keras_object("activation", keras.activations.get, activation)
    init = keras_object("initializer", keras.initializers.get, initializer)
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = augmented(inputs, augmentation)
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 5, padding="same", activation=act, kernel_initializer=fresh(init), name=f"block{i}_conv1")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(fc_units, activation=act, kernel_initializer=fresh(init), name="fc1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=fresh(init), name="predictions",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)



def conv_stack(kernels, channels: int, *, size: int = 32, in_channels: int | None = None, use_bias: bool = True,
               activation=None, name: str = "conv_stack") -> keras.Model:
    """A plain stack of stride-1 "same" convolutions, one per kernel size in ``kernels`` (e.g. ``[3, 3, 3]``).

    For comparing stacks of small filters with one large filter: parameters, FLOPs and receptive fields.
    Layers are named ``conv1``, ``conv2``, ...; the input is ``size x size x in_channels`` (default ``channels``).
    """
    kernels = list(kernels)
    if not kernels or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in kernels):
        raise ValueError(f"kernels must be a non-empty list of positive integers, not {kernels!r}")
    for label, v in (("channels", channels), ("size", size),
                     ("in_channels", channels if in_channels is None else in_channels)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{label} must be a positive integer, not {v!r}")
    act = keras_object("activation", keras.activations.get, activation)
    inputs = keras.Input(shape=(size, size, in_channels or channels), name="input")
    x = inputs
    for i, k in enumerate(kernels, start=1):
        x = layers.Conv2D(channels, k, padding="same", use_bias=use_bias, activation=act, name=f"conv{i}")(x)
    return keras.Model(inputs, x, name=name)


DOWNSAMPLING = ("max", "avg", "conv")


def downsampling_net(config, *, downsample: str = "max", input_shape=(32, 32, 3), num_classes: int = 10,
                     width: float = 1.0, head: str = "gap", initializer="he_normal", augmentation=None,
                     name: str | None = None) -> keras.Model:
    """A VGG-style network (3x3 convolution + batch norm + ReLU) in which every ``"M"`` of ``config``
    halves the height and width in one of three ways, everything else being equal:

    - ``"max"``: 2x2 max pooling with stride 2, as in VGG (``block{b}_pool``, no parameters);
    - ``"avg"``: 2x2 average pooling with stride 2 (``block{b}_pool``, no parameters);
    - ``"conv"``: a 3x3 convolution with stride 2 and as many filters as it receives, followed by batch
      norm and ReLU like every other convolution (``block{b}_down``, ``block{b}_down_bn``,
      ``block{b}_down_act``), as in the all-convolutional net of Springenberg et al. (2015).

    ``head="gap"`` ends in global average pooling and the output layer; ``head="small"`` flattens and
    adds one ``fc1`` of 512 x width units. Integers in ``config`` are 3x3 convolutions (times ``width``).
    """
    _, cfg = resolve_config(config)
    if downsample not in DOWNSAMPLING:
        raise ValueError(f"unknown downsample {downsample!r}; choose one of {', '.join(DOWNSAMPLING)}")
    if "LRN" in cfg:
        raise ValueError("downsampling_net does not take 'LRN' entries; use vgg() for configuration A-LRN")
    if head not in ("gap", "small"):
        raise ValueError(f"unknown head {head!r}; choose one of gap, small")
    input_shape = check_input(input_shape, num_classes, cfg.count("M"), width=width)
    init = keras_object("initializer", keras.initializers.get, initializer)

    inputs = keras.Input(shape=input_shape, name="input")
    x = augmented(inputs, augmentation)
    block, conv = 1, 0
    for item in cfg:
        if item == "M":
            tag = f"block{block}"
            if downsample == "max":
                x = layers.MaxPooling2D(2, strides=2, name=f"{tag}_pool")(x)
            elif downsample == "avg":
                x = layers.AveragePooling2D(2, strides=2, name=f"{tag}_pool")(x)
            else:
                x = conv_bn_act(x, x.shape[-1], 3, strides=2, initializer=init,
                                names=(f"{tag}_down", f"{tag}_down_bn", f"{tag}_down_act"))
            block, conv = block + 1, 0
            continue
        filters, k = (item, 3) if isinstance(item, int) else tuple(item)
        conv += 1
        x = conv_bn_act(x, scaled(filters, width), k, initializer=init,
                        names=(f"block{block}_conv{conv}", f"block{block}_bn{conv}", f"block{block}_act{conv}"))
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(scaled(512, width), activation="relu", kernel_initializer=fresh(init), name="fc1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=fresh(init), name="predictions",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name or f"vgg_{downsample}")

"""VGG as data: the paper's configurations A-E, one builder, and the book's CIFAR variants.

``CONFIGS`` *is* Table 1 of Simonyan & Zisserman (2015): an integer is a 3x3 convolution with that
many filters, ``(c, 1)`` a 1x1 convolution, ``"LRN"`` local response normalisation and ``"M"`` a 2x2
max pooling with stride 2. ``vgg()`` turns any of them (or a list of your own) into a Keras model
whose layer names follow ``keras.applications``: ``block1_conv1`` ... ``block5_pool``, ``fc1``,
``fc2``, ``predictions``.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from vgglab.checks import keras_object, positive_int

CONFIGS: dict[str, list] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
ALIASES = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
HEADS = ("paper", "small", "gap")


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


def resolve_config(config) -> tuple[str, list]:
    """A configuration's name and layer list, from a name, an alias or a list of your own."""
    if isinstance(config, (list, tuple)):
        for item in config:
            ok = item in ("M", "LRN") or (isinstance(item, int) and not isinstance(item, bool) and item > 0) or (
                isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(v, int) and v > 0 for v in item))
            if not ok:
                raise ValueError(f"bad configuration entry {item!r}: use a filter count, (filters, kernel), 'M' or 'LRN'")
        return "custom", list(config)
    if not isinstance(config, str):
        raise TypeError(f"config must be a name such as 'D' or a list, not {type(config).__name__} {config!r}")
    key = ALIASES.get(config.lower(), config.upper() if config.upper() in CONFIGS else config)
    if key not in CONFIGS:
        names = ", ".join([*CONFIGS, *ALIASES])
        raise ValueError(f"unknown VGG configuration {config!r}; choose one of {names}")
    return key, CONFIGS[key]


def _scaled(units: int, width: float) -> int:
    return max(1, int(round(units * width)))


def _check_common(input_shape, num_classes, width, dropout, pools: int) -> tuple:
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


def _fresh(init):
    """A copy of ``init`` for one layer. A Keras initializer object draws with one fixed seed, so layers of the
    same shape that shared it would all start with identical weights."""
    if isinstance(init, keras.initializers.Initializer):
        return init.__class__.from_config(init.get_config())
    return init


def _augment(x, augmentation):
    """``x`` through the augmentation layers (a list of Keras preprocessing layers, or None)."""
    if augmentation is None:
        return x
    if not isinstance(augmentation, (list, tuple)) or not all(isinstance(a, layers.Layer) for a in augmentation):
        raise TypeError(f"augmentation must be a list of Keras layers such as vgglab.train.augmentation_layers(recipe), "
                        f"not {augmentation!r}")
    for layer in augmentation:
        x = layer(x)
    return x


def _check_image_tensor(x) -> None:
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4:
        raise TypeError(f"x must be an image tensor (batch, height, width, channels) such as keras.Input((32, 32, 3)), "
                        f"not {type(x).__name__} {x!r}")


def vgg(config="D", *, input_shape=(224, 224, 3), num_classes: int = 1000, batch_norm: bool = False,
        activation="relu", initializer="glorot_uniform", dropout: float = 0.5, width: float = 1.0,
        head: str = "paper", head_units: int | None = None, regularizer=None, augmentation=None,
        classifier_activation="softmax", name: str | None = None) -> keras.Model:
    """Build a VGG network.

    At the defaults (224x224x3, 1000 classes, the paper's 4096-4096 head) the parameter counts are
    those of the paper's Table 2. For CIFAR-10 the book uses ``input_shape=(32, 32, 3)``,
    ``num_classes=10``, ``batch_norm=True``, a ``width`` multiplier and a smaller head:

    - ``head="paper"``: flatten, fc1, fc2 (4096 x width units each, or ``head_units``), predictions;
    - ``head="small"``: flatten, one fc1 of 512 x width units (or ``head_units``), predictions;
    - ``head="gap"``: global average pooling, predictions.

    ``augmentation`` is a list of Keras preprocessing layers placed right after the input; they act
    only in training.

    Args:
        config: a configuration name of the paper's Table 1 (``"A"`` ... ``"E"``, ``"A-LRN"``, or ``"vgg16"``), or a
            list such as ``[64, "M", 128, "M"]`` (channels of a 3x3 convolution, ``"M"`` a 2x2 max pooling).
        input_shape, num_classes: the images and the number of classes.
        batch_norm: a batch normalisation after every convolution.
        activation, initializer, regularizer: Keras names or objects for every convolution and FC layer.
        dropout: the rate after each FC layer of the head (0: none).
        width: multiplies every channel and FC width (0.25: a quarter-width network).
        head, head_units: the classifier on top (above), and its FC width.
        classifier_activation: the last layer's activation (``"softmax"``, or None for logits).
        name: the model's name (default: ``vgg16`` and the like, as in ``keras.applications``).

    Returns:
        An uncompiled ``keras.Model`` whose layers are named as in ``keras.applications.vgg16``
        (``block1_conv1`` ... ``block5_pool``, ``fc1``, ``fc2``, ``predictions``).
    """
    cfg_name, cfg = resolve_config(config)
    pools = cfg.count("M")
    input_shape = _check_common(input_shape, num_classes, width, dropout, pools)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if head_units is not None and (isinstance(head_units, bool) or not isinstance(head_units, int) or head_units < 1):
        raise ValueError(f"head_units must be a positive integer, not {head_units!r}")
    act = keras_object("activation", keras.activations.get, activation)
    init = keras_object("initializer", keras.initializers.get, initializer)
    reg = keras_object("regularizer", keras.regularizers.get, regularizer)

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    x = _augment(x, augmentation)
    block, conv = 1, 0
    for item in cfg:
        if item == "M":
            x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
            block, conv = block + 1, 0
        elif item == "LRN":
            x = LocalResponseNormalization(name=f"block{block}_lrn")(x)
        else:
            filters, k = (item, 3) if isinstance(item, int) else tuple(item)
            conv += 1
            tag = f"block{block}_conv{conv}"
            x = layers.Conv2D(_scaled(filters, width), k, padding="same", kernel_initializer=_fresh(init),
                              kernel_regularizer=reg, use_bias=not batch_norm,
                              activation=None if batch_norm else act, name=tag)(x)
            if batch_norm:
                x = layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn{conv}")(x)
                x = layers.Activation(act, name=f"block{block}_act{conv}")(x)

    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        fcs = []
    else:
        x = layers.Flatten(name="flatten")(x)
        default = [_scaled(4096, width)] * 2 if head == "paper" else [_scaled(512, width)]
        fcs = [head_units] * len(default) if head_units else default
    for j, units in enumerate(fcs, start=1):
        x = layers.Dense(units, activation=act, kernel_initializer=_fresh(init), kernel_regularizer=reg, name=f"fc{j}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{j}_dropout")(x)
    outputs = layers.Dense(num_classes, activation=classifier_activation, kernel_initializer=_fresh(init),
                           kernel_regularizer=reg, name="predictions", dtype="float32")(x)
    default_name = {v: k for k, v in ALIASES.items()}.get(cfg_name, f"vgg_{cfg_name}".lower().replace("-", "_"))
    return keras.Model(inputs, outputs, name=name or default_name)


def basic_cnn(*, input_shape=(32, 32, 3), num_classes: int = 10, activation="sigmoid", filters=(32, 64),
              fc_units: int = 384, initializer="glorot_uniform", augmentation=None, name: str = "basic_cnn") -> keras.Model:
    """The first CNN of the book: two 5x5 convolution + 2x2 max-pooling stages, one FC layer of 384, sigmoid."""
    if not isinstance(filters, (list, tuple)) or not all(
            isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in filters):
        raise ValueError(f"filters must be a list of positive filter counts such as (32, 64), not {filters!r}")
    positive_int(fc_units, "fc_units")
    _check_common(input_shape, num_classes, 1.0, 0.0, pools=len(filters))
    act = keras_object("activation", keras.activations.get, activation)
    init = keras_object("initializer", keras.initializers.get, initializer)
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    x = _augment(x, augmentation)
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 5, padding="same", activation=act, kernel_initializer=_fresh(init), name=f"block{i}_conv1")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(fc_units, activation=act, kernel_initializer=_fresh(init), name="fc1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=_fresh(init), name="predictions",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def config_table(configs=("A", "A-LRN", "B", "C", "D", "E")) -> list[list[str]]:
    """The paper's Table 1 as rows of text (one column per configuration), from ``CONFIGS``."""
    configs = [configs] if isinstance(configs, str) else list(configs)
    if not configs:
        raise ValueError(f"configs must name at least one configuration ({', '.join(CONFIGS)}), not {configs!r}")
    columns = []
    for c in configs:
        _, cfg = resolve_config(c)
        col, stage = [], []
        for item in cfg:
            if item == "M":
                col.append(stage)
                stage = []
            elif item == "LRN":
                stage.append("LRN")
            else:
                f, k = (item, 3) if isinstance(item, int) else item
                stage.append(f"conv{k}-{f}")
        columns.append(col)
    rows = []
    for s in range(max(len(c) for c in columns)):
        depth = max(len(c[s]) for c in columns)
        for r in range(depth):
            rows.append([c[s][r] if r < len(c[s]) else "" for c in columns])
        rows.append(["maxpool"] * len(columns))
    return rows


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


# ----------------------------------------------------------------------------------------------
# Pooling (chapter 09): one VGG-style stack, three ways to halve the feature map

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
    input_shape = _check_common(input_shape, num_classes, width, 0.0, cfg.count("M"))
    init = keras_object("initializer", keras.initializers.get, initializer)

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    x = _augment(x, augmentation)
    block, conv = 1, 0
    for item in cfg:
        if item == "M":
            tag = f"block{block}"
            if downsample == "max":
                x = layers.MaxPooling2D(2, strides=2, name=f"{tag}_pool")(x)
            elif downsample == "avg":
                x = layers.AveragePooling2D(2, strides=2, name=f"{tag}_pool")(x)
            else:
                x = layers.Conv2D(x.shape[-1], 3, strides=2, padding="same", use_bias=False, kernel_initializer=_fresh(init),
                                  name=f"{tag}_down")(x)
                x = layers.BatchNormalization(momentum=0.9, name=f"{tag}_down_bn")(x)
                x = layers.Activation("relu", name=f"{tag}_down_act")(x)
            block, conv = block + 1, 0
            continue
        filters, k = (item, 3) if isinstance(item, int) else tuple(item)
        conv += 1
        tag = f"block{block}_conv{conv}"
        x = layers.Conv2D(_scaled(filters, width), k, padding="same", use_bias=False, kernel_initializer=_fresh(init),
                          name=tag)(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn{conv}")(x)
        x = layers.Activation("relu", name=f"block{block}_act{conv}")(x)
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(_scaled(512, width), activation="relu", kernel_initializer=_fresh(init), name="fc1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=_fresh(init), name="predictions",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name or f"vgg_{downsample}")


# ----------------------------------------------------------------------------------------------
# Dense evaluation (Simonyan & Zisserman 2015, section 3.2): the fully connected head as convolutions

# Layers that do the same at any input size: copied into the fully convolutional model with their weights.
_FCN_COPY = (layers.Conv2D, layers.MaxPooling2D, layers.AveragePooling2D, layers.BatchNormalization,
             layers.Activation, layers.ReLU, LocalResponseNormalization)
# Layers that are the identity at inference (dropout, random augmentation): left out.
_FCN_SKIP = (layers.Dropout, layers.SpatialDropout2D, layers.GaussianDropout, layers.GaussianNoise,
             layers.RandomFlip, layers.RandomTranslation, layers.RandomRotation, layers.RandomZoom)


def _inference_identity(layer) -> bool:
    return isinstance(layer, _FCN_SKIP) or getattr(layer, "inference_identity", False)


def to_fully_convolutional(model: keras.Model, input_shape=None, name: str | None = None) -> keras.Model:
    """The fully convolutional equivalent of a VGG with a flatten + dense head, with the same weights.

    As in the paper's dense evaluation, the first dense layer after ``flatten`` becomes a convolution
    whose kernel covers the whole last feature map (7x7 at 224x224, 1x1 at 32x32) and every later dense
    layer a 1x1 convolution; the kernels are the dense weights reshaped, not new weights. Dropout and
    augmentation layers, which do nothing at inference, are left out (Keras' random flip, translation,
    rotation and zoom, and any layer with ``inference_identity = True`` such as ``RandomScaleCrop``).

    On an input of the training size the result gives the FC model's outputs as a 1x1 map; on a larger
    input it gives a class score map ``(batch, rows, cols, classes)``, one prediction per position.
    ``input_shape`` is ``(height, width, channels)``; ``None`` (the default) or ``None`` sides accept any
    size that is at least the training size. Supports models from ``vgg(head="paper" | "small")`` and
    other linear stacks of convolution, pooling, batch normalisation and activation layers ending in
    flatten and dense layers (``basic_cnn``); anything else raises ``ValueError``.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a Keras model built by vgglab.vgg, not {type(model).__name__} {model!r}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "only single-input, single-output models can be converted")
    train_shape = tuple(model.inputs[0].shape[1:])
    trunk, head, flatten = [], [], None
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer) or _inference_identity(layer):
            continue
        fmt = getattr(layer, "data_format", "channels_last")
        if fmt != "channels_last":
            raise ValueError(f"layer {layer.name!r} uses data_format={fmt!r}; only channels_last is supported")
        if isinstance(layer, layers.Flatten):
            if flatten is not None:
                raise ValueError(f"model {model.name!r} has two Flatten layers ({flatten.name!r}, {layer.name!r})")
            flatten = layer
        elif flatten is None and isinstance(layer, _FCN_COPY):
            trunk.append(layer)
        elif flatten is not None and isinstance(layer, (layers.Dense, layers.Activation)):
            head.append(layer)
        elif isinstance(layer, (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)):
            raise ValueError(f"model {model.name!r} ends in global pooling ({layer.name!r}, vgg(head='gap')): "
                             "it has no flatten + dense head to convert; only head='paper' or 'small' models can be")
        else:
            where = "after" if flatten is not None else "before"
            raise ValueError(f"cannot convert layer {layer.name!r} ({type(layer).__name__}) {where} flatten: "
                             "supported are convolution, pooling, batch normalisation and activation layers, "
                             "then Flatten and Dense layers")
    if flatten is None or not any(isinstance(layer, layers.Dense) for layer in head):
        raise ValueError(f"model {model.name!r} has no Flatten followed by Dense layers to turn into convolutions")
    fmap = tuple(flatten.input.shape[1:])  # (rows, cols, channels) of the last feature map at the training size

    if input_shape is None:
        input_shape = (None, None, train_shape[-1])
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
            or not all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0) for v in input_shape)):
        raise ValueError(f"input_shape must be (height, width, channels) of positive integers or None, "
                         f"not {input_shape!r}")
    input_shape = tuple(input_shape)
    if input_shape[-1] != train_shape[-1]:
        raise ValueError(f"input_shape {input_shape} has {input_shape[-1]} channels; model {model.name!r} "
                         f"takes {train_shape[-1]}")

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    advice = f"use inputs at least as large as the training input {train_shape[0]}x{train_shape[1]}"
    for layer in trunk:
        copy = layer.__class__.from_config(layer.get_config())
        try:
            x = copy(x)
        except ValueError:  # a pooling or convolution with nothing left to work on
            x = None
        # Keras 3.15 raises on an empty output; Keras 3.13 returns a 0-pixel feature map
        if x is None or any(d is not None and d < 1 for d in x.shape[1:3]):
            raise ValueError(f"input_shape {input_shape} is too small: the feature map vanishes at layer "
                             f"{layer.name!r}; {advice}") from None
        copy.set_weights(layer.get_weights())
    rows, cols = x.shape[1], x.shape[2]
    if (rows is not None and rows < fmap[0]) or (cols is not None and cols < fmap[1]):
        raise ValueError(f"input_shape {input_shape} is too small: its last feature map is {rows}x{cols}, smaller "
                         f"than the {fmap[0]}x{fmap[1]} the first dense layer was trained on; {advice}")
    kernel = fmap[:2]
    for layer in head:
        if isinstance(layer, layers.Activation):
            x = layer.__class__.from_config(layer.get_config())(x)
            continue
        weights = layer.get_weights()
        conv = layers.Conv2D(layer.units, kernel, activation=layer.activation, use_bias=layer.use_bias,
                             name=layer.name)
        x = conv(x)
        w = weights[0].reshape(*kernel, -1, layer.units)  # Flatten is row-major over (rows, cols, channels)
        conv.set_weights([w, *weights[1:]])
        kernel = (1, 1)
    return keras.Model(inputs, x, name=name or f"{model.name}_fcn")


# ----------------------------------------------------------------------------------------------
# The lineage: LeNet-5, AlexNet, GoogLeNet's Inception module, and the CIFAR ResNets with their
# plain twins. Every builder defaults to CIFAR-10 (32x32x3 inputs, 10 classes); each docstring says
# what was changed from the original network.

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
    input_shape = _check_common(input_shape, num_classes, 1.0, 0.0, pools=2)
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
    input_shape = _check_common(input_shape, num_classes, width, dropout, pools=0)
    need = 67 if stem == "imagenet" else 15
    if input_shape[0] < need or input_shape[1] < need:
        raise ValueError(f"input_shape {input_shape} is too small for AlexNet with stem {stem!r}: "
                         f"each side must be at least {need} pixels")
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    x = _augment(x, augmentation)
    first = (11, 4, "valid") if stem == "imagenet" else (5, 1, "same")  # kernel, stride, padding of conv1
    convs = [(96, *first), (256, 5, 1, "same"), (384, 3, 1, "same"), (384, 3, 1, "same"), (256, 3, 1, "same")]
    for i, (filters, k, s, padding) in enumerate(convs, start=1):
        x = layers.Conv2D(_scaled(filters, width), k, strides=s, padding=padding, activation="relu",
                          name=f"conv{i}")(x)
        if lrn and i <= 2:
            x = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0, name=f"conv{i}_lrn")(x)
        if i in (1, 2, 5):
            x = layers.MaxPooling2D(3, strides=2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for j in (6, 7):
        x = layers.Dense(_scaled(4096, width), activation="relu", name=f"fc{j}")(x)
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
    return tuple(_scaled(v, width) for v in spec)


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
    _check_image_tensor(x)
    c1, r3, c3, r5, c5, pp = _inception_spec(spec, width)

    def conv(t, filters, k, tag):
        t = layers.Conv2D(filters, k, padding="same", use_bias=not batch_norm, kernel_initializer="he_normal",
                          activation=None if batch_norm else "relu", name=f"{name}_{tag}")(t)
        if batch_norm:
            t = layers.BatchNormalization(momentum=0.9, name=f"{name}_{tag}_bn")(t)
            t = layers.Activation("relu", name=f"{name}_{tag}_relu")(t)
        return t

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
    input_shape = _check_common(input_shape, num_classes, width, dropout, pools=1 + list(modules).count("M"))
    for m in modules:
        if m != "M" and m not in INCEPTION_SPECS:
            raise ValueError(f"unknown module {m!r} in modules; use names from {', '.join(INCEPTION_SPECS)} or 'M'")
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    x = _augment(x, augmentation)

    def conv(t, filters, k, tag):
        t = layers.Conv2D(_scaled(filters, width), k, padding="same", use_bias=not batch_norm,
                          kernel_initializer="he_normal", activation=None if batch_norm else "relu", name=tag)(t)
        if batch_norm:
            t = layers.BatchNormalization(momentum=0.9, name=f"{tag}_bn")(t)
            t = layers.Activation("relu", name=f"{tag}_relu")(t)
        return t

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
    _check_image_tensor(x)
    positive_int(filters, "filters")
    positive_int(stride, "stride")
    if shortcut not in SHORTCUTS:
        raise ValueError(f"unknown shortcut {shortcut!r}; choose one of {', '.join(SHORTCUTS)}")
    init = keras_object("initializer", keras.initializers.get, initializer)
    reg = keras_object("regularizer", keras.regularizers.get, regularizer)

    def conv_bn(t, s, tag):
        t = layers.Conv2D(filters, 3, strides=s, padding="same", use_bias=False, kernel_initializer=init,
                          kernel_regularizer=reg, name=f"{name}_conv{tag}")(t)
        return layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{tag}")(t)

    y = layers.Activation("relu", name=f"{name}_relu1")(conv_bn(x, stride, 1))
    y = conv_bn(y, 1, 2)
    if residual:
        s = x
        if stride != 1 or x.shape[-1] != filters:
            if shortcut == "projection":
                s = layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_initializer=init,
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
    input_shape = _check_common(input_shape, num_classes, width, 0.0, pools=2)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    x = _augment(x, augmentation)
    init = keras_object("initializer", keras.initializers.get, initializer)
    reg = keras_object("regularizer", keras.regularizers.get, regularizer)
    x = layers.Conv2D(_scaled(16, width), 3, padding="same", use_bias=False, kernel_initializer=init,
                      kernel_regularizer=reg, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, n + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = residual_block(x, _scaled(filters, width), stride=stride, residual=residual, shortcut=shortcut,
                               initializer=initializer, regularizer=regularizer, name=f"stage{stage}_block{block}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=init, kernel_regularizer=reg,
                           name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name or f"{'resnet' if residual else 'plain'}{depth}")

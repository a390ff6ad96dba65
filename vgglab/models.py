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
        if not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"LRN size must be a positive odd integer, not {size!r}")
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


def _get(kind: str, getter, value):
    try:
        return getter(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"unknown {kind} {value!r}: {e}") from None


def _fresh(init):
    """A copy of ``init`` for one layer. A Keras initializer object draws with one fixed seed, so layers of the
    same shape that shared it would all start with identical weights."""
    if isinstance(init, keras.initializers.Initializer):
        return init.__class__.from_config(init.get_config())
    return init


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
    """
    cfg_name, cfg = resolve_config(config)
    pools = cfg.count("M")
    input_shape = _check_common(input_shape, num_classes, width, dropout, pools)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if head_units is not None and (isinstance(head_units, bool) or not isinstance(head_units, int) or head_units < 1):
        raise ValueError(f"head_units must be a positive integer, not {head_units!r}")
    act = _get("activation", keras.activations.get, activation)
    init = _get("initializer", keras.initializers.get, initializer)
    reg = _get("regularizer", keras.regularizers.get, regularizer)

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, layer in enumerate(augmentation or []):
        if not isinstance(layer, layers.Layer):
            raise TypeError(f"augmentation must be a list of Keras layers, got {layer!r}")
        x = layer(x)
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
                           kernel_regularizer=reg, name="predictions")(x)
    default_name = {v: k for k, v in ALIASES.items()}.get(cfg_name, f"vgg_{cfg_name}".lower().replace("-", "_"))
    return keras.Model(inputs, outputs, name=name or default_name)


def basic_cnn(*, input_shape=(32, 32, 3), num_classes: int = 10, activation="sigmoid", filters=(32, 64),
              fc_units: int = 384, initializer="glorot_uniform", augmentation=None, name: str = "basic_cnn") -> keras.Model:
    """The first CNN of the book: two 5x5 convolution + 2x2 max-pooling stages, one FC layer of 384, sigmoid."""
    _check_common(input_shape, num_classes, 1.0, 0.0, pools=len(filters))
    act = _get("activation", keras.activations.get, activation)
    init = _get("initializer", keras.initializers.get, initializer)
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for layer in augmentation or []:
        x = layer(x)
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 5, padding="same", activation=act, kernel_initializer=_fresh(init), name=f"block{i}_conv1")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(fc_units, activation=act, kernel_initializer=_fresh(init), name="fc1")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=_fresh(init), name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def config_table(configs=("A", "A-LRN", "B", "C", "D", "E")) -> list[list[str]]:
    """The paper's Table 1 as rows of text (one column per configuration), from ``CONFIGS``."""
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
    for label, v in (("channels", channels), ("size", size), ("in_channels", in_channels or channels)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{label} must be a positive integer, not {v!r}")
    act = _get("activation", keras.activations.get, activation)
    inputs = keras.Input(shape=(size, size, in_channels or channels), name="input")
    x = inputs
    for i, k in enumerate(kernels, start=1):
        x = layers.Conv2D(channels, k, padding="same", use_bias=use_bias, activation=act, name=f"conv{i}")(x)
    return keras.Model(inputs, x, name=name)

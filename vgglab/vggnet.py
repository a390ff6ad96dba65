"""VGG as data: the paper's configurations A-E and one builder, ``vgg()``.

``CONFIGS`` *is* Table 1 of Simonyan & Zisserman (2015): an integer is a 3x3 convolution with that many filters,
``(c, 1)`` a 1x1 convolution, ``"LRN"`` local response normalisation and ``"M"`` a 2x2 max pooling with stride 2.
``features`` turns a configuration into the convolutional part, ``classifier`` adds a head, and ``vgg`` joins them
into a Keras model whose layer names follow ``keras.applications``: ``block1_conv1`` ... ``block5_pool``, ``fc1``,
``fc2``, ``predictions``. (The module is ``vggnet``, not ``vgg``, so that ``vgglab.vgg`` stays the function.)
"""

from __future__ import annotations

import keras
from keras import layers

from vgglab.blocks import LocalResponseNormalization, augmented, check_input, conv_bn_act, fresh, scaled
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
HEADS = ("paper", "small", "gap")  # fc1-fc2 of 4096 as in the paper; one fc1 of 512; global average pooling


def resolve_config(config) -> tuple[str, list]:
    """A configuration's name and layer list, from a name (``"D"``), an alias (``"vgg16"``) or a list of your own."""
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
        raise ValueError(f"unknown VGG configuration {config!r}; choose one of {', '.join([*CONFIGS, *ALIASES])}")
    return key, CONFIGS[key]


def features(x, cfg: list, *, batch_norm: bool = False, activation="relu", initializer="glorot_uniform",
             regularizer=None, width: float = 1.0):
    """The convolutional part: one ``conv_bn_act`` per number in ``cfg``, a 2x2 max pooling per ``"M"``."""
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
            x = conv_bn_act(x, scaled(filters, width), k, batch_norm=batch_norm, activation=activation,
                            initializer=initializer, regularizer=regularizer,
                            names=(f"block{block}_conv{conv}", f"block{block}_bn{conv}", f"block{block}_act{conv}"))
    return x


def classifier(x, num_classes: int, *, head: str = "paper", units: int = 4096, dropout: float = 0.5,
               activation="relu", initializer="glorot_uniform", regularizer=None, classifier_activation="softmax"):
    """The head on the feature map: flatten and ``fc1``, ``fc2`` of ``units`` (``"paper"``), flatten and one ``fc1``
    (``"small"``), or global average pooling (``"gap"``); dropout after each FC layer; then ``predictions``."""
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
    for j in range({"paper": 2, "small": 1, "gap": 0}[head]):
        x = layers.Dense(units, activation=activation, kernel_initializer=fresh(initializer),
                         kernel_regularizer=regularizer, name=f"fc{j + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{j + 1}_dropout")(x)
    return layers.Dense(num_classes, activation=classifier_activation, kernel_initializer=fresh(initializer),
                        kernel_regularizer=regularizer, name="predictions", dtype="float32")(x)


def vgg(config="D", *, input_shape=(224, 224, 3), num_classes: int = 1000, batch_norm: bool = False,
        activation="relu", initializer="glorot_uniform", dropout: float = 0.5, width: float = 1.0,
        head: str = "paper", head_units: int | None = None, regularizer=None, augmentation=None,
        classifier_activation="softmax", name: str | None = None) -> keras.Model:
    """Build a VGG network.

    At the defaults (224x224x3, 1000 classes, the paper's 4096-4096 head) the parameter counts are those of the
    paper's Table 2. For CIFAR-10 the book uses ``input_shape=(32, 32, 3)``, ``num_classes=10``, ``batch_norm=True``,
    a ``width`` multiplier and a smaller head.

    Args:
        config: a configuration name of the paper's Table 1 (``"A"`` ... ``"E"``, ``"A-LRN"``, or ``"vgg16"``), or a
            list such as ``[64, "M", 128, "M"]`` (channels of a 3x3 convolution, ``"M"`` a 2x2 max pooling).
        input_shape, num_classes: the images and the number of classes.
        batch_norm: a batch normalisation after every convolution.
        activation, initializer, regularizer: Keras names or objects for every convolution and FC layer.
        dropout: the rate after each FC layer of the head (0: none).
        width: multiplies every channel and FC width (0.25: a quarter-width network).
        head: ``"paper"`` (fc1, fc2 of 4096 x width), ``"small"`` (one fc1 of 512 x width) or ``"gap"`` (global
            average pooling); ``head_units`` sets the FC width instead.
        augmentation: Keras preprocessing layers right after the input (they act only in training).
        classifier_activation: the last layer's activation (``"softmax"``, or None for logits).
        name: the model's name (default: ``vgg16`` and the like, as in ``keras.applications``).

    Returns:
        An uncompiled ``keras.Model``.
    """
    cfg_name, cfg = resolve_config(config)
    input_shape = check_input(input_shape, num_classes, cfg.count("M"), width=width, dropout=dropout)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if head_units is not None:
        positive_int(head_units, "head_units")
    act = keras_object("activation", keras.activations.get, activation)
    init = keras_object("initializer", keras.initializers.get, initializer)
    reg = keras_object("regularizer", keras.regularizers.get, regularizer)

    inputs = keras.Input(shape=input_shape, name="input")
    x = features(augmented(inputs, augmentation), cfg, batch_norm=batch_norm, activation=act, initializer=init,
                 regularizer=reg, width=width)
    units = head_units or scaled(4096 if head == "paper" else 512, width)
    outputs = classifier(x, num_classes, head=head, units=units, dropout=dropout, activation=act, initializer=init,
                         regularizer=reg, classifier_activation=classifier_activation)
    default_name = {v: k for k, v in ALIASES.items()}.get(cfg_name, f"vgg_{cfg_name}".lower().replace("-", "_"))
    return keras.Model(inputs, outputs, name=name or default_name)


def config_table(configs=("A", "A-LRN", "B", "C", "D", "E")) -> list[list[str]]:
    """The paper's Table 1 as rows of text (one column per configuration), from ``CONFIGS``."""
    configs = [configs] if isinstance(configs, str) else list(configs)
    if not configs:
        raise ValueError(f"configs must name at least one configuration ({', '.join(CONFIGS)}), not {configs!r}")
    columns = []
    for c in configs:
        col, stage = [], []
        for item in resolve_config(c)[1]:
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
        for r in range(max(len(c[s]) for c in columns)):
            rows.append([c[s][r] if r < len(c[s]) else "" for c in columns])
        rows.append(["maxpool"] * len(columns))
    return rows

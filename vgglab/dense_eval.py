"""Dense evaluation (Simonyan & Zisserman 2015, section 3.2): the fully connected head as convolutions, so that one
trained network scores a larger image at every position, and the scores at several test scales."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from vgglab.blocks import LocalResponseNormalization
from vgglab.checks import positive_int

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
                             name=layer.name, dtype=layer.dtype_policy)
        x = conv(x)
        w = weights[0].reshape(*kernel, -1, layer.units)  # Flatten is row-major over (rows, cols, channels)
        conv.set_weights([w, *weights[1:]])
        kernel = (1, 1)
    return keras.Model(inputs, x, name=name or f"{model.name}_fcn")


def dense_scores(model: keras.Model, x, sizes=None, flips=(False,), batch_size: int = 256,
                 chunk: int = 8192) -> dict:
    """Dense evaluation at several test scales Q: ``{(Q, flipped): class probabilities (N, classes)}``.

    For each Q the images are rescaled (bilinear) so that their shorter side is Q, the fully
    convolutional form of ``model`` (``to_fully_convolutional``) gives a class score map,
    and the map is averaged over its positions. ``flips`` chooses the original (False) and/or the
    horizontally flipped (True) images. Images are rescaled ``chunk`` at a time to bound memory. Average the entries you want to combine, as the paper did
    for flips and for Q in {S-32, S, S+32} or {S_min, (S_min+S_max)/2, S_max}.
    """
    x = np.asarray(x, "float32")
    if x.ndim != 4:
        raise ValueError(f"x must be images (N, height, width, channels), got shape {x.shape}")
    positive_int(batch_size, "batch_size")
    positive_int(chunk, "chunk")
    n, h, w, c = x.shape
    short = min(h, w)
    sizes = (short,) if sizes is None else tuple(sizes)
    for q in sizes:
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
            raise ValueError(f"test sizes must be positive integers, not {q!r}")
    flips = tuple(flips)
    if not flips or any(f not in (False, True) for f in flips):
        raise ValueError(f"flips must hold False and/or True, not {flips!r}")
    out = {}
    for q in sizes:
        shape = (int(round(h * q / short)), int(round(w * q / short)))
        fcn = to_fully_convolutional(model, (*shape, c))
        for flipped in flips:
            parts = []
            for i in range(0, n, chunk):
                xb = x[i:i + chunk, :, ::-1] if flipped else x[i:i + chunk]
                if shape != (h, w):
                    xb = ops.convert_to_numpy(ops.image.resize(xb, shape, interpolation="bilinear"))
                parts.append(np.asarray(fcn.predict(xb, batch_size=batch_size, verbose=0), "float32").mean(axis=(1, 2)))
            out[(int(q), bool(flipped))] = np.concatenate(parts)
        del fcn
    return out


def combined_accuracy(scores: dict, y, combos: dict) -> dict:
    """Accuracy of averaged class probabilities: ``{name: accuracy}`` for ``combos = {name: [(Q, flipped), ...]}``.

    ``scores`` is what ``dense_scores`` returns; each combination averages the probabilities it names.
    """
    if not isinstance(combos, dict) or not isinstance(scores, dict):
        raise TypeError(f"scores and combos must be dicts ({{name: [(Q, flipped), ...]}} for combos), "
                        f"not {type(scores).__name__} and {type(combos).__name__}")
    y = np.asarray(y)
    out = {}
    for name, keys in combos.items():
        keys = list(keys)
        missing = [k for k in keys if k not in scores]
        if not keys or missing:
            raise ValueError(f"combination {name!r} needs scores {missing or keys!r}; available: {sorted(scores)}")
        probs = np.mean([scores[k] for k in keys], axis=0)
        if len(probs) != len(y):
            raise ValueError(f"scores are for {len(probs)} images but y has {len(y)} labels")
        out[name] = float(np.mean(probs.argmax(-1) == y))
    return out


def scale_combos(sizes=(32, 48, 64)) -> dict:
    """The combinations of test scales and flips a chapter compares: each Q alone, the first Q with its mirror, all
    Q together, and all Q with their mirrors: ``{"Q=32": [(32, False)], ..., "Q=32,48,64 + 뒤집기": [...]}``."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"sizes must be a tuple of test scales such as (32, 48, 64), not {sizes!r}")
    sizes = [positive_int(q, "test scale Q") for q in sizes]
    if not sizes or len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must be distinct test scales such as (32, 48, 64), not {sizes!r}")
    every = ",".join(map(str, sizes))
    combos = {f"Q={q}": [(q, False)] for q in sizes}
    combos[f"Q={sizes[0]} + 뒤집기"] = [(sizes[0], False), (sizes[0], True)]
    if len(sizes) > 1:
        combos[f"Q={every}"] = [(q, False) for q in sizes]
        combos[f"Q={every} + 뒤집기"] = [(q, f) for q in sizes for f in (False, True)]
    return combos


def multiscale_accuracy(model: keras.Model, x, y, sizes=(32, 48, 64)) -> dict:
    """Dense evaluation of ``model`` at the test scales ``sizes``, with and without mirrored images, and the accuracy
    of every combination of ``scale_combos(sizes)``: ``{"Q=32": 0.91, ..., "Q=32,48,64 + 뒤집기": 0.93}``."""
    combos = scale_combos(sizes)
    return combined_accuracy(dense_scores(model, x, sizes=tuple(sizes), flips=(False, True)), y, combos)

"""Counting what a model costs: parameters and FLOPs per layer, and receptive fields.

FLOPs count a multiply and an add as two operations, for one image in the forward pass; a
training step costs about three times that (forward, and backward for activations and weights).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

_FC = (layers.Dense,)
_CONV = (layers.Conv2D,)
_NORM = (layers.BatchNormalization,)


def _check_model(model) -> keras.Model:
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a Keras model, not {type(model).__name__}")
    return model


def _shape(layer) -> tuple:
    shape = layer.output.shape if hasattr(layer, "output") else ()
    return tuple(shape[1:])


def layer_flops(layer) -> int:
    """Forward FLOPs of one layer for one image (convolutions and dense layers; others count 0)."""
    if isinstance(layer, _CONV):
        h, w, c_out = _shape(layer)
        kh, kw = layer.kernel_size
        c_in = layer.input.shape[-1]
        return 2 * h * w * kh * kw * c_in * c_out
    if isinstance(layer, _FC):
        return 2 * int(layer.input.shape[-1]) * layer.units
    return 0


def layer_table(model) -> list[dict]:
    """One row per layer that has an output: name, kind, output shape, parameters, forward FLOPs."""
    rows = []
    for layer in _check_model(model).layers:
        if isinstance(layer, layers.InputLayer):
            continue
        rows.append({"name": layer.name, "kind": type(layer).__name__, "output_shape": _shape(layer),
                     "params": int(layer.count_params()), "flops": int(layer_flops(layer))})
    return rows


def param_breakdown(model) -> dict:
    """Parameters in convolutions, fully connected layers, normalisation, and in total."""
    out = {"conv": 0, "fc": 0, "norm": 0, "other": 0}
    for layer in _check_model(model).layers:
        kind = ("conv" if isinstance(layer, _CONV) else "fc" if isinstance(layer, _FC)
                else "norm" if isinstance(layer, _NORM) else "other")
        out[kind] += int(layer.count_params())
    out["total"] = int(model.count_params())
    return out


def flops(model) -> int:
    """Forward FLOPs for one image."""
    return int(sum(layer_flops(layer) for layer in _check_model(model).layers))


def receptive_fields(model) -> list[dict]:
    """Receptive field and stride (in input pixels) after each convolution and pooling layer.

    For a chain of layers: r_out = r_in + (k - 1) * j_in and j_out = j_in * s, starting at r = j = 1.
    Only sequential chains are supported (every VGG in this book is one).
    """
    r, j, rows = 1, 1, []
    for layer in _check_model(model).layers:
        if isinstance(layer, _CONV) or isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
            k = layer.kernel_size[0] if isinstance(layer, _CONV) else layer.pool_size[0]
            s = layer.strides[0]
            dilation = layer.dilation_rate[0] if isinstance(layer, _CONV) else 1
            r, j = r + (k - 1) * dilation * j, j * s
            rows.append({"name": layer.name, "kernel": k, "stride": s, "receptive_field": r, "jump": j})
    return rows


def gradient_receptive_field(model, threshold: float = 0.0) -> int:
    """Measure the receptive field: the width of input pixels that move the centre output pixel.

    Takes the gradient of the centre pixel of the model's (spatial) output with respect to the
    input and returns the side of the square of pixels whose gradient magnitude exceeds ``threshold``.
    """

    shape = tuple(model.input.shape[1:])
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype("float32")
    grad = _input_gradient(model, x)
    mag = np.abs(grad[0]).sum(-1)
    rows = np.flatnonzero(mag.max(1) > threshold)
    cols = np.flatnonzero(mag.max(0) > threshold)
    if not len(rows):
        return 0
    return int(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


def _input_gradient(model, x) -> np.ndarray:
    """d(sum of the centre output pixel's channels) / d(input), on any backend."""
    backend = keras.backend.backend()
    out_h, out_w = model.output.shape[1], model.output.shape[2]

    def centre(y):
        return keras.ops.sum(y[:, out_h // 2, out_w // 2, :])

    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = centre(model(xt))
        return tape.gradient(y, xt).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda a: centre(model(a)))(x))
    import torch

    xt = torch.tensor(x, requires_grad=True)
    centre(model(xt)).backward()
    return xt.grad.numpy()


def block_summary(model) -> list[dict]:
    """Parameters and forward FLOPs per block, in order: layers are grouped by the part of their name
    before the first underscore (``block1_conv2`` -> ``block1``, ``fc1_dropout`` -> ``fc1``).
    Groups with neither parameters nor FLOPs (``flatten``) are left out."""
    groups: dict[str, dict] = {}
    for row in layer_table(model):
        key = row["name"].split("_")[0]
        g = groups.setdefault(key, {"name": key, "params": 0, "flops": 0})
        g["params"] += row["params"]
        g["flops"] += row["flops"]
    return [g for g in groups.values() if g["params"] or g["flops"]]


# ----------------------------------------------------------------------------------------------
# Shift sensitivity (chapter 09): how far do features and predictions move when the input moves?

SHIFT_MODES = ("circular", "zeros")
SHIFT_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (dy, dx): right, left, down, up


def _int(value, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{label} must be an integer, not {value!r}")
    return int(value)


def shift_images(x, dy: int, dx: int, mode: str = "circular") -> np.ndarray:
    """Images ``x`` of shape (N, H, W, C) moved ``dy`` pixels down and ``dx`` pixels right (negative: up, left).

    ``mode="circular"`` wraps what leaves one edge around to the other (``np.roll``): nothing is lost.
    ``mode="zeros"`` fills the uncovered band with 0, which for inputs scaled to [-1, 1] is mid-grey.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be images of shape (N, H, W, C), not shape {x.shape}")
    if mode not in SHIFT_MODES:
        raise ValueError(f"unknown shift mode {mode!r}; choose one of {', '.join(SHIFT_MODES)}")
    h, w = x.shape[1:3]
    dy, dx = _int(dy, "dy"), _int(dx, "dx")
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"shift ({dy}, {dx}) must be smaller than the image ({h}x{w}) in both directions")
    if mode == "circular":
        return np.roll(x, (dy, dx), axis=(1, 2))
    out = np.zeros_like(x)
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def _check_shifts(shifts, size: int) -> list[int]:
    if isinstance(shifts, (int, np.integer)) or not hasattr(shifts, "__iter__"):
        raise ValueError(f"shifts must be a list of pixel counts such as [0, 1, 2], not {shifts!r}")
    out = [_int(s, "each shift") for s in shifts]
    if not out:
        raise ValueError("shifts must not be empty")
    bad = [s for s in out if not 0 <= s < size]
    if bad:
        raise ValueError(f"shift {bad[0]!r} is out of range: shifts must lie in 0..{size - 1} for {size}-pixel images")
    return out


def _feature_model(model: keras.Model, layer) -> keras.Model:
    if layer is None:
        features = model.layers[-1].input  # what the output layer reads: the classifier's features
    else:
        names = [lay.name for lay in model.layers if not isinstance(lay, layers.InputLayer)]
        if not isinstance(layer, str) or layer not in names:
            raise ValueError(f"model {model.name!r} has no layer {layer!r}; choose one of {', '.join(names)}")
        features = model.get_layer(layer).output
    return keras.Model(model.inputs, [features, model.outputs[0]])


def shift_sensitivity(model, x, shifts=(0, 1, 2, 3, 4), layer: str | None = None, *, mode: str = "circular", y=None,
                      seed: int = 0, batch_size: int = 256) -> list[dict]:
    """How much a model's features and predictions move when its input images are shifted.

    For each shift ``s`` every image is moved ``s`` pixels in one of four directions (right, left, down
    or up, drawn per image from ``seed`` and the same for every ``s``) with :func:`shift_images`, and
    compared with the unshifted image. One dict per shift, in the order given:

    - ``feature_distance``: relative RMS change of the features at ``layer``,
      sqrt(mean ||f(x') - f(x)||^2 / mean ||f(x)||^2); ``layer=None`` takes the input of the model's
      last layer (after global average pooling, say);
    - ``cosine``: mean cosine similarity of f(x') and f(x) (1: same direction);
    - ``flip_rate``: fraction of images whose predicted class changes;
    - ``prob_change``: mean |p'(c) - p(c)| for the class c predicted for the unshifted image;
    - ``accuracy``: accuracy on the shifted images, when labels ``y`` are given.
    """
    model = _check_model(model)
    x = np.asarray(x, dtype="float32")
    want = tuple(model.input_shape[1:])
    if x.ndim != 4 or len(x) == 0 or any(w is not None and w != v for w, v in zip(want, x.shape[1:])):
        raise ValueError(f"x must be a non-empty batch of images of shape (N, {', '.join(map(str, want))}), "
                         f"not {x.shape}")
    shifts = _check_shifts(shifts, min(x.shape[1:3]))
    if mode not in SHIFT_MODES:
        raise ValueError(f"unknown shift mode {mode!r}; choose one of {', '.join(SHIFT_MODES)}")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold one integer label per image ({len(x)}), not shape {y.shape} {y.dtype}")
    probe = _feature_model(model, layer)

    def run(images):
        f, p = probe.predict(images, batch_size=batch_size, verbose=0)
        return np.asarray(f, "float64").reshape(len(images), -1), np.asarray(p, "float64")

    f0, p0 = run(x)
    c0 = p0.argmax(-1)
    direction = np.random.default_rng(seed).integers(0, len(SHIFT_DIRECTIONS), size=len(x))
    base = float(np.mean(np.sum(f0**2, axis=1)))
    rows = []
    for s in shifts:
        xs = np.empty_like(x)
        for k, (dy, dx) in enumerate(SHIFT_DIRECTIONS):
            pick = direction == k
            xs[pick] = shift_images(x[pick], s * dy, s * dx, mode)
        f, p = run(xs)
        diff = float(np.mean(np.sum((f - f0) ** 2, axis=1)))
        norms = np.linalg.norm(f, axis=1) * np.linalg.norm(f0, axis=1)
        dots = np.sum(f * f0, axis=1)
        both_zero = (norms == 0) & (np.abs(f).sum(1) == 0) & (np.abs(f0).sum(1) == 0)
        cosine = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
        row = {"shift": s, "feature_distance": float(np.sqrt(diff / base)) if base > 0 else float(diff > 0),
               "cosine": float(cosine.mean()), "flip_rate": float(np.mean(p.argmax(-1) != c0)),
               "prob_change": float(np.mean(np.abs(p[np.arange(len(x)), c0] - p0[np.arange(len(x)), c0])))}
        if y is not None:
            row["accuracy"] = float(np.mean(p.argmax(-1) == y))
        rows.append(row)
    return rows

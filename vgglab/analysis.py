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
# Dropout and the generalisation gap (chapter 10: fully connected layers and dropout)


def dropout_statistics(x, rate: float, samples: int = 10_000, seed: int = 0) -> dict:
    """What ``keras.layers.Dropout(rate)`` does to the vector ``x`` in training and at inference.

    ``samples`` copies of ``x`` go through one Dropout layer with ``training=True``, and ``x`` once
    with ``training=False``. Keras uses inverted dropout: a kept entry is multiplied by
    ``1 / (1 - rate)`` so that its expectation is ``x``, and inference is the identity. Returns

    - ``kept_fraction``: the fraction of entries that were kept (about ``1 - rate``);
    - ``scales``: the distinct factors (up to float32 rounding) by which kept nonzero entries were multiplied;
    - ``mean`` and ``var``: per-entry mean and variance over the samples (about ``x`` and
      ``x**2 * rate / (1 - rate)``);
    - ``inference``: the output with ``training=False``;
    - ``samples``: the training-mode outputs, shape ``(samples, len(x))``.
    """
    x = np.asarray(x, dtype="float32")
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a non-empty 1-D array of finite numbers, got shape {x.shape}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"rate must be a number in [0, 1), not {rate!r}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a positive integer, not {samples!r}")
    layer = layers.Dropout(rate, seed=seed)
    batch = np.repeat(x[None, :], samples, axis=0)
    y = keras.ops.convert_to_numpy(layer(batch, training=True))
    kept = y != 0
    nonzero = kept & (batch != 0)
    scales = []  # distinct ratios, up to float32 rounding
    for r in np.sort(y[nonzero].astype("float64") / batch[nonzero]):
        if not scales or r - scales[-1] > 1e-5 * abs(scales[-1]):
            scales.append(float(r))
    kept_fraction = float(kept[:, x != 0].mean()) if np.any(x != 0) else 1.0
    return {"kept_fraction": kept_fraction, "scales": scales,
            "mean": y.mean(axis=0), "var": y.var(axis=0),
            "inference": keras.ops.convert_to_numpy(layer(x[None, :], training=False))[0], "samples": y}


def generalization_gap(history: dict, metric: str = "accuracy", last: int = 1) -> float:
    """Training minus validation ``metric``, averaged over the ``last`` epochs of a training history.

    For accuracy a large positive gap means overfitting; for ``metric="loss"`` the sign is flipped
    (validation minus training loss) so that a large positive value means overfitting as well.
    """
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict such as record['history'], not {type(history).__name__}")
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', not {metric!r}")
    train, val = history.get(metric), history.get(f"val_{metric}")
    if not train or not val or len(train) != len(val):
        raise ValueError(f"history needs {metric!r} and 'val_{metric}' of the same, nonzero length; "
                         f"it has {', '.join(f'{k} ({len(v)})' for k, v in history.items() if isinstance(v, list))}")
    if isinstance(last, bool) or not isinstance(last, (int, np.integer)) or not 1 <= last <= len(train):
        raise ValueError(f"last must be an integer from 1 to {len(train)} (the number of epochs), not {last!r}")
    gap = float(np.mean(train[-last:]) - np.mean(val[-last:]))
    return -gap if metric == "loss" else gap

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
# Layer outputs, batch normalisation by hand, and the input statistics that set a layer's curvature


def layer_outputs(model, x, layer_names, training: bool = False) -> dict:
    """The outputs of the named layers of a functional model for inputs ``x``: ``{name: NumPy array}``.

    ``training=True`` runs batch normalisation with the batch's own statistics (and updates its moving
    statistics) and dropout in training mode, as one training step's forward pass would.
    """
    model = _check_model(model)
    if isinstance(layer_names, str):
        layer_names = [layer_names]
    names = list(layer_names)
    if not names:
        raise ValueError("layer_names must name at least one layer")
    known = [layer.name for layer in model.layers]
    for name in names:
        if name not in known:
            raise ValueError(f"model {model.name!r} has no layer {name!r}; it has {', '.join(known)}")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs, [model.get_layer(n).output for n in names])
    outs = probe(np.asarray(x, dtype="float32"), training=training)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    return {n: np.asarray(keras.ops.convert_to_numpy(o)) for n, o in zip(names, outs)}


def batch_norm_reference(x, gamma, beta, moving_mean, moving_var, *, epsilon: float = 1e-3, momentum: float = 0.99,
                         training: bool = False):
    """Batch normalisation over the last (channel) axis in NumPy, as ``keras.layers.BatchNormalization`` does it.

    Training: mu, var = mean and (biased) variance over every axis but the last;
    y = gamma * (x - mu) / sqrt(var + epsilon) + beta, and the moving statistics become
    momentum * moving + (1 - momentum) * batch statistic.
    Inference: the same formula with the moving statistics, which stay unchanged.
    Returns ``(y, new_moving_mean, new_moving_var)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis and a channel axis, got shape {x.shape}")
    c = x.shape[-1]
    params = {}
    for label, v in (("gamma", gamma), ("beta", beta), ("moving_mean", moving_mean), ("moving_var", moving_var)):
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (c,):
            raise ValueError(f"{label} must have shape ({c},) like x's last axis, not {v.shape}")
        params[label] = v
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must lie in [0, 1], not {momentum!r}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, not {epsilon!r}")
    if np.any(params["moving_var"] < 0):
        raise ValueError("moving_var must be non-negative")
    if training:
        axes = tuple(range(x.ndim - 1))
        mean, var = x.mean(axis=axes), x.var(axis=axes)  # biased variance (divide by N), as Keras uses
        new_mean = momentum * params["moving_mean"] + (1 - momentum) * mean
        new_var = momentum * params["moving_var"] + (1 - momentum) * var
    else:
        mean, var = params["moving_mean"], params["moving_var"]
        new_mean, new_var = mean, var
    y = params["gamma"] * (x - mean) / np.sqrt(var + epsilon) + params["beta"]
    return y, new_mean, new_var


def patch_moment_eigenvalues(x, size: int = 3, max_patches: int = 20_000, seed: int = 0) -> np.ndarray:
    """Eigenvalues (largest first) of E[p p^T] over ``size x size x C`` patches ``p`` of images ``x``.

    For a linear unit on such patches trained with squared error, this matrix is the Hessian of the
    loss with respect to the weights: its largest eigenvalue caps the stable learning rate of gradient
    descent (lr < 2 / lambda_max) and the ratio largest / smallest is the condition number.
    ``x`` is a float array (N, H, W, C), already normalised as the network would see it.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"x must be images of shape (N, H, W, C), got shape {x.shape}")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(x.shape[1:3]):
        raise ValueError(f"size must be an integer from 1 to {min(x.shape[1:3])}, not {size!r}")
    if isinstance(max_patches, bool) or not isinstance(max_patches, int) or max_patches < 1:
        raise ValueError(f"max_patches must be a positive integer, not {max_patches!r}")
    rng = np.random.default_rng(seed)
    n, h, w, _ = x.shape
    k = max_patches
    i, r, s = rng.integers(0, n, k), rng.integers(0, h - size + 1, k), rng.integers(0, w - size + 1, k)
    offsets = np.arange(size)
    rows = (r[:, None] + offsets)[:, :, None]
    cols = (s[:, None] + offsets)[:, None, :]
    patches = x[i[:, None, None], rows, cols].reshape(k, -1)  # (k, size * size * C)
    moment = patches.T @ patches / k
    return np.sort(np.linalg.eigvalsh(moment))[::-1]

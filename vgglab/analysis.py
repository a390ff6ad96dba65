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
# Weight statistics (chapter 11: what L1 and L2 penalties do to the weights)


def kernel_weights(model, names=None) -> np.ndarray:
    """The kernels of the model's Conv2D and Dense layers (or of the layers ``names``) as one flat array.

    Biases and batch-normalisation parameters are left out: the book's L1 and L2 penalties act on kernels only.
    """
    chosen = [layer for layer in _check_model(model).layers if isinstance(layer, _CONV + _FC)]
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        known = {layer.name for layer in chosen}
        missing = [n for n in names if n not in known]
        if missing:
            raise ValueError(f"no Conv2D or Dense layer named {missing[0]!r}; the model has {', '.join(sorted(known))}")
        chosen = [layer for layer in chosen if layer.name in names]
    if not chosen:
        raise ValueError("the model has no Conv2D or Dense layers")
    return np.concatenate([np.ravel(keras.ops.convert_to_numpy(layer.kernel)) for layer in chosen])


def weight_summary(model, names=None, tol: float = 1e-3) -> dict:
    """Count, L1 and L2 norms, mean |w| and the share of weights with |w| < ``tol`` (``near_zero``)."""
    if not tol > 0:
        raise ValueError(f"tol must be positive, not {tol!r}")
    w = kernel_weights(model, names).astype(np.float64)
    return {"count": int(w.size), "l1_norm": float(np.abs(w).sum()), "l2_norm": float(np.sqrt((w**2).sum())),
            "mean_abs": float(np.abs(w).mean()), "near_zero": float((np.abs(w) < tol).mean())}


# ----------------------------------------------------------------------------------------------
# Input-gradient maps, the effective receptive field, and counting nonlinearities (chapter 03)

GRADIENT_POWERS = (1, 2)


def input_gradient_map(model, x=None, *, samples: int = 8, seed: int = 0, power: int = 1) -> np.ndarray:
    """How strongly each input pixel moves the centre output pixel, as an ``(H, W)`` array.

    The gradient of the sum of the centre output pixel's channels with respect to the input is taken
    for the batch ``x`` (or for ``samples`` inputs drawn from N(0, 1) with ``seed``); its absolute
    value raised to ``power`` (1: magnitude, 2: energy) is summed over the input channels and
    averaged over the batch. Its nonzero entries span the receptive field; how unevenly the weight is
    spread inside it is the effective receptive field (Luo et al., 2016). Works on every backend.
    """
    model = _check_model(model)
    in_shape, out_shape = tuple(model.input.shape[1:]), tuple(model.output.shape[1:])
    if len(in_shape) != 3 or len(out_shape) != 3:
        raise ValueError(f"need a model with image input and output (H, W, C), got input {in_shape} "
                         f"and output {out_shape}")
    if isinstance(power, bool) or power not in GRADIENT_POWERS:
        raise ValueError(f"power must be one of {GRADIENT_POWERS}, not {power!r}")
    if x is None:
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise ValueError(f"samples must be a positive integer, not {samples!r}")
        x = np.random.default_rng(seed).normal(size=(int(samples), *in_shape))
    x = np.asarray(x, dtype="float32")
    if x.ndim != 4 or x.shape[1:] != in_shape or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of shape (N, {', '.join(map(str, in_shape))}), "
                         f"not {x.shape}")
    # Samples do not interact in inference mode, so one backward pass over the batch's summed centre
    # pixels gives every sample's own gradient.
    grad = np.asarray(_input_gradient(model, x), dtype="float64")
    return (np.abs(grad) ** power).sum(-1).mean(0)


def gradient_mass_fraction(grad_map, size: int) -> float:
    """The share of a gradient map's total that lies in the central ``size x size`` square.

    The square is centred on pixel ``(H // 2, W // 2)``, the input pixel under the centre output pixel
    of a stack of stride-1 ``"same"`` convolutions.
    """
    g = np.asarray(grad_map, dtype="float64")
    if g.ndim != 2:
        raise ValueError(f"grad_map must be a 2-D (H, W) array, not shape {g.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0 \
            or size > min(g.shape):
        raise ValueError(f"size must be an odd integer from 1 to {min(g.shape)}, not {size!r}")
    if not np.all(np.isfinite(g)) or np.any(g < 0) or g.sum() <= 0:
        raise ValueError("grad_map must be finite, non-negative and not all zero")
    h, w, r = g.shape[0] // 2, g.shape[1] // 2, size // 2
    return float(g[h - r:h + r + 1, w - r:w + r + 1].sum() / g.sum())


_ACTIVATION_LAYERS = {layers.ReLU: "relu", layers.LeakyReLU: "leaky_relu", layers.ELU: "elu",
                      layers.PReLU: "prelu", layers.Softmax: "softmax"}


def activation_counts(model) -> dict[str, int]:
    """How many times each nonlinearity is applied on the way through ``model``: ``{"relu": 3, ...}``.

    Counts the ``activation`` of every layer that has one (``Conv2D``, ``Dense``, ``Activation``) unless it
    is linear, and activation layers such as ``ReLU``; nested models are counted through.
    """
    counts: dict[str, int] = {}
    for layer in _check_model(model).layers:
        if isinstance(layer, keras.Model):
            for name, n in activation_counts(layer).items():
                counts[name] = counts.get(name, 0) + n
            continue
        name = next((v for k, v in _ACTIVATION_LAYERS.items() if isinstance(layer, k)), None)
        fn = getattr(layer, "activation", None)
        if name is None and callable(fn):
            name = getattr(fn, "__name__", type(fn).__name__)
        if name is not None and name != "linear":
            counts[name] = counts.get(name, 0) + 1
    return counts


def equivalent_kernel(model) -> np.ndarray:
    """The one ``k x k`` kernel that a linear stack of convolutions amounts to, ``(k, k, C_in, C_out)``.

    ``model`` must be a chain of stride-1, undilated ``"same"`` ``Conv2D`` layers with odd kernels, no
    bias and no activation (``vgglab.models.conv_stack(..., use_bias=False)``); then ``k = 1 + sum(k_i - 1)``
    and, away from the borders (where each layer's zero padding differs), the stack computes exactly
    ``Conv2D(C_out, k, padding="same")`` with this kernel. With a nonlinearity in between no such kernel
    exists, and a ``ValueError`` says which layer is in the way.
    """
    convs = []
    for layer in _check_model(model).layers:
        if isinstance(layer, layers.InputLayer):
            continue
        if not isinstance(layer, _CONV):
            raise ValueError(f"layer {layer.name!r} is a {type(layer).__name__}: only Conv2D layers compose into one kernel")
        fn = getattr(layer.activation, "__name__", "")
        problems = [p for p, bad in (("a bias", layer.use_bias), (f"activation {fn!r}", fn != "linear"),
                                     (f"strides {layer.strides}", tuple(layer.strides) != (1, 1)),
                                     (f"dilation {layer.dilation_rate}", tuple(layer.dilation_rate) != (1, 1)),
                                     (f"padding {layer.padding!r}", layer.padding != "same"),
                                     (f"even kernel {layer.kernel_size}", any(k % 2 == 0 for k in layer.kernel_size)))
                    if bad]
        if problems:
            raise ValueError(f"layer {layer.name!r} has {' and '.join(problems)}: only linear stride-1 'same' "
                             "convolutions with odd kernels and no bias compose into one kernel")
        convs.append(layer)
    if not convs:
        raise ValueError("the model has no Conv2D layer")
    kh = 1 + sum(c.kernel_size[0] - 1 for c in convs)
    kw = 1 + sum(c.kernel_size[1] - 1 for c in convs)
    h, w, c_in = tuple(model.input.shape[1:])
    if h < kh or w < kw:
        raise ValueError(f"the input ({h}x{w}) must be at least as large as the combined kernel ({kh}x{kw})")
    # One impulse per input channel at the centre: output p answers with kernel entry centre + r - p.
    cy, cx, ry, rx = h // 2, w // 2, kh // 2, kw // 2
    impulses = np.zeros((c_in, h, w, c_in), "float32")
    impulses[np.arange(c_in), cy, cx, np.arange(c_in)] = 1.0
    out = keras.ops.convert_to_numpy(model(impulses))  # (c_in, h, w, c_out)
    patch = out[:, cy - ry:cy + ry + 1, cx - rx:cx + rx + 1, :]
    return np.ascontiguousarray(patch[:, ::-1, ::-1, :].transpose(1, 2, 0, 3))

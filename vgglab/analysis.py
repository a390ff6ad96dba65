"""Counting what a model costs: parameters and FLOPs per layer, and receptive fields.

FLOPs count a multiply and an add as two operations, for one image in the forward pass; a
training step costs about three times that (forward, and backward for activations and weights).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from vgglab.checks import keras_model, positive_int
from vgglab.runtime import check_seed

_FC = (layers.Dense,)
_CONV = (layers.Conv2D,)
_NORM = (layers.BatchNormalization,)


def _layer_names(names) -> list[str]:
    """One layer name or a list of them, as a list."""
    if isinstance(names, str):
        return [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"layer names must be a name or a list of names such as ['block1_conv1'], not {names!r}")
    return list(names)


def _shape(layer) -> tuple:
    shape = layer.output.shape if hasattr(layer, "output") else ()
    return tuple(shape[1:])


def layer_flops(layer) -> int:
    """Forward FLOPs of one layer for one image (convolutions and dense layers; others count 0)."""
    if not isinstance(layer, layers.Layer):
        raise TypeError(f"expected a Keras layer, not {type(layer).__name__}")
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
    for layer in keras_model(model).layers:
        if isinstance(layer, layers.InputLayer):
            continue
        rows.append({"name": layer.name, "kind": type(layer).__name__, "output_shape": _shape(layer),
                     "params": int(layer.count_params()), "flops": int(layer_flops(layer))})
    return rows


def param_breakdown(model) -> dict:
    """Parameters in convolutions, fully connected layers, normalisation, and in total.

    Args:
        model: a Keras model.

    Returns:
        ``{"conv": n, "fc": n, "norm": n, "other": n, "total": n}``, counts of parameters (trainable or not).
    """
    out = {"conv": 0, "fc": 0, "norm": 0, "other": 0}
    for layer in keras_model(model).layers:
        kind = ("conv" if isinstance(layer, _CONV) else "fc" if isinstance(layer, _FC)
                else "norm" if isinstance(layer, _NORM) else "other")
        out[kind] += int(layer.count_params())
    out["total"] = int(model.count_params())
    return out


def flops(model) -> int:
    """Forward FLOPs for one image.

    Args:
        model: a Keras model of convolution, dense, pooling and normalisation layers.

    Returns:
        The multiply-adds of one forward pass, counted as two FLOPs each, summed over the layers (``layer_flops``).
    """
    return int(sum(layer_flops(layer) for layer in keras_model(model).layers))


def receptive_fields(model) -> list[dict]:
    """Receptive field and stride (in input pixels) after each convolution and pooling layer.

    For a chain of layers: r_out = r_in + (k - 1) * j_in and j_out = j_in * s, starting at r = j = 1.
    Only sequential chains are supported (every VGG in this book is one).
    """
    r, j, rows = 1, 1, []
    for layer in keras_model(model).layers:
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
    shape, out_shape = tuple(keras_model(model).input.shape[1:]), tuple(model.output.shape[1:])
    if len(shape) != 3 or len(out_shape) != 3:
        raise ValueError(f"need a model with image input and output (H, W, C), got input {shape} and output {out_shape}")
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
    chosen = [layer for layer in keras_model(model).layers if isinstance(layer, _CONV + _FC)]
    if names is not None:
        names = _layer_names(names)
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
    model = keras_model(model)
    in_shape, out_shape = tuple(model.input.shape[1:]), tuple(model.output.shape[1:])
    if len(in_shape) != 3 or len(out_shape) != 3:
        raise ValueError(f"need a model with image input and output (H, W, C), got input {in_shape} "
                         f"and output {out_shape}")
    if isinstance(power, bool) or power not in GRADIENT_POWERS:
        raise ValueError(f"power must be one of {GRADIENT_POWERS}, not {power!r}")
    if x is None:
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise ValueError(f"samples must be a positive integer, not {samples!r}")
        x = np.random.default_rng(check_seed(seed)).normal(size=(int(samples), *in_shape))
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
    for layer in keras_model(model).layers:
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
    for layer in keras_model(model).layers:
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


# ----------------------------------------------------------------------------------------------
# Per-layer gradients and activation statistics: what happens inside a network at initialisation
# and after training (the chapters on activation functions and weight initialisation).
#
# All three functions look at the model's top-level layers (``model.layers``), as the functions above do.
# The derivative of each activation is computed from its output y: sigmoid y(1 - y), tanh 1 - y^2,
# ReLU [y > 0], leaky ReLU 1 or its slope, linear 1.

_RELU_FAMILY = ("relu", "leaky_relu")


def _check_batch(model, x, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    want = tuple(model.input_shape[1:])
    if x.ndim != len(want) + 1 or len(x) == 0 or any(w is not None and w != s for w, s in zip(want, x.shape[1:])):
        raise ValueError(f"{name} must be a non-empty batch of shape (N, {', '.join(map(str, want))}) for this model, "
                         f"not {x.shape}")
    return x.astype("float32", copy=False)


def _loss_function(loss, y: np.ndarray):
    """``loss`` as a callable ``loss(y_true, y_pred)``; None picks cross-entropy for labels (N,) or one-hot (N, K)."""
    if loss is None:
        if y.ndim == 1:
            return keras.losses.SparseCategoricalCrossentropy()
        if y.ndim == 2:
            return keras.losses.CategoricalCrossentropy()
        raise ValueError(f"y must be integer labels (N,) or one-hot rows (N, K), not shape {y.shape}; "
                         "or pass a loss")
    if isinstance(loss, str):
        try:
            return keras.losses.get(loss)
        except (ValueError, TypeError) as e:
            raise ValueError(f"unknown loss {loss!r}: {e}") from None
    if not callable(loss):
        raise TypeError(f"loss must be None, a Keras loss name or a callable loss(y_true, y_pred), not {loss!r}")
    return loss


def loss_gradients(model, x, y, *, loss=None, training: bool = False) -> tuple[float, list[np.ndarray]]:
    """The mean loss on one batch and its gradient with respect to every trainable variable, on any backend.

    Returns ``(loss, grads)`` with ``grads[i]`` the gradient for ``model.trainable_variables[i]`` as a NumPy array
    (zeros for a variable the loss does not depend on). ``loss=None`` uses (sparse) categorical cross-entropy on
    the model's probabilities; ``training=True`` runs dropout and batch normalisation in training mode.
    Nothing is updated: the model's weights and batch-norm statistics are left as they are.
    """
    model = keras_model(model)
    x = _check_batch(model, x)
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    loss_fn = _loss_function(loss, y)
    variables = list(model.trainable_variables)
    if not variables:
        raise ValueError(f"model {model.name!r} has no trainable variables")
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax", "torch"):
        raise ValueError(f"unsupported Keras backend {backend!r}; use tensorflow, jax or torch")
    # A call in training mode moves batch-norm statistics and random-seed states: put them back afterwards.
    saved = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = keras.ops.mean(loss_fn(y, model(x, training=training)))
        grads = tape.gradient(value, variables)
    elif backend == "jax":
        import jax

        frozen = [v.value for v in model.non_trainable_variables]

        def f(trainable):
            y_pred, _ = model.stateless_call(trainable, frozen, x, training=training)
            return keras.ops.mean(loss_fn(y, y_pred))

        value, grads = jax.value_and_grad(f)([v.value for v in variables])
    elif backend == "torch":
        for v in variables:
            v.value.grad = None
        y_pred = model(keras.ops.convert_to_tensor(x), training=training)
        value = keras.ops.mean(loss_fn(keras.ops.convert_to_tensor(y), y_pred))
        value.backward()
        grads = [v.value.grad for v in variables]
        for v in variables:
            v.value.grad = None
        value = value.detach()
    for v, before in zip(model.non_trainable_variables, saved):
        v.assign(before)
    out = [np.zeros(tuple(v.shape), "float32") if g is None else keras.ops.convert_to_numpy(g).astype("float32")
           for v, g in zip(variables, grads)]
    return float(keras.ops.convert_to_numpy(value)), out


def gradient_norms(model, x, y, *, loss=None, training: bool = False) -> list[dict]:
    """Per-layer size of the loss gradient for one batch: one row per layer with a kernel (conv, dense), in order.

    Each row holds ``name``, ``kind``, ``shape`` (of the kernel), ``norm`` (L2 norm of the kernel's gradient),
    ``rms`` (norm / sqrt(number of kernel entries)), ``weight_rms`` (the kernel's own RMS) and ``channel_norms``
    (a NumPy array: the gradient norm of each output channel's or unit's weights). Biases and batch-norm scales
    are left out. ``loss`` and ``training`` are as in ``loss_gradients``.
    """
    model = keras_model(model)
    _, grads = loss_gradients(model, x, y, loss=loss, training=training)
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    rows = []
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None or id(kernel) not in index:
            continue
        g = grads[index[id(kernel)]].astype("float64")
        w = keras.ops.convert_to_numpy(kernel).astype("float64")
        rows.append({"name": layer.name, "kind": type(layer).__name__, "shape": tuple(g.shape),
                     "norm": float(np.sqrt((g**2).sum())), "rms": float(np.sqrt((g**2).mean())),
                     "weight_rms": float(np.sqrt((w**2).mean())),
                     "channel_norms": np.sqrt((g**2).reshape(-1, g.shape[-1]).sum(axis=0))})
    if not rows:
        raise ValueError(f"model {model.name!r} has no trainable layer with a kernel (Conv2D, Dense, ...)")
    return rows


def activation_of(layer) -> tuple[str | None, float]:
    """The activation a layer applies and its negative slope: ``("relu", 0.0)``, ``("leaky_relu", 0.2)``,
    ``("sigmoid", 0.0)``, ... ``(None, 0.0)`` for a layer with no activation or a linear one."""
    if not isinstance(layer, layers.Layer):
        raise TypeError(f"expected a Keras layer, not {type(layer).__name__}")
    if isinstance(layer, layers.LeakyReLU):
        return "leaky_relu", float(layer.negative_slope)
    if isinstance(layer, layers.ReLU):
        slope = float(layer.negative_slope or 0.0)
        return ("leaky_relu", slope) if slope else ("relu", 0.0)
    if isinstance(layer, layers.ELU):
        return "elu", 0.0
    if isinstance(layer, layers.Softmax):
        return "softmax", 0.0
    fn = getattr(layer, "activation", None)
    if not callable(fn):
        return None, 0.0
    name = getattr(fn, "__name__", None)
    if name in (None, "linear"):
        return None, 0.0
    if name == "leaky_relu":  # keras.activations.leaky_relu, default negative_slope 0.2
        import inspect

        return name, float(inspect.signature(fn).parameters["negative_slope"].default)
    return name, 0.0


def _derivative(name: str | None, slope: float, y: np.ndarray) -> np.ndarray | None:
    """The activation's derivative at each unit, from its output ``y``; None where it is not known."""
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "tanh":
        return 1.0 - y * y
    if name == "relu":
        return (y > 0).astype(y.dtype)
    if name == "leaky_relu":
        return np.where(y > 0, 1.0, slope).astype(y.dtype)
    return None


_MAX_DERIVATIVE = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0}


def _select_layers(model, names, default, what: str) -> list:
    if names is None:
        chosen = [layer for layer in model.layers if default(layer)]
        if not chosen:
            raise ValueError(f"model {model.name!r} has no {what}; name the layers to inspect with layers=[...]")
        return chosen
    names = _layer_names(names)
    valid = [layer.name for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    bad = [n for n in names if n not in valid]
    if not names or bad:
        raise ValueError(f"unknown layer {bad[0] if bad else None!r}; choose from {', '.join(valid)}")
    return [model.get_layer(n) for n in names]


def _layer_outputs(model, chosen, x: np.ndarray, batch_size: int, training: bool = False):
    """Yield, batch by batch, the list of the chosen layers' outputs as NumPy arrays."""
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs, [layer.output for layer in chosen])
    for start in range(0, len(x), batch_size):
        outs = probe(x[start:start + batch_size], training=training)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        yield [keras.ops.convert_to_numpy(o).astype("float64") for o in outs]


def _is_hidden_activation(model):
    outputs = {id(layer) for layer in model.layers if any(o is layer.output for o in model.outputs)}
    return lambda layer: activation_of(layer)[0] is not None and id(layer) not in outputs


def activation_stats(model, x, layers=None, *, saturation: float = 0.01, batch_size: int = 256,
                     training: bool = False) -> list[dict]:
    """Statistics of each layer's output for the images ``x``, one row per layer in order.

    By default the layers are those that apply a non-linear activation (conv or dense layers with an
    ``activation``, ``Activation``, ``ReLU``, ``LeakyReLU`` ... layers), except the model's output layer;
    ``layers`` names others (a pooling layer, say). Each row holds ``name``, ``activation``, ``mean``, ``std``,
    ``rms`` (sqrt of the mean square), ``input_std`` (how much each unit's output changes from image to image:
    its standard deviation across the images, root-mean-squared over the units; near 0 means the layer gives
    nearly the same output whatever the input), ``zero`` (fraction of outputs exactly 0), ``saturated`` (fraction of
    units whose derivative is below ``saturation`` times the activation's largest derivative: for ReLU the
    zeros, for sigmoid outputs within about 0.0025 of 0 or 1) and ``mean_derivative``; the last two are NaN
    for an activation whose derivative is not known (softmax, ELU, none).

    The model runs in inference mode unless ``training=True``: then batch normalisation uses the statistics
    of each batch of ``batch_size`` images, as in training (and dropout is active).
    """
    model = keras_model(model)
    x = _check_batch(model, x)
    if isinstance(saturation, bool) or not isinstance(saturation, (int, float)) or not 0 < saturation < 1:
        raise ValueError(f"saturation must be a fraction in (0, 1), not {saturation!r}")
    batch_size = positive_int(batch_size, "batch_size")
    chosen = _select_layers(model, layers, _is_hidden_activation(model), "hidden layer with an activation")
    kinds = [activation_of(layer) for layer in chosen]
    acc = [dict(n=0, s=0.0, s2=0.0, zero=0, sat=0, d=0.0, images=0, shift=None, us=0.0, us2=0.0) for _ in chosen]
    for outs in _layer_outputs(model, chosen, x, batch_size, training):
        for a, (name, slope), y in zip(acc, kinds, outs):
            a["n"] += y.size
            a["s"] += y.sum()
            a["s2"] += (y * y).sum()
            if a["shift"] is None:  # per-unit sums around the first batch's mean, to keep tiny variances exact
                a["shift"] = y.mean(axis=0)
            u = y - a["shift"]
            a["images"] += len(y)
            a["us"] = a["us"] + u.sum(axis=0)
            a["us2"] = a["us2"] + (u * u).sum(axis=0)
            a["zero"] += int((y == 0).sum())
            d = _derivative(name, slope, y)
            if d is not None:
                a["sat"] += int((d < saturation * _MAX_DERIVATIVE[name]).sum())
                a["d"] += d.sum()
    rows = []
    for layer, (name, _), a in zip(chosen, kinds, acc):
        mean, ms = a["s"] / a["n"], a["s2"] / a["n"]
        known = name in _MAX_DERIVATIVE
        unit_var = np.maximum(a["us2"] / a["images"] - (a["us"] / a["images"]) ** 2, 0.0)
        rows.append({"name": layer.name, "activation": name, "mean": float(mean),
                     "std": float(np.sqrt(max(ms - mean**2, 0.0))), "rms": float(np.sqrt(ms)),
                     "input_std": float(np.sqrt(np.mean(unit_var))),
                     "zero": a["zero"] / a["n"], "saturated": a["sat"] / a["n"] if known else float("nan"),
                     "mean_derivative": a["d"] / a["n"] if known else float("nan")})
    return rows


def dead_unit_fraction(model, x, layers=None, *, batch_size: int = 256) -> list[dict]:
    """Per ReLU layer: the channels whose output is zero for every image in ``x`` and every position (dead units).

    A dead ReLU passes no gradient for these inputs, so nothing before it can revive it. By default every
    layer with a ReLU or leaky ReLU activation is inspected; ``layers`` names others. For leaky ReLU the row
    counts channels whose output is negative or zero everywhere: the same inactive units, which (unlike ReLU's)
    still pass the gradient times the slope. Each row holds ``name``, ``activation``, ``channels``, ``dead``,
    ``fraction`` and ``dead_mask`` (a boolean NumPy array, True for each dead channel).
    """
    model = keras_model(model)
    x = _check_batch(model, x)
    batch_size = positive_int(batch_size, "batch_size")
    chosen = _select_layers(model, layers, lambda layer: activation_of(layer)[0] in _RELU_FAMILY,
                            "ReLU or leaky ReLU layer")
    alive = [np.zeros(int(layer.output.shape[-1]), bool) for layer in chosen]
    for outs in _layer_outputs(model, chosen, x, batch_size):
        for a, y in zip(alive, outs):
            a |= (y.reshape(-1, y.shape[-1]) > 0).any(axis=0)
    return [{"name": layer.name, "activation": activation_of(layer)[0], "channels": int(a.size),
             "dead": int((~a).sum()), "fraction": float((~a).mean()), "dead_mask": ~a} for layer, a in zip(chosen, alive)]


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
    model = keras_model(model)
    x = np.asarray(x, dtype="float32")
    want = tuple(model.input_shape[1:])
    if x.ndim != 4 or len(x) == 0 or any(w is not None and w != v for w, v in zip(want, x.shape[1:])):
        raise ValueError(f"x must be a non-empty batch of images of shape (N, {', '.join(map(str, want))}), "
                         f"not {x.shape}")
    shifts = _check_shifts(shifts, min(x.shape[1:3]))
    batch_size = positive_int(batch_size, "batch_size")
    if mode not in SHIFT_MODES:
        raise ValueError(f"unknown shift mode {mode!r}; choose one of {', '.join(SHIFT_MODES)}")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold one integer label per image ({len(x)}), not shape {y.shape} {y.dtype}")
    seed = check_seed(seed)
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
    layer = layers.Dropout(rate, seed=check_seed(seed))
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
    if not isinstance(train, (list, tuple)) or not isinstance(val, (list, tuple)) or not train or len(train) != len(val):
        raise ValueError(f"history needs {metric!r} and 'val_{metric}' of the same, nonzero length; "
                         f"it has {', '.join(f'{k} ({len(v)})' for k, v in history.items() if isinstance(v, list))}")
    if isinstance(last, bool) or not isinstance(last, (int, np.integer)) or not 1 <= last <= len(train):
        raise ValueError(f"last must be an integer from 1 to {len(train)} (the number of epochs), not {last!r}")
    gap = float(np.mean(train[-last:]) - np.mean(val[-last:]))
    return -gap if metric == "loss" else gap


# ----------------------------------------------------------------------------------------------
# Layer outputs, batch normalisation by hand, and the input statistics that set a layer's curvature


def layer_outputs(model, x, layer_names, training: bool = False) -> dict:
    """The outputs of the named layers of a functional model for inputs ``x``: ``{name: NumPy array}``.

    ``training=True`` runs batch normalisation with the batch's own statistics (and updates its moving
    statistics) and dropout in training mode, as one training step's forward pass would.
    """
    model = keras_model(model)
    layer_names = _layer_names(layer_names)
    if not layer_names:
        raise ValueError("layer_names must name at least one layer")
    chosen = _select_layers(model, layer_names, None, "layers")
    x = _check_batch(model, x)
    outs = next(_layer_outputs(model, chosen, x, len(x), training))
    return {layer.name: o.astype("float32") for layer, o in zip(chosen, outs)}


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


def sample_patches(x, size: int, max_patches: int, seed: int = 0) -> np.ndarray:
    """``max_patches`` random ``size x size x C`` patches of the images ``x`` (N, H, W, C), flattened: (k, size*size*C)."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be images of shape (N, H, W, C), got shape {x.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= min(x.shape[1:3]):
        raise ValueError(f"size must be an integer from 1 to {min(x.shape[1:3])}, not {size!r}")
    if isinstance(max_patches, bool) or not isinstance(max_patches, (int, np.integer)) or max_patches < 1:
        raise ValueError(f"max_patches must be a positive integer, not {max_patches!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"x must hold finite numbers; it has {int(np.sum(~np.isfinite(x)))} NaN or infinite values")
    rng = np.random.default_rng(check_seed(seed))
    n, h, w, _ = x.shape
    k = int(max_patches)
    i, r, s = rng.integers(0, n, k), rng.integers(0, h - size + 1, k), rng.integers(0, w - size + 1, k)
    offsets = np.arange(size)
    rows = (r[:, None] + offsets)[:, :, None]
    cols = (s[:, None] + offsets)[:, None, :]
    return x[i[:, None, None], rows, cols].reshape(k, -1).astype(np.float64)


def patch_moment_eigenvalues(x, size: int = 3, max_patches: int = 20_000, seed: int = 0) -> np.ndarray:
    """Eigenvalues (largest first) of E[p p^T] over ``size x size x C`` patches ``p`` of images ``x``.

    For a linear unit on such patches trained with squared error, this matrix is the Hessian of the
    loss with respect to the weights: its largest eigenvalue caps the stable learning rate of gradient
    descent (lr < 2 / lambda_max) and the ratio largest / smallest is the condition number.
    ``x`` is a float array (N, H, W, C), already normalised as the network would see it.
    """
    patches = sample_patches(x, size, max_patches, seed)  # (k, size * size * C)
    moment = patches.T @ patches / len(patches)
    return np.sort(np.linalg.eigvalsh(moment))[::-1]


def per_class_accuracy(confusion) -> np.ndarray:
    """Accuracy of each true class from a confusion matrix (rows: true class, columns: predicted)."""
    cm = np.asarray(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"a confusion matrix must be square, got shape {cm.shape}")
    if (cm < 0).any():
        raise ValueError(f"a confusion matrix holds counts, found {cm.min()}")
    totals = cm.sum(axis=1)
    if (totals == 0).any():
        raise ValueError(f"class {int(np.argmax(totals == 0))} has no test images in the confusion matrix")
    return cm.diagonal() / totals


def confused_pairs(confusion, k: int = 3) -> list[tuple[int, int, int]]:
    """The ``k`` pairs of classes most often mistaken for each other, both directions counted together:
    ``[(count, i, j), ...]`` with ``i < j``, most confused first."""
    positive_int(k, "k")
    cm = np.asarray(confusion)
    per_class_accuracy(cm)  # the same checks: square, counts, every class present
    both = cm + cm.T
    pairs = sorted(((int(both[i, j]), i, j) for i in range(len(cm)) for j in range(i + 1, len(cm))),
                   key=lambda p: (-p[0], p[1], p[2]))
    return pairs[:k]


def training_seconds(train_flops_per_image: float, images: int, peak_tflops: float, utilization: float) -> float:
    """Time to push ``images`` training images through a device of ``peak_tflops`` at a fraction
    ``utilization`` of its peak (model FLOPs utilisation, MFU): images x FLOPs / (peak x MFU)."""
    for label, v in (("train_flops_per_image", train_flops_per_image), ("images", images),
                     ("peak_tflops", peak_tflops)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not v > 0:
            raise ValueError(f"{label} must be a positive number, not {v!r}")
    if isinstance(utilization, bool) or not isinstance(utilization, (int, float)) or not 0 < utilization <= 1:
        raise ValueError(f"utilization must be a fraction in (0, 1], not {utilization!r}")
    return float(images) * float(train_flops_per_image) / (float(peak_tflops) * 1e12 * float(utilization))

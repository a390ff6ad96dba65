"""The speed-run network: a small VGG-style net built to reach a target accuracy as fast as possible.

After airbench (Jordan, 2024), in Keras and written for reading: every constant is named and explained
here. What makes it fast, in the order of the chapter 빠르게 학습하기:

1. **Patch whitening.** The first layer is a fixed 2x2 convolution whose filters are the eigenvectors of the
   training images' 2x2 patch covariance, each divided by the square root of its eigenvalue (plus
   ``WHITEN_EPS``), and each also negated. Its output has uncorrelated, unit-variance channels, which the
   optimiser finds far easier than raw pixels (chapter 08: the condition number of the input). It is fitted
   from the data once (``PatchWhitening.adapt``) and never trained.
2. **Only three VGG blocks**, each conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU, widths
   ``WIDTHS``: six 3x3 convolutions after the whitening layer, against VGG-16's thirteen.
3. **Batch normalisation** with a short memory (``BN_MOMENTUM``): a run of a few hundred steps
   cannot wait for Keras' default 0.99 to forget the first batches.
4. **A scaled-down logit** (``LOGIT_SCALE``) with **label smoothing**: the last layer's outputs are
   multiplied by 1/9, so the softmax starts soft and the large learning rate does not blow it up.
5. **Nesterov SGD with a large batch** and a one-cycle learning rate (the recipe, ``SPEEDRUN_RECIPE``).
6. **Test-time augmentation**: the test images and their mirror images are both classified and the
   probabilities averaged (``vgglab.evaluate.evaluate(..., tta=("flip",))``).

``SpeedrunBuild`` keeps these choices as data, so an ablation is ``SpeedrunBuild().but(whiten=False)``.
``AIRBENCH`` is the build with the rest of airbench94's network: identity (Dirac) initialisation of the 3x3
convolutions, batch normalisation without a learned scale, and a learned bias after the whitening filters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import keras
import numpy as np
from keras import layers, ops

from vgglab.analysis import sample_patches
from vgglab.augment import augmentation_layers
from vgglab.blocks import augmented

WIDTHS = (64, 256, 256)  # channels of the three blocks at width 1 (airbench94's)
WHITEN_SIZE = 2  # patch size of the whitening layer: 2x2x3 = 12 dimensions, so 24 filters with the negations
WHITEN_EPS = 5e-4  # added to each eigenvalue so that near-zero directions are not blown up into noise
WHITEN_PATCHES = 50_000  # random patches used to estimate the covariance (enough for a 12 x 12 matrix)
BN_MOMENTUM = 0.6  # Keras' moving-average momentum; 0.99 (the default) would remember the first steps too long
BN_EPSILON = 1e-5
LOGIT_SCALE = 1 / 9  # the final layer's outputs are multiplied by this
ACTIVATION = "gelu"


def whitening_filters(x, size: int = WHITEN_SIZE, eps: float = WHITEN_EPS, max_patches: int = WHITEN_PATCHES,
                      seed: int = 0) -> np.ndarray:
    """Conv kernel (size, size, C, 2 * size*size*C) that whitens the patches of ``x``: eigenvectors of their
    covariance divided by sqrt(eigenvalue + eps), then the same filters negated (so ReLU-like units keep both signs)."""
    if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps > 0):
        raise ValueError(f"eps must be a positive number, not {eps!r}")
    p = sample_patches(x, size, max_patches, seed)
    cov = np.cov(p, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    filters = vecs / np.sqrt(np.clip(vals, 0, None) + eps)  # columns: one filter each
    channels = np.asarray(x).shape[-1]
    kernel = filters.reshape(size, size, channels, -1)
    return np.concatenate([kernel, -kernel], axis=-1).astype(np.float32)


@keras.saving.register_keras_serializable(package="vgglab")
class PatchWhitening(layers.Layer):
    """A fixed ``size x size`` convolution ('valid' padding) whose filters whiten the image patches.

    Before ``adapt`` the filters pick out single pixel values (and their negations); ``adapt(x)`` sets them
    from the patch covariance of the images ``x`` (``whitening_filters``). The filters are never trained.
    With ``use_bias`` a bias after the filters is trained; with ``bias_epochs`` too, only for that many epochs
    (airbench: 3): from then on the layer adds the bias as it was (the training loop calls ``begin_epoch``).
    """

    def __init__(self, size: int = WHITEN_SIZE, eps: float = WHITEN_EPS, use_bias: bool = False,
                 bias_epochs: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"whitening patch size must be a positive integer, not {size!r}")
        if bias_epochs is not None and (isinstance(bias_epochs, bool) or not isinstance(bias_epochs, (int, np.integer))
                                        or bias_epochs < 0):
            raise ValueError(f"bias_epochs must be an epoch count (0 or more) or None, not {bias_epochs!r}")
        if bias_epochs is not None and not use_bias:
            raise ValueError(f"bias_epochs={bias_epochs!r} freezes the whitening bias, so it needs use_bias=True")
        self.size, self.eps, self.use_bias, self.adapted = int(size), float(eps), bool(use_bias), False
        self.bias_epochs = None if bias_epochs is None else int(bias_epochs)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        d = self.size * self.size * channels
        identity = np.eye(d, dtype=np.float32).reshape(self.size, self.size, channels, d)
        self.kernel = self.add_weight(shape=(self.size, self.size, channels, 2 * d), trainable=False, name="kernel",
                                      initializer=keras.initializers.Constant(np.concatenate([identity, -identity], -1)))
        self.bias = self.add_weight(shape=(2 * d,), initializer="zeros", name="bias") if self.use_bias else None
        if self.bias_epochs is not None:  # 1 while the bias trains; then 0, and the layer adds frozen_bias instead
            self.bias_gate = self.add_weight(shape=(), initializer="ones", trainable=False, name="bias_gate")
            self.frozen_bias = self.add_weight(shape=(2 * d,), initializer="zeros", trainable=False, name="frozen_bias")

    def unaveraged_variables(self) -> list:
        """The freeze's bookkeeping, which a running average of the weights (``train.Lookahead``) must leave alone."""
        return [self.bias_gate, self.frozen_bias] if self.bias_epochs is not None else []

    def begin_epoch(self, epoch: int) -> None:
        """Freeze the bias at the start of epoch ``bias_epochs`` (0-based), keeping the value it reached."""
        if self.bias_epochs is not None and epoch >= self.bias_epochs and float(ops.convert_to_numpy(self.bias_gate)) == 1.0:
            self.frozen_bias.assign(ops.convert_to_numpy(self.bias))  # a copy: JAX must not see one buffer twice
            self.bias_gate.assign(0.0)

    def adapt(self, x, seed: int = 0) -> "PatchWhitening":
        x = np.asarray(x)
        if not self.built:
            self.build(x.shape)
        if x.ndim != 4 or x.shape[-1] != self.kernel.shape[2]:
            raise ValueError(f"adapt needs images of shape (N, H, W, {self.kernel.shape[2]}), got shape {x.shape}")
        self.kernel.assign(whitening_filters(x, self.size, self.eps, seed=seed))
        self.adapted = True
        return self

    def call(self, x):
        y = ops.conv(x, ops.cast(self.kernel, x.dtype), padding="valid")
        if not self.use_bias:
            return y
        bias = self.bias
        if self.bias_epochs is not None:
            bias = self.bias_gate * bias + (1.0 - self.bias_gate) * self.frozen_bias
        return y + ops.cast(bias, x.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        d = self.size * self.size * c
        shrink = lambda v: None if v is None else v - self.size + 1  # noqa: E731
        return (n, shrink(h), shrink(w), 2 * d)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "eps": self.eps, "use_bias": self.use_bias,
                "bias_epochs": self.bias_epochs}


@keras.saving.register_keras_serializable(package="vgglab")
class Dirac(keras.initializers.Initializer):
    """PyTorch's default convolution initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with the first ``in``
    filters replaced by identities (a 1 at the centre of their own input channel): each convolution starts as a
    partial identity map, an implicit shortcut (airbench)."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        kh, kw, c_in, c_out = shape
        bound = 1 / np.sqrt(kh * kw * c_in)
        w = np.random.default_rng(self.seed).uniform(-bound, bound, size=shape)
        n = min(c_in, c_out)
        w[:, :, :, :n] = 0
        w[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1
        return ops.convert_to_tensor(w.astype("float32"), dtype=dtype)

    def get_config(self):
        return {"seed": self.seed}


def adapt_layers(model: keras.Model, x, seed: int = 0) -> list[str]:
    """Fit every layer of ``model`` that learns from the training images before training (an ``adapt`` method,
    Keras' convention for preprocessing layers); returns their names."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a Keras model, not {type(model).__name__}")
    done = []
    for layer in model.layers:
        if isinstance(layer, PatchWhitening):
            layer.adapt(x, seed=seed)
            done.append(layer.name)
    return done


HEAD_INITS = ("glorot_uniform", "torch")  # the output layer's: Keras' default, or PyTorch's nn.Linear


@dataclass(frozen=True)
class SpeedrunBuild:
    """An ``Experiment.build`` for the speed-run network, with each trick a field an ablation can turn off."""

    whiten: bool = True
    batch_norm: bool = True
    logit_scale: float = LOGIT_SCALE
    activation: str = ACTIVATION
    widths: tuple = WIDTHS
    width: float | None = None  # None: the profile's width (gpu 1: airbench94's 64/256/256 channels; cpu 0.25)
    dirac: bool = False  # identity-initialised 3x3 convolutions (Dirac), else He normal
    bn_scale: bool = True  # False: batch normalisation shifts but does not scale (its gamma stays 1)
    bn_epsilon: float = BN_EPSILON
    whiten_bias: bool = False  # a learned bias after the whitening filters
    whiten_bias_epochs: int | None = None  # train that bias for this many epochs only, then freeze it (airbench: 3)
    head_init: str = "glorot_uniform"  # "torch": uniform in ±1/sqrt(fan_in), PyTorch's default for nn.Linear

    def __post_init__(self):
        _check_net_args(1.0 if self.width is None else self.width, self.logit_scale, self.widths, self.activation)
        if self.whiten_bias_epochs is not None and not (self.whiten and self.whiten_bias):
            raise ValueError(f"whiten_bias_epochs={self.whiten_bias_epochs!r} needs whiten=True and whiten_bias=True")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, not {self.head_init!r}")

    def but(self, **changes) -> "SpeedrunBuild":
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown SpeedrunBuild field {unknown[0]!r}; change one of "
                             f"{', '.join(self.__dataclass_fields__)}")
        return replace(self, **changes)

    def describe(self) -> str:
        bias = "" if not self.whiten_bias else " + 학습되는 편향" + (
            f" ({self.whiten_bias_epochs} 에포크 뒤 고정)" if self.whiten_bias_epochs is not None else "")
        whiten = "화이트닝" + bias if self.whiten else "화이트닝 없음"
        bn = ("BN" if self.bn_scale else f"BN (배율 없음, ε {self.bn_epsilon:g})") if self.batch_norm else "BN 없음"
        parts = [whiten, "Dirac 초기화" if self.dirac else "He 초기화", bn, f"로짓 x{self.logit_scale:.3g}", self.activation]
        if self.head_init == "torch":
            parts.append("출력층 PyTorch 초기화")
        return " · ".join(parts)

    def __call__(self, profile, recipe, seed: int) -> keras.Model:
        return speedrun_net(width=self.width if self.width is not None else profile.width,
                            whiten=self.whiten, batch_norm=self.batch_norm, logit_scale=self.logit_scale,
                            activation=self.activation, widths=self.widths, dirac=self.dirac, bn_scale=self.bn_scale,
                            bn_epsilon=self.bn_epsilon, whiten_bias=self.whiten_bias,
                            whiten_bias_epochs=self.whiten_bias_epochs, head_init=self.head_init, seed=seed,
                            augmentation=augmentation_layers(recipe, seed))


def _check_net_args(width, logit_scale, widths, activation) -> None:
    if not (isinstance(width, (int, float)) and not isinstance(width, bool) and 0 < width <= 4):
        raise ValueError(f"width must be a number in (0, 4], not {width!r}")
    if not (isinstance(logit_scale, (int, float)) and not isinstance(logit_scale, bool) and logit_scale > 0):
        raise ValueError(f"logit_scale must be a positive number, not {logit_scale!r}")
    if isinstance(widths, (str, bytes)) or len(tuple(widths)) != 3 or not all(
            isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ValueError(f"widths must be three positive channel counts, not {widths!r}")
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(f"unknown activation {activation!r}; use a Keras name such as 'gelu' or 'relu'") from None


def speedrun_net(*, input_shape=(32, 32, 3), num_classes: int = 10, width: float = 1.0, whiten: bool = True,
                 batch_norm: bool = True, logit_scale: float = LOGIT_SCALE, activation: str = ACTIVATION,
                 widths=WIDTHS, dirac: bool = False, bn_scale: bool = True, bn_epsilon: float = BN_EPSILON,
                 whiten_bias: bool = False, whiten_bias_epochs: int | None = None, head_init: str = "glorot_uniform",
                 seed: int = 0, augmentation=(), name: str = "speedrun") -> keras.Model:
    """The speed-run network (see the module's text). ``width`` scales ``widths``; ``whiten=False`` puts a trained
    2x2 convolution with as many filters in place of the whitening layer."""
    _check_net_args(width, logit_scale, widths, activation)
    channels = [max(8, int(round(w * width))) for w in widths]
    inputs = keras.Input(input_shape)
    x = augmented(inputs, augmentation)
    d = 2 * WHITEN_SIZE * WHITEN_SIZE * input_shape[-1]
    if whiten:
        x = PatchWhitening(WHITEN_SIZE, use_bias=whiten_bias, bias_epochs=whiten_bias_epochs, name="whiten")(x)
    else:
        x = layers.Conv2D(d, WHITEN_SIZE, padding="valid", kernel_initializer="he_normal", name="whiten_conv")(x)
    x = layers.Activation(activation, name="whiten_act")(x)

    init = (lambda i: Dirac(seed * 1000 + i)) if dirac else (lambda i: "he_normal")  # noqa: E731
    bn = lambda tag: layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=bn_epsilon, scale=bn_scale,  # noqa: E731
                                               name=tag)
    for b, filters in enumerate(channels, start=1):  # conv -> pool -> BN -> act -> conv -> BN -> act
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, kernel_initializer=init(2 * b),
                          name=f"block{b}_conv1")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
        if batch_norm:
            x = bn(f"block{b}_bn1")(x)
        x = layers.Activation(activation, name=f"block{b}_act1")(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, kernel_initializer=init(2 * b + 1),
                          name=f"block{b}_conv2")(x)
        if batch_norm:
            x = bn(f"block{b}_bn2")(x)
        x = layers.Activation(activation, name=f"block{b}_act2")(x)
    x = layers.GlobalMaxPooling2D(name="global_pool")(x)
    head_init = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=seed) if head_init == "torch" \
        else head_init  # 1/3 of fan-in variance, uniform: the bound 1/sqrt(fan_in) of PyTorch's nn.Linear
    x = layers.Dense(num_classes, use_bias=False, kernel_initializer=head_init, name="logits")(x)
    x = layers.Rescaling(logit_scale, name="logit_scale")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


# airbench94's network: the speed-run net with Dirac-initialised convolutions, batch normalisation without a learned
# scale and with epsilon 1e-12, and a learned bias after the whitening filters (airbench trains it for 3 epochs only).
AIRBENCH = SpeedrunBuild(dirac=True, bn_scale=False, bn_epsilon=1e-12, whiten_bias=True)

"""Recipes: an optimiser, its learning-rate schedule and the regularisers that go with it, as data.

``RECIPES`` holds the book's three (the VGG paper's SGD, a modern CIFAR recipe, plain Adam); chapters make their own
with ``Recipe(...)`` or ``dataclasses.replace``. A recipe checks its fields when it is made. ``make_optimizer`` turns
one into a Keras optimiser for a run of a given number of updates.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from vgglab.checks import positive_int
from vgglab.data import NORMALIZATIONS


@dataclass(frozen=True)
class Recipe:
    """An optimiser, its schedule and the regularisers that go with it."""

    name: str
    optimizer: str  # "sgd" | "adam" | "adamw"
    lr: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"  # "constant" | "plateau" | "onecycle"
    label_smoothing: float = 0.0
    augment: tuple[str, ...] = ()  # "flip", "translate", "cutout"
    normalization: str = "minus_one_one"
    plateau_patience: int = 2
    plateau_max_drops: int = 3
    batch_size: int | None = None  # None: the profile's batch size
    tta: tuple[str, ...] = ()  # test-time augmentation: "flip" also classifies the mirror images and averages
    notes: str = ""
    bias_lr_scale: float = 1.0  # batch-norm shifts (beta) learn this many times faster than the other weights
    lookahead_from: int | None = None  # from this epoch on, keep an average of the weights (vgglab.train.Lookahead)
    decay_shifts: bool = False  # weight decay on biases and batch-norm shifts too, as hard as on the kernels (airbench)

    def __post_init__(self):  # a recipe checks itself once, when it is made (dataclasses.replace too)
        _check(self)


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "plateau", "onecycle", "triangle")
# "flip", "translate" and "cutout" are Keras layers in front of the model; "flip-alternating" and "translate-reflect"
# are done in NumPy once per epoch (epoch_augment), as airbench does them.
AUGMENTATIONS = ("flip", "translate", "cutout", "flip-alternating", "translate-reflect")
TTA = ("flip", "translate")
# The "triangle" schedule (airbench): from TRIANGLE[0] x the peak, up to the peak at TRIANGLE[1] of the steps, then down
# to TRIANGLE[2] x the peak at the end.
TRIANGLE = (0.2, 0.23, 0.07)


def check_recipe(recipe) -> Recipe:
    """``recipe`` itself, or a TypeError naming what was given instead of a ``Recipe`` (which checks its own fields)."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a vgglab.recipes.Recipe, not {type(recipe).__name__} {recipe!r}")
    return recipe


def _check(recipe: Recipe) -> None:
    if recipe.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if recipe.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {recipe.schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if not isinstance(recipe.augment, (tuple, list)):
        raise TypeError(f"augment must be a tuple of names such as ('flip',), not {recipe.augment!r}")
    bad = [a for a in recipe.augment if a not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation {bad[0]!r}; choose from {', '.join(AUGMENTATIONS)}")
    if isinstance(recipe.tta, str) or any(a not in TTA for a in recipe.tta):
        bad = recipe.tta if isinstance(recipe.tta, str) else next(a for a in recipe.tta if a not in TTA)
        raise ValueError(f"unknown test-time augmentation {bad!r}; choose from {', '.join(TTA)}")
    if recipe.normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {recipe.normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
    for label, v, low, high in (("learning rate", recipe.lr, 0, None), ("momentum", recipe.momentum, 0, 1),
                                ("weight_decay", recipe.weight_decay, 0, None),
                                ("label_smoothing", recipe.label_smoothing, 0, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not np.isfinite(v) \
                or not (v > 0 if label == "learning rate" else v >= low) or (high is not None and not v < high):
            rule = "positive" if label == "learning rate" else f"in [{low}, {high})" if high else "non-negative"
            raise ValueError(f"{label} must be {rule}, not {v!r}")
    positive_int(recipe.plateau_patience, "plateau_patience")
    if isinstance(recipe.plateau_max_drops, bool) or not isinstance(recipe.plateau_max_drops, int) \
            or recipe.plateau_max_drops < 0:
        raise ValueError(f"plateau_max_drops must be a non-negative integer, not {recipe.plateau_max_drops!r}")
    if recipe.batch_size is not None and (isinstance(recipe.batch_size, bool) or not isinstance(recipe.batch_size, int)
                                          or recipe.batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, not {recipe.batch_size!r}")
    b = recipe.bias_lr_scale
    if isinstance(b, bool) or not isinstance(b, (int, float)) or not (b > 0 and np.isfinite(b)):
        raise ValueError(f"bias_lr_scale must be a positive number, not {b!r}")
    if b != 1 and recipe.optimizer != "sgd":
        raise ValueError(f"bias_lr_scale {b!r} needs the sgd optimizer, not {recipe.optimizer!r}")
    if not isinstance(recipe.decay_shifts, bool):
        raise ValueError(f"decay_shifts must be True or False, not {recipe.decay_shifts!r}")
    la = recipe.lookahead_from
    if la is not None and (isinstance(la, bool) or not isinstance(la, int) or la < 0):
        raise ValueError(f"lookahead_from must be an epoch number (0 or more) or None, not {la!r}")


RECIPES: dict[str, Recipe] = {
    # Simonyan & Zisserman (2015), section 3.1: batch 256, momentum 0.9, weight decay 5e-4, dropout 0.5
    # in the model, lr 1e-2 divided by 10 when validation accuracy stops improving (three times).
    "paper": Recipe("paper", "sgd", 1e-2, momentum=0.9, weight_decay=5e-4, schedule="plateau", batch_size=256,
                    notes="VGG 논문의 SGD: 배치 256, 모멘텀 0.9, 가중치 감쇠 5e-4, 학습률 1e-2를 정체 때마다 1/10"),
    # A modern CIFAR recipe: Nesterov SGD, a one-cycle schedule, label smoothing, flip + translate. Keras decays
    # weights apart from the gradient (w -= lr * weight_decay * w each step), where PyTorch's SGD adds 5e-4 * w to the
    # gradient and momentum 0.9 then multiplies that by 1 / (1 - 0.9) = 10; weight_decay=5e-3 at lr 0.1 gives the same
    # 5e-4 of each weight per step as the usual PyTorch CIFAR recipe (lr 0.1, momentum 0.9, weight decay 5e-4).
    "modern": Recipe("modern", "sgd", 0.1, momentum=0.9, nesterov=True, weight_decay=5e-3, schedule="onecycle",
                     label_smoothing=0.1, augment=("flip", "translate"),
                     notes="네스테로프 SGD, 원사이클 학습률, 레이블 스무딩 0.1, 뒤집기+이동 증강"),
    "adam": Recipe("adam", "adam", 1e-3, notes="Adam, 학습률 1e-3 고정"),
}


@keras.saving.register_keras_serializable(package="vgglab")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``start`` x peak to ``peak`` over ``warmup`` of the steps, then linear decay to ``end`` x peak
    (by default from peak/10 up over 15% of the steps, then down to 0; the "triangle" schedule uses ``TRIANGLE``)."""

    def __init__(self, peak: float, total_steps: int, warmup: float = 0.15, start: float = 0.1, end: float = 0.0):
        if isinstance(peak, bool) or not isinstance(peak, (int, float, np.number)) or not (peak > 0 and np.isfinite(peak)):
            raise ValueError(f"peak learning rate must be a positive number, not {peak!r}")
        positive_int(total_steps, "total_steps")
        if isinstance(warmup, bool) or not isinstance(warmup, (int, float, np.number)) or not 0 <= warmup < 1:
            raise ValueError(f"warmup must be a fraction of the steps in [0, 1), not {warmup!r}")
        for label, v in (("start", start), ("end", end)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"{label} must be a fraction of the peak in [0, 1], not {v!r}")
        self.peak, self.total_steps, self.warmup = float(peak), int(total_steps), float(warmup)
        self.start, self.end = float(start), float(end)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        up = max(1.0, self.warmup * self.total_steps)
        down = max(1.0, self.total_steps - up)
        rising = self.peak * (self.start + (1 - self.start) * step / up)
        falling = self.peak * ops.maximum(self.end, 1.0 - (1 - self.end) * (step - up) / down)
        return ops.where(step < up, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup": self.warmup, "start": self.start,
                "end": self.end}


@keras.saving.register_keras_serializable(package="vgglab")
class BiasScaledSGD(keras.optimizers.SGD):
    """SGD in which the batch-normalisation shifts (``beta``) take ``bias_lr_scale`` times larger steps (airbench: 64)."""

    def __init__(self, *args, bias_lr_scale: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.bias_lr_scale = float(bias_lr_scale)

    def update_step(self, gradient, variable, learning_rate):
        name = str(getattr(variable, "path", None) or variable.name)
        if name.split("/")[-1].split(":")[0] == "beta":
            learning_rate = learning_rate * self.bias_lr_scale
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "bias_lr_scale": self.bias_lr_scale}


def make_optimizer(recipe: Recipe, steps: int):
    """The recipe's optimiser for a run of ``steps`` updates (the one-cycle schedule spans them)."""
    check_recipe(recipe)
    positive_int(steps, "steps")
    lr = OneCycle(recipe.lr, steps) if recipe.schedule == "onecycle" else recipe.lr
    if recipe.schedule == "triangle":
        lr = OneCycle(recipe.lr, steps, warmup=TRIANGLE[1], start=TRIANGLE[0], end=TRIANGLE[2])
    kw = {"weight_decay": recipe.weight_decay or None}
    if recipe.optimizer == "sgd" and recipe.bias_lr_scale != 1:
        opt = BiasScaledSGD(lr, momentum=recipe.momentum, nesterov=recipe.nesterov, bias_lr_scale=recipe.bias_lr_scale,
                            **kw)
    elif recipe.optimizer == "sgd":
        opt = keras.optimizers.SGD(lr, momentum=recipe.momentum, nesterov=recipe.nesterov, **kw)
    elif recipe.optimizer == "adam":
        opt = keras.optimizers.Adam(lr, **kw)
    else:
        opt = keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay or 1e-4)
    if recipe.weight_decay:  # decay the kernels only, not biases or batch-norm scales (unless decay_shifts)
        opt.exclude_from_weight_decay(var_names=["gamma"] if recipe.decay_shifts else ["bias", "gamma", "beta"])
    return opt

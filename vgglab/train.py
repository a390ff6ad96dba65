"""One training path for every chapter and the CLI: recipes, a per-epoch loop, checkpoints, records.

``fit`` trains a compiled-by-us Keras model one epoch at a time so that, after every epoch, it can
log one line, step a plateau schedule, and write a checkpoint atomically. A checkpoint holds all
model variables (weights, batch-norm statistics, random-seed state of dropout and augmentation
layers), the optimizer's variables (step count, momentum, learning rate), the plateau state and
the history, so ``resume=True`` continues where an interrupted run stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from vgglab.checks import keras_model, positive_int
from vgglab.data import NORMALIZATIONS
from vgglab.files import atomic_write, write_json  # noqa: F401  (write_json: vgglab.train.write_json)
from vgglab.runtime import check_seed
from vgglab import distribute as DP


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
    lookahead_from: int | None = None  # from this epoch on, keep an average of the weights (Lookahead, below)


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
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "plateau", "onecycle", "triangle")
# "flip", "translate" and "cutout" are Keras layers in front of the model; "flip-alternating" and "translate-reflect"
# are done in NumPy once per epoch (epoch_augment), as airbench does them.
AUGMENTATIONS = ("flip", "translate", "cutout", "flip-alternating", "translate-reflect")
TTA = ("flip", "translate")
# The "triangle" schedule (airbench): from TRIANGLE[0] x the peak, up to the peak at TRIANGLE[1] of the steps, then down
# to TRIANGLE[2] x the peak at the end.
TRIANGLE = (0.2, 0.23, 0.07)
REFLECT_SHIFT = 2  # "translate-reflect": up to 2 pixels each way, the border mirrored (airbench's translate 2)


def check_recipe(recipe: Recipe) -> Recipe:
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a vgglab.train.Recipe, not {type(recipe).__name__} {recipe!r}")
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
    la = recipe.lookahead_from
    if la is not None and (isinstance(la, bool) or not isinstance(la, int) or la < 0):
        raise ValueError(f"lookahead_from must be an epoch number (0 or more) or None, not {la!r}")
    return recipe


def augmentation_layers(recipe: Recipe, seed: int = 0) -> list:
    """The recipe's augmentation as Keras preprocessing layers (active only in training)."""
    check_recipe(recipe)
    seed = check_seed(seed)
    out = []
    if "flip" in recipe.augment:
        out.append(layers.RandomFlip("horizontal", seed=seed, name="augment_flip"))
    if "translate" in recipe.augment:  # up to 4 px each way, like padding by 4 and cropping 32x32
        out.append(layers.RandomTranslation(0.125, 0.125, fill_mode="constant", interpolation="nearest",
                                            seed=seed + 1, name="augment_translate"))
    if "cutout" in recipe.augment:  # one CUTOUT_SIZE x CUTOUT_SIZE square per image set to 0 (Cutout, below)
        out.append(Cutout(CUTOUT_SIZE, seed=seed + 2, name="augment_cutout"))
    return out


def epoch_augment(x: np.ndarray, augment, seed: int, epoch: int) -> np.ndarray:
    """The NumPy augmentations of ``augment`` applied to the training images ``x`` (N, H, W, C) for one epoch.

    ``"flip-alternating"`` mirrors a fixed random half of the images in even epochs and the other half in odd ones,
    so that every image is seen both ways in every two epochs (airbench's alternating flip). ``"translate-reflect"``
    shifts each image by up to ``REFLECT_SHIFT`` pixels each way, filling the border with its mirror image. Returns
    ``x`` itself when neither is asked for.
    """
    if "flip-alternating" not in augment and "translate-reflect" not in augment:
        return x
    x = np.array(x, copy=True)
    if "flip-alternating" in augment:
        flip = (np.random.default_rng([seed, 7]).random(len(x)) < 0.5) ^ bool(epoch % 2)
        x[flip] = x[flip, :, ::-1]
    if "translate-reflect" in augment:
        r = REFLECT_SHIFT
        h, w = x.shape[1:3]
        shifts = np.random.default_rng([seed, epoch, 11]).integers(-r, r + 1, size=(len(x), 2))
        for start in range(0, len(x), 4096):  # in chunks, so the padded copy stays small
            part = slice(start, start + 4096)
            padded = np.pad(x[part], ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    sel = np.flatnonzero((shifts[part, 0] == dy) & (shifts[part, 1] == dx))
                    x[start + sel] = padded[sel, r + dy:r + dy + h, r + dx:r + dx + w]
    return x


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
    if recipe.weight_decay:  # decay the kernels only, not biases or batch-norm scales
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def compile_model(model: keras.Model, recipe: Recipe, steps: int) -> keras.Model:
    keras_model(model)
    model.compile(optimizer=make_optimizer(recipe, steps),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")], jit_compile=_jit_compile())
    return model


def _jit_compile():
    """XLA for TensorFlow only where a GPU is visible. On CPU, XLA adds 10-30 s of compiling per model (train,
    evaluate and predict each) and trained no faster on two cores; JAX needs jit, torch resolves "auto" itself."""
    from vgglab.runtime import gpu_visible

    return False if keras.backend.backend() == "tensorflow" and not gpu_visible() else "auto"


# ----------------------------------------------------------------------------------------------
# Checkpoints


def _check_compiled(model) -> keras.Model:
    if getattr(keras_model(model), "optimizer", None) is None:
        raise ValueError(f"model {model.name!r} has no optimizer yet; compile it first (vgglab.train.compile_model)")
    return model


def save_checkpoint(path, model: keras.Model, state: dict) -> None:
    _check_compiled(model)
    if not model.optimizer.built:  # saved before any step: build it as load_checkpoint does, so the two match
        model.optimizer.build(model.trainable_variables)
    arrays = {f"model_{i}": np.asarray(v) for i, v in enumerate(model.variables)}
    arrays.update({f"opt_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    arrays["state"] = np.array(json.dumps(state))
    atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def load_checkpoint(path, model: keras.Model) -> dict:
    """Restore model and optimizer variables from ``path``; return the saved loop state."""
    keras_model(model)
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(path)!r}")
    _check_compiled(model)
    try:
        with np.load(path, allow_pickle=False) as z:
            saved = {k: z[k] for k in z.files}
        state = json.loads(str(saved.pop("state")))
    except Exception as e:
        raise ValueError(f"unreadable checkpoint {str(path)!r}: {type(e).__name__}: {e}") from None
    model.optimizer.build(model.trainable_variables)
    for prefix, variables in (("model", model.variables), ("opt", model.optimizer.variables)):
        values = [saved.get(f"{prefix}_{i}") for i in range(len(variables))]
        if f"{prefix}_{len(variables)}" in saved or any(
                v is None or v.shape != tuple(var.shape) for v, var in zip(values, variables)):
            raise ValueError(f"checkpoint {str(path)!r} does not match this model ({prefix} variables differ)")
        for var, v in zip(variables, values):
            var.assign(v)
    return state


# ----------------------------------------------------------------------------------------------
# The loop


class _Progress(keras.callbacks.Callback):
    """Every ``every`` seconds inside a long epoch, one line (no carriage returns): images done, the epoch's
    throughput so far and the time its remaining batches will take at that rate."""

    def __init__(self, every: float, steps: int, log, images: int | None = None):
        super().__init__()
        self.every, self.steps, self.log, self.images = every, steps, log, images or steps

    def on_epoch_begin(self, epoch, logs=None):
        self.start = self.last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            done = min(self.images, round(self.images * (batch + 1) / self.steps))
            rate = done / max(now - self.start, 1e-9)
            left = (self.images - done) / rate if rate > 0 else 0.0
            self.log(f"  … 배치 {batch + 1}/{self.steps} · 이미지 {done:,}/{self.images:,} · {rate:,.0f} img/s"
                     f" · 이 에포크 남은 시간 약 {_duration(left)}")


def _duration(seconds: float) -> str:
    """``95`` -> ``1분 35초``; ``4000`` -> ``1시간 7분``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}시간 {s % 3600 // 60}분"
    return f"{s // 60}분 {s % 60}초" if s >= 60 else f"{s}초"


class Lookahead(keras.callbacks.Callback):
    """airbench's Lookahead: from epoch ``start`` on, every ``every`` steps the running average of the weights moves
    towards the current weights by 1 - rho, and the weights are then set to that average; rho = base**every x
    (step / total_steps)**power grows over training, so the average moves fast at first and barely at the end.
    After each epoch the weights are set to the average. All float variables take part, the batch-norm statistics
    too; the optimiser's do not."""

    def __init__(self, start: int, total_steps: int, steps_per_epoch: int, every: int = 5, base: float = 0.95,
                 power: float = 3.0):
        super().__init__()
        self.start, self.total, self.per_epoch = start, total_steps, steps_per_epoch
        self.every, self.base, self.power = every, base, power
        self.epoch, self.average = 0, None

    def _variables(self):
        return [v for v in self.model.variables if "float" in str(v.dtype)]

    def begin_epoch(self, epoch: int) -> None:
        """Called by ``fit`` before each epoch. After the first averaged epoch the weights equal the average at an
        epoch's start, so a resumed run picks the average up from them."""
        self.epoch = epoch
        if epoch > self.start and self.average is None:
            self.average = [np.asarray(v) for v in self._variables()]

    def on_train_batch_end(self, batch, logs=None):
        step = self.epoch * self.per_epoch + batch + 1
        if self.epoch < self.start or step % self.every:
            return
        variables = self._variables()
        if self.average is None:
            self.average = [np.asarray(v) for v in variables]
            return
        rho = self.base ** self.every * (step / self.total) ** self.power
        for i, v in enumerate(variables):
            self.average[i] = self.average[i] + (1 - rho) * (np.asarray(v) - self.average[i])
            v.assign(self.average[i])

    def on_epoch_end(self, epoch, logs=None):
        if self.average is not None:
            for v, a in zip(self._variables(), self.average):
                v.assign(a)


@dataclass
class FitResult:
    history: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    resumed_from_epoch: int = 0


def _current_lr(model) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


def check_progress_every(progress_every) -> None:
    """``progress_every`` is None (no lines inside an epoch) or a positive number of seconds."""
    if progress_every is not None and (isinstance(progress_every, bool) or not isinstance(progress_every, (int, float))
                                       or not progress_every > 0):
        raise ValueError(f"progress_every must be a positive number of seconds or None, not {progress_every!r}")


def fit(model: keras.Model, x_train, y_train, x_val=None, y_val=None, *, recipe: Recipe, epochs: int,
        batch_size: int = 128, seed: int = 0, checkpoint: str | os.PathLike | None = None, resume: bool = False,
        progress_every: float | None = None, on_epoch_end=(), distribution=None, log=print) -> FitResult:
    """Train ``model`` (uncompiled) on float inputs and integer labels; one log line per epoch.

    The epoch's shuffling order depends only on ``(seed, epoch)``, so a resumed run sees the same
    batches as an uninterrupted one. With ``checkpoint`` the state is saved after every epoch, and
    then each of ``on_epoch_end`` is called with the number of finished epochs.

    ``distribution`` (see ``vgglab.distribute``) splits every batch of ``batch_size`` among its devices; the
    model must have been built inside ``distribution.scope()``.
    """
    keras_model(model)
    check_recipe(recipe)
    for label, v in (("epochs", epochs), ("batch_size", batch_size)):
        positive_int(v, label)
    seed = check_seed(seed)
    check_progress_every(progress_every)
    if not callable(log) or not all(callable(c) for c in on_epoch_end):
        raise TypeError(f"log and each of on_epoch_end must be callable, not {log!r} and {on_epoch_end!r}")
    x_train, y_train = _check_xy(model, x_train, y_train, "x_train", "y_train")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    has_val = x_val is not None and len(x_val) > 0
    if has_val:
        x_val, y_val = _check_xy(model, x_val, y_val, "x_val", "y_val")
    val_batch = max(batch_size, 256)
    if distribution is not None:
        DP.check_model(distribution, model)
        val_batch = DP.check_batches(distribution, batch_size, len(x_train), len(x_val) if has_val else 0)
        devices = DP.replicas(distribution)
        log(f"데이터 병렬: {DP.kind(distribution)}, 장치 {devices}개, 장치마다 배치 {batch_size // devices}장")
    with DP.scope(distribution):
        return _fit(model, x_train, y_train, x_val, y_val, has_val, val_batch, recipe, epochs, batch_size, seed,
                    checkpoint, resume, progress_every, on_epoch_end, log)


def _fit(model, x_train, y_train, x_val, y_val, has_val, val_batch, recipe, epochs, batch_size, seed, checkpoint,
         resume, progress_every, on_epoch_end, log) -> FitResult:
    num_classes = model.output_shape[-1]
    n = len(x_train)
    steps = -(-n // batch_size)
    compile_model(model, recipe, steps * epochs)
    onehot = keras.utils.to_categorical(y_train, num_classes)
    val_onehot = keras.utils.to_categorical(y_val, num_classes) if has_val else None

    history = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
                               "images_per_second")}
    plateau = {"best": -1.0, "wait": 0, "drops": 0}
    start, result = 0, FitResult(history)
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, model)
        start, plateau, result.history = state["epoch"], state["plateau"], state["history"]
        history = result.history
        result.train_seconds, result.resumed_from_epoch = state.get("train_seconds", 0.0), start
        log(f"{Path(checkpoint).parent}의 체크포인트에서 이어서 학습합니다: 에포크 {start}/{epochs}까지 끝난 상태")

    callbacks = [_Progress(progress_every, steps, log, n)] if progress_every else []
    lookahead = None
    if recipe.lookahead_from is not None:
        lookahead = Lookahead(recipe.lookahead_from, steps * epochs, steps)
        callbacks.append(lookahead)
    for epoch in range(start, epochs):
        order = np.random.default_rng([seed, epoch]).permutation(n)
        t0 = time.perf_counter()
        if lookahead is not None:
            lookahead.set_model(model)
            lookahead.begin_epoch(epoch)
        x_epoch = epoch_augment(x_train, recipe.augment, seed, epoch)
        h = model.fit(x_epoch[order], onehot[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                      callbacks=callbacks)
        dt = time.perf_counter() - t0
        lr = _current_lr(model)  # for one-cycle: the rate at the epoch's last step
        result.train_seconds += dt
        history["loss"].append(float(h.history["loss"][-1]))
        history["accuracy"].append(float(h.history["accuracy"][-1]))
        if has_val:
            v = model.evaluate(x_val, val_onehot, batch_size=val_batch, verbose=0, return_dict=True)
            history["val_loss"].append(float(v["loss"]))
            history["val_accuracy"].append(float(v["accuracy"]))
        history["lr"].append(float(lr))
        history["epoch_seconds"].append(dt)
        history["images_per_second"].append(n / dt)
        line = (f"에포크 {epoch + 1}/{epochs} · 손실 {history['loss'][-1]:.3f} · 정확도 {history['accuracy'][-1]:.1%}")
        if has_val:
            line += f" · 검증 손실 {history['val_loss'][-1]:.3f} · 검증 정확도 {history['val_accuracy'][-1]:.1%}"
        log(line + f" · 학습률 {lr:.3g} · {dt:.1f}초 ({n / dt:,.0f} img/s)")
        if recipe.schedule == "plateau" and has_val:
            _step_plateau(model, recipe, plateau, history["val_accuracy"][-1], log)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, {"epoch": epoch + 1, "plateau": plateau, "history": history,
                                                "train_seconds": result.train_seconds})
        for callback in on_epoch_end:
            callback(epoch + 1)
    return result


def _check_xy(model: keras.Model, x, y, x_name: str = "x", y_name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Images that fit the model's input, and as many integer labels, each a class of the model's output."""
    x, y = np.asarray(x), np.asarray(y)
    want = tuple(model.input_shape[1:])
    if x.ndim != len(want) + 1 or any(w is not None and w != v for w, v in zip(want, x.shape[1:])):
        raise ValueError(f"{x_name} must have shape (N, {', '.join(map(str, want))}) for model {model.name!r}, "
                         f"not {x.shape}")
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or len(y) == 0):
        raise ValueError(f"{y_name} must be a 1-D array of integer class labels, not shape {y.shape} and dtype {y.dtype}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{x_name} has {len(x)} images but {y_name} has {len(y)} labels")
    num_classes = model.output_shape[-1]
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"{y_name} labels must lie in 0..{num_classes - 1}; found {y.min()}..{y.max()}")
    return x, y


def _step_plateau(model, recipe: Recipe, plateau: dict, val_acc: float, log) -> None:
    """Divide the learning rate by 10 when validation accuracy has not improved for ``patience`` epochs."""
    if val_acc > plateau["best"] + 1e-4:
        plateau["best"], plateau["wait"] = val_acc, 0
        return
    plateau["wait"] += 1
    if plateau["wait"] >= recipe.plateau_patience and plateau["drops"] < recipe.plateau_max_drops:
        new = _current_lr(model) / 10
        model.optimizer.learning_rate = new
        plateau["wait"], plateau["drops"] = 0, plateau["drops"] + 1
        log(f"  검증 정확도가 {recipe.plateau_patience} 에포크 동안 오르지 않아 학습률을 {new:.3g}로 낮춥니다")


def steady_images_per_second(history: dict) -> float:
    """Median training throughput, leaving out the first epoch (compilation) when there are others."""
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict such as FitResult.history, not {type(history).__name__}")
    ips = history.get("images_per_second", [])
    if not ips:
        return 0.0
    return float(np.median(ips[1:] if len(ips) > 1 else ips))


def evaluate(model: keras.Model, x, y, batch_size: int = 256, tta=(), probabilities: bool = False) -> dict:
    """Test loss, accuracy and the confusion matrix (rows: true class, columns: predicted).

    ``tta=("flip",)`` averages the class probabilities of each image and its mirror image (test-time augmentation)
    and also returns ``test_accuracy_no_tta``, the accuracy of the unflipped images alone. ``"translate"`` gives half
    the weight to the images shifted by one pixel up-left and down-right (each with its mirror under ``"flip"``).
    ``probabilities=True`` also returns them, as ``"probabilities"`` (N, classes).
    """
    x, y = _check_xy(keras_model(model), x, y)
    positive_int(batch_size, "batch_size")
    num_classes = model.output_shape[-1]
    if isinstance(tta, str):
        raise TypeError(f"tta must be a tuple of names such as ('flip',), not {tta!r}")
    bad = [a for a in tta if a not in TTA]
    if bad:
        raise ValueError(f"unknown test-time augmentation {bad[0]!r}; choose from {', '.join(TTA)}")
    x = np.asarray(x)

    def view(images):  # one view's probabilities, averaged with its mirror image's under "flip"
        p = DP.predict(model, images, batch_size)
        return (p + DP.predict(model, images[:, :, ::-1], batch_size)) / 2 if "flip" in tta else p

    plain = {}
    if tta:  # the accuracy without TTA comes from the first pass
        probs = DP.predict(model, x, batch_size)
        plain["test_accuracy_no_tta"] = float((probs.argmax(-1) == y).mean())
        if "flip" in tta:
            probs = (probs + DP.predict(model, x[:, :, ::-1], batch_size)) / 2
    else:
        probs = DP.predict(model, x, batch_size)
    if "translate" in tta:  # airbench's: half the weight on the views shifted by one pixel up-left and down-right
        h, w = x.shape[1:3]
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        shifted = (view(padded[:, :h, :w]) + view(padded[:, 2:h + 2, 2:w + 2])) / 2
        probs = (probs + shifted) / 2
    pred = probs.argmax(-1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0))))
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (y, pred), 1)
    out = {"test_loss": loss, "test_accuracy": float((pred == y).mean()), "confusion_matrix": cm.tolist(), **plain}
    return {**out, "probabilities": probs} if probabilities else out


# ----------------------------------------------------------------------------------------------
# Cutout and ensembles (chapters 11 and 12)

import contextlib  # noqa: E402
import logging  # noqa: E402

CUTOUT_SIZE = 16  # DeVries & Taylor (2017) found 16 x 16 best on CIFAR-10 (8 x 8 on CIFAR-100)


@keras.saving.register_keras_serializable(package="vgglab")
class Cutout(layers.Layer):
    """Cutout (DeVries & Taylor, 2017): in training, set one ``size`` x ``size`` square of every image to 0.

    The square's centre is drawn uniformly over the image, so near a border only part of the square
    lies inside it, as in the paper. After ``minus_one_one`` or ``standardize`` normalisation 0 is a
    mid grey or the mean colour. At inference (``training=False``) the layer returns its input unchanged.
    """

    def __init__(self, size: int = CUTOUT_SIZE, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"cutout size must be a positive integer, not {size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"cutout seed must be a non-negative integer or None, not {seed!r}")
        self.size, self.seed = int(size), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training:
            return x
        shape = ops.shape(x)
        n, h, w = shape[0], shape[1], shape[2]
        cy = keras.random.randint((n, 1, 1), 0, h, seed=self.seed_generator)
        cx = keras.random.randint((n, 1, 1), 0, w, seed=self.seed_generator)
        top, left = cy - self.size // 2, cx - self.size // 2
        rows = ops.expand_dims(ops.expand_dims(ops.arange(h), 0), -1)  # (1, h, 1)
        cols = ops.expand_dims(ops.expand_dims(ops.arange(w), 0), 0)  # (1, 1, w)
        inside = ops.logical_and(ops.logical_and(rows >= top, rows < top + self.size),
                                 ops.logical_and(cols >= left, cols < left + self.size))
        keep = ops.cast(ops.logical_not(inside), x.dtype)
        return x * ops.expand_dims(keep, -1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}


def ensemble_predict(models, x, batch_size: int = 256) -> np.ndarray:
    """The ensemble's class probabilities: the mean of its members' softmax outputs on ``x``."""
    return _member_probs(models, x, batch_size)[0].mean(axis=0)


@contextlib.contextmanager
def no_retracing_warnings():
    """Keep TensorFlow's "triggered tf.function retracing" warning out of the output while many models run.

    Each new model traces its own functions, so the warning is expected; only the ``logging`` module is touched.
    """
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        tf_logger.setLevel(level)


def _member_probs(models, x, batch_size: int) -> tuple[np.ndarray, list[float]]:
    models = list(models) if not isinstance(models, keras.Model) else [models]
    if not models or not all(isinstance(m, keras.Model) for m in models):
        raise ValueError(f"an ensemble needs a non-empty list of Keras models, got {models!r}")
    shapes = {tuple(m.output_shape) for m in models}
    if len(shapes) != 1:
        raise ValueError(f"the members' outputs differ in shape: {sorted(map(str, shapes))}")
    probs, seconds = [], []
    for m in models:
        t0 = time.perf_counter()
        with no_retracing_warnings():
            probs.append(np.asarray(m.predict(x, batch_size=batch_size, verbose=0), np.float64))
        seconds.append(time.perf_counter() - t0)
    return np.stack(probs), seconds


def evaluate_ensemble(models, x, y, batch_size: int = 256) -> dict:
    """Accuracy of the averaged softmax, and of every member on the same images.

    Returns ``ensemble_accuracy``, ``ensemble_loss`` (cross-entropy of the averaged probabilities),
    ``member_accuracies``, ``mean_member_accuracy``, ``best_member_accuracy`` and ``predict_seconds``
    (each member's inference time on ``x``; the ensemble costs their sum).
    """
    probs, seconds = _member_probs(models, x, batch_size)
    return {**ensemble_scores(probs, y), "predict_seconds": seconds}


def ensemble_scores(member_probs, y) -> dict:
    """The scores of ``evaluate_ensemble`` from the members' class probabilities, shape (members, images, classes)."""
    probs = np.asarray(member_probs, np.float64)
    y = np.asarray(y)
    if probs.ndim != 3 or len(probs) == 0:
        raise ValueError(f"member_probs must have shape (members, images, classes), not {probs.shape}")
    if probs.shape[1] != len(y):
        raise ValueError(f"the members scored {probs.shape[1]} images but y has {len(y)} labels")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a 1-D array of integer labels, not shape {y.shape} and dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= probs.shape[2]):
        raise ValueError(f"y labels must lie in 0..{probs.shape[2] - 1}; found {y.min()}..{y.max()}")
    mean = probs.mean(axis=0)
    members = [float((p.argmax(-1) == y).mean()) for p in probs]
    loss = float(-np.mean(np.log(np.clip(mean[np.arange(len(y)), y], 1e-7, 1.0))))
    return {"ensemble_accuracy": float((mean.argmax(-1) == y).mean()), "ensemble_loss": loss,
            "member_accuracies": members, "mean_member_accuracy": float(np.mean(members)),
            "best_member_accuracy": float(max(members)), "members": len(members)}


def augment_images(x, augment, seed: int = 0) -> np.ndarray:
    """Apply ``augment`` (names from ``AUGMENTATIONS``, in that order) to float images, as in training.

    For looking at augmentation: each call with the same ``seed`` gives the same result.
    """
    augment = (augment,) if isinstance(augment, str) else tuple(augment)
    recipe = check_recipe(Recipe("augment", "sgd", 0.1, augment=augment))
    seed = check_seed(seed)
    x = np.asarray(x, np.float32)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), not {x.shape}")
    for layer in augmentation_layers(recipe, seed):
        x = keras.ops.convert_to_numpy(layer(x, training=True))
    return x


# ----------------------------------------------------------------------------------------------
# The VGG paper's scale jittering and dense, multi-scale evaluation (Simonyan & Zisserman 2015, 3.1-3.2)


def _scale_crop(images, sizes, offsets):
    """``scale_crop`` without the checks, for use inside a model (``sizes``, ``offsets`` are tensors)."""
    h, w = images.shape[1], images.shape[2]
    s = ops.cast(sizes, "float32") / float(min(h, w))
    offsets = ops.cast(offsets, "float32")
    zero = ops.zeros_like(s)
    # Output pixel (col, row) samples the input at ((col + ox + 0.5) / s - 0.5, (row + oy + 0.5) / s - 0.5):
    # pixel col + ox of the image resized by s (half-pixel centres, like keras.ops.image.resize).
    transform = ops.stack([1 / s, zero, (offsets[:, 1] + 0.5) / s - 0.5,
                           zero, 1 / s, (offsets[:, 0] + 0.5) / s - 0.5, zero, zero], axis=1)
    return ops.image.affine_transform(ops.cast(images, "float32"), transform, interpolation="bilinear",
                                      fill_mode="nearest")


def scale_crop(images, sizes, offsets):
    """Rescale each image so its shorter side is ``sizes[i]``, then cut a window of the input's size from it.

    ``images`` is ``(N, H, W, C)``; ``offsets[i] = (row, col)`` is the window's top-left corner in the
    rescaled image, from 0 to (rescaled side - input side). Bilinear, in one resampling with
    ``keras.ops.image.affine_transform``, so it runs on every backend. With S = 64 and CIFAR's 32x32
    images this is "rescale to 64x64, crop 32x32": the paper's training crop at scale S.
    """
    images = np.asarray(images, "float32")
    if images.ndim != 4:
        raise ValueError(f"images must be (N, height, width, channels), got shape {images.shape}")
    n, h, w = images.shape[:3]
    try:
        sizes, offsets = (np.broadcast_to(np.asarray(sizes, "float32"), (n,)),
                          np.broadcast_to(np.asarray(offsets, "float32"), (n, 2)))
    except ValueError:
        raise ValueError(f"sizes must be one number or one per image ({n}) and offsets one (row, col) pair or one per "
                         f"image, not sizes {sizes!r} and offsets {offsets!r}") from None
    if not np.all(np.isfinite(sizes)) or not np.all(np.isfinite(offsets)):
        raise ValueError(f"sizes and offsets must be finite numbers, got sizes {sizes[:4]} and offsets {offsets[:4]}")
    short = min(h, w)
    if np.any(sizes < short):
        raise ValueError(f"sizes must be at least the images' shorter side {short} (no room to crop from a smaller "
                         f"image), got {sizes.min():g}")
    room = np.stack([np.floor(sizes * h / short) - h, np.floor(sizes * w / short) - w], axis=1)
    if np.any(offsets < 0) or np.any(offsets > room):
        bad = int(np.argmax(np.any((offsets < 0) | (offsets > room), axis=1)))
        (r, c), (rr, rc) = offsets[bad].tolist(), room[bad].tolist()
        raise ValueError(f"offset ({r:g}, {c:g}) of image {bad} lies outside (0..{rr:g}, 0..{rc:g}), "
                         f"the room left by rescaling to {sizes[bad]:g}")
    return ops.convert_to_numpy(_scale_crop(images, sizes, offsets))


@keras.saving.register_keras_serializable(package="vgglab")
class RandomScaleCrop(layers.Layer):
    """Scale jittering: in training, rescale each image to a random S in [min_size, max_size], then crop.

    The paper rescaled ImageNet images so that the shorter side was S (fixed at 256 or 384, or drawn
    from [256, 512] per image) and took a random 224x224 crop. Here the crop is the input's own size,
    so for CIFAR-10 ``RandomScaleCrop(32, 64)`` rescales to S in [32, 64] and crops 32x32. At
    inference the layer passes images through unchanged.
    """

    inference_identity = True  # to_fully_convolutional leaves it out

    def __init__(self, min_size: int, max_size: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        for label, v in (("min_size", min_size), ("max_size", max_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{label} must be a positive integer, not {v!r}")
        if max_size < min_size:
            raise ValueError(f"max_size ({max_size}) must be at least min_size ({min_size})")
        if seed is not None:
            check_seed(seed)
        self.min_size, self.max_size, self.seed = min_size, max_size, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if h is None or w is None:
            raise ValueError("RandomScaleCrop needs a fixed input size (the crop size)")
        if self.min_size < min(h, w):
            raise ValueError(f"min_size {self.min_size} is smaller than the {h}x{w} input: S must be at least "
                             f"the crop size {min(h, w)}")

    def call(self, x, training=False):
        if not training:
            return x
        h, w = x.shape[1], x.shape[2]
        short = float(min(h, w))
        n = ops.shape(x)[0]
        u = keras.random.uniform((n, 3), seed=self.seed_generator)
        sizes = ops.minimum(ops.floor(self.min_size + u[:, 0] * (self.max_size - self.min_size + 1)), self.max_size)
        room_y = ops.floor(sizes * h / short) - h
        room_x = ops.floor(sizes * w / short) - w
        offsets = ops.stack([ops.floor(u[:, 1] * (room_y + 1)), ops.floor(u[:, 2] * (room_x + 1))], axis=1)
        return ops.cast(_scale_crop(x, sizes, ops.minimum(offsets, ops.stack([room_y, room_x], axis=1))), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_size": self.min_size, "max_size": self.max_size, "seed": self.seed}


def dense_scores(model: keras.Model, x, sizes=None, flips=(False,), batch_size: int = 256,
                 chunk: int = 8192) -> dict:
    """Dense evaluation at several test scales Q: ``{(Q, flipped): class probabilities (N, classes)}``.

    For each Q the images are rescaled (bilinear) so that their shorter side is Q, the fully
    convolutional form of ``model`` (``vgglab.models.to_fully_convolutional``) gives a class score map,
    and the map is averaged over its positions. ``flips`` chooses the original (False) and/or the
    horizontally flipped (True) images. Images are rescaled ``chunk`` at a time to bound memory. Average the entries you want to combine, as the paper did
    for flips and for Q in {S-32, S, S+32} or {S_min, (S_min+S_max)/2, S_max}.
    """
    from vgglab.models import to_fully_convolutional

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
                parts.append(fcn.predict(xb, batch_size=batch_size, verbose=0).mean(axis=(1, 2)))
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

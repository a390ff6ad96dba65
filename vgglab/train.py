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
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops


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
    augment: tuple[str, ...] = ()  # "flip", "translate"
    normalization: str = "minus_one_one"
    plateau_patience: int = 2
    plateau_max_drops: int = 3
    batch_size: int | None = None  # None: the profile's batch size
    notes: str = ""


RECIPES: dict[str, Recipe] = {
    # Simonyan & Zisserman (2015), section 3.1: batch 256, momentum 0.9, weight decay 5e-4, dropout 0.5
    # in the model, lr 1e-2 divided by 10 when validation accuracy stops improving (three times).
    "paper": Recipe("paper", "sgd", 1e-2, momentum=0.9, weight_decay=5e-4, schedule="plateau", batch_size=256,
                    notes="VGG 논문의 SGD: 배치 256, 모멘텀 0.9, 가중치 감쇠 5e-4, 학습률 1e-2를 정체 때마다 1/10"),
    # A modern CIFAR recipe: Nesterov SGD, a one-cycle schedule, label smoothing, flip + translate.
    "modern": Recipe("modern", "sgd", 0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="onecycle",
                     label_smoothing=0.1, augment=("flip", "translate"),
                     notes="네스테로프 SGD, 원사이클 학습률, 레이블 스무딩 0.1, 뒤집기+이동 증강"),
    "adam": Recipe("adam", "adam", 1e-3, notes="Adam, 학습률 1e-3 고정"),
}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "plateau", "onecycle")
AUGMENTATIONS = ("flip", "translate")


def check_recipe(recipe: Recipe) -> Recipe:
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a vgglab.train.Recipe, not {type(recipe).__name__} {recipe!r}")
    if recipe.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if recipe.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {recipe.schedule!r}; choose one of {', '.join(SCHEDULES)}")
    bad = [a for a in recipe.augment if a not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation {bad[0]!r}; choose from {', '.join(AUGMENTATIONS)}")
    if not recipe.lr > 0:
        raise ValueError(f"learning rate must be positive, not {recipe.lr!r}")
    if not 0 <= recipe.label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), not {recipe.label_smoothing!r}")
    return recipe


def augmentation_layers(recipe: Recipe, seed: int = 0) -> list:
    """The recipe's augmentation as Keras preprocessing layers (active only in training)."""
    out = []
    if "flip" in recipe.augment:
        out.append(layers.RandomFlip("horizontal", seed=seed, name="augment_flip"))
    if "translate" in recipe.augment:  # up to 4 px each way, like padding by 4 and cropping 32x32
        out.append(layers.RandomTranslation(0.125, 0.125, fill_mode="constant", interpolation="nearest",
                                            seed=seed + 1, name="augment_translate"))
    return out


@keras.saving.register_keras_serializable(package="vgglab")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from peak/10 to ``peak`` over ``warmup`` of the steps, then linear decay to 0."""

    def __init__(self, peak: float, total_steps: int, warmup: float = 0.15):
        self.peak, self.total_steps, self.warmup = float(peak), int(total_steps), float(warmup)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        up = max(1.0, self.warmup * self.total_steps)
        down = max(1.0, self.total_steps - up)
        rising = self.peak * (0.1 + 0.9 * step / up)
        falling = self.peak * ops.maximum(0.0, 1.0 - (step - up) / down)
        return ops.where(step < up, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup": self.warmup}


def make_optimizer(recipe: Recipe, steps: int):
    lr = OneCycle(recipe.lr, steps) if recipe.schedule == "onecycle" else recipe.lr
    kw = {"weight_decay": recipe.weight_decay or None}
    if recipe.optimizer == "sgd":
        opt = keras.optimizers.SGD(lr, momentum=recipe.momentum, nesterov=recipe.nesterov, **kw)
    elif recipe.optimizer == "adam":
        opt = keras.optimizers.Adam(lr, **kw)
    else:
        opt = keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay or 1e-4)
    if recipe.weight_decay:  # decay the kernels only, not biases or batch-norm scales
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def compile_model(model: keras.Model, recipe: Recipe, steps: int) -> keras.Model:
    check_recipe(recipe)
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


def _atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write JSON atomically: readers see the old file or the whole new one, never half of it."""
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8")))


def save_checkpoint(path, model: keras.Model, state: dict) -> None:
    arrays = {f"model_{i}": np.asarray(v) for i, v in enumerate(model.variables)}
    arrays.update({f"opt_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    arrays["state"] = np.array(json.dumps(state))
    _atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def load_checkpoint(path, model: keras.Model) -> dict:
    """Restore model and optimizer variables from ``path``; return the saved loop state."""
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
    """Print one line every ``every`` seconds inside a long epoch (no carriage returns)."""

    def __init__(self, every: float, steps: int, log):
        super().__init__()
        self.every, self.steps, self.log = every, steps, log

    def on_epoch_begin(self, epoch, logs=None):
        self.last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self.log(f"  … 배치 {batch + 1}/{self.steps}")


@dataclass
class FitResult:
    history: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    resumed_from_epoch: int = 0


def _current_lr(model) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


def fit(model: keras.Model, x_train, y_train, x_val=None, y_val=None, *, recipe: Recipe, epochs: int,
        batch_size: int = 128, seed: int = 0, checkpoint: str | os.PathLike | None = None, resume: bool = False,
        progress_every: float | None = None, on_epoch_end=(), log=print) -> FitResult:
    """Train ``model`` (uncompiled) on float inputs and integer labels; one log line per epoch.

    The epoch's shuffling order depends only on ``(seed, epoch)``, so a resumed run sees the same
    batches as an uninterrupted one. With ``checkpoint`` the state is saved after every epoch, and
    then each of ``on_epoch_end`` is called with the number of finished epochs.
    """
    check_recipe(recipe)
    for label, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{label} must be a positive integer, not {v!r}")
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise ValueError(f"x_train has {len(x_train)} images but y_train has {len(y_train)} labels")
    num_classes = model.output_shape[-1]
    if y_train.min() < 0 or y_train.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}; found {y_train.min()}..{y_train.max()}")
    n = len(x_train)
    steps = -(-n // batch_size)
    compile_model(model, recipe, steps * epochs)
    onehot = keras.utils.to_categorical(y_train, num_classes)
    has_val = x_val is not None and len(x_val) > 0
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
        log(f"체크포인트에서 이어서 학습합니다: 에포크 {start}/{epochs} 완료")

    callbacks = [_Progress(progress_every, steps, log)] if progress_every else []
    for epoch in range(start, epochs):
        order = np.random.default_rng([seed, epoch]).permutation(n)
        t0 = time.perf_counter()
        h = model.fit(x_train[order], onehot[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                      callbacks=callbacks)
        dt = time.perf_counter() - t0
        lr = _current_lr(model)  # for one-cycle: the rate at the epoch's last step
        result.train_seconds += dt
        history["loss"].append(float(h.history["loss"][-1]))
        history["accuracy"].append(float(h.history["accuracy"][-1]))
        if has_val:
            v = model.evaluate(x_val, val_onehot, batch_size=max(batch_size, 256), verbose=0, return_dict=True)
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
    ips = history.get("images_per_second", [])
    if not ips:
        return 0.0
    return float(np.median(ips[1:] if len(ips) > 1 else ips))


def evaluate(model: keras.Model, x, y, batch_size: int = 256) -> dict:
    """Test loss, accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    num_classes = model.output_shape[-1]
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    pred = probs.argmax(-1)
    y = np.asarray(y)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0))))
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (y, pred), 1)
    return {"test_loss": loss, "test_accuracy": float((pred == y).mean()), "confusion_matrix": cm.tolist()}

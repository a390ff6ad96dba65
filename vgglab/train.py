"""One training loop for every chapter and the CLI: ``fit`` trains one epoch at a time, with checkpoints.

After every epoch ``fit`` logs one line, steps a plateau schedule and writes a checkpoint atomically. A checkpoint
holds all model variables (weights, batch-norm statistics, random-seed state of dropout and augmentation layers),
the optimizer's variables (step count, momentum, learning rate), the plateau state and the history, so
``resume=True`` continues where an interrupted run stopped. Recipes are in ``vgglab.recipes``, augmentation in
``vgglab.augment``, evaluation in ``vgglab.evaluate``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from vgglab import distribute
from vgglab.augment import epoch_augment
from vgglab.checks import check_xy, keras_model, positive_int
from vgglab.files import atomic_write
from vgglab.recipes import Recipe, check_recipe, make_optimizer
from vgglab.runtime import check_seed


def compile_model(model: keras.Model, recipe: Recipe, steps: int) -> keras.Model:
    keras_model(model)
    model.compile(optimizer=make_optimizer(recipe, steps),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")], jit_compile=_jit_compile())
    return model


def _jit_compile():
    """XLA for TensorFlow only where a GPU is visible. On a CPU, XLA compiles each model's train, evaluate and predict
    functions and did not train faster on two cores; JAX needs jit, torch resolves "auto" itself."""
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
    too, but not the optimiser's or those a layer lists in ``unaveraged_variables()``."""

    def __init__(self, start: int, total_steps: int, steps_per_epoch: int, every: int = 5, base: float = 0.95,
                 power: float = 3.0):
        super().__init__()
        self.start, self.total, self.per_epoch = start, total_steps, steps_per_epoch
        self.every, self.base, self.power = every, base, power
        self.epoch, self.average = 0, None

    def _variables(self):
        skip = {id(v) for layer in self.model.layers for v in getattr(layer, "unaveraged_variables", list)()}
        return [v for v in self.model.variables if "float" in str(v.dtype) and id(v) not in skip]

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
    x_train, y_train = check_xy(model, x_train, y_train, "x_train", "y_train")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    has_val = x_val is not None and len(x_val) > 0
    if has_val:
        x_val, y_val = check_xy(model, x_val, y_val, "x_val", "y_val")
    val_batch = max(batch_size, 256)
    if distribution is not None:
        distribute.check_model(distribution, model)
        val_batch = distribute.check_batches(distribution, batch_size, len(x_train), len(x_val) if has_val else 0)
        devices = distribute.replicas(distribution)
        log(f"데이터 병렬: {distribute.kind(distribution)}, 장치 {devices}개, 장치마다 배치 {batch_size // devices}장")
    run = _Loop(x_train, y_train, x_val if has_val else None, y_val if has_val else None, recipe, epochs, batch_size,
                val_batch, seed, checkpoint, resume, progress_every, tuple(on_epoch_end), log)
    with distribute.scope(distribution):
        return _fit(model, run)


@dataclass(frozen=True)
class _Loop:
    """What ``fit`` checked, for the loop: the data, the recipe and the run's settings."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    recipe: Recipe
    epochs: int
    batch_size: int
    val_batch: int
    seed: int
    checkpoint: str | os.PathLike | None
    resume: bool
    progress_every: float | None
    on_epoch_end: tuple
    log: object


def _fit(model, run: _Loop) -> FitResult:
    log, recipe, epochs, has_val = run.log, run.recipe, run.epochs, run.x_val is not None
    num_classes = model.output_shape[-1]
    n = len(run.x)
    steps = -(-n // run.batch_size)
    compile_model(model, recipe, steps * epochs)
    onehot = keras.utils.to_categorical(run.y, num_classes)
    val_onehot = keras.utils.to_categorical(run.y_val, num_classes) if has_val else None

    history = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
                               "images_per_second")}
    plateau = {"best": -1.0, "wait": 0, "drops": 0}
    start, result = 0, FitResult(history)
    if run.checkpoint is not None and run.resume and Path(run.checkpoint).exists():
        state = load_checkpoint(run.checkpoint, model)
        start, plateau, result.history = state["epoch"], state["plateau"], state["history"]
        history = result.history
        result.train_seconds, result.resumed_from_epoch = state.get("train_seconds", 0.0), start
        log(f"{Path(run.checkpoint).parent}의 체크포인트에서 이어서 학습합니다: 에포크 {start}/{epochs}까지 끝난 상태")

    callbacks = [_Progress(run.progress_every, steps, log, n)] if run.progress_every else []
    lookahead = None
    if recipe.lookahead_from is not None:
        lookahead = Lookahead(recipe.lookahead_from, steps * epochs, steps)
        callbacks.append(lookahead)
    for epoch in range(start, epochs):
        order = np.random.default_rng([run.seed, epoch]).permutation(n)
        t0 = time.perf_counter()
        if lookahead is not None:
            lookahead.set_model(model)
            lookahead.begin_epoch(epoch)
        for layer in model.layers:  # layers that change with the epoch (the speed run's whitening bias freezes)
            if callable(getattr(layer, "begin_epoch", None)):
                layer.begin_epoch(epoch)
        x_epoch = epoch_augment(run.x, recipe.augment, run.seed, epoch)
        h = model.fit(x_epoch[order], onehot[order], batch_size=run.batch_size, epochs=1, shuffle=False, verbose=0,
                      callbacks=callbacks)
        dt = time.perf_counter() - t0
        lr = _current_lr(model)  # for one-cycle: the rate at the epoch's last step
        result.train_seconds += dt
        history["loss"].append(float(h.history["loss"][-1]))
        history["accuracy"].append(float(h.history["accuracy"][-1]))
        if has_val:
            v = model.evaluate(run.x_val, val_onehot, batch_size=run.val_batch, verbose=0, return_dict=True)
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
        if run.checkpoint is not None:
            save_checkpoint(run.checkpoint, model, {"epoch": epoch + 1, "plateau": plateau, "history": history,
                                                    "train_seconds": result.train_seconds})
        for callback in run.on_epoch_end:
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
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict such as FitResult.history, not {type(history).__name__}")
    ips = history.get("images_per_second", [])
    if not ips:
        return 0.0
    return float(np.median(ips[1:] if len(ips) > 1 else ips))

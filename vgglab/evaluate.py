"""Evaluation: test accuracy with test-time augmentation, the confusion matrix, and ensembles of trained models."""

from __future__ import annotations

import contextlib
import logging
import time

import keras
import numpy as np

from vgglab import distribute
from vgglab.checks import check_xy, keras_model, positive_int
from vgglab.recipes import TTA


def evaluate(model: keras.Model, x, y, batch_size: int = 256, tta=(), probabilities: bool = False) -> dict:
    """Test loss, accuracy and the confusion matrix (rows: true class, columns: predicted).

    ``tta=("flip",)`` averages the class probabilities of each image and its mirror image (test-time augmentation)
    and also returns ``test_accuracy_no_tta``, the accuracy of the unflipped images alone. ``"translate"`` gives half
    the weight to the images shifted by one pixel up-left and down-right (each with its mirror under ``"flip"``).
    ``probabilities=True`` also returns them, as ``"probabilities"`` (N, classes).
    """
    x, y = check_xy(keras_model(model), x, y)
    positive_int(batch_size, "batch_size")
    num_classes = model.output_shape[-1]
    if isinstance(tta, str):
        raise TypeError(f"tta must be a tuple of names such as ('flip',), not {tta!r}")
    bad = [a for a in tta if a not in TTA]
    if bad:
        raise ValueError(f"unknown test-time augmentation {bad[0]!r}; choose from {', '.join(TTA)}")
    x = np.asarray(x)

    def view(images):  # one view's probabilities, averaged with its mirror image's under "flip"
        p = distribute.predict(model, images, batch_size)
        return (p + distribute.predict(model, images[:, :, ::-1], batch_size)) / 2 if "flip" in tta else p

    plain = {}
    if tta:  # the accuracy without TTA comes from the first pass
        probs = distribute.predict(model, x, batch_size)
        plain["test_accuracy_no_tta"] = float((probs.argmax(-1) == y).mean())
        if "flip" in tta:
            probs = (probs + distribute.predict(model, x[:, :, ::-1], batch_size)) / 2
    else:
        probs = distribute.predict(model, x, batch_size)
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

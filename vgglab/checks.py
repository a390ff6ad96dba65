"""The few argument checks that several modules share. A leaf module: it imports nothing of vgglab.

Each raises an error that names the bad value; entry points call them once, at the boundary.
"""

from __future__ import annotations

import keras
import numpy as np


def positive_int(value, label: str) -> int:
    """``value`` as an int, or a ValueError naming it: a positive integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{label} must be a positive integer, not {value!r}")
    return int(value)


def keras_model(model) -> keras.Model:
    """``model`` itself, or a TypeError naming what it is instead of a Keras model."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a Keras model, not {type(model).__name__}")
    return model


def keras_object(kind: str, getter, value):
    """``getter(value)`` (say ``keras.activations.get``), or a ValueError naming the unknown ``kind`` and value."""
    try:
        return getter(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"unknown {kind} {value!r}: {e}") from None


def check_xy(model: keras.Model, x, y, x_name: str = "x", y_name: str = "y") -> tuple[np.ndarray, np.ndarray]:
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

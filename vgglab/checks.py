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

"""Optimisers on toy surfaces: the real Keras optimisers, stepped on a 2-D ``keras.Variable``.

``trajectory(keras.optimizers.SGD(0.05, momentum=0.9), SURFACES["ravine"].grad, (-4.0, 1.0), 100)``
returns the 101 points the optimiser visits, so a chapter can draw the paths of SGD, momentum,
Nesterov and Adam over a contour plot and check them against the update rules written by hand.
The gradients of the toy surfaces are analytic (NumPy), so no backend-specific autodiff is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
from keras import ops


@dataclass(frozen=True)
class Surface:
    """A 2-D loss surface: its value and gradient (NumPy, on arrays whose first axis is (x, y))."""

    name: str
    title: str
    f: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    start: tuple[float, float]
    extent: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max for a contour plot
    minima: tuple[tuple[float, float], ...]


def _ravine_f(p):
    p = np.asarray(p, dtype=np.float64)
    return 0.5 * (p[0] ** 2 + RAVINE_CURVATURE * p[1] ** 2)


def _ravine_grad(p):
    p = np.asarray(p, dtype=np.float64)
    return np.stack([p[0], RAVINE_CURVATURE * p[1]])


def _saddle_f(p):
    p = np.asarray(p, dtype=np.float64)
    return p[0] ** 2 - p[1] ** 2 / 2 + p[1] ** 4 / 4


def _saddle_grad(p):
    p = np.asarray(p, dtype=np.float64)
    return np.stack([2 * p[0], p[1] ** 3 - p[1]])


RAVINE_CURVATURE = 25.0  # f = (x^2 + 25 y^2) / 2: curvatures 1 and 25, condition number 25

SURFACES: dict[str, Surface] = {
    # A narrow valley: the Hessian is diag(1, 25), so the steepest direction (y) is 25 times as curved as the
    # direction that leads to the minimum (x). Gradient descent must keep lr < 2/25 and then crawls along x.
    "ravine": Surface("ravine", "골짜기: f = (x² + 25y²) / 2", _ravine_f, _ravine_grad, (-4.0, 1.0),
                      (-4.5, 1.5, -1.5, 1.5), ((0.0, 0.0),)),
    # A saddle at the origin (curving up along x, down along y) between two minima at (0, -1) and (0, 1).
    # Started next to the ridge, the gradient along y is tiny at first: plain SGD lingers near the saddle.
    "saddle": Surface("saddle", "안장점: f = x² - y²/2 + y⁴/4", _saddle_f, _saddle_grad, (1.5, 1e-3),
                      (-1.8, 1.8, -1.6, 1.6), ((0.0, -1.0), (0.0, 1.0))),
}


def get_surface(name: "str | Surface") -> Surface:
    if isinstance(name, Surface):
        return name
    if not isinstance(name, str) or name not in SURFACES:
        raise ValueError(f"unknown surface {name!r}; choose one of {', '.join(SURFACES)}")
    return SURFACES[name]


def trajectory(optimizer, grad_fn, start, steps: int) -> np.ndarray:
    """The points a Keras optimiser visits when it minimises a function with gradient ``grad_fn``.

    ``optimizer`` is a fresh ``keras.optimizers.Optimizer`` (it keeps its slots, e.g. momentum, for the
    one variable it is given here). ``grad_fn`` maps a point (NumPy array of ``start``'s shape) to the
    gradient there. Returns an array of shape ``(steps + 1, *start.shape)``: the start and every step.
    If the optimiser diverges (a non-finite point), the path ends at the last finite point.
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"optimizer must be a keras.optimizers.Optimizer, not {type(optimizer).__name__}")
    if optimizer.built:
        raise ValueError("optimizer has already been used; pass a fresh one so its state (momentum, ...) starts at 0")
    if not callable(grad_fn):
        raise TypeError(f"grad_fn must be callable (point -> gradient), not {type(grad_fn).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, not {steps!r}")
    x0 = np.asarray(start, dtype=np.float32)
    if x0.ndim != 1 or x0.size == 0 or not np.all(np.isfinite(x0)):
        raise ValueError(f"start must be a non-empty 1-D sequence of finite numbers, not {start!r}")
    var = keras.Variable(x0, dtype="float32", name="point")
    path = [x0.copy()]
    for _ in range(int(steps)):
        g = np.asarray(grad_fn(path[-1].astype(np.float64)), dtype=np.float64)
        if g.shape != x0.shape:
            raise ValueError(f"grad_fn returned shape {g.shape}; expected {x0.shape} like the start point")
        if not np.all(np.abs(g) < np.finfo(np.float32).max):  # inf or nan, or too large for float32
            break
        g = g.astype(np.float32)
        optimizer.apply_gradients([(ops.convert_to_tensor(g), var)])
        point = np.asarray(ops.convert_to_numpy(var), dtype=np.float32).copy()
        if not np.all(np.isfinite(point)):
            break
        path.append(point)
    return np.stack(path)


def steps_to_reach(path: np.ndarray, f: Callable[[np.ndarray], np.ndarray], level: float) -> int | None:
    """The first step at which ``f`` (a surface's value) falls below ``level``; None if it never does."""
    path = np.asarray(path, dtype=np.float64)
    if path.ndim != 2:
        raise ValueError(f"path must be a (steps + 1, dims) array, not shape {path.shape}")
    if not callable(f):
        raise TypeError(f"f must be callable (points -> values), such as SURFACES['ravine'].f, not {type(f).__name__}")
    if isinstance(level, bool) or not isinstance(level, (int, float, np.number)) or not np.isfinite(level):
        raise ValueError(f"level must be a finite number, not {level!r}")
    below = np.flatnonzero(np.asarray(f(path.T)) < level)
    return int(below[0]) if len(below) else None

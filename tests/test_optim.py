"""vgglab.optim: Keras optimisers stepped on toy surfaces, checked against the update rules by hand."""

import keras
import numpy as np
import pytest

from vgglab import optim


def _quadratic(a):
    return lambda p: a * np.asarray(p)  # gradient of f = a * x^2 / 2


def test_sgd_on_a_quadratic_is_the_closed_form():
    a, lr, x0 = 3.0, 0.1, 2.0
    path = optim.trajectory(keras.optimizers.SGD(lr), _quadratic(a), [x0], 20)
    assert path.shape == (21, 1)
    expected = x0 * (1 - lr * a) ** np.arange(21)
    np.testing.assert_allclose(path[:, 0], expected, rtol=1e-5, atol=1e-7)


def test_momentum_first_steps_by_hand():
    a, lr, mu, x0 = 2.0, 0.1, 0.9, 1.0
    path = optim.trajectory(keras.optimizers.SGD(lr, momentum=mu), _quadratic(a), [x0], 3)
    v, x, expected = 0.0, x0, [x0]
    for _ in range(3):  # Keras: v <- mu v - lr g;  x <- x + v
        v = mu * v - lr * a * x
        x = x + v
        expected.append(x)
    np.testing.assert_allclose(path[:, 0], expected, rtol=1e-5)
    assert np.isclose(path[1, 0], x0 - lr * a * x0) and np.isclose(path[2, 0], 0.8 - 0.9 * 0.2 - 0.1 * 2 * 0.8)


def test_nesterov_first_steps_by_hand():
    a, lr, mu, x0 = 2.0, 0.1, 0.9, 1.0
    path = optim.trajectory(keras.optimizers.SGD(lr, momentum=mu, nesterov=True), _quadratic(a), [x0], 3)
    v, x, expected = 0.0, x0, [x0]
    for _ in range(3):  # Keras: v <- mu v - lr g;  x <- x + mu v - lr g
        g = a * x
        v = mu * v - lr * g
        x = x + mu * v - lr * g
        expected.append(x)
    np.testing.assert_allclose(path[:, 0], expected, rtol=1e-5)
    assert np.isclose(path[1, 0], x0 - lr * (1 + mu) * a * x0)


def test_adam_first_step_is_lr_times_sign():
    grads = np.array([2e-2, -50.0])  # wildly different scales: Adam's first step ignores them
    path = optim.trajectory(keras.optimizers.Adam(0.01), lambda p: grads, [0.0, 0.0], 1)
    np.testing.assert_allclose(path[1], -0.01 * np.sign(grads), rtol=1e-3)


def test_adam_matches_the_update_rule():
    b1, b2, lr, eps = 0.9, 0.999, 0.05, 1e-7
    path = optim.trajectory(keras.optimizers.Adam(lr, beta_1=b1, beta_2=b2, epsilon=eps), _quadratic(4.0), [1.0], 5)
    m = v = 0.0
    x, expected = 1.0, [1.0]
    for t in range(1, 6):
        g = 4.0 * x
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        expected.append(x)
    np.testing.assert_allclose(path[:, 0], expected, rtol=1e-4)


def test_sgd_diverges_past_two_over_curvature_and_the_path_stops_at_the_last_finite_point():
    a = optim.RAVINE_CURVATURE
    grad = optim.SURFACES["ravine"].grad
    stable = optim.trajectory(keras.optimizers.SGD(1.9 / a), grad, (0.0, 1.0), 50)
    unstable = optim.trajectory(keras.optimizers.SGD(2.1 / a), grad, (0.0, 1.0), 50)
    assert abs(stable[-1, 1]) < abs(stable[0, 1]) and abs(unstable[-1, 1]) > abs(unstable[0, 1])
    huge = optim.trajectory(keras.optimizers.SGD(10.0), _quadratic(1e30), [1.0], 10)
    assert len(huge) < 11 and np.all(np.isfinite(huge))


@pytest.mark.parametrize("name", list(optim.SURFACES))
def test_surface_gradients_match_finite_differences(name):
    s = optim.SURFACES[name]
    h = 1e-6
    for p in ([0.3, -0.7], [1.2, 0.4], list(s.start)):
        p = np.array(p)
        numeric = [(s.f(p + h * e) - s.f(p - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(s.grad(p), numeric, rtol=1e-5, atol=1e-6)
    for m in s.minima:
        np.testing.assert_allclose(s.grad(np.array(m)), 0.0, atol=1e-12)
    # f and grad also work on a grid (first axis: x, y), as a contour plot uses them
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 3)))
    assert s.f(grid).shape == (3, 4) and s.grad(grid).shape == (2, 3, 4)


def test_steps_to_reach():
    s = optim.SURFACES["ravine"]
    path = optim.trajectory(keras.optimizers.SGD(0.05), s.grad, s.start, 200)
    k = optim.steps_to_reach(path, s.f, 1e-2)
    assert k is not None and s.f(path[k]) < 1e-2 <= s.f(path[k - 1])
    assert optim.steps_to_reach(path[:3], s.f, 1e-2) is None
    with pytest.raises(ValueError, match="path must be"):
        optim.steps_to_reach(path[0], s.f, 1.0)


def test_bad_arguments():
    grad = optim.SURFACES["ravine"].grad
    with pytest.raises(TypeError, match="keras.optimizers.Optimizer"):
        optim.trajectory("sgd", grad, (0.0, 1.0), 3)
    with pytest.raises(ValueError, match="steps"):
        optim.trajectory(keras.optimizers.SGD(0.1), grad, (0.0, 1.0), -1)
    with pytest.raises(ValueError, match="start"):
        optim.trajectory(keras.optimizers.SGD(0.1), grad, [[0.0, 1.0]], 3)
    with pytest.raises(ValueError, match="shape"):
        optim.trajectory(keras.optimizers.SGD(0.1), lambda p: np.zeros(3), (0.0, 1.0), 3)
    used = keras.optimizers.SGD(0.1)
    optim.trajectory(used, grad, (0.0, 1.0), 1)
    with pytest.raises(ValueError, match="fresh"):
        optim.trajectory(used, grad, (0.0, 1.0), 1)
    with pytest.raises(ValueError, match="unknown surface"):
        optim.get_surface("bowl")
    assert optim.get_surface("saddle") is optim.SURFACES["saddle"]


def test_plot_trajectories():
    import matplotlib

    matplotlib.use("Agg")
    from vgglab.plots import plot_trajectories

    s = optim.SURFACES["ravine"]
    path = optim.trajectory(keras.optimizers.SGD(0.05), s.grad, s.start, 5)
    ax = plot_trajectories("ravine", {"SGD": path, "same": path})
    assert len(ax.get_legend().get_texts()) == 2 and ax.get_title() == s.title
    with pytest.raises(ValueError, match="shape"):
        plot_trajectories(s, {"bad": path[:, :1]})
    with pytest.raises(ValueError, match="non-empty"):
        plot_trajectories(s, {})

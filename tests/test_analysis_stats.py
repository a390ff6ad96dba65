"""Per-layer gradients, activation statistics and dead ReLUs (vgglab.analysis), checked on hand-sized models."""

import keras
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from vgglab import analysis as A  # noqa: E402
from vgglab import plots  # noqa: E402
from vgglab.registry import EXPERIMENTS, NORMAL_001, VGGBuild  # noqa: E402
from vgglab.models import vgg  # noqa: E402
from vgglab.runtime import PROFILES, set_seed  # noqa: E402


def _dense_net(w1, b1, w2, b2, activation="relu"):
    """x (3) -> hidden Dense(4, activation) -> Dense(2, softmax), with the given weights."""
    inp = keras.Input((3,), name="input")
    h = keras.layers.Dense(4, activation=activation, name="hidden")(inp)
    out = keras.layers.Dense(2, activation="softmax", name="out")(h)
    model = keras.Model(inp, out)
    model.get_layer("hidden").set_weights([w1, b1])
    model.get_layer("out").set_weights([w2, b2])
    return model


def _manual_gradients(x, y, w1, b1, w2, b2):
    """Forward and backward by hand for ReLU hidden units and softmax cross-entropy, averaged over the batch."""
    z = x @ w1 + b1
    h = np.maximum(z, 0)
    logits = h @ w2 + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(x)
    d_logits = (p - np.eye(2)[y]) / n
    dw2 = h.T @ d_logits
    dz = (d_logits @ w2.T) * (z > 0)
    dw1 = x.T @ dz
    loss = -np.log(p[np.arange(n), y]).mean()
    return loss, dw1, dz.sum(0), dw2, d_logits.sum(0)


@pytest.fixture
def tiny():
    rng = np.random.default_rng(1)
    w1, b1 = rng.normal(size=(3, 4)).astype("float32"), np.array([0.1, -0.2, 0.3, 0.0], "float32")
    w2, b2 = rng.normal(size=(4, 2)).astype("float32"), np.array([0.05, -0.05], "float32")
    x = rng.normal(size=(6, 3)).astype("float32")
    y = np.array([0, 1, 1, 0, 1, 0])
    return x, y, (w1, b1, w2, b2)


def test_loss_gradients_match_a_hand_computation(tiny):
    x, y, weights = tiny
    model = _dense_net(*weights)
    loss, grads = A.loss_gradients(model, x, y)
    want_loss, *want = _manual_gradients(x.astype("float64"), y, *[w.astype("float64") for w in weights])
    assert [tuple(g.shape) for g in grads] == [(3, 4), (4,), (4, 2), (2,)]
    assert loss == pytest.approx(want_loss, rel=1e-5)
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    # one-hot labels give the same gradients as integer labels
    _, grads_onehot = A.loss_gradients(model, x, np.eye(2)[y])
    for g, h in zip(grads, grads_onehot):
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-7)
    # nothing was updated
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))


def test_loss_gradients_match_finite_differences(tiny):
    x, y, weights = tiny
    model = _dense_net(*weights, activation="tanh")
    _, grads = A.loss_gradients(model, x, y)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    def loss_at(w1):
        model.get_layer("hidden").set_weights([w1, weights[1]])
        return float(keras.ops.convert_to_numpy(loss_fn(y, model(x))))

    eps = 1e-2
    for i, j in [(0, 0), (1, 2), (2, 3)]:
        plus, minus = weights[0].copy(), weights[0].copy()
        plus[i, j] += eps
        minus[i, j] -= eps
        assert grads[0][i, j] == pytest.approx((loss_at(plus) - loss_at(minus)) / (2 * eps), rel=2e-2, abs=1e-4)


def test_gradient_norms_are_the_kernel_gradient_norms(tiny):
    x, y, weights = tiny
    model = _dense_net(*weights)
    rows = A.gradient_norms(model, x, y)
    _, dw1, _, dw2, _ = _manual_gradients(x.astype("float64"), y, *[w.astype("float64") for w in weights])
    assert [(r["name"], r["kind"], r["shape"]) for r in rows] == [("hidden", "Dense", (3, 4)), ("out", "Dense", (4, 2))]
    for r, g, w in zip(rows, (dw1, dw2), (weights[0], weights[2])):
        assert r["norm"] == pytest.approx(np.linalg.norm(g), rel=1e-4)
        assert r["rms"] == pytest.approx(np.linalg.norm(g) / np.sqrt(g.size), rel=1e-4)
        assert r["weight_rms"] == pytest.approx(np.sqrt((w.astype("float64") ** 2).mean()), rel=1e-6)
        np.testing.assert_allclose(r["channel_norms"], np.linalg.norm(g, axis=0), rtol=1e-4)


def test_gradient_norms_of_a_conv_net_follow_layer_order():
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = keras.layers.Dense(3, activation="softmax", name="head")(h)
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(5, 8, 8, 3)).astype("float32")
    before = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    rows = A.gradient_norms(model, x, np.array([0, 1, 2, 0, 1]), training=True)
    # batch normalisation ran with batch statistics, but its moving averages are left as they were
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(v)) for a, v in zip(before, model.non_trainable_variables))
    assert [r["name"] for r in rows] == ["c1", "head"]
    assert rows[0]["shape"] == (3, 3, 3, 4) and rows[1]["shape"] == (4 * 4 * 4, 3)
    assert all(r["norm"] > 0 for r in rows)


def test_sigmoid_gradients_vanish_toward_the_input_and_relu_he_ones_do_not():
    """The claim of the chapter on activation functions, on the 10-convolution VGG at width 0.125."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 10
    ratios = {}
    for act, init in (("sigmoid", "glorot_uniform"), ("relu", "he_normal")):
        set_seed(0)
        m = vgg("B", input_shape=(32, 32, 3), num_classes=10, activation=act, initializer=init, dropout=0.0,
                width=0.125, head="small")
        rows = A.gradient_norms(m, x, y)
        assert len(rows) == 12 and rows[0]["name"] == "block1_conv1" and rows[-1]["name"] == "predictions"
        ratios[act] = rows[0]["norm"] / rows[-1]["norm"]
    assert ratios["sigmoid"] < 1e-4 < 1e-2 < ratios["relu"], ratios


def test_activation_stats_by_hand():
    inp = keras.Input((2,), name="input")
    sig = keras.layers.Dense(2, activation="sigmoid", name="sig")(inp)
    relu = keras.layers.Dense(2, activation="relu", name="relu")(inp)
    lin = keras.layers.Dense(2, name="lin")(inp)
    out = keras.layers.Dense(2, activation="softmax", name="out")(keras.layers.Concatenate(name="cat")([sig, relu, lin]))
    model = keras.Model(inp, out)
    zeros = np.zeros((2, 2), "float32")
    model.get_layer("sig").set_weights([zeros, np.array([0.0, 10.0], "float32")])  # outputs 0.5 and sigmoid(10)
    model.get_layer("relu").set_weights([np.array([[1.0, 0.0], [0.0, 0.0]], "float32"), np.array([0.0, -1.0], "float32")])
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [3.0, 0.0], [-3.0, 0.0]], "float32")

    rows = A.activation_stats(model, x)
    assert [(r["name"], r["activation"]) for r in rows] == [("sig", "sigmoid"), ("relu", "relu")]  # not lin, out
    s = 1 / (1 + np.exp(-10.0))
    sig_row, relu_row = rows
    assert sig_row["mean"] == pytest.approx((0.5 + s) / 2, rel=1e-6)
    assert sig_row["std"] == pytest.approx((s - 0.5) / 2, rel=1e-4)
    assert sig_row["rms"] == pytest.approx(np.sqrt((0.25 + s * s) / 2), rel=1e-6)
    assert sig_row["zero"] == 0 and sig_row["saturated"] == 0.5  # sigmoid'(10) = 4.5e-5 < 0.01 * 0.25
    assert sig_row["mean_derivative"] == pytest.approx((0.25 + s * (1 - s)) / 2, rel=1e-4)
    # ReLU: unit 1 is max(x, 0) = 1, 0, 3, 0; unit 2 has bias -1 and is always 0
    values = np.array([1, 0, 3, 0, 0, 0, 0, 0], float)
    assert relu_row["mean"] == pytest.approx(values.mean()) and relu_row["std"] == pytest.approx(values.std(), rel=1e-6)
    assert relu_row["zero"] == relu_row["saturated"] == 6 / 8 and relu_row["mean_derivative"] == 2 / 8
    # image-to-image spread: the sigmoid layer ignores its input; ReLU unit 1 varies as [1, 0, 3, 0], unit 2 not at all
    assert sig_row["input_std"] == 0.0
    assert relu_row["input_std"] == pytest.approx(np.sqrt((np.var([1, 0, 3, 0]) + 0) / 2), rel=1e-6)

    in_batches = A.activation_stats(model, x, layers=["relu"], batch_size=3)[0]  # batches of 3 and 1 images
    assert all(in_batches[k] == pytest.approx(relu_row[k], rel=1e-9, abs=1e-12)
               for k in ("mean", "std", "rms", "input_std", "zero", "saturated", "mean_derivative"))
    named = A.activation_stats(model, x, layers=["lin", "out"], batch_size=3)
    assert [r["activation"] for r in named] == [None, "softmax"]
    assert np.isnan(named[0]["saturated"]) and np.isnan(named[1]["mean_derivative"])
    assert named[1]["mean"] == pytest.approx(0.5, rel=1e-6)  # two softmax probabilities per image
    again = A.activation_stats(model, x, layers="sig")[0]
    assert again["name"] == "sig" and again["mean"] == pytest.approx(sig_row["mean"], rel=1e-6)


def test_training_mode_lets_batch_norm_rescale_a_small_signal():
    inp = keras.Input((8, 8, 3), name="input")
    h = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv",
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=1))(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Activation("relu", name="act")(h)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(h))
    x = np.random.default_rng(0).normal(size=(64, 8, 8, 3)).astype("float32")
    infer = A.activation_stats(model, x)[0]
    train = A.activation_stats(model, x, training=True, batch_size=64)[0]
    assert infer["std"] < 0.3  # moving statistics are still 0 and 1: nothing is rescaled
    # batch statistics: each channel of z is standardised, and ReLU of a unit normal has std sqrt(1/2 - 1/(2 pi))
    assert train["std"] == pytest.approx(np.sqrt(0.5 - 0.5 / np.pi), rel=0.1)
    assert train["zero"] == pytest.approx(0.5, abs=0.05)


def test_tanh_and_leaky_relu_derivatives():
    inp = keras.Input((1,), name="input")
    t = keras.layers.Dense(1, activation="tanh", name="t", kernel_initializer="ones")(inp)
    lk = keras.layers.LeakyReLU(negative_slope=0.1, name="leaky")(inp)
    model = keras.Model(inp, keras.layers.Concatenate()([t, lk]))
    x = np.array([[0.0], [10.0], [-2.0], [2.0]], "float32")
    rows = {r["name"]: r for r in A.activation_stats(model, x, layers=["t", "leaky"])}
    d = 1 - np.tanh(x[:, 0].astype("float64")) ** 2
    assert rows["t"]["mean_derivative"] == pytest.approx(d.mean(), rel=1e-5)
    assert rows["t"]["saturated"] == 0.25  # only tanh(10); 1 - tanh(2)^2 = 0.07 is above 0.01
    assert rows["leaky"]["mean_derivative"] == pytest.approx((0.1 + 1 + 0.1 + 1) / 4)
    assert rows["leaky"]["saturated"] == 0 and rows["leaky"]["zero"] == 0.25


def test_activation_of_reads_layers_and_functions():
    L = keras.layers
    assert A.activation_of(L.Dense(2, activation="relu")) == ("relu", 0.0)
    assert A.activation_of(L.Conv2D(2, 3, activation="sigmoid")) == ("sigmoid", 0.0)
    assert A.activation_of(L.Dense(2)) == (None, 0.0)
    assert A.activation_of(L.Activation("tanh")) == ("tanh", 0.0)
    assert A.activation_of(L.Dense(2, activation="leaky_relu")) == ("leaky_relu", 0.2)
    assert A.activation_of(L.LeakyReLU(negative_slope=0.05)) == ("leaky_relu", 0.05)
    assert A.activation_of(L.ReLU()) == ("relu", 0.0)
    assert A.activation_of(L.ReLU(negative_slope=0.3)) == ("leaky_relu", 0.3)
    assert A.activation_of(L.MaxPooling2D()) == (None, 0.0)


def _conv_relu(bias, activation="relu"):
    inp = keras.Input((6, 6, 2), name="input")
    out = keras.layers.Conv2D(len(bias), 3, padding="same", activation=activation, name="conv")(inp)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(out))
    model.get_layer("conv").set_weights([np.full((3, 3, 2, len(bias)), 0.01, "float32"), np.array(bias, "float32")])
    return model


def test_a_relu_with_a_very_negative_bias_is_dead():
    x = np.random.default_rng(0).uniform(-1, 1, size=(20, 6, 6, 2)).astype("float32")
    row = A.dead_unit_fraction(_conv_relu([-100.0, -100.0]), x)[0]
    assert {k: row[k] for k in ("name", "activation", "channels", "dead", "fraction")} == {
        "name": "conv", "activation": "relu", "channels": 2, "dead": 2, "fraction": 1.0}
    model = _conv_relu([-100.0, 100.0, 0.0, -100.0])
    row = A.dead_unit_fraction(model, x, batch_size=7)[0]
    assert (row["dead"], row["fraction"]) == (2, 0.5)  # the channel with bias 0 is alive for some input
    assert row["dead_mask"].tolist() == [True, False, False, True]
    # a dead channel gets exactly zero gradient: nothing flows back through it
    g = A.gradient_norms(model, x, np.ones((len(x), 4)), loss="mse")[0]["channel_norms"]
    assert g[0] == g[3] == 0 and g[1] > 0
    stats = A.activation_stats(_conv_relu([-100.0, -100.0]), x)[0]
    assert stats["zero"] == stats["saturated"] == 1.0 and stats["mean_derivative"] == 0.0
    # with leaky ReLU the same channels are inactive everywhere, but their derivative is the slope, not 0
    leaky = _conv_relu([-100.0, 100.0], activation="leaky_relu")
    assert A.dead_unit_fraction(leaky, x)[0]["dead"] == 1
    assert A.activation_stats(leaky, x)[0]["mean_derivative"] == pytest.approx((0.2 + 1.0) / 2)
    assert (A.gradient_norms(leaky, x, np.ones((len(x), 2)), loss="mse")[0]["channel_norms"] > 0).all()


def test_bad_arguments_are_named():
    x = np.zeros((4, 6, 6, 2), "float32")
    model = _conv_relu([0.0])
    with pytest.raises(TypeError, match="Keras model"):
        A.activation_stats("model", x)
    with pytest.raises(ValueError, match=r"shape \(N, 6, 6, 2\)"):
        A.activation_stats(model, np.zeros((4, 5, 5, 2)))
    with pytest.raises(ValueError, match="non-empty"):
        A.dead_unit_fraction(model, np.zeros((0, 6, 6, 2)))
    with pytest.raises(ValueError, match="unknown layer 'nope'; choose from conv"):
        A.activation_stats(model, x, layers=["nope"])
    with pytest.raises(ValueError, match="saturation"):
        A.activation_stats(model, x, saturation=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        A.dead_unit_fraction(model, x, batch_size=0)
    with pytest.raises(ValueError, match="4 examples but y has 3"):
        A.gradient_norms(model, x, np.zeros(3, int))
    with pytest.raises(ValueError, match="unknown loss"):
        A.loss_gradients(model, x, np.zeros((4, 2)), loss="no_such_loss")
    sig = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="sigmoid")])
    with pytest.raises(ValueError, match="no ReLU"):
        A.dead_unit_fraction(sig, np.zeros((2, 3)))
    no_kernel = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    with pytest.raises(ValueError, match="no trainable layer with a kernel"):
        A.gradient_norms(no_kernel, np.zeros((2, 3)), np.zeros((2, 3)), loss="mse")


def test_ladder_initialisers_give_every_layer_its_own_kernel():
    """The N(0, 0.01^2) initialiser of the ladder, as a config dict or an object, goes through vgglab.blocks.fresh
    too (tests/test_models.py checks the default initialiser): same-shaped layers differ, a seed repeats them."""
    for init in (NORMAL_001, keras.initializers.RandomNormal(stddev=0.01)):
        set_seed(0)
        m = vgg("B", input_shape=(32, 32, 3), num_classes=10, initializer=init, width=0.125, head="small")
        k = [keras.ops.convert_to_numpy(m.get_layer(n).kernel) for n in ("block4_conv2", "block5_conv1", "block5_conv2")]
        assert k[0].shape == k[1].shape == k[2].shape
        assert not np.allclose(k[0], k[1]) and not np.allclose(k[1], k[2])
        set_seed(0)
        again = vgg("B", input_shape=(32, 32, 3), num_classes=10, initializer=init, width=0.125, head="small")
        assert np.array_equal(keras.ops.convert_to_numpy(again.get_layer("block5_conv2").kernel), k[2])


def test_ladder_experiments_build_what_they_say():
    cpu = PROFILES["cpu"]
    for name, act, std in (("vggb-sigmoid", "sigmoid", None), ("vggb-relu-normal", "relu", 0.01),
                           ("vggb-relu-he", "relu", None)):
        exp = EXPERIMENTS[name]
        m = exp.build(cpu, exp.recipe, 0)
        convs = [layer for layer in m.layers if isinstance(layer, keras.layers.Conv2D)]
        assert len(convs) == 10 and convs[0].filters == 16 and convs[-1].filters == 128  # width 0.25
        assert {A.activation_of(c)[0] for c in convs} == {act}
        assert not any(isinstance(layer, keras.layers.Dropout) for layer in m.layers)
        if std:
            assert keras.ops.convert_to_numpy(convs[-1].kernel).std() == pytest.approx(std, rel=0.05)
    bn = EXPERIMENTS["vggb-relu-normal-bn"].build(cpu, EXPERIMENTS["vggb-relu-normal-bn"].recipe, 0)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers) == 10
    with pytest.raises(ValueError, match="unknown activation"):
        VGGBuild("B", activation="no_such_activation")
    with pytest.raises(ValueError, match="unknown initializer"):
        VGGBuild("B", initializer="no_such_initializer")


def test_layer_curves_checks_its_series():
    ax = plots.layer_curves({"a": [1.0, 0.1, 0.01], "b": [1.0, 1.0, 1.0]}, ["c1", "c2", "c3"], "값",
                            styles={"b": {"linestyle": "--"}})
    assert ax.get_yscale() == "log" and len(ax.lines) == 2 and ax.lines[1].get_linestyle() == "--"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c1", "c2", "c3"]
    with pytest.raises(ValueError, match="2 values for 3 layer names"):
        plots.layer_curves({"a": [1, 2]}, ["c1", "c2", "c3"], "값")
    with pytest.raises(ValueError, match="log scale"):
        plots.layer_curves({"a": [1, 0, 2]}, ["c1", "c2", "c3"], "값")
    assert plots.layer_curves({"a": [1, 0, 2]}, ["c1", "c2", "c3"], "값", log=False).get_yscale() == "linear"
    matplotlib.pyplot.close("all")


def test_log_labels_are_plain_text_without_missing_glyphs():
    import warnings

    name = plots.use_korean_font()
    ax = plots.layer_curves({"시그모이드": [1e-12, 1e-6, 1.0]}, ["층1", "층2", "층3"], "기울기 (로그 눈금)")
    fig = ax.figure
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font" becomes a failure
        fig.canvas.draw()
    labels = {t.get_text() for t in ax.get_yticklabels() if t.get_text()}
    assert {"1e-12", "1e-6", "1"} <= labels and not any("$" in t or "\u2212" in t for t in labels), labels
    with pytest.raises(ValueError, match="axis"):
        plots.plain_log_labels(ax, axis="z")
    matplotlib.pyplot.close("all")
    if name is None:
        pytest.skip("no Korean font installed here; the labels were checked, the glyphs were not")

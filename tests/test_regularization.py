"""Chapter 11's tools: cutout, ensembles, weight statistics, VGGBuild and the regularisation arms."""

import keras
import numpy as np
import pytest

from vgglab import analysis as A
from vgglab import experiments as E
from vgglab import registry as REG
from vgglab import train as T
from vgglab import augment as AUG, evaluate as EV, recipes as RC
from vgglab.models import vgg
from vgglab.runtime import get_profile, set_seed


def _zero_boxes(out):
    """For each image (all ones before cutout), the rows and columns that hold zeros."""
    boxes = []
    for img in out:
        zero = img[..., 0] == 0
        assert np.array_equal(zero[..., None].repeat(img.shape[-1], -1), img == 0), "every channel is cut alike"
        rows, cols = np.flatnonzero(zero.any(1)), np.flatnonzero(zero.any(0))
        boxes.append((rows, cols, zero))
    return boxes


def test_cutout_is_the_identity_outside_training():
    x = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype("float32")
    layer = AUG.Cutout(8, seed=1)
    for training in (False, None):
        assert np.array_equal(keras.ops.convert_to_numpy(layer(x, training=training)), x)


def test_cutout_zeroes_one_square_per_image():
    x = np.ones((64, 32, 32, 3), "float32")
    out = keras.ops.convert_to_numpy(AUG.Cutout(8, seed=3)(x, training=True))
    inner = 0
    for rows, cols, zero in _zero_boxes(out):
        assert len(rows) and len(cols), "every image loses a square"
        assert np.all(np.diff(rows) == 1) and np.all(np.diff(cols) == 1), "one contiguous block"
        assert zero.sum() == len(rows) * len(cols), "a filled rectangle"
        assert len(rows) <= 8 and len(cols) <= 8
        if 0 < rows[0] and rows[-1] < 31 and 0 < cols[0] and cols[-1] < 31:  # not cut off by a border
            assert len(rows) == len(cols) == 8
            inner += 1
    assert inner > 10  # most centres fall well inside a 32 x 32 image
    assert len({(r[0], c[0]) for r, c, _ in _zero_boxes(out)}) > 20, "the square moves from image to image"
    assert np.all(out[out != 0] == 1), "everything outside the square is untouched"


def test_cutout_is_seeded_and_validated():
    x = np.ones((16, 32, 32, 3), "float32")
    a = keras.ops.convert_to_numpy(AUG.Cutout(16, seed=7)(x, training=True))
    b = keras.ops.convert_to_numpy(AUG.Cutout(16, seed=7)(x, training=True))
    c = keras.ops.convert_to_numpy(AUG.Cutout(16, seed=8)(x, training=True))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert AUG.Cutout.from_config(AUG.Cutout(5, seed=2).get_config()).size == 5
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="cutout size"):
            AUG.Cutout(bad)


def test_cutout_is_a_recipe_augmentation():
    recipe = RC.check_recipe(RC.Recipe("r", "sgd", 0.1, augment=("flip", "translate", "cutout")))
    names = [layer.name for layer in AUG.augmentation_layers(recipe, seed=0)]
    assert names == ["augment_flip", "augment_translate", "augment_cutout"]
    with pytest.raises(ValueError, match="'mixup'"):
        RC.check_recipe(RC.Recipe("r", "sgd", 0.1, augment=("mixup",)))
    x = np.ones((4, 32, 32, 3), "float32")
    once, again = AUG.augment_images(x, "cutout", seed=1), AUG.augment_images(x, ("cutout",), seed=1)
    assert np.array_equal(once, again) and (once == 0).any()
    assert np.array_equal(AUG.augment_images(x, (), seed=1), x)


def _table_model(table):
    """A model that outputs row i of ``table`` for the one-hot input e_i: hand-made class probabilities."""
    table = np.asarray(table, "float32")
    inputs = keras.Input((len(table),))
    dense = keras.layers.Dense(table.shape[1], use_bias=False)
    model = keras.Model(inputs, dense(inputs))
    dense.kernel.assign(table)
    return model


def test_ensemble_of_identical_models_is_the_member():
    set_seed(0)
    model = vgg([4, "M"], input_shape=(32, 32, 3), num_classes=10, head="gap")
    x = np.random.default_rng(0).uniform(-1, 1, (6, 32, 32, 3)).astype("float32")
    member = model.predict(x, verbose=0)
    assert np.allclose(EV.ensemble_predict([model, model, model], x), member, atol=1e-6)
    y = member.argmax(-1)
    scores = EV.evaluate_ensemble([model, model], x, y)
    assert scores["ensemble_accuracy"] == scores["mean_member_accuracy"] == 1.0
    assert scores["members"] == 2 and len(scores["predict_seconds"]) == 2


def test_ensemble_accuracy_on_a_hand_made_case():
    y = np.array([0, 1, 2, 0])
    a = [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.6, 0.1, 0.3], [0.2, 0.7, 0.1]]  # right on images 0 and 1
    b = [[0.4, 0.5, 0.1], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]]  # right on images 2 and 3
    x = np.eye(4, dtype="float32")
    scores = EV.evaluate_ensemble([_table_model(a), _table_model(b)], x, y)
    # the average is right on images 0, 1 and 2, and says class 1 for image 3 (0.40 vs 0.45)
    assert scores["member_accuracies"] == [0.5, 0.5]
    assert scores["ensemble_accuracy"] == 0.75 and scores["best_member_accuracy"] == 0.5
    assert np.isclose(scores["ensemble_loss"], -np.mean(np.log([0.65, 0.55, 0.55, 0.40])), atol=1e-6)
    assert np.allclose(EV.ensemble_predict([_table_model(a), _table_model(b)], x), (np.array(a) + np.array(b)) / 2,
                       atol=1e-6)
    assert EV.ensemble_scores([a, b], y)["ensemble_accuracy"] == 0.75


def test_ensemble_arguments_are_checked():
    x = np.eye(3, dtype="float32")
    with pytest.raises(ValueError, match="non-empty list"):
        EV.evaluate_ensemble([], x, [0, 1, 2])
    with pytest.raises(ValueError, match="differ in shape"):
        EV.ensemble_predict([_table_model(np.eye(3)), _table_model(np.ones((3, 4)) / 4)], x)
    with pytest.raises(ValueError, match="labels"):
        EV.evaluate_ensemble([_table_model(np.eye(3))], x, [0, 1])
    with pytest.raises(ValueError, match="members, images, classes"):
        EV.ensemble_scores(np.ones((3, 3)), [0, 1, 2])


def test_weight_summary_counts_kernels_only():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, name="fc1")
    model = keras.Model(inputs, dense(inputs))
    dense.kernel.assign(np.array([[0.0, 3e-4], [-2.0, 0.5], [1.0, 0.0]], "float32"))
    dense.bias.assign(np.array([100.0, 100.0], "float32"))  # biases are not counted
    s = A.weight_summary(model)
    assert s["count"] == 6 and np.isclose(s["l1_norm"], 3.5003) and np.isclose(s["l2_norm"], np.sqrt(5.25 + 9e-8))
    assert s["near_zero"] == 0.5  # 0, 3e-4 and 0 are below 1e-3
    assert A.weight_summary(model, tol=1e-4)["near_zero"] == pytest.approx(2 / 6)
    assert A.kernel_weights(model, "fc1").shape == (6,)
    with pytest.raises(ValueError, match="'fc9'"):
        A.kernel_weights(model, ["fc9"])
    with pytest.raises(ValueError, match="tol"):
        A.weight_summary(model, tol=0)


def test_vgg_build_fields_reach_the_model():
    prof, recipe = get_profile("smoke"), RC.RECIPES["adam"]
    base = REG.VGGBuild((8, "M", 16, "M"), activation="sigmoid", initializer="normal(0.01)", width=1.0)
    set_seed(0)
    m = base(prof, recipe, 0)
    k = keras.ops.convert_to_numpy(m.get_layer("block2_conv1").kernel)
    assert abs(k.std() - 0.01) < 0.002 and m.get_layer("block1_conv1").activation.__name__ == "sigmoid"
    assert not m.losses
    reg = base.but(activation="relu", l1=1e-3, l2=1e-2, batch_norm=True, dropout=0.3)(prof, recipe, 0)
    assert any(layer.name == "block1_bn1" for layer in reg.layers) and reg.get_layer("fc1_dropout").rate == 0.3
    kernels = [layer.kernel for layer in reg.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    expected = sum(1e-3 * np.abs(keras.ops.convert_to_numpy(k)).sum() + 1e-2 * (keras.ops.convert_to_numpy(k) ** 2).sum()
                   for k in kernels)
    reg(np.zeros((1, 32, 32, 3), "float32"))
    assert np.isclose(float(sum(keras.ops.convert_to_numpy(v) for v in reg.losses)), expected, rtol=1e-4)
    assert base.but(l2=5e-4).describe() == "사용자 구성 · sigmoid · normal(0.01) · L2 0.0005"
    assert REG.VGGBuild(width=None)(prof, recipe, 0).get_layer("block1_conv1").filters == 8  # 64 x smoke's 0.125


def test_vgg_build_rejects_bad_fields():
    with pytest.raises(ValueError, match="'depth'"):
        REG.VGGBuild().but(depth=3)
    with pytest.raises(ValueError, match="unknown initializer 'xavierr'"):
        REG.VGGBuild(initializer="xavierr")
    with pytest.raises(ValueError, match="l2 must be"):
        REG.VGGBuild(l2=-1e-4)
    with pytest.raises(ValueError, match="positive"):
        REG.VGGBuild(initializer="normal(0)")


def test_regularisation_arms_differ_from_the_base_in_one_choice():
    base = REG.EXPERIMENTS["reg-none"]
    assert REG.EXPERIMENTS["reg-l2"].build == base.build.but(l2=REG.REG_L2)
    assert REG.EXPERIMENTS["reg-l1"].build == base.build.but(l1=REG.REG_L1)
    aug = REG.EXPERIMENTS["reg-augment"]
    assert aug.build == base.build and aug.recipe.augment == ("flip", "translate", "cutout")
    assert base.recipe.optimizer == "sgd" and base.recipe.weight_decay == 0  # L2 lives in the loss, not the optimizer


def test_xla_is_off_for_tensorflow_on_cpu():
    set_seed(0)
    model = vgg([4, "M"], input_shape=(32, 32, 3), num_classes=10, head="gap")
    T.compile_model(model, RC.RECIPES["adam"], 10)
    if keras.backend.backend() == "tensorflow":
        from vgglab.runtime import gpu_visible

        if not gpu_visible():
            assert model.jit_compile is False


def test_augmentation_grid_and_weight_histograms_draw():
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from vgglab import plots

    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    font = plots.use_korean_font()
    with warnings.catch_warnings():
        if font:
            warnings.simplefilter("error")
        fig = plots.augmentation_grid({"원본": x, "컷아웃": AUG.augment_images(x, "cutout", seed=0)})
        fig.canvas.draw()
        ax = plots.weight_histograms({"규제 없음": np.random.default_rng(1).normal(0, 0.1, 1000), "L1": np.zeros(1000)})
        ax.figure.canvas.draw()
    assert fig.axes[0].get_title() == "원본" and len(fig.axes) == 6
    assert len(ax.patches) == 2 and ax.get_yscale() == "log"
    with pytest.raises(ValueError):
        plots.augmentation_grid({"a": x, "b": x[:2]})
    with pytest.raises(ValueError):
        plots.weight_histograms({})


def test_keep_model_returns_the_trained_model_and_its_overfit_summary():
    data = __import__("vgglab").data.synthetic_cifar10(400, 200, seed=3)
    exp = REG.Experiment("tiny", "작은 망", REG.VGGBuild((4, "M"), head="gap", width=1.0), RC.Recipe("t", "adam", 3e-3),
                       {"smoke": 1}, {"smoke": 150})
    record, model, splits = E.run_experiment(exp, profile="smoke", data=data, seed=1, keep_model=True, log=lambda s: None)
    again = E.experiment_splits(exp, "smoke", data, seed=1)
    assert np.array_equal(again.x_train, splits.x_train) and np.array_equal(again.y_test, splits.y_test)
    assert len(splits.y_train) == 150 and record["test_accuracy"] == EV.evaluate(model, splits.x_test, splits.y_test)["test_accuracy"]
    s = E.overfit_summary(record, model, splits)
    assert s["gap"] == pytest.approx(s["train_accuracy"] - record["history"]["val_accuracy"][-1])
    assert s["train_accuracy"] == EV.evaluate(model, splits.x_train, splits.y_train)["test_accuracy"]
    with pytest.raises(ValueError, match="validation"):
        E.overfit_summary({"history": {"val_accuracy": []}}, model, splits)


def test_data_seed_keeps_the_images_while_the_seed_changes_the_start():
    """Ensemble members that differ only in their start and batch order: one data_seed, several seeds."""
    data = __import__("vgglab").data.synthetic_cifar10(400, 200, seed=3)
    exp = REG.Experiment("tiny", "작은 망", REG.VGGBuild((4, "M"), head="gap", width=1.0), RC.Recipe("t", "adam", 3e-3),
                         {"smoke": 1}, {"smoke": 150})
    a = E.run_experiment(exp, profile="smoke", data=data, seed=1, data_seed=0, keep_model=True, log=lambda s: None)
    b = E.run_experiment(exp, profile="smoke", data=data, seed=2, data_seed=0, keep_model=True, log=lambda s: None)
    c = E.run_experiment(exp, profile="smoke", data=data, seed=0, keep_model=True, log=lambda s: None)
    assert np.array_equal(a.splits.x_train, b.splits.x_train) and np.array_equal(a.splits.x_train, c.splits.x_train)
    assert not np.array_equal(a.model.get_weights()[0], b.model.get_weights()[0])
    assert a.record["config"]["data_seed"] == 0 and "data_seed" not in c.record["config"]
    with pytest.raises(ValueError, match="data_seed must be an integer"):
        E.run_experiment(exp, profile="smoke", data=data, data_seed=-1)

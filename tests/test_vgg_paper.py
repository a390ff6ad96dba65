"""The VGG paper's test-time and training-time tricks: dense evaluation, scale jittering, multi-scale scores."""

import keras
import numpy as np
import pytest

from vgglab import experiments as E
from vgglab import registry as REG
from vgglab import augment as AUG, dense_eval as DE, evaluate as EV
from vgglab.data import synthetic_cifar10
from vgglab.dense_eval import to_fully_convolutional
from vgglab.models import basic_cnn, vgg


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _np(t):
    return keras.ops.convert_to_numpy(t)


# ----------------------------------------------------------------------------------------------
# to_fully_convolutional


@pytest.mark.parametrize("kwargs", [
    dict(config="A", input_shape=(32, 32, 3), head="paper", width=0.125),
    dict(config="B", input_shape=(32, 32, 3), head="small", batch_norm=True, width=0.125),
    dict(config="A-LRN", input_shape=(64, 64, 3), head="small", width=0.125),  # last feature map 2x2
    dict(config=[8, "M", 16, "M"], input_shape=(12, 20, 3), head="paper", head_units=16),  # 3x5, not square
])
def test_same_outputs_at_the_training_size(kwargs):
    model = vgg(num_classes=7, classifier_activation=None, dropout=0.5, **kwargs)  # logits: a strict comparison
    fcn = to_fully_convolutional(model)
    x = _x((4, *kwargs["input_shape"]))
    fc_out = model.predict(x, verbose=0)
    dense = fcn.predict(x, verbose=0)
    assert dense.shape == (4, 1, 1, 7)
    assert np.abs(fc_out).max() > 1e-3  # not a trivial comparison of zeros
    np.testing.assert_allclose(dense[:, 0, 0], fc_out, atol=1e-5, rtol=1e-5)
    assert fcn.count_params() == model.count_params()
    kinds = {layer.name: type(layer).__name__ for layer in fcn.layers}
    assert kinds["fc1"] == kinds["predictions"] == "Conv2D"
    assert not any("dropout" in name for name in kinds)


def test_first_dense_becomes_a_kernel_over_the_last_feature_map():
    model = vgg([8, "M", 16, "M"], input_shape=(12, 20, 3), num_classes=5, head="paper", head_units=6)
    fcn = to_fully_convolutional(model)
    assert fcn.get_layer("fc1").kernel_size == (3, 5)
    assert fcn.get_layer("fc2").kernel_size == fcn.get_layer("predictions").kernel_size == (1, 1)
    assert fcn.get_layer("fc1").kernel.shape == (3, 5, 16, 6)
    assert fcn.name == f"{model.name}_fcn"


def test_larger_inputs_give_a_score_map_of_the_expected_size():
    model = vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125, head="small")
    fcn = to_fully_convolutional(model)
    for size, side in ((32, 1), (64, 2), (96, 3), (75, 2)):  # floor(size / 32) - 1 + 1
        out = fcn.predict(_x((2, size, size, 3)), verbose=0)
        assert out.shape == (2, side, side, 10)
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)  # a softmax at every position
    fixed = to_fully_convolutional(model, (64, 96, 3))
    assert fixed.output_shape == (None, 2, 3, 10)


def test_each_score_map_position_is_the_fc_model_on_one_window():
    # With 1x1 convolutions there is no zero padding, so dense evaluation is exactly the FC model slid over
    # the image with a stride of 2 ** pools = 4 pixels.
    model = vgg([(8, 1), "M", (16, 1), "M"], input_shape=(12, 12, 3), num_classes=5, head="paper", head_units=8,
                classifier_activation=None)
    x = _x((2, 20, 24, 3), seed=1)
    dense = to_fully_convolutional(model).predict(x, verbose=0)
    assert dense.shape == (2, 3, 4, 5)
    for i in range(3):
        for j in range(4):
            window = model.predict(x[:, 4 * i:4 * i + 12, 4 * j:4 * j + 12], verbose=0)
            np.testing.assert_allclose(dense[:, i, j], window, atol=1e-5, rtol=1e-5)


def test_basic_cnn_converts_too():
    model = basic_cnn()
    fcn = to_fully_convolutional(model)
    x = _x((3, 32, 32, 3))
    np.testing.assert_allclose(fcn.predict(x, verbose=0)[:, 0, 0], model.predict(x, verbose=0), atol=1e-5)
    assert fcn.get_layer("fc1").kernel_size == (8, 8)


def test_the_copy_does_not_share_weights():
    model = vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125, head="small")
    fcn = to_fully_convolutional(model)
    before = _np(fcn.get_layer("block1_conv1").kernel).copy()
    model.get_layer("block1_conv1").kernel.assign(np.zeros_like(before))
    np.testing.assert_array_equal(_np(fcn.get_layer("block1_conv1").kernel), before)


def _gap():
    return vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125, head="gap")


def _no_head():
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten()])


def _dense_first():
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Dense(4), keras.layers.Flatten(),
                             keras.layers.Dense(2)])


def _branching():
    inp = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(3, 3, padding="same")(inp)
    x = keras.layers.Add()([inp, a])
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))


@pytest.mark.parametrize("make, kwargs, error, message", [
    (lambda: "vgg16", {}, TypeError, "model must be a Keras model built by vgglab.vgg, not str"),
    (_gap, {}, ValueError, "ends in global pooling .*head='gap'"),
    (_no_head, {}, ValueError, "has no Flatten followed by Dense layers"),
    (_dense_first, {}, ValueError, r"cannot convert layer 'dense.*' \(Dense\) before flatten"),
    (_branching, {}, ValueError, r"cannot convert layer 'add.*' \(Add\)"),
    (lambda: vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125), {"input_shape": (16, 16, 3)},
     ValueError, r"input_shape \(16, 16, 3\) is too small: the feature map vanishes at layer 'block5_pool'; "
                 "use inputs at least as large as the training input 32x32"),
    (lambda: vgg("A", input_shape=(64, 64, 3), num_classes=10, width=0.125), {"input_shape": (32, 48, 3)},
     ValueError, r"is too small: its last feature map is 1x1, smaller than the 2x2 the first dense layer"),
    (lambda: vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125), {"input_shape": (64, 64, 1)},
     ValueError, "has 1 channels; model 'vgg11' takes 3"),
    (lambda: vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125), {"input_shape": (64, 64)},
     ValueError, "input_shape must be"),
    (lambda: vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125), {"input_shape": (0, 64, 3)},
     ValueError, "input_shape must be"),
])
def test_unsupported_models_and_inputs_are_refused(make, kwargs, error, message):
    with pytest.raises(error, match=message):
        to_fully_convolutional(make(), **kwargs)


# ----------------------------------------------------------------------------------------------
# Scale jittering


def test_scale_crop_is_rescale_then_crop():
    img = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(AUG.scale_crop(img, 32, (0, 0)), img, atol=1e-6)
    for size, (r, c) in ((64, (0, 0)), (64, (32, 32)), (48, (5, 11)), (40, (8, 0))):
        ref = _np(keras.ops.image.resize(img, (size, size), interpolation="bilinear"))[:, r:r + 32, c:c + 32]
        np.testing.assert_allclose(AUG.scale_crop(img, size, (r, c)), ref, atol=1e-4)
    per_image = AUG.scale_crop(img, [32, 64], [(0, 0), (32, 0)])
    np.testing.assert_allclose(per_image[0], img[0], atol=1e-6)
    np.testing.assert_allclose(per_image[1], AUG.scale_crop(img[1:], 64, (32, 0))[0], atol=1e-6)


@pytest.mark.parametrize("sizes, offsets, message", [
    (16, (0, 0), "sizes must be at least the images' shorter side 32"),
    (48, (17, 0), r"offset \(17, 0\) of image 0 lies outside \(0..16, 0..16\), the room left by rescaling to 48"),
    (48, (0, -1), "lies outside"),
])
def test_scale_crop_refuses_bad_arguments(sizes, offsets, message):
    with pytest.raises(ValueError, match=message):
        AUG.scale_crop(np.zeros((1, 32, 32, 3)), sizes, offsets)


def test_random_scale_crop_is_a_rescaled_crop_in_training_and_the_identity_at_inference():
    img = np.random.default_rng(3).uniform(size=(4, 16, 16, 3)).astype("float32")
    layer = AUG.RandomScaleCrop(32, 32, seed=1)  # S fixed at 2x the 16-pixel side
    np.testing.assert_array_equal(_np(layer(img, training=False)), img)
    out = _np(layer(img, training=True))
    assert out.shape == img.shape and not np.allclose(out, img)
    big = _np(keras.ops.image.resize(img, (32, 32)))
    for k in range(len(img)):  # each output is one of the 17 x 17 crops of the image rescaled to 32 x 32
        errors = [np.abs(big[k, r:r + 16, c:c + 16] - out[k]).max() for r in range(17) for c in range(17)]
        assert min(errors) < 1e-4
    same = AUG.RandomScaleCrop(16, 16, seed=1)  # S = the image side: nothing to crop
    np.testing.assert_allclose(_np(same(img, training=True)), img, atol=1e-5)


def test_random_scale_crop_draws_different_scales_and_is_seeded():
    img = np.tile(np.linspace(0, 1, 16, dtype="float32")[None, None, :, None], (64, 16, 1, 1))
    a = _np(AUG.RandomScaleCrop(16, 32, seed=5)(img, training=True))
    b = _np(AUG.RandomScaleCrop(16, 32, seed=5)(img, training=True))
    np.testing.assert_array_equal(a, b)
    slopes = a[:, 0, -1, 0] - a[:, 0, 0, 0]  # a ramp rescaled by S/16 spans less of 0..1 when S is larger
    assert slopes.max() > 0.9 and slopes.min() < 0.6 and len(np.unique(slopes.round(3))) > 5


def test_random_scale_crop_arguments():
    with pytest.raises(ValueError, match="max_size .16. must be at least min_size .32."):
        AUG.RandomScaleCrop(32, 16)
    with pytest.raises(ValueError, match="min_size must be a positive integer"):
        AUG.RandomScaleCrop(0, 16)
    with pytest.raises(ValueError, match="min_size 24 is smaller than the 32x32 input"):
        vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125, augmentation=[AUG.RandomScaleCrop(24, 48)])
    layer = AUG.RandomScaleCrop(32, 64, seed=3, name="augment_scale")
    again = AUG.RandomScaleCrop.from_config(layer.get_config())
    assert (again.min_size, again.max_size, again.seed, again.name) == (32, 64, 3, "augment_scale")


# ----------------------------------------------------------------------------------------------
# Dense, flipped and multi-scale scores


def test_dense_scores_single_scale_equals_the_fc_model_and_flips_are_mirrored_inputs():
    model = vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125, head="small", batch_norm=True)
    x = _x((5, 32, 32, 3), seed=4)
    scores = DE.dense_scores(model, x, sizes=(32, 64), flips=(False, True), chunk=3)
    assert sorted(scores) == [(32, False), (32, True), (64, False), (64, True)]
    np.testing.assert_allclose(scores[(32, False)], model.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_allclose(scores[(32, True)], model.predict(x[:, :, ::-1], verbose=0), atol=1e-5)
    big = _np(keras.ops.image.resize(x, (64, 64)))
    maps = to_fully_convolutional(model).predict(big, verbose=0)
    np.testing.assert_allclose(scores[(64, False)], maps.mean(axis=(1, 2)), atol=1e-5)
    assert all(np.allclose(s.sum(-1), 1.0, atol=1e-5) for s in scores.values())
    assert DE.dense_scores(model, x).keys() == {(32, False)}


def test_combined_accuracy_averages_the_named_scores():
    y = np.array([0, 1, 1])
    scores = {(32, False): np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]),
              (48, False): np.array([[0.4, 0.6], [0.1, 0.9], [0.3, 0.7]])}
    acc = DE.combined_accuracy(scores, y, {"a": [(32, False)], "b": [(48, False)], "ab": list(scores)})
    assert acc == {"a": pytest.approx(2 / 3), "b": pytest.approx(2 / 3), "ab": 1.0}
    with pytest.raises(ValueError, match=r"combination 'c' needs scores \[\(64, False\)\]"):
        DE.combined_accuracy(scores, y, {"c": [(64, False)]})
    with pytest.raises(ValueError, match="scores are for 3 images but y has 2 labels"):
        DE.combined_accuracy(scores, y[:2], {"a": [(32, False)]})


@pytest.mark.parametrize("kwargs, message", [
    ({"sizes": (16,)}, "too small"),
    ({"sizes": (32.5,)}, "test sizes must be positive integers"),
    ({"flips": ()}, "flips must hold False and/or True"),
])
def test_dense_scores_refuses_bad_arguments(kwargs, message):
    model = vgg("A", input_shape=(32, 32, 3), num_classes=10, width=0.125, head="small")
    with pytest.raises(ValueError, match=message):
        DE.dense_scores(model, _x((2, 32, 32, 3)), **kwargs)


# ----------------------------------------------------------------------------------------------
# The chapter's experiment and keeping its model


def test_vgg_a4_experiments_build_convertible_models():
    fixed = REG.EXPERIMENTS["vgg-a4-s32"]
    names = [layer.name for layer in fixed.build(E.get_profile("smoke"), fixed.recipe, 0).layers]
    assert names[1:3] == ["augment_flip", "block1_conv1"]
    exp = REG.EXPERIMENTS["vgg-a4-jitter"]
    model = exp.build(E.get_profile("smoke"), exp.recipe, 0)
    names = [layer.name for layer in model.layers]
    assert names[1:3] == ["augment_scale", "augment_flip"] and "block1_bn1" in names
    scale = model.get_layer("augment_scale")
    assert (scale.min_size, scale.max_size) == (32, 64) and "translate" not in exp.recipe.augment
    assert fixed.recipe == exp.recipe and fixed.epochs == exp.epochs
    fcn = to_fully_convolutional(model)
    assert not any(n.startswith("augment") for n in (layer.name for layer in fcn.layers))
    assert fcn.get_layer("fc1").kernel_size == (2, 2)  # four poolings: 32 -> 2
    assert to_fully_convolutional(model, (64, 64, 3)).output_shape == (None, 3, 3, 10)


def _tiny(base: str, name: str):
    """``base`` with a two-block VGG and one smoke epoch: a run of the chapter's experiment that takes seconds."""
    return REG.EXPERIMENTS[base].variant(
        name, build=lambda p, r, s: vgg([8, "M", 16, "M"], input_shape=(32, 32, 3), num_classes=10,
                                        batch_norm=True, head="small", head_units=16),
        epochs={"smoke": 1})


def test_keep_model_returns_the_trained_model(tmp_path):
    exp = _tiny("vgg-a4-jitter", "tiny")
    data = synthetic_cifar10(n_train=300, n_test=100)
    record, model, _ = E.run_experiment(exp, profile="smoke", data=data, out=tmp_path, keep_model=True, log=lambda s: None)
    splits = E.prepare(data, E.get_profile("smoke"))
    assert EV.evaluate(model, splits.x_test, splits.y_test)["test_accuracy"] == record["test_accuracy"]
    with pytest.raises(ValueError, match="had already finished, so no model was trained"):
        E.run_experiment(exp, profile="smoke", data=data, out=tmp_path, resume=True, keep_model=True, log=lambda s: None)


def test_scale_combos_name_each_scale_the_first_with_its_mirror_and_all_together():
    combos = DE.scale_combos((32, 48, 64))
    assert list(combos) == ["Q=32", "Q=48", "Q=64", "Q=32 + 뒤집기", "Q=32,48,64", "Q=32,48,64 + 뒤집기"]
    assert combos["Q=32,48,64 + 뒤집기"] == [(q, f) for q in (32, 48, 64) for f in (False, True)]
    assert list(DE.scale_combos((32,))) == ["Q=32", "Q=32 + 뒤집기"]
    with pytest.raises(ValueError, match=r"distinct test scales such as \(32, 48, 64\), not \[32, 32\]"):
        DE.scale_combos((32, 32))
    with pytest.raises(ValueError, match="a tuple of test scales such as \\(32, 48, 64\\), not 32"):
        DE.scale_combos(32)


def test_a_run_with_test_scales_records_the_multiscale_accuracy(tmp_path):
    exp = _tiny("vgg-a4-s32", "tiny-scales")
    data = synthetic_cifar10(n_train=300, n_test=100)
    record = E.run_experiment(exp, profile="smoke", data=data, out=tmp_path, test_scales=(32, 48), log=lambda s: None)
    acc = record["multiscale_accuracy"]
    assert list(acc) == list(DE.scale_combos((32, 48))) and all(0 <= v <= 1 for v in acc.values())
    assert acc["Q=32"] == record["test_accuracy"] and record["multiscale_seconds"] > 0  # Q = 32: the model itself
    with pytest.raises(ValueError, match="test scale Q must be a positive integer"):
        E.run_experiment(exp, profile="smoke", data=data, test_scales=(0,), log=lambda s: None)
    plain = tmp_path / "plain"
    E.run_experiment(exp, profile="smoke", data=data, out=plain, log=lambda s: None)
    with pytest.raises(ValueError, match="had already finished without test_scales"):
        E.run_experiment(exp, profile="smoke", data=data, out=plain, resume=True, test_scales=(32,), log=lambda s: None)


def test_a_model_that_cannot_be_tested_densely_fails_before_training():
    lines = []
    with pytest.raises(ValueError, match="flatten"):
        E.run_experiment("speedrun", profile="smoke", data=synthetic_cifar10(n_train=64, n_test=32), test_scales=(32,),
                         log=lines.append)
    assert not any("에포크 1/" in line for line in lines)


def test_dense_scores_are_float32_under_mixed_precision():
    from vgglab.runtime import precision_policy

    with precision_policy("mixed_bfloat16"):
        model = vgg([8, "M", 16, "M"], input_shape=(32, 32, 3), num_classes=10, batch_norm=True, head="small",
                    head_units=16)
        x = _x((6, 32, 32, 3))
        scores = DE.dense_scores(model, x, sizes=(32, 48), flips=(False, True))
        fc = np.asarray(model.predict(x, verbose=0), "float32")
    assert all(s.dtype == np.float32 for s in scores.values())
    np.testing.assert_allclose(scores[(32, False)], fc, atol=1e-2)

"""The speed-run network (vgglab.speedrun), flip test-time augmentation and the speed-run summary."""

import numpy as np
import pytest

from vgglab import analysis as A
from vgglab import data as D
from vgglab import experiments as E
from vgglab import records as RS
from vgglab import registry as REG
from vgglab import speedrun as S
from vgglab import train as T
from vgglab import augment as AUG, evaluate as EV, recipes as RC
from vgglab.runtime import get_profile


def _images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 32, 32, 1)).astype(np.float32)
    # correlated channels and neighbouring pixels, like natural images
    x = np.concatenate([base, 0.8 * base + 0.2 * rng.normal(size=base.shape),
                        -0.5 * base + 0.3 * rng.normal(size=base.shape)], axis=-1)
    return (x + np.roll(x, 1, axis=2)).astype(np.float32)


def test_whitening_filters_decorrelate_patches_to_unit_variance():
    x = _images()
    kernel = S.whitening_filters(x, size=2, eps=1e-6, max_patches=20_000)
    assert kernel.shape == (2, 2, 3, 24)
    np.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])
    p = A.sample_patches(x, 2, 20_000, seed=1)  # other patches than the ones the filters were fitted on
    w = p @ kernel.reshape(12, 24)[:, :12]
    cov = np.cov(w, rowvar=False)
    np.testing.assert_allclose(np.diag(cov), 1.0, atol=0.05)
    off = cov - np.diag(np.diag(cov))
    assert np.abs(off).max() < 0.05


def test_whitening_layer_is_the_patch_projection_and_never_trains():
    x = _images(8)
    layer = S.PatchWhitening(2, name="whiten")
    before = np.asarray(layer(x[:2]))  # before adapt: the pixel values of each 2x2 patch, and their negations
    np.testing.assert_allclose(before[0, 3, 5, :3], x[0, 3, 5], atol=1e-6)
    np.testing.assert_allclose(before[0, 3, 5, 12:15], -x[0, 3, 5], atol=1e-6)
    layer.adapt(x)
    assert layer.adapted and not layer.trainable_weights
    out = np.asarray(layer(x))
    assert out.shape == (8, 31, 31, 24)
    patch = x[2, 4:6, 7:9, :].reshape(-1)
    np.testing.assert_allclose(out[2, 4, 7], patch @ np.asarray(layer.kernel).reshape(12, 24), rtol=1e-4, atol=1e-4)


def test_whitening_rejects_bad_input():
    with pytest.raises(ValueError, match="got shape"):
        S.PatchWhitening(2).adapt(np.zeros((4, 32, 32)))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*\(4, 32, 32, 1\)"):
        layer = S.PatchWhitening(2)
        layer.build((None, 32, 32, 3))
        layer.adapt(np.zeros((4, 32, 32, 1)))
    with pytest.raises(ValueError, match="eps must be a positive number, not -1"):
        S.whitening_filters(_images(2), eps=-1)
    with pytest.raises(ValueError, match="patch size must be a positive integer, not 0"):
        S.PatchWhitening(0)


def test_speedrun_net_and_its_ablations():
    net = S.speedrun_net(width=0.25)
    assert net.output_shape == (None, 10)
    assert [l.name for l in net.layers if "conv" in l.name] == [f"block{b}_conv{i}" for b in (1, 2, 3) for i in (1, 2)]
    assert net.get_layer("block3_conv2").filters == 64
    plain = S.SpeedrunBuild(width=0.25).but(whiten=False, batch_norm=False)(get_profile("smoke"), RC.RECIPES["adam"], 0)
    names = [l.name for l in plain.layers]
    assert "whiten_conv" in names and "whiten" not in names and not any("bn" in n for n in names)
    assert S.SpeedrunBuild().but(whiten=False, batch_norm=False).describe() == "화이트닝 없음 · He 초기화 · BN 없음 · 로짓 x0.111 · gelu"
    assert S.AIRBENCH.describe() == "화이트닝 + 학습되는 편향 · Dirac 초기화 · BN (배율 없음, ε 1e-12) · 로짓 x0.111 · gelu"
    with pytest.raises(ValueError, match="unknown SpeedrunBuild field 'whitening'"):
        S.SpeedrunBuild().but(whitening=False)
    with pytest.raises(ValueError, match="width must be a number in \\(0, 4\\], not 0"):
        S.speedrun_net(width=0)
    with pytest.raises(ValueError, match="widths must be three positive channel counts, not \\(64, 128\\)"):
        S.speedrun_net(widths=(64, 128))


def test_flip_tta_averages_the_image_and_its_mirror():
    net = S.speedrun_net(width=0.25)
    x = _images(16)
    y = np.arange(16) % 10
    got = EV.evaluate(net, x, y, tta=("flip",))
    probs = (net.predict(x, verbose=0) + net.predict(x[:, :, ::-1], verbose=0)) / 2
    assert got["test_accuracy"] == pytest.approx(float((probs.argmax(-1) == y).mean()))
    assert got["test_accuracy_no_tta"] == pytest.approx(float((net.predict(x, verbose=0).argmax(-1) == y).mean()))
    assert "test_accuracy_no_tta" not in EV.evaluate(net, x, y)
    assert np.sum(got["confusion_matrix"]) == 16
    with pytest.raises(ValueError, match="unknown test-time augmentation 'rotate'; choose from flip"):
        EV.evaluate(net, x, y, tta=("rotate",))
    with pytest.raises(ValueError, match="unknown test-time augmentation 'crop'"):
        RC.check_recipe(RC.Recipe("x", "sgd", 0.1, tta=("crop",)))


def test_the_speedrun_experiment_whitens_from_its_training_images_and_records_both_accuracies():
    exp = REG.get_experiment("speedrun")
    assert E.batch_size(exp, get_profile("cpu")) == 256 and E.batch_size(exp, get_profile("gpu")) == 1024
    assert E.batch_size(REG.get_experiment("vgg16"), get_profile("cpu")) == get_profile("cpu").batch_size
    data = D.synthetic_cifar10(n_train=600, n_test=200)
    record, model, _ = E.run_experiment(exp.variant("speedrun-test", epochs={"smoke": 1}, train_size={"smoke": 256}),
                                        profile="smoke", data=data, keep_model=True, log=lambda *a: None)
    assert record["adapted_layers"] == ["whiten"]
    kernel = np.asarray(model.get_layer("whiten").kernel)
    assert not np.allclose(np.abs(kernel).max(axis=(0, 1, 2)), 1.0)  # not the pixel-picking start any more
    assert 0 <= record["test_accuracy_no_tta"] <= 1 and record["eval_seconds"] > 0
    assert record["config"]["recipe"]["tta"] == ["flip"]


def test_speedrun_summary():
    record = {"profile": "gpu", "test_accuracy": 0.9412, "test_accuracy_no_tta": 0.935, "train_seconds": 30.0,
              "eval_seconds": 1.5, "history": {"epoch_seconds": [12.0, 2.0, 2.5, 2.0]}}
    s = RS.speedrun_summary(record)
    assert s == {"seconds": 31.5, "compile_seconds": 10.0, "test_accuracy": 0.9412, "test_accuracy_no_tta": 0.935,
                 "target": 0.94, "reached": True}
    assert not RS.speedrun_summary(record, target=0.95)["reached"]
    with pytest.raises(ValueError, match="no speed-run target for profile 'tiny'"):
        RS.speedrun_summary({**record, "profile": "tiny"})
    with pytest.raises(ValueError, match="not a run record"):
        RS.speedrun_summary({"profile": "gpu"})


# ----------------------------------------------------------------------------------------------
# airbench94's remaining pieces (the speedrun94 experiment)


def test_alternating_flip_mirrors_each_image_every_other_epoch():
    x = np.arange(6 * 4 * 4 * 1, dtype=np.float32).reshape(6, 4, 4, 1)
    e0, e1, e2 = (AUG.epoch_augment(x, ("flip-alternating",), seed=3, epoch=e) for e in (0, 1, 2))
    np.testing.assert_array_equal(e0, e2)  # the same half is mirrored in every even epoch
    for i in range(len(x)):
        mirrored = np.array_equal(e0[i], x[i, :, ::-1])
        assert mirrored != np.array_equal(e0[i], x[i])  # each image is either kept or mirrored
        np.testing.assert_array_equal(e1[i], x[i] if mirrored else x[i, :, ::-1])  # and the other way next epoch
    assert AUG.epoch_augment(x, ("flip",), seed=3, epoch=0) is x  # the Keras-layer augmentations are not done here


def test_reflect_translation_shifts_by_at_most_two_pixels_with_mirrored_borders():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8, 8, 2)).astype(np.float32)
    out = AUG.epoch_augment(x, ("translate-reflect",), seed=1, epoch=0)
    assert out.shape == x.shape and not np.array_equal(out, x)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    shifts = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(out[i], padded[i, 2 + dy:10 + dy, 2 + dx:10 + dx])]
        assert found, i
        shifts.add(found[0])
    assert len(shifts) == 25  # every shift in [-2, 2]^2 is drawn
    np.testing.assert_array_equal(out, AUG.epoch_augment(x, ("translate-reflect",), seed=1, epoch=0))  # resumable
    assert not np.array_equal(out, AUG.epoch_augment(x, ("translate-reflect",), seed=1, epoch=1))


def test_triangle_schedule_runs_from_a_fifth_to_the_peak_and_down_to_seven_hundredths():
    sched = RC.OneCycle(2.0, 100, warmup=RC.TRIANGLE[1], start=RC.TRIANGLE[0], end=RC.TRIANGLE[2])
    lr = [float(np.asarray(sched(s))) for s in (0, 23, 100)]
    np.testing.assert_allclose(lr, [0.4, 2.0, 0.14], rtol=1e-5)
    opt = RC.make_optimizer(REG.AIRBENCH_RECIPE, 100)
    assert isinstance(opt, RC.BiasScaledSGD) and opt.bias_lr_scale == 64


def test_batch_norm_shifts_take_larger_steps_under_the_bias_scale():
    import keras

    def beta_step(scale):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, use_bias=False),
                                  keras.layers.BatchNormalization(scale=False), keras.layers.Dense(2)])
        model.compile(RC.BiasScaledSGD(0.01, bias_lr_scale=scale), "mse")
        kernel, beta = np.asarray(model.layers[0].kernel), np.asarray(model.layers[1].beta)
        x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
        model.fit(x, np.ones((8, 2)), verbose=0, batch_size=8)
        return np.asarray(model.layers[1].beta) - beta, np.asarray(model.layers[0].kernel) - kernel

    (b1, k1), (b64, k64) = beta_step(1.0), beta_step(64.0)
    np.testing.assert_allclose(b64, 64 * b1, rtol=1e-4)
    np.testing.assert_allclose(k64, k1, rtol=1e-5)  # the other weights take the usual step


def test_dirac_initialised_convolution_passes_its_input_through():
    import keras

    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    conv = keras.layers.Conv2D(5, 3, padding="same", use_bias=False, kernel_initializer=S.Dirac(0))
    y = np.asarray(conv(x))
    np.testing.assert_allclose(y[..., :3], x, atol=1e-6)  # the first in-channels filters are identities
    w = np.asarray(conv.kernel)[..., 3:]
    assert 0 < np.abs(w).max() <= 1 / np.sqrt(27)  # the rest are PyTorch's default uniform


def test_lookahead_sets_the_weights_to_their_running_average():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    la = T.Lookahead(start=0, total_steps=10, steps_per_epoch=10, every=1, base=0.5, power=0.0)
    la.set_model(model)
    la.begin_epoch(0)
    la.on_train_batch_end(0)  # the first averaged step only starts the average, at the current weights (0)
    model.layers[0].kernel.assign(np.ones((2, 1), np.float32))
    la.on_train_batch_end(1)  # rho = 0.5: the average moves half way to 1, and the weights follow it
    np.testing.assert_allclose(np.asarray(model.layers[0].kernel), 0.5)
    model.layers[0].kernel.assign(np.full((2, 1), 3.0, np.float32))
    la.on_epoch_end(0)  # after the epoch the weights are the average again
    np.testing.assert_allclose(np.asarray(model.layers[0].kernel), 0.5)


def test_translate_tta_adds_the_shifted_views_and_reports_the_plain_accuracy():
    model = S.speedrun_net(width=0.125, whiten_bias=True, dirac=True, bn_scale=False)
    x = _images(16)
    y = np.arange(16) % 10
    out = EV.evaluate(model, x, y, tta=("flip", "translate"), probabilities=True)
    assert {"test_accuracy", "test_accuracy_no_tta"} <= set(out)
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-3)
    plain = EV.evaluate(model, x, y, probabilities=True)["probabilities"]
    assert not np.allclose(out["probabilities"], plain)
    assert [w.name for w in model.get_layer("whiten").trainable_weights] == ["bias"]


def test_speedrun94_resumed_after_the_lookahead_began_ends_like_an_uninterrupted_run(tmp_path):
    """The Lookahead average is not saved: it equals the weights at the end of every epoch, so a run resumed after
    epoch 4 (the average began in epoch 3) picks it up from the checkpoint's weights and ends the same."""
    from vgglab.runtime import set_seed

    exp = REG.EXPERIMENTS["speedrun94"]
    prof = get_profile("smoke")
    x, y = _images(96), np.arange(96) % 10

    class Stop(Exception):
        pass

    def stop_after(n):
        def callback(done):
            if done == n:
                raise Stop
        return callback

    def train(checkpoint=None, resume=False, on_epoch_end=()):
        set_seed(5)
        model = exp.build(prof, exp.recipe, 5)
        S.adapt_layers(model, x)
        T.fit(model, x, y, recipe=exp.recipe, epochs=5, batch_size=32, seed=5, checkpoint=checkpoint, resume=resume,
              on_epoch_end=on_epoch_end, log=lambda s: None)
        return [np.asarray(v) for v in model.variables if "float" in str(v.dtype)]

    whole = train()
    with pytest.raises(Stop):
        train(tmp_path / "c.npz", on_epoch_end=[stop_after(4)])
    resumed = train(tmp_path / "c.npz", resume=True)
    for a, b in zip(whole, resumed):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_whitening_bias_trains_for_its_epochs_then_keeps_its_value():
    import keras

    layer = S.PatchWhitening(use_bias=True, bias_epochs=2)
    x = _images(4)
    layer.build(x.shape)
    layer.bias.assign(np.arange(24, dtype=np.float32))
    for epoch in (0, 1):
        layer.begin_epoch(epoch)
        assert float(layer.bias_gate.numpy()) == 1.0
    before = np.asarray(layer(x))
    layer.begin_epoch(2)
    np.testing.assert_array_equal(np.asarray(layer.frozen_bias), np.arange(24))
    layer.bias.assign(np.zeros(24, np.float32))  # what the optimiser might still do to it no longer shows
    np.testing.assert_allclose(np.asarray(layer(x)), before, atol=1e-6)
    layer.begin_epoch(3)  # a later epoch (or a resume) keeps the value frozen at epoch 2
    np.testing.assert_array_equal(np.asarray(layer.frozen_bias), np.arange(24))
    with pytest.raises(ValueError, match="bias_epochs=3 freezes the whitening bias, so it needs use_bias=True"):
        S.PatchWhitening(use_bias=False, bias_epochs=3)
    with pytest.raises(ValueError, match="bias_epochs must be an epoch count .* not -1"):
        S.PatchWhitening(use_bias=True, bias_epochs=-1)
    with pytest.raises(ValueError, match="whiten_bias_epochs=3 needs whiten=True and whiten_bias=True"):
        S.SpeedrunBuild(whiten_bias_epochs=3)
    with pytest.raises(ValueError, match="head_init must be one of glorot_uniform, torch, not 'kaiming'"):
        S.SpeedrunBuild(head_init="kaiming")
    assert keras.layers.deserialize(keras.layers.serialize(layer)).bias_epochs == 2


def test_the_training_loop_freezes_the_whitening_bias_and_the_lookahead_average_leaves_the_freeze_alone():
    # the bias freezes at epoch 2, after the Lookahead average began at epoch 1: the average must not pull the
    # freeze's bookkeeping back towards "trainable"
    exp = REG.get_experiment("speedrun94-fixes").variant(
        "tiny-fixes", epochs={"smoke": 3}, lookahead_from=1,
        build=REG.SPEEDRUN94_FIXES.build.but(whiten_bias_epochs=2, width=0.125))
    data = D.synthetic_cifar10(n_train=256, n_test=64)
    _, model, _ = E.run_experiment(exp, profile="smoke", data=data, keep_model=True, log=lambda s: None)
    whiten = model.get_layer("whiten")
    assert float(np.asarray(whiten.bias_gate)) == 0.0 and np.abs(np.asarray(whiten.frozen_bias)).max() > 0
    la = T.Lookahead(0, 10, 5)
    la.set_model(model)
    averaged = {id(v) for v in la._variables()}
    assert id(whiten.bias_gate) not in averaged and id(whiten.frozen_bias) not in averaged and id(whiten.bias) in averaged


def test_decay_shifts_decays_batch_norm_shifts_as_the_kernels_and_runs_keep_their_settings():
    import keras

    def beta_after_one_step(decay_shifts):
        model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(beta_initializer="ones")])
        recipe = RC.Recipe("t", "sgd", 0.1, weight_decay=0.5, bias_lr_scale=64.0, decay_shifts=decay_shifts)
        opt = RC.make_optimizer(recipe, 10)
        opt.apply_gradients([(np.zeros(4, np.float32), v) for v in model.trainable_variables])
        return np.asarray(model.layers[0].beta)

    np.testing.assert_allclose(beta_after_one_step(False), 1.0)
    np.testing.assert_allclose(beta_after_one_step(True), 1.0 - 0.1 * 0.5, rtol=1e-5)  # lr x decay, not 64 x lr
    fixes, base = REG.get_experiment("speedrun94-fixes"), REG.get_experiment("speedrun94")
    gpu = get_profile("gpu")
    assert E.run_config(fixes, gpu, 10, 0, "d", "s")["recipe"]["decay_shifts"] is True
    assert "decay_shifts" not in E.run_config(base, gpu, 10, 0, "d", "s")["recipe"]  # as before the field existed
    with pytest.raises(ValueError, match="decay_shifts must be True or False, not 'yes'"):
        RC.Recipe("t", "sgd", 0.1, decay_shifts="yes")


def test_the_torch_head_init_is_uniform_within_one_over_root_fan_in():
    net = S.speedrun_net(width=0.25, head_init="torch")
    w = np.asarray(net.get_layer("logits").kernel)
    assert 0.9 / np.sqrt(w.shape[0]) < np.abs(w).max() <= 1 / np.sqrt(w.shape[0])

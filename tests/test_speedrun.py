"""The speed-run network (vgglab.speedrun), flip test-time augmentation and the speed-run summary."""

import numpy as np
import pytest

from vgglab import analysis as A
from vgglab import data as D
from vgglab import experiments as E
from vgglab import speedrun as S
from vgglab import train as T
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
    plain = S.SpeedrunBuild(width=0.25).but(whiten=False, batch_norm=False)(get_profile("smoke"), T.RECIPES["adam"], 0)
    names = [l.name for l in plain.layers]
    assert "whiten_conv" in names and "whiten" not in names and not any("bn" in n for n in names)
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
    got = T.evaluate(net, x, y, tta=("flip",))
    probs = (net.predict(x, verbose=0) + net.predict(x[:, :, ::-1], verbose=0)) / 2
    assert got["test_accuracy"] == pytest.approx(float((probs.argmax(-1) == y).mean()))
    assert got["test_accuracy_no_tta"] == pytest.approx(float((net.predict(x, verbose=0).argmax(-1) == y).mean()))
    assert "test_accuracy_no_tta" not in T.evaluate(net, x, y)
    assert np.sum(got["confusion_matrix"]) == 16
    with pytest.raises(ValueError, match="unknown test-time augmentation 'rotate'; choose from flip"):
        T.evaluate(net, x, y, tta=("rotate",))
    with pytest.raises(ValueError, match="unknown test-time augmentation 'crop'"):
        T.check_recipe(T.Recipe("x", "sgd", 0.1, tta=("crop",)))


def test_the_speedrun_experiment_whitens_from_its_training_images_and_records_both_accuracies():
    exp = E.get_experiment("speedrun")
    assert E.batch_size(exp, get_profile("cpu")) == 256 and E.batch_size(exp, get_profile("gpu")) == 1024
    assert E.batch_size(E.get_experiment("vgg16"), get_profile("cpu")) == get_profile("cpu").batch_size
    data = D.synthetic_cifar10(n_train=600, n_test=200)
    record, model = E.run_with_model(exp.variant("speedrun-test", epochs={"smoke": 1}, train_size={"smoke": 256}), profile="smoke", data=data,
                                     log=lambda *a: None)
    assert record["adapted_layers"] == ["whiten"]
    kernel = np.asarray(model.get_layer("whiten").kernel)
    assert not np.allclose(np.abs(kernel).max(axis=(0, 1, 2)), 1.0)  # not the pixel-picking start any more
    assert 0 <= record["test_accuracy_no_tta"] <= 1 and record["eval_seconds"] > 0
    assert record["config"]["recipe"]["tta"] == ["flip"]


def test_speedrun_summary():
    record = {"profile": "gpu", "test_accuracy": 0.9412, "test_accuracy_no_tta": 0.935, "train_seconds": 30.0,
              "eval_seconds": 1.5, "history": {"epoch_seconds": [12.0, 2.0, 2.5, 2.0]}}
    s = E.speedrun_summary(record)
    assert s == {"seconds": 31.5, "compile_seconds": 10.0, "test_accuracy": 0.9412, "test_accuracy_no_tta": 0.935,
                 "target": 0.94, "reached": True}
    assert not E.speedrun_summary(record, target=0.95)["reached"]
    with pytest.raises(ValueError, match="no speed-run target for profile 'tiny'"):
        E.speedrun_summary({**record, "profile": "tiny"})
    with pytest.raises(ValueError, match="not a run record"):
        E.speedrun_summary({"profile": "gpu"})

"""The VGG-13 (configuration B) experiments of the optimiser and normalisation chapters, and comparison_profile."""

import keras
import numpy as np
import pytest

import vgglab
import vgglab.analysis
from vgglab.experiments import EXPERIMENTS, comparison_profile, vgg13_he_builder
from vgglab.runtime import PROFILES


@pytest.mark.parametrize("name, bn", [("vgg13-he", False), ("vgg13-he-bn", True)])
def test_vgg13_experiments_build_configuration_b(name, bn):
    exp = EXPERIMENTS[name]
    model = exp.build(PROFILES["smoke"], exp.recipe, 0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(convs) == 10 and len(norms) == (10 if bn else 0)
    assert convs[0].filters == 8 and convs[-1].filters == 64  # width 0.125 of 64 ... 512
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert isinstance(convs[0].kernel_initializer, keras.initializers.HeNormal)
    assert exp.recipe.optimizer == "adam" and exp.recipe.lr == 1e-4
    assert set(exp.epochs) == {"smoke", "cpu", "gpu"}


def test_input_scale_puts_raw_pixels_into_the_first_convolution():
    model = vgg13_he_builder(input_scale=255.0)(PROFILES["smoke"], EXPERIMENTS["vgg13-he"].recipe, 0)
    assert model.layers[1].name == "input_scale"
    x = np.full((1, 32, 32, 3), 0.5, "float32")
    seen = vgglab.analysis.layer_outputs(model, x, ["input_scale"])["input_scale"]
    np.testing.assert_allclose(seen, 127.5)
    with pytest.raises(ValueError, match="input_scale"):
        vgg13_he_builder(input_scale=0)
    with pytest.raises(TypeError, match="batch_norm"):
        vgg13_he_builder(batch_norm="yes")


def test_comparison_profile():
    cpu = comparison_profile("cpu")
    assert cpu.name == "cpu" and cpu.test_size == 2_000 and cpu.train_size == PROFILES["cpu"].train_size
    assert comparison_profile("smoke") is PROFILES["smoke"] and comparison_profile("gpu") is PROFILES["gpu"]
    with pytest.raises(ValueError, match="unknown"):
        comparison_profile("tpu")


def test_a_variant_runs_end_to_end_on_synthetic_data():
    data = vgglab.data.synthetic_cifar10(n_train=400, n_test=100)
    exp = EXPERIMENTS["vgg13-he"].variant("t", optimizer="sgd", lr=1e-2, momentum=0.9, epochs={"smoke": 1},
                                          train_size={"smoke": 128})
    record = vgglab.run_experiment(exp, profile="smoke", data=data, log=lambda s: None)
    assert record["config"]["recipe"]["momentum"] == 0.9 and record["config"]["train_size"] == 128
    assert len(record["history"]["loss"]) == 1 and 0 <= record["test_accuracy"] <= 1


@pytest.mark.parametrize("init", ["he_normal", "glorot_uniform", keras.initializers.RandomNormal(stddev=0.01)])
def test_every_layer_draws_its_own_initial_weights(init):
    """An unseeded Keras initializer returns the same draws on every call; vgg() must not share one between layers."""
    from vgglab.runtime import set_seed

    def kernels():
        set_seed(0)
        model = vgglab.vgg([8, 8, "M", 8, "M"], input_shape=(32, 32, 3), num_classes=10, head="small", head_units=16,
                           initializer=init)
        return [np.asarray(layer.kernel).ravel() for layer in model.layers if hasattr(layer, "kernel")]

    first = kernels()
    n = min(len(k) for k in first)
    standardised = [k[:n] / k[:n].std() for k in first]
    for i in range(len(standardised)):
        for j in range(i + 1, len(standardised)):
            assert abs(np.corrcoef(standardised[i], standardised[j])[0, 1]) < 0.5, (i, j)
    assert all(np.array_equal(a, b) for a, b in zip(first, kernels()))  # still reproducible from the seed
    basic = vgglab.basic_cnn(initializer=init)
    k1, k2 = (np.asarray(basic.get_layer(n).kernel).ravel()[:500] for n in ("block1_conv1", "block2_conv1"))
    assert abs(np.corrcoef(k1, k2)[0, 1]) < 0.5

"""The VGG-13 (configuration B) experiments of the optimiser and normalisation chapters, and comparison_profile."""

import keras
import numpy as np
import pytest

import vgglab
import vgglab.analysis
from vgglab.experiments import comparison_profile
from vgglab.registry import EXPERIMENTS
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


def test_raw_normalization_feeds_pixel_values():
    x = np.array([[[[0, 128, 255]]]], np.uint8)
    np.testing.assert_array_equal(vgglab.data.normalize(x, "raw"), [[[[0.0, 128.0, 255.0]]]])
    exp = EXPERIMENTS["vgg13-he"].variant("input-raw", normalization="raw")
    assert exp.recipe.normalization == "raw" and exp.build == EXPERIMENTS["vgg13-he"].build
    with pytest.raises(ValueError, match="unknown normalisation 'pixels'"):
        vgglab.data.normalize(x, "pixels")


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

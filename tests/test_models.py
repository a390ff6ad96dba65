import keras
import numpy as np
import pytest

from vgglab.models import CONFIGS, LocalResponseNormalization, basic_cnn, config_table, resolve_config, vgg

# Table 2 of Simonyan & Zisserman (2015), counted exactly at 224x224x3 and 1000 classes.
PAPER_PARAMS = {"A": 132_863_336, "A-LRN": 132_863_336, "B": 133_047_848, "C": 133_638_952,
                "D": 138_357_544, "E": 143_667_240}


def table2_params(cfg, size: int = 224, classes: int = 1000) -> int:
    """Table 2 by hand from a configuration: k*k*C_in*C_out + C_out per convolution, then fc1, fc2 and the output."""
    params, c_in = 0, 3
    for item in cfg:
        if item == "M":
            size //= 2
        elif item != "LRN":
            c_out, k = (item, 3) if isinstance(item, int) else item
            params, c_in = params + k * k * c_in * c_out + c_out, c_out
    return params + (size * size * c_in + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * classes


def test_paper_parameter_counts():
    """Every configuration of Table 1 against Table 2 by the formula, and the formula against one real build (D)."""
    assert {name: table2_params(cfg) for name, cfg in CONFIGS.items()} == PAPER_PARAMS
    assert vgg("D").count_params() == table2_params(CONFIGS["D"]) == 138_357_544


def test_aliases_and_keras_layer_names():
    m = vgg("vgg16", input_shape=(32, 32, 3), num_classes=10, width=0.125)
    names = [layer.name for layer in m.layers]
    assert names[1:3] == ["block1_conv1", "block1_conv2"]
    assert "block5_conv3" in names and "block5_pool" in names
    assert names[-5:] == ["fc1", "fc1_dropout", "fc2", "fc2_dropout", "predictions"]
    assert m.name == "vgg16"
    assert resolve_config("vgg19")[0] == "E" and resolve_config("a-lrn")[0] == "A-LRN"
    conv_counts = {c: sum(1 for x in cfg if x not in ("M", "LRN")) for c, cfg in CONFIGS.items()}
    assert conv_counts == {"A": 8, "A-LRN": 8, "B": 10, "C": 13, "D": 13, "E": 16}


def test_config_c_uses_1x1_convolutions():
    m = vgg("C", input_shape=(32, 32, 3), num_classes=10, width=0.125)
    kernels = {layer.name: layer.kernel_size for layer in m.layers if isinstance(layer, keras.layers.Conv2D)}
    assert kernels["block3_conv3"] == (1, 1) and kernels["block5_conv3"] == (1, 1)
    assert kernels["block3_conv2"] == (3, 3)


def test_cifar_variant_options():
    m = vgg("D", input_shape=(32, 32, 3), num_classes=10, batch_norm=True, width=0.25, head="gap", dropout=0.0)
    kinds = [type(layer).__name__ for layer in m.layers]
    assert "BatchNormalization" in kinds and "GlobalAveragePooling2D" in kinds and "Flatten" not in kinds
    assert m.get_layer("block1_conv1").filters == 16 and m.get_layer("block1_conv1").use_bias is False
    assert m.output_shape == (None, 10)
    small = vgg("D", input_shape=(32, 32, 3), num_classes=10, head="small", head_units=64, width=0.25)
    assert small.get_layer("fc1").units == 64 and "fc2" not in [layer.name for layer in small.layers]
    x = np.zeros((2, 32, 32, 3), "float32")
    assert np.allclose(np.asarray(m(x)).sum(-1), 1.0, atol=1e-5)


def test_custom_configuration_list():
    m = vgg([8, "M", (16, 1), "M"], input_shape=(8, 8, 3), num_classes=3, head="gap")
    assert m.get_layer("block2_conv1").kernel_size == (1, 1)
    assert m.count_params() == (3 * 9 * 8 + 8) + (8 * 16 + 16) + (16 * 3 + 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"config": "F"}, "unknown VGG configuration 'F'; choose one of A, A-LRN"),
    ({"config": 16}, "config must be a name"),
    ({"config": [64, "X"]}, "bad configuration entry 'X'"),
    ({"input_shape": (16, 16, 3)}, r"input_shape \(16, 16, 3\) is too small for 5 max-pooling layers"),
    ({"input_shape": (32, 32)}, "input_shape must be"),
    ({"num_classes": 0}, "num_classes must be an integer of at least 2, not 0"),
    ({"width": 0}, "width must be a positive number, not 0"),
    ({"dropout": 1.0}, r"dropout must be a rate in \[0, 1\), not 1.0"),
    ({"head": "dense"}, "unknown head 'dense'; choose one of paper, small, gap"),
    ({"activation": "swishy"}, "unknown activation 'swishy'"),
    ({"initializer": "zeros_please"}, "unknown initializer 'zeros_please'"),
])
def test_bad_arguments_name_the_value(kwargs, message):
    args = {"config": "A", "input_shape": (32, 32, 3), "num_classes": 10, "width": 0.125, **kwargs}
    config = args.pop("config")
    with pytest.raises((ValueError, TypeError), match=message):
        vgg(config, **args)


def test_lrn_matches_direct_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 2, 2, 7)).astype("float32")
    lrn = LocalResponseNormalization(size=5, alpha=1e-2, beta=0.75, k=2.0)
    got = np.asarray(lrn(x))
    expected = np.empty_like(x)
    for c in range(7):
        lo, hi = max(0, c - 2), min(7, c + 3)
        expected[..., c] = x[..., c] / (2.0 + 1e-2 * (x[..., lo:hi] ** 2).sum(-1)) ** 0.75
    assert np.allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNormalization(size=4)


def test_basic_cnn():
    m = basic_cnn()
    assert [layer.name for layer in m.layers][1:] == ["block1_conv1", "block1_pool", "block2_conv1", "block2_pool",
                                                     "flatten", "fc1", "predictions"]
    assert m.get_layer("fc1").units == 384
    assert m.get_layer("block1_conv1").activation.__name__ == "sigmoid"
    assert m.count_params() == (75 * 32 + 32) + (800 * 64 + 64) + (8 * 8 * 64 * 384 + 384) + (384 * 10 + 10)
    with pytest.raises(ValueError, match="num_classes"):
        basic_cnn(num_classes=0)


def test_config_table_is_the_paper_table():
    rows = config_table()
    assert rows[0] == ["conv3-64"] * 6
    assert rows[1] == ["", "LRN", "conv3-64", "conv3-64", "conv3-64", "conv3-64"]
    assert ["", "", "", "conv1-256", "conv3-256", "conv3-256"] in rows
    assert sum(r == ["maxpool"] * 6 for r in rows) == 5


def test_conv_stack_counts_and_checks():
    from vgglab.models import conv_stack

    three = conv_stack([3, 3, 3], 16, size=8, use_bias=False)
    assert [layer.name for layer in three.layers[1:]] == ["conv1", "conv2", "conv3"]
    assert three.count_params() == 27 * 16 * 16 and tuple(three.output.shape[1:]) == (8, 8, 16)
    one = conv_stack([7], 16, size=8, in_channels=3)
    assert one.count_params() == 7 * 7 * 3 * 16 + 16
    with pytest.raises(ValueError, match="kernels"):
        conv_stack([], 16)
    with pytest.raises(ValueError, match="channels"):
        conv_stack([3], 0)


def test_every_layer_draws_its_own_initial_weights():
    # Config B at width 0.25 has same-shaped layers (block4_conv2, block5_conv1, block5_conv2); one shared
    # initializer object would give them identical kernels.
    keras.utils.set_random_seed(0)
    model = vgg("B", input_shape=(32, 32, 3), num_classes=10, width=0.25, head="small")
    kernels = [model.get_layer(n).get_weights()[0] for n in ("block4_conv2", "block5_conv1", "block5_conv2")]
    assert kernels[0].shape == kernels[1].shape == kernels[2].shape
    assert not np.allclose(kernels[0], kernels[1]) and not np.allclose(kernels[1], kernels[2])
    keras.utils.set_random_seed(0)
    again = vgg("B", input_shape=(32, 32, 3), num_classes=10, width=0.25, head="small")
    np.testing.assert_array_equal(again.get_layer("block5_conv2").get_weights()[0], kernels[2])

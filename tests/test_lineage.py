"""The lineage models of chapter 15: LeNet-5, AlexNet, the Inception module and the CIFAR ResNets."""

import keras
import numpy as np
import pytest

from vgglab import analysis as A
from vgglab.models import (INCEPTION_SPECS, PadShortcut, alexnet, cifar_resnet, googlenet_mini, inception_block_model,
                           inception_module, inception_params, lenet5, residual_block, resnet_depth)


def _names(model):
    return [layer.name for layer in model.layers]


def test_lenet5_layers_and_parameters():
    m = lenet5()
    assert _names(m)[1:] == ["c1_conv", "s2_pool", "c3_conv", "s4_pool", "flatten", "c5_fc", "f6_fc", "predictions"]
    shapes = {row["name"]: row["output_shape"] for row in A.layer_table(m)}
    assert shapes["c1_conv"] == (28, 28, 6) and shapes["s2_pool"] == (14, 14, 6)
    assert shapes["c3_conv"] == (10, 10, 16) and shapes["s4_pool"] == (5, 5, 16) and shapes["flatten"] == (400,)
    assert isinstance(m.get_layer("s2_pool"), keras.layers.AveragePooling2D)
    assert m.get_layer("c1_conv").activation.__name__ == "tanh"
    # C5 and F6 have the paper's parameter counts: 48,120 and 10,164.
    assert m.get_layer("c5_fc").count_params() == 48_120 and m.get_layer("f6_fc").count_params() == 10_164
    assert m.count_params() == (75 + 1) * 6 + (150 + 1) * 16 + 48_120 + 10_164 + 85 * 10 == 62_006
    assert A.flops(m) == 2 * (28 * 28 * 75 * 6 + 10 * 10 * 150 * 16 + 400 * 120 + 120 * 84 + 84 * 10)
    with pytest.raises(ValueError, match="at least 16 pixels"):
        lenet5(input_shape=(12, 12, 1))


def test_alexnet_imagenet_stem_has_the_single_tower_parameter_count():
    m = alexnet(input_shape=(227, 227, 3), num_classes=1000, stem="imagenet")
    shapes = {row["name"]: row["output_shape"] for row in A.layer_table(m)}
    assert shapes["conv1"] == (55, 55, 96) and shapes["pool1"] == (27, 27, 96)
    assert shapes["pool2"] == (13, 13, 256) and shapes["pool5"] == (6, 6, 256)
    convs = [(11 * 11 * 3, 96), (25 * 96, 256), (9 * 256, 384), (9 * 384, 384), (9 * 384, 256)]
    fcs = [(6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)]
    assert m.count_params() == sum((i + 1) * o for i, o in convs + fcs) == 62_378_344
    del m
    keras.backend.clear_session()


def test_alexnet_cifar_adaptation():
    m = alexnet(width=0.25)
    names = _names(m)
    assert names[1:5] == ["conv1", "conv1_lrn", "pool1", "conv2"] and "conv2_lrn" in names and "conv3_lrn" not in names
    assert m.get_layer("conv1").kernel_size == (5, 5) and m.get_layer("conv1").strides == (1, 1)
    assert m.get_layer("pool1").pool_size == (3, 3) and m.get_layer("pool1").strides == (2, 2)  # overlapping
    assert m.get_layer("fc6_dropout").rate == 0.5 and m.get_layer("fc6").units == 1024
    assert tuple(m.get_layer("pool5").output.shape[1:]) == (3, 3, 64)
    assert m.get_layer("conv5").filters == 64 and m.output_shape == (None, 10)
    assert "conv1_lrn" not in _names(alexnet(width=0.25, lrn=False))
    for kwargs, message in (({"stem": "big"}, "unknown stem 'big'"), ({"width": -1}, "width must be a positive"),
                            ({"input_shape": (8, 8, 3)}, "too small for AlexNet"), ({"dropout": 1.5}, "dropout")):
        with pytest.raises(ValueError, match=message):
            alexnet(**kwargs)


def test_inception_3a_parameters_with_and_without_reductions():
    # Inception (3a): 192 channels in; 64 | 96 -> 128 | 16 -> 32 | pool -> 32 (GoogLeNet, Table 1).
    with_reduce = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    naive = 192 * 64 + 9 * 192 * 128 + 25 * 192 * 32
    assert (with_reduce, naive) == (163_328, 387_072)
    reduced, plain = inception_block_model("3a"), inception_block_model("3a", reduce=False)
    assert reduced.count_params() == with_reduce + (64 + 96 + 128 + 16 + 32 + 32) == inception_params("3a")
    assert plain.count_params() == naive + (64 + 128 + 32) == inception_params("3a", reduce=False)
    assert inception_params("3a", bias=False) == with_reduce and inception_params("3a", reduce=False, bias=False) == naive
    assert reduced.output_shape == (None, 28, 28, 256) and plain.output_shape == (None, 28, 28, 64 + 128 + 32 + 192)
    assert A.flops(reduced) == 2 * 28 * 28 * with_reduce and A.flops(plain) == 2 * 28 * 28 * naive
    names = _names(reduced)
    for tag in ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool", "pool_proj", "concat"):
        assert f"inception_3a_{tag}" in names
    assert "inception_3a_3x3_reduce" not in _names(plain) and "inception_3a_pool_proj" not in _names(plain)
    # Every row of Table 1 adds up to the output channels the paper lists.
    out = {k: c1 + c3 + c5 + pp for k, (c1, _, c3, _, c5, pp) in INCEPTION_SPECS.items()}
    assert out == {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528, "4e": 832, "5a": 832, "5b": 1024}


def test_inception_module_on_a_tensor_and_bad_specs():
    inp = keras.Input((8, 8, 12))
    y = inception_module(inp, (4, 2, 6, 1, 2, 3), name="mod", batch_norm=True)
    m = keras.Model(inp, y)
    assert m.output_shape == (None, 8, 8, 15) and "mod_3x3_bn" in _names(m)
    out = np.asarray(m(np.ones((1, 8, 8, 12), "float32")))
    assert out.shape == (1, 8, 8, 15) and np.all(out >= 0)  # every branch ends in ReLU or max pooling of ReLUs
    with pytest.raises(ValueError, match="unknown Inception module '9z'"):
        inception_block_model("9z")
    with pytest.raises(ValueError, match="six positive integers"):
        inception_block_model((1, 2, 3))
    with pytest.raises(ValueError, match="in_channels must be a positive integer, not 0"):
        inception_block_model(in_channels=0)


def test_googlenet_mini():
    m = googlenet_mini(width=0.25)
    names = _names(m)
    assert "inception3a_concat" in names and "inception5b_concat" in names and names[-2:] == ["dropout", "predictions"]
    assert m.get_layer("dropout").rate == 0.4 and m.output_shape == (None, 10)
    assert tuple(m.get_layer("inception3a_concat").output.shape[1:]) == (16, 16, 64)
    assert tuple(m.get_layer("inception5b_concat").output.shape[1:]) == (4, 4, 256)
    small = googlenet_mini(width=0.25, modules=("3a",))
    assert small.count_params() < m.count_params()
    with pytest.raises(ValueError, match="unknown module '6a'"):
        googlenet_mini(modules=("3a", "6a"))


@pytest.mark.parametrize("depth, n", [(8, 1), (20, 3), (56, 9), (110, 18)])
def test_resnet_depth_is_6n_plus_2(depth, n):
    assert resnet_depth(depth) == n


@pytest.mark.parametrize("depth", [19, 2, 0, -4, 20.0, "20", True])
def test_bad_depth_names_the_value(depth):
    with pytest.raises(ValueError, match=f"depth must be 6n \\+ 2 .* not {depth!r}"):
        cifar_resnet(depth)


def test_cifar_resnet_layers_and_weighted_depth():
    m = cifar_resnet(20, width=0.25)
    convs = [layer for layer in m.layers if isinstance(layer, keras.layers.Conv2D) and "shortcut" not in layer.name]
    dense = [layer for layer in m.layers if isinstance(layer, keras.layers.Dense)]
    assert len(convs) + len(dense) == 20
    assert {layer.name for layer in m.layers if "shortcut_conv" in layer.name} == {
        "stage2_block1_shortcut_conv", "stage3_block1_shortcut_conv"}
    shapes = {row["name"]: row["output_shape"] for row in A.layer_table(m)}
    assert shapes["stage1_block3_relu2"] == (32, 32, 4)
    assert shapes["stage2_block1_relu2"] == (16, 16, 8) and shapes["stage3_block3_relu2"] == (8, 8, 16)
    assert m.name == "resnet20" and cifar_resnet(8, residual=False, width=0.25).name == "plain8"


@pytest.mark.parametrize("depth", [8, 20, 32])
def test_plain_twin_has_the_same_parameters_less_the_projections(depth):
    res, plain = cifar_resnet(depth, width=0.5), cifar_resnet(depth, residual=False, width=0.5)
    proj = sum(layer.count_params() for layer in res.layers if "shortcut" in layer.name)
    assert proj == (8 * 16 + 4 * 16) + (16 * 32 + 4 * 32)  # two 1x1 convolutions and their batch norms
    assert res.count_params() - proj == plain.count_params()
    pad = cifar_resnet(depth, width=0.5, shortcut="pad")
    assert pad.count_params() == plain.count_params()
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    assert sum(isinstance(layer, keras.layers.Add) for layer in res.layers) == 3 * resnet_depth(depth)


def test_resnet20_has_the_papers_size():
    # He et al. (2016), Table 6: ResNet-20 has 0.27M parameters (identity shortcuts, option A).
    m = cifar_resnet(20, shortcut="pad")
    trainable = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    assert round(trainable / 1e6, 2) == 0.27
    convs = 9 * (3 * 16 + 6 * 16 * 16 + 16 * 32 + 5 * 32 * 32 + 32 * 64 + 5 * 64 * 64)
    assert A.param_breakdown(m)["conv"] == convs


def test_residual_block_identity_and_pad_shortcuts():
    inp = keras.Input((8, 8, 4))
    block = keras.Model(inp, residual_block(inp, 4, name="b"))
    assert "b_add" in _names(block) and not any("shortcut" in n for n in _names(block))
    # With the residual branch's last BN scaled to zero the block is ReLU(identity): the shortcut carries x.
    block.get_layer("b_bn2").gamma.assign(np.zeros(4, "float32"))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    assert np.allclose(np.asarray(block(x, training=False)), np.maximum(x, 0), atol=1e-6)
    pad = PadShortcut(8, 2)
    y = np.asarray(pad(x))
    assert y.shape == (2, 4, 4, 8) and np.allclose(y[..., 2:6], x[:, ::2, ::2, :]) and not y[..., :2].any()
    with pytest.raises(ValueError, match="unknown shortcut 'conv'"):
        residual_block(inp, 8, shortcut="conv")
    with pytest.raises(ValueError, match="stride must be a positive integer, not 0"):
        residual_block(inp, 8, stride=0)


@pytest.mark.parametrize("width", [0, -0.5, float("nan"), "wide", True])
def test_bad_widths_name_the_value(width):
    for build in (lambda: cifar_resnet(8, width=width), lambda: alexnet(width=width),
                  lambda: googlenet_mini(width=width)):
        with pytest.raises(ValueError, match=f"width must be a positive number, not {width!r}"):
            build()


def test_every_lineage_model_counts_flops_for_all_its_weighted_layers():
    for m in (lenet5(), alexnet(width=0.25), googlenet_mini(width=0.25), cifar_resnet(8, width=0.25)):
        rows = A.layer_table(m)
        assert all(r["flops"] > 0 for r in rows if r["kind"] in ("Conv2D", "Dense"))
        assert A.flops(m) == sum(r["flops"] for r in rows)
        out = np.asarray(m(np.zeros((2, 32, 32, 3), "float32"), training=False))
        assert out.shape == (2, 10) and np.allclose(out.sum(-1), 1, atol=1e-5)

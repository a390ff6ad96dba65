"""Bad inputs to every public function: a clear ValueError, TypeError or FileNotFoundError that names the bad value.

``CASES`` is one table of (callable, args, kwargs, expected exception, text the message must contain); the text
is the bad value as the message should quote it, or the phrase around it. Models and data that several cases
need are built once, on first use (``_Lazy``), so collecting the table builds nothing. Cases that need files
(archives, caches, checkpoints, output folders) and the command line follow the table.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
from dataclasses import replace

import keras
import matplotlib
import numpy as np
import pytest

from tests.conftest import write_folder, write_tar
import vgglab
from vgglab import analysis as A
from vgglab import data as D
from vgglab import distribute as DP
from vgglab import experiments as E
from vgglab import ladder as LAD
from vgglab import records as RS
from vgglab import registry as REG
from vgglab import models as M
from vgglab import optim as O
from vgglab import plots as P
from vgglab import runtime as R
from vgglab import speedrun as S
from vgglab import train as T
from vgglab import augment as AUG, dense_eval as DE, evaluate as EV, files as F, recipes as RC
from vgglab.cli import main

matplotlib.use("Agg")

NAN = float("nan")
RECIPE = RC.RECIPES["adam"]


class _Lazy:
    """A value built on first use and then shared (a tiny model, a small data set)."""

    def __init__(self, make):
        self.make = functools.cache(make)

    def __repr__(self):
        return f"<{self.make.__wrapped__.__name__}>"


def _resolve(v):
    if isinstance(v, list):
        return [_resolve(a) for a in v]
    return v.make() if isinstance(v, _Lazy) else v


def _cnn():  # 8x8x3 -> conv(4) -> pool -> fc(4) -> 3 classes
    return M.vgg([4, "M"], input_shape=(8, 8, 3), num_classes=3, head="small", head_units=4, dropout=0.0)


def _gap():
    return M.vgg([4, "M"], input_shape=(8, 8, 3), num_classes=3, head="gap")


def _conv():
    return M.conv_stack([3], 2, size=6)


def _tensor():
    return keras.Input((8, 8, 4))


def _data():
    return D.synthetic_cifar10(20, 10)


def _history():
    return {"accuracy": [0.5, 0.6], "val_accuracy": [0.4, 0.5]}


CNN, GAP, CONV, TENSOR, DATA = (_Lazy(f) for f in (_cnn, _gap, _conv, _tensor, _data))
U8 = np.zeros((4, 8, 8, 3), np.uint8)  # four 8x8 uint8 images
X = np.zeros((4, 8, 8, 3), np.float32)  # the same as floats, for the tiny models
Y = np.array([0, 1, 2, 0])
Y10 = np.arange(10)


def bad(id, fn, *args, exc=ValueError, needle, **kwargs):
    return pytest.param(fn, args, kwargs, exc, needle, id=id)


def _subset(data, **kw):
    return data.subset(**kw)


def _variant(**kw):
    return REG.EXPERIMENTS["basic-cnn"].variant("x", **kw)


def _recipe(**kw):  # a Recipe checks itself when it is made
    return replace(RECIPE, **kw)


CASES = [
    # ---------------------------------------------------------------- vgglab.data
    bad("load_cifar10-int", D.load_cifar10, 42, exc=TypeError, needle="42"),
    bad("load_cifar10-empty", D.load_cifar10, "", needle="''"),
    bad("load_cifar10-missing", D.load_cifar10, "/nonexistent/vgglab-cifar", exc=FileNotFoundError,
        needle="vgglab-cifar"),
    bad("load_cifar10-cache_dir", D.load_cifar10, "synthetic", cache_dir=42, exc=TypeError, needle="42"),
    bad("describe_source-int", D.describe_source, 42, exc=TypeError, needle="42"),
    bad("synthetic-n_train", D.synthetic_cifar10, 5, needle="n_train must be an integer of at least 10, not 5"),
    bad("synthetic-n_test", D.synthetic_cifar10, 20, 2.5, needle="2.5"),
    bad("synthetic-seed", D.synthetic_cifar10, 20, 10, seed=-3, needle="-3"),
    bad("synthetic-seed-str", D.synthetic_cifar10, 20, 10, seed="a", needle="'a'"),
    bad("stratified-n-0", D.stratified_indices, Y10, 0, needle="not 0"),
    bad("stratified-n-big", D.stratified_indices, Y10, 11, needle="not 11"),
    bad("stratified-n-bool", D.stratified_indices, Y10, True, needle="not True"),
    bad("stratified-float-labels", D.stratified_indices, Y10.astype(float), 3, needle="float64"),
    bad("stratified-2d-labels", D.stratified_indices, np.zeros((2, 5), int), 3, needle="(2, 5)"),
    bad("stratified-seed", D.stratified_indices, Y10, 3, seed=-3, needle="-3"),
    bad("split-lengths", D.train_val_split, U8, Y10, 2, needle="4 images but y has 10"),
    bad("split-val_size", D.train_val_split, U8, Y, 4, needle="not 4"),
    bad("split-val_size-negative", D.train_val_split, U8, Y, -1, needle="not -1"),
    bad("split-x", D.train_val_split, 3, Y, 1, exc=TypeError, needle="int 3"),
    bad("subset-train_size", _subset, DATA, train_size=10**6, needle="1000000"),
    bad("channel_stats-float", D.channel_stats, X, needle="float32"),
    bad("channel_stats-2d", D.channel_stats, np.zeros((2, 2), np.uint8), needle="(2, 2)"),
    bad("normalize-method", D.normalize, U8, "zscore", needle="'zscore'"),
    bad("normalize-float", D.normalize, X, "unit", needle="float32"),
    bad("normalize-no-stats", D.normalize, U8, "standardize", needle="stats=(mean, std)"),
    bad("normalize-zero-std", D.normalize, U8, "standardize", ([0, 0, 0], [1, 1, 0]), needle="[1, 1, 0]"),
    bad("normalize-nan-std", D.normalize, U8, "standardize", ([0, 0, 0], [1, 1, NAN]), needle="nan"),
    # ---------------------------------------------------------------- vgglab.runtime
    bad("get_profile-int", R.get_profile, 3, exc=TypeError, needle="3"),
    bad("get_profile-unknown", R.get_profile, "fast", needle="'fast'; choose one of smoke, cpu, gpu"),
    bad("get_profile-empty", R.get_profile, "", needle="''"),
    bad("check_seed-negative", R.check_seed, -3, needle="-3"),
    bad("check_seed-str", R.check_seed, "7", needle="'7'"),
    bad("set_seed-negative", R.set_seed, -3, needle="-3"),
    bad("set_seed-float", R.set_seed, 1.5, needle="1.5"),
    bad("set_seed-huge", R.set_seed, 2**40, needle=str(2**40)),
    bad("setup-profile", vgglab.setup, "fast", font=False, quiet=True, needle="'fast'"),
    bad("setup-seed", vgglab.setup, "smoke", -3, font=False, quiet=True, needle="-3"),
    # ---------------------------------------------------------------- vgglab.models
    bad("resolve_config-name", M.resolve_config, "Z", needle="'Z'; choose one of A, A-LRN"),
    bad("resolve_config-int", M.resolve_config, 3, exc=TypeError, needle="3"),
    bad("resolve_config-entry", M.resolve_config, [64, "X"], needle="'X'"),
    bad("resolve_config-tuple", M.resolve_config, [64, (3,)], needle="(3,)"),
    bad("resolve_config-negative", M.resolve_config, [-4], needle="-4"),
    bad("vgg-input_shape", M.vgg, "A", input_shape=(32, 32), needle="(32, 32)"),
    bad("vgg-too-small", M.vgg, "A", input_shape=(16, 16, 3), needle="(16, 16, 3) is too small"),
    bad("vgg-num_classes", M.vgg, "A", num_classes=1, needle="not 1"),
    bad("vgg-width-0", M.vgg, "A", width=0, needle="not 0"),
    bad("vgg-width-nan", M.vgg, "A", width=NAN, needle="nan"),
    bad("vgg-width-str", M.vgg, "A", width="1", needle="'1'"),
    bad("vgg-dropout", M.vgg, "A", dropout=1.0, needle="not 1.0"),
    bad("vgg-head", M.vgg, "A", head="big", needle="'big'"),
    bad("vgg-head_units", M.vgg, "A", head_units=0, needle="not 0"),
    bad("vgg-activation", M.vgg, "A", activation="nope", needle="'nope'"),
    bad("vgg-initializer", M.vgg, "A", initializer="nope", needle="'nope'"),
    bad("vgg-regularizer", M.vgg, "A", regularizer="nope", needle="'nope'"),
    bad("vgg-augmentation-item", M.vgg, [4, "M"], input_shape=(8, 8, 3), augmentation=[3], exc=TypeError,
        needle="3"),
    bad("vgg-augmentation-str", M.vgg, [4, "M"], input_shape=(8, 8, 3), augmentation="flip", exc=TypeError,
        needle="'flip'"),
    bad("basic_cnn-augmentation", M.basic_cnn, augmentation=[3], exc=TypeError, needle="3"),
    bad("basic_cnn-filters", M.basic_cnn, filters=(0,), needle="(0,)"),
    bad("basic_cnn-filters-str", M.basic_cnn, filters="ab", needle="'ab'"),
    bad("basic_cnn-fc_units", M.basic_cnn, fc_units=2.5, needle="2.5"),
    bad("basic_cnn-activation", M.basic_cnn, activation="nope", needle="'nope'"),
    bad("config_table-name", M.config_table, ["Z"], needle="'Z'"),
    bad("config_table-empty", M.config_table, [], needle="[]"),
    bad("conv_stack-kernels", M.conv_stack, [], 4, needle="[]"),
    bad("conv_stack-kernel-float", M.conv_stack, [2.5], 4, needle="2.5"),
    bad("conv_stack-channels", M.conv_stack, [3], 0, needle="channels must be a positive integer, not 0"),
    bad("conv_stack-size", M.conv_stack, [3], 4, size=-2, needle="-2"),
    bad("conv_stack-in_channels", M.conv_stack, [3], 4, in_channels=0,
        needle="in_channels must be a positive integer, not 0"),
    bad("conv_stack-activation", M.conv_stack, [3], 4, activation="nope", needle="'nope'"),
    bad("downsampling-mode", M.downsampling_net, "A", downsample="blur", needle="'blur'"),
    bad("downsampling-head", M.downsampling_net, "A", head="paper", needle="'paper'"),
    bad("downsampling-lrn", M.downsampling_net, "A-LRN", needle="'LRN'"),
    bad("downsampling-augmentation", M.downsampling_net, "A", augmentation=[3], exc=TypeError, needle="3"),
    bad("fcn-not-a-model", DE.to_fully_convolutional, 3, exc=TypeError, needle="int"),
    bad("fcn-gap", DE.to_fully_convolutional, GAP, needle="global pooling"),
    bad("fcn-channels", DE.to_fully_convolutional, CNN, (8, 8, 1), needle="(8, 8, 1)"),
    bad("fcn-input_shape", DE.to_fully_convolutional, CNN, (0, 8, 3), needle="(0, 8, 3)"),
    bad("fcn-too-small", DE.to_fully_convolutional, CNN, (1, 1, 3), needle="(1, 1, 3) is too small"),
    bad("lenet5-too-small", M.lenet5, input_shape=(12, 12, 3), needle="(12, 12, 3)"),
    bad("lenet5-activation", M.lenet5, activation="nope", needle="'nope'"),
    bad("alexnet-stem", M.alexnet, stem="big", needle="'big'"),
    bad("alexnet-too-small", M.alexnet, input_shape=(14, 14, 3), needle="(14, 14, 3)"),
    bad("alexnet-augmentation", M.alexnet, augmentation=[3], exc=TypeError, needle="3"),
    bad("inception_module-spec", M.inception_module, TENSOR, "9z", needle="'9z'"),
    bad("inception_module-x", M.inception_module, 3, exc=TypeError, needle="3"),
    bad("inception_block-in_channels", M.inception_block_model, in_channels=0, needle="not 0"),
    bad("inception_block-size", M.inception_block_model, size=-1, needle="not -1"),
    bad("inception_block-spec", M.inception_block_model, (1, 2, 3), needle="(1, 2, 3)"),
    bad("inception_params-spec", M.inception_params, "9z", needle="'9z'"),
    bad("inception_params-in_channels", M.inception_params, "3a", -4, needle="-4"),
    bad("googlenet-modules", M.googlenet_mini, modules=("6a",), needle="'6a'"),
    bad("googlenet-modules-str", M.googlenet_mini, modules="3a", exc=TypeError, needle="'3a'"),
    bad("googlenet-augmentation", M.googlenet_mini, augmentation=[3], exc=TypeError, needle="3"),
    bad("PadShortcut-filters", M.PadShortcut, 0, needle="filters must be a positive integer, not 0"),
    bad("PadShortcut-stride", M.PadShortcut, 4, stride=0, needle="stride must be a positive integer, not 0"),
    bad("residual_block-filters", M.residual_block, TENSOR, 0, needle="not 0"),
    bad("residual_block-shortcut", M.residual_block, TENSOR, 4, shortcut="conv", needle="'conv'"),
    bad("residual_block-x", M.residual_block, 3, 4, exc=TypeError, needle="3"),
    bad("resnet_depth", M.resnet_depth, 9, needle="not 9"),
    bad("resnet_depth-str", M.resnet_depth, "20", needle="'20'"),
    bad("cifar_resnet-depth", M.cifar_resnet, 9, needle="not 9"),
    bad("cifar_resnet-shortcut", M.cifar_resnet, 8, shortcut="conv", needle="'conv'"),
    bad("cifar_resnet-augmentation", M.cifar_resnet, 8, augmentation=[3], exc=TypeError, needle="3"),
    bad("LRN-size", M.LocalResponseNormalization, 4, needle="not 4"),
    bad("LRN-alpha", M.LocalResponseNormalization, alpha="x", needle="'x'"),
    # ---------------------------------------------------------------- vgglab.train
    bad("check_recipe-type", RC.check_recipe, "adam", exc=TypeError, needle="'adam'"),
    bad("recipe-optimizer", _recipe, optimizer="sgdd", needle="'sgdd'; choose one of sgd, adam, adamw"),
    bad("recipe-schedule", _recipe, schedule="cosine", needle="'cosine'"),
    bad("recipe-augment", _recipe, augment=("rotate",), needle="'rotate'"),
    bad("recipe-augment-str", _recipe, augment="flip", exc=TypeError, needle="'flip'"),
    bad("recipe-lr-0", _recipe, lr=0, needle="not 0"),
    bad("recipe-lr-nan", _recipe, lr=NAN, needle="nan"),
    bad("recipe-label_smoothing", _recipe, label_smoothing=1.0, needle="not 1.0"),
    bad("recipe-momentum", _recipe, momentum=1.5, needle="1.5"),
    bad("recipe-weight_decay", _recipe, weight_decay=-1e-4, needle="-0.0001"),
    bad("recipe-normalization", _recipe, normalization="pixels", needle="'pixels'"),
    bad("recipe-plateau_patience", _recipe, plateau_patience=0, needle="plateau_patience"),
    bad("recipe-batch_size", _recipe, batch_size=0, needle="batch_size must be a positive integer or None, not 0"),
    bad("augmentation_layers-recipe", AUG.augmentation_layers, ("flip",), exc=TypeError, needle="('flip',)"),
    bad("OneCycle-peak", RC.OneCycle, -0.1, 10, needle="-0.1"),
    bad("OneCycle-steps", RC.OneCycle, 0.1, 0, needle="total_steps must be a positive integer, not 0"),
    bad("OneCycle-warmup", RC.OneCycle, 0.1, 10, 1.5, needle="1.5"),
    bad("make_optimizer-steps", RC.make_optimizer, RECIPE, 0, needle="steps must be a positive integer, not 0"),
    bad("compile_model-model", T.compile_model, 3, RECIPE, 10, exc=TypeError, needle="int"),
    bad("load_checkpoint-missing", T.load_checkpoint, "/nonexistent/ck.npz", CNN, exc=FileNotFoundError,
        needle="/nonexistent/ck.npz"),
    bad("load_checkpoint-model", T.load_checkpoint, "/nonexistent/ck.npz", 3, exc=TypeError, needle="int"),
    bad("fit-model", T.fit, 3, X, Y, recipe=RECIPE, epochs=1, exc=TypeError, needle="int"),
    bad("fit-recipe", T.fit, CNN, X, Y, recipe="adam", epochs=1, exc=TypeError, needle="'adam'"),
    bad("fit-epochs", T.fit, CNN, X, Y, recipe=RECIPE, epochs=0, needle="epochs must be a positive integer, not 0"),
    bad("fit-batch_size", T.fit, CNN, X, Y, recipe=RECIPE, epochs=1, batch_size=2.5, needle="2.5"),
    bad("fit-lengths", T.fit, CNN, X, Y[:3], recipe=RECIPE, epochs=1, needle="4 images but y_train has 3"),
    bad("fit-label-range", T.fit, CNN, X, Y + 5, recipe=RECIPE, epochs=1, needle="found 5..7"),
    bad("fit-float-labels", T.fit, CNN, X, Y.astype(float), recipe=RECIPE, epochs=1, needle="float64"),
    bad("fit-x-shape", T.fit, CNN, X[:, :6], Y, recipe=RECIPE, epochs=1, needle="(4, 6, 8, 3)"),
    bad("fit-x_val-alone", T.fit, CNN, X, Y, X, recipe=RECIPE, epochs=1, needle="y_val"),
    bad("fit-val-lengths", T.fit, CNN, X, Y, X, Y[:2], recipe=RECIPE, epochs=1, needle="4 images but y_val has 2"),
    bad("fit-val-label-range", T.fit, CNN, X, Y, X, Y + 7, recipe=RECIPE, epochs=1, needle="found 7..9"),
    bad("fit-seed", T.fit, CNN, X, Y, recipe=RECIPE, epochs=1, seed=-3, needle="-3"),
    bad("fit-progress_every", T.fit, CNN, X, Y, recipe=RECIPE, epochs=1, progress_every=-1, needle="-1"),
    bad("check_progress_every", T.check_progress_every, 0, needle="not 0"),
    bad("steady_ips-type", T.steady_images_per_second, [1.0], exc=TypeError, needle="list"),
    bad("evaluate-model", EV.evaluate, 3, X, Y, exc=TypeError, needle="int"),
    bad("evaluate-lengths", EV.evaluate, CNN, X, Y[:3], needle="4 images but y has 3"),
    bad("evaluate-label-range", EV.evaluate, CNN, X, [0, 1, 2, 7], needle="7"),
    bad("evaluate-x-shape", EV.evaluate, CNN, X[:, :6], Y, needle="(4, 6, 8, 3)"),
    bad("Cutout-size", AUG.Cutout, 0, needle="not 0"),
    bad("Cutout-seed", AUG.Cutout, 4, seed=-1, needle="not -1"),
    bad("ensemble_predict-empty", EV.ensemble_predict, [], X, needle="[]"),
    bad("ensemble_predict-member", EV.ensemble_predict, [3], X, needle="[3]"),
    bad("evaluate_ensemble-lengths", EV.evaluate_ensemble, [CNN], X, Y[:3], needle="4 images but y has 3"),
    bad("ensemble_scores-shape", EV.ensemble_scores, np.zeros((2, 3)), Y, needle="(2, 3)"),
    bad("ensemble_scores-label-range", EV.ensemble_scores, np.full((2, 4, 3), 1 / 3), [0, 1, 2, 7], needle="7"),
    bad("augment_images-name", AUG.augment_images, X, "rotate", needle="'rotate'"),
    bad("augment_images-shape", AUG.augment_images, X[0], "flip", needle="(8, 8, 3)"),
    bad("augment_images-seed", AUG.augment_images, X, "flip", seed=-3, needle="-3"),
    bad("scale_crop-shape", AUG.scale_crop, X[0], 8, 0, needle="(8, 8, 3)"),
    bad("scale_crop-size", AUG.scale_crop, X, 4, 0, needle="got 4"),
    bad("scale_crop-offset", AUG.scale_crop, X, 12, (9, 0), needle="(9, 0)"),
    bad("scale_crop-nan", AUG.scale_crop, X, NAN, 0, needle="nan"),
    bad("scale_crop-offsets-shape", AUG.scale_crop, X, 12, (1, 2, 3), needle="(1, 2, 3)"),
    bad("RandomScaleCrop-min", AUG.RandomScaleCrop, 0, 4, needle="not 0"),
    bad("RandomScaleCrop-order", AUG.RandomScaleCrop, 32, 16, needle="max_size (16) must be at least min_size (32)"),
    bad("RandomScaleCrop-seed", AUG.RandomScaleCrop, 32, 64, seed=-1, needle="-1"),
    bad("dense_scores-shape", DE.dense_scores, CNN, X[0], needle="(8, 8, 3)"),
    bad("dense_scores-sizes", DE.dense_scores, CNN, X, sizes=[0], needle="not 0"),
    bad("dense_scores-flips", DE.dense_scores, CNN, X, flips=[2], needle="(2,)"),
    bad("dense_scores-chunk", DE.dense_scores, CNN, X, chunk=0, needle="chunk must be a positive integer, not 0"),
    bad("dense_scores-batch_size", DE.dense_scores, CNN, X, batch_size=-1, needle="not -1"),
    bad("combined_accuracy-missing", DE.combined_accuracy, {}, Y, {"c": [(32, False)]}, needle="'c'"),
    bad("combined_accuracy-combos", DE.combined_accuracy, {}, Y, [(32, False)], exc=TypeError, needle="list"),
    # ---------------------------------------------------------------- vgglab.optim
    bad("get_surface-name", O.get_surface, "bowl", needle="'bowl'; choose one of ravine, saddle"),
    bad("trajectory-optimizer", O.trajectory, "sgd", O.SURFACES["ravine"].grad, (1.0, 1.0), 3, exc=TypeError,
        needle="str"),
    bad("trajectory-steps", O.trajectory, keras.optimizers.SGD(0.1), O.SURFACES["ravine"].grad, (1.0, 1.0), -1,
        needle="not -1"),
    bad("trajectory-start", O.trajectory, keras.optimizers.SGD(0.1), O.SURFACES["ravine"].grad, (NAN, 1.0), 3,
        needle="nan"),
    bad("trajectory-grad_fn", O.trajectory, keras.optimizers.SGD(0.1), 3, (1.0, 1.0), 3, exc=TypeError,
        needle="int"),
    bad("steps_to_reach-path", O.steps_to_reach, np.zeros(3), O.SURFACES["ravine"].f, 1.0, needle="(3,)"),
    bad("steps_to_reach-f", O.steps_to_reach, np.zeros((3, 2)), 3, 1.0, exc=TypeError, needle="int"),
    bad("steps_to_reach-level", O.steps_to_reach, np.zeros((3, 2)), O.SURFACES["ravine"].f, NAN, needle="nan"),
    # ---------------------------------------------------------------- vgglab.analysis
    bad("layer_flops-type", A.layer_flops, 3, exc=TypeError, needle="int"),
    bad("layer_table-type", A.layer_table, 3, exc=TypeError, needle="int"),
    bad("param_breakdown-type", A.param_breakdown, "vgg16", exc=TypeError, needle="str"),
    bad("flops-type", A.flops, None, exc=TypeError, needle="NoneType"),
    bad("receptive_fields-type", A.receptive_fields, [], exc=TypeError, needle="list"),
    bad("gradient_receptive_field-type", A.gradient_receptive_field, 3, exc=TypeError, needle="int"),
    bad("gradient_receptive_field-dense", A.gradient_receptive_field, CNN, needle="(3,)"),
    bad("block_summary-type", A.block_summary, 3, exc=TypeError, needle="int"),
    bad("kernel_weights-name", A.kernel_weights, CNN, "fc9", needle="'fc9'"),
    bad("kernel_weights-names", A.kernel_weights, CNN, 3, exc=TypeError, needle="not 3"),
    bad("weight_summary-tol", A.weight_summary, CNN, tol=0, needle="not 0"),
    bad("weight_summary-tol-nan", A.weight_summary, CNN, tol=NAN, needle="nan"),
    bad("input_gradient_map-power", A.input_gradient_map, CONV, power=3, needle="not 3"),
    bad("input_gradient_map-samples", A.input_gradient_map, CONV, samples=0, needle="not 0"),
    bad("input_gradient_map-x", A.input_gradient_map, CONV, np.zeros((1, 5, 6, 2)), needle="(1, 5, 6, 2)"),
    bad("input_gradient_map-dense", A.input_gradient_map, CNN, needle="(3,)"),
    bad("input_gradient_map-seed", A.input_gradient_map, CONV, seed=-3, needle="-3"),
    bad("gradient_mass-size", A.gradient_mass_fraction, np.ones((5, 5)), 4, needle="not 4"),
    bad("gradient_mass-2d", A.gradient_mass_fraction, np.ones(5), 1, needle="(5,)"),
    bad("gradient_mass-negative", A.gradient_mass_fraction, -np.ones((5, 5)), 1, needle="non-negative"),
    bad("activation_counts-type", A.activation_counts, 3, exc=TypeError, needle="int"),
    bad("equivalent_kernel-pool", A.equivalent_kernel, CNN, needle="'block1_conv1' has a bias"),
    bad("loss_gradients-lengths", A.loss_gradients, CNN, X, Y[:3], needle="4 examples but y has 3"),
    bad("loss_gradients-loss", A.loss_gradients, CNN, X, Y, loss="nope", needle="'nope'"),
    bad("loss_gradients-loss-type", A.loss_gradients, CNN, X, Y, loss=3, exc=TypeError, needle="3"),
    bad("loss_gradients-x", A.loss_gradients, CNN, X[:, :6], Y, needle="(4, 6, 8, 3)"),
    bad("gradient_norms-type", A.gradient_norms, 3, X, Y, exc=TypeError, needle="int"),
    bad("activation_of-type", A.activation_of, 3, exc=TypeError, needle="int"),
    bad("activation_stats-saturation", A.activation_stats, CNN, X, saturation=2, needle="not 2"),
    bad("activation_stats-batch_size", A.activation_stats, CNN, X, batch_size=0, needle="not 0"),
    bad("activation_stats-layer", A.activation_stats, CNN, X, "nope", needle="'nope'"),
    bad("activation_stats-layers", A.activation_stats, CNN, X, 3, exc=TypeError, needle="not 3"),
    bad("dead_units-layer", A.dead_unit_fraction, CNN, X, ["nope"], needle="'nope'"),
    bad("dead_units-batch_size", A.dead_unit_fraction, CNN, X, batch_size=-1, needle="not -1"),
    bad("shift_images-mode", A.shift_images, X, 1, 0, "wrap", needle="'wrap'"),
    bad("shift_images-too-far", A.shift_images, X, 99, 0, needle="(99, 0)"),
    bad("shift_images-float", A.shift_images, X, 1.5, 0, needle="1.5"),
    bad("shift_images-shape", A.shift_images, X[0], 1, 0, needle="(8, 8, 3)"),
    bad("shift_sensitivity-shift", A.shift_sensitivity, CNN, X, [99], needle="99"),
    bad("shift_sensitivity-shifts", A.shift_sensitivity, CNN, X, 3, needle="not 3"),
    bad("shift_sensitivity-layer", A.shift_sensitivity, CNN, X, [1], "nope", needle="'nope'"),
    bad("shift_sensitivity-mode", A.shift_sensitivity, CNN, X, [1], mode="wrap", needle="'wrap'"),
    bad("shift_sensitivity-y", A.shift_sensitivity, CNN, X, [1], y=Y[:3], needle="(3,)"),
    bad("shift_sensitivity-seed", A.shift_sensitivity, CNN, X, [1], seed=-3, needle="-3"),
    bad("shift_sensitivity-batch_size", A.shift_sensitivity, CNN, X, [1], batch_size=0, needle="not 0"),
    bad("dropout_statistics-rate", A.dropout_statistics, [1.0, 2.0], 1.0, needle="not 1.0"),
    bad("dropout_statistics-rate-nan", A.dropout_statistics, [1.0, 2.0], NAN, needle="nan"),
    bad("dropout_statistics-samples", A.dropout_statistics, [1.0, 2.0], 0.5, 0, needle="not 0"),
    bad("dropout_statistics-x", A.dropout_statistics, [NAN], 0.5, needle="finite"),
    bad("dropout_statistics-seed", A.dropout_statistics, [1.0, 2.0], 0.5, 10, -3, needle="-3"),
    bad("generalization_gap-type", A.generalization_gap, [0.5], exc=TypeError, needle="list"),
    bad("generalization_gap-metric", A.generalization_gap, _history(), "top5", needle="'top5'"),
    bad("generalization_gap-last", A.generalization_gap, _history(), last=5, needle="not 5"),
    bad("generalization_gap-missing", A.generalization_gap, {"accuracy": [0.5]}, needle="'val_accuracy'"),
    bad("generalization_gap-numbers", A.generalization_gap, {"accuracy": 0.5, "val_accuracy": 0.4},
        needle="'val_accuracy'"),
    bad("layer_outputs-empty", A.layer_outputs, CNN, X, [], needle="at least one"),
    bad("layer_outputs-name", A.layer_outputs, CNN, X, "nope", needle="'nope'"),
    bad("layer_outputs-names", A.layer_outputs, CNN, X, 3, exc=TypeError, needle="not 3"),
    bad("batch_norm-gamma", A.batch_norm_reference, X, [1.0], [0.0] * 3, [0.0] * 3, [1.0] * 3, needle="(1,)"),
    bad("batch_norm-momentum", A.batch_norm_reference, X, *[[1.0] * 3] * 4, momentum=2, needle="not 2"),
    bad("batch_norm-epsilon", A.batch_norm_reference, X, *[[1.0] * 3] * 4, epsilon=0, needle="not 0"),
    bad("batch_norm-shape", A.batch_norm_reference, [1.0], *[[1.0]] * 4, needle="(1,)"),
    bad("patch_moments-shape", A.patch_moment_eigenvalues, X[0], needle="(8, 8, 3)"),
    bad("patch_moments-size", A.patch_moment_eigenvalues, X, 99, needle="not 99"),
    bad("patch_moments-max_patches", A.patch_moment_eigenvalues, X, 3, 0, needle="not 0"),
    bad("patch_moments-nan", A.patch_moment_eigenvalues, np.full((2, 4, 4, 1), NAN), needle="finite"),
    bad("patch_moments-seed", A.patch_moment_eigenvalues, X, 3, 10, -3, needle="-3"),
    # ---------------------------------------------------------------- vgglab.plots
    bad("plot_history-empty", P.plot_history, {}, needle="non-empty dict"),
    bad("plot_history-list", P.plot_history, {"a": [0.5, 0.6]}, exc=TypeError, needle="'a'"),
    bad("plot_history-metric", P.plot_history, {"a": _history()}, "top5", needle="'top5'"),
    bad("image_grid-lengths", P.image_grid, U8, Y[:3], ["a"] * 3, needle="(4, 8, 8, 3) and (3,)"),
    bad("image_grid-per_class", P.image_grid, U8, Y, ["a"] * 3, per_class=0, needle="not 0"),
    bad("image_grid-class_names", P.image_grid, U8, Y, [], needle="[]"),
    bad("image_grid-seed", P.image_grid, U8, Y, ["a"] * 3, seed=-3, needle="-3"),
    bad("bar_compare-lengths", P.bar_compare, ["a"], [1, 2], "y", needle="1 and 2"),
    bad("bar_compare-values", P.bar_compare, ["a"], ["x"], "y", needle="['x']"),
    bad("bar_compare-log", P.bar_compare, ["a", "b"], [1, 0], "y", log=True, needle="[1, 0]"),
    bad("augmentation_grid-empty", P.augmentation_grid, {}, needle="non-empty dict"),
    bad("augmentation_grid-shapes", P.augmentation_grid, {"a": X, "b": X[:2]}, needle="(2, 8, 8, 3)"),
    bad("weight_histograms-empty", P.weight_histograms, {}, needle="non-empty dict"),
    bad("weight_histograms-bins", P.weight_histograms, {"a": [0.5, 1.0]}, bins=0, needle="not 0"),
    bad("weight_histograms-nan", P.weight_histograms, {"a": [NAN, 1.0]}, needle="'a'"),
    bad("ladder_chart-empty", P.ladder_chart, [], needle="at least one"),
    bad("ladder_chart-keys", P.ladder_chart, [{"step": 1, "label": "a"}], needle="'mean'"),
    bad("layer_curves-lengths", P.layer_curves, {"a": [1, 2]}, ["x", "y", "z"], "y", needle="2 values for 3"),
    bad("layer_curves-log", P.layer_curves, {"a": [1, 0]}, ["x", "y"], "y", needle="'a'"),
    bad("plain_log_labels-axis", P.plain_log_labels, None, "z", needle="'z'"),
    bad("plot_trajectories-surface", P.plot_trajectories, "bowl", {"a": np.zeros((2, 2))}, needle="'bowl'"),
    bad("plot_trajectories-paths", P.plot_trajectories, "ravine", {}, needle="non-empty dict"),
    bad("plot_trajectories-path", P.plot_trajectories, "ravine", {"a": np.zeros((2, 3))}, needle="(2, 3)"),
    # ---------------------------------------------------------------- vgglab.experiments
    bad("batch_size-experiment", E.batch_size, "vgg99", "smoke", needle="'vgg99'"),
    bad("batch_size-profile", E.batch_size, "vgg16", "fast", needle="'fast'"),
    bad("get_experiment-name", REG.get_experiment, "vgg99", needle="'vgg99'"),
    bad("get_experiment-int", REG.get_experiment, 3, needle="3"),
    bad("variant-field", _variant, epoch=3, needle="'epoch'"),
    bad("variant-recipe-field", _variant, optimizer="sgdd", needle="'sgdd'"),
    bad("variant-epochs-type", _variant, epochs=3, exc=TypeError, needle="not 3"),
    bad("variant-epochs-value", _variant, epochs={"smoke": 0}, needle="'smoke': 0"),
    bad("variant-train_size", _variant, train_size={"cpu": -5}, needle="'cpu': -5"),
    bad("variant-build", _variant, build="vgg16", exc=TypeError, needle="'vgg16'"),
    bad("epochs_for-profile", REG.EXPERIMENTS["basic-cnn"].variant("x", epochs={"smoke": 1}).epochs_for,
        R.PROFILES["gpu"], needle="'gpu'"),
    bad("load_for_profile-profile", D.load_for_profile, "fast", needle="'fast'"),
    bad("load_for_profile-type", D.load_for_profile, 3, exc=TypeError, needle="3"),
    bad("prepare-data", E.prepare, 3, "smoke", exc=TypeError, needle="int"),
    bad("prepare-profile", E.prepare, DATA, "fast", needle="'fast'"),
    bad("prepare-normalization", E.prepare, DATA, "smoke", normalization="pixels", needle="'pixels'"),
    bad("prepare-train_size", E.prepare, DATA, "smoke", train_size=-5, needle="not -5"),
    bad("run_experiment-name", E.run_experiment, "vgg99", needle="'vgg99'"),
    bad("run_experiment-profile", E.run_experiment, "basic-cnn", profile="fast", needle="'fast'"),
    bad("run_experiment-epochs", E.run_experiment, "basic-cnn", profile="smoke", epochs=0, needle="not 0"),
    bad("run_experiment-seed", E.run_experiment, "basic-cnn", profile="smoke", seed=-3, needle="-3"),
    bad("run_experiment-data", E.run_experiment, "basic-cnn", profile="smoke", data=3, exc=TypeError, needle="int"),
    bad("run_experiment-out", E.run_experiment, "basic-cnn", profile="smoke", data=DATA, out=3, exc=TypeError,
        needle="int 3"),
    bad("run_experiment-progress", E.run_experiment, "basic-cnn", profile="smoke", data=DATA, progress_every=-1,
        needle="-1"),
    bad("run_experiment-train-size", E.run_experiment, "basic-cnn", profile="smoke", data=DATA, train_size=0,
        needle="not 0"),
    bad("run_experiment-train-size-bool", E.run_experiment, "basic-cnn", profile="smoke", data=DATA, train_size=True,
        needle="not True"),
    bad("run_experiment-train-size-float", E.run_experiment, "basic-cnn", profile="smoke", data=DATA, train_size=256.0,
        needle="not 256.0"),
    bad("VGGBuild-config", REG.VGGBuild, "Z", needle="'Z'"),
    bad("VGGBuild-head", REG.VGGBuild, head="big", needle="'big'"),
    bad("VGGBuild-dropout", REG.VGGBuild, dropout=1.0, needle="not 1.0"),
    bad("VGGBuild-activation", REG.VGGBuild, activation="nope", needle="'nope'"),
    bad("VGGBuild-width", REG.VGGBuild, width=0, needle="not 0"),
    bad("VGGBuild-head_units", REG.VGGBuild, head_units=0, needle="not 0"),
    bad("VGGBuild-l2", REG.VGGBuild, l2=-1e-3, needle="-0.001"),
    bad("VGGBuild-initializer", REG.VGGBuild, initializer="xavierr", needle="'xavierr'"),
    bad("VGGBuild-normal", REG.VGGBuild, initializer="normal(0)", needle="'normal(0)'"),
    bad("VGGBuild.but", REG.VGGBuild().but, depth=3, needle="'depth'"),
    bad("experiment_splits-name", E.experiment_splits, "vgg99", "smoke", DATA, needle="'vgg99'"),
    bad("experiment_splits-data", E.experiment_splits, "basic-cnn", "smoke", 3, exc=TypeError, needle="int"),
    bad("overfit_summary-record", E.overfit_summary, 3, CNN, None, exc=TypeError, needle="int"),
    bad("overfit_summary-no-val", E.overfit_summary, {"history": {}}, CNN, None, needle="validation"),
    bad("ladder_budget-profile", LAD.ladder_budget, "fast", needle="'fast'"),
    bad("run_ladder-seeds-empty", LAD.run_ladder, "smoke", seeds=[], needle="()"),
    bad("run_ladder-seeds-negative", LAD.run_ladder, "smoke", seeds=[-3], needle="-3"),
    bad("run_ladder-seeds-repeated", LAD.run_ladder, "smoke", seeds=[1, 1], needle="(1, 1)"),
    bad("run_ladder-ensemble", LAD.run_ladder, "smoke", steps=[REG.LADDER[-1]], needle="'ladder-10-augment'"),
    bad("run_ladder-step", LAD.run_ladder, "smoke", steps=[replace(REG.LADDER[0], name="nope")], needle="'nope'"),
    bad("run_ladder-steps-type", LAD.run_ladder, "smoke", steps=[3], exc=TypeError, needle="[3]"),
    bad("run_ladder-out", LAD.run_ladder, "smoke", out=3, exc=TypeError, needle="int 3"),
    bad("run_ladder-data", LAD.run_ladder, "smoke", data=3, exc=TypeError, needle="int"),
    bad("load_ladder-type", LAD.load_ladder, 3, exc=TypeError, needle="3"),
    bad("load_ladder-missing", LAD.load_ladder, "/nonexistent/ladder", needle="/nonexistent/ladder"),
    bad("load_records-type", RS.load_records, 3, exc=TypeError, needle="3"),
    bad("resnet_width-profile", REG.resnet_width, "fast", needle="'fast'"),
    bad("degradation_depths-profile", REG.degradation_depths, 3, exc=TypeError, needle="3"),
    bad("comparison_profile-profile", E.comparison_profile, "fast", needle="'fast'"),
    # chapters 13 and 14: seeds, saved predictions, the speed run
    bad("save_predictions-shape", RS.save_predictions, "/tmp/p.npz", np.zeros((3, 10)), np.zeros(4, int),
        needle="(3, 10) for labels of shape (4,)"),
    bad("load_predictions-missing", RS.load_predictions, {"path": "/nowhere/result.json"}, needle="/nowhere/result.json"),
    bad("seed_ensemble-one", RS.seed_ensemble, [{"seed": 0}], needle="got 1"),
    bad("summarize_seeds-empty", RS.summarize_seeds, [], needle="no records"),
    bad("speedrun_summary-record", RS.speedrun_summary, {"x": 1}, needle="{'x': 1}"),
    bad("speedrun_rows-type", RS.speedrun_rows, [1], exc=TypeError, needle="list"),
    bad("speedrun_table-rows", RS.speedrun_table, [{"runs": 1}], needle="{'runs': 1}"),
    bad("per_class_accuracy-shape", A.per_class_accuracy, np.zeros((2, 3)), needle="(2, 3)"),
    bad("training_seconds-mfu", A.training_seconds, 1e9, 10, 100, 1.5, needle="1.5"),
    bad("sample_patches-nan", A.sample_patches, np.full((2, 4, 4, 3), NAN), 2, 10, needle="NaN or infinite"),
    bad("confusion_matrix-shape", P.confusion_matrix, np.eye(2), ["a"], needle="(2, 2)"),
    bad("whitening_filters-eps", S.whitening_filters, np.zeros((2, 4, 4, 3)), eps=0, needle="not 0"),
    bad("PatchWhitening-size", S.PatchWhitening, -2, needle="-2"),
    bad("SpeedrunBuild-width", S.SpeedrunBuild, width=-1, needle="not -1"),
    bad("speedrun_net-width", S.speedrun_net, width=9, needle="not 9"),
    bad("speedrun_net-activation", S.speedrun_net, activation="nope", needle="nope"),
    # data parallelism (the backends' own checks are in tests/test_distribute.py)
    bad("data_parallel-devices", DP.data_parallel, 3, exc=TypeError, needle="not 3"),
    bad("tpu_strategy-tpu", DP.tpu_strategy, 3, exc=TypeError, needle="not 3"),
    bad("kind-type", DP.kind, "x", exc=TypeError, needle="str"),
    bad("replicas-type", DP.replicas, "x", exc=TypeError, needle="str"),
    bad("describe-type", DP.describe, "x", exc=TypeError, needle="str"),
    bad("scope-type", DP.scope, "x", exc=TypeError, needle="str"),
    bad("check_model-type", DP.check_model, "x", None, exc=TypeError, needle="str"),
    bad("check_batches-type", DP.check_batches, "x", 3, 4, exc=TypeError, needle="str"),
    bad("predict-model", DP.predict, "m", np.zeros((1, 4, 4, 3)), exc=TypeError, needle="str"),
    bad("adapt_layers-model", S.adapt_layers, "model", np.zeros((1, 4, 4, 3)), exc=TypeError, needle="str"),
    # precision and airbench's recipe
    bad("resolve_precision-name", R.resolve_precision, "bf16", needle="'bf16'"),
    bad("run_experiment-precision", E.run_experiment, "basic-cnn", profile="smoke", data=DATA, precision="fp8",
        needle="'fp8'"),
    bad("recipe-bias_lr_scale", _recipe, optimizer="sgd", bias_lr_scale=0, needle="not 0"),
    bad("recipe-bias_lr_scale-adam", _recipe, bias_lr_scale=64.0, needle="'adam'"),
    bad("recipe-lookahead_from", _recipe, lookahead_from=-1, needle="not -1"),
    bad("OneCycle-end", RC.OneCycle, 0.1, 10, end=2, needle="not 2"),
]


@pytest.mark.parametrize("fn, args, kwargs, exc, needle", CASES)
def test_bad_input_is_refused_by_name(fn, args, kwargs, exc, needle):
    args = [_resolve(a) for a in args]
    kwargs = {k: _resolve(v) for k, v in kwargs.items()}
    with pytest.raises((ValueError, TypeError, FileNotFoundError)) as caught:
        fn(*args, **kwargs)
    assert isinstance(caught.value, exc), f"{type(caught.value).__name__}: {caught.value}"
    assert needle in str(caught.value), str(caught.value)


# ----------------------------------------------------------------------------------------------
# Files: archives, images, caches, checkpoints, records and output folders


def _batches(root, **replace_with):
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        raw = pickle.dumps({b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]})
        (root / name).write_bytes(replace_with.get(name, raw))
    return root


def test_truncated_official_batch_names_the_batch(tmp_path):
    good = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]})
    folder = _batches(tmp_path / "cifar-10-batches-py", test_batch=good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt CIFAR-10 batch 'test_batch' in .*cifar-10-batches-py"):
        D.load_cifar10(folder)


def test_official_batch_with_bad_labels_names_the_batch(tmp_path):
    bad_labels = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 12]})
    with pytest.raises(ValueError, match="'data_batch_2'.*labels in 0..9"):
        D.load_cifar10(_batches(tmp_path / "b", data_batch_2=bad_labels))


def test_undecodable_image_inside_an_archive_names_member_and_archive(tmp_path, tiny_images):
    tiny_images["test/frog/0000.png"] = b"\x89PNG\r\n\x1a\n but no image"
    path = write_tar(tmp_path / "c.tar.gz", tiny_images, prefix="cifar10/")
    with pytest.raises(ValueError, match=r"undecodable image 'cifar10/test/frog/0000.png' in '.*c\.tar\.gz'"):
        D.load_cifar10(path)


def test_wrong_layout_inside_an_archive_lists_what_it_found(tmp_path, tiny_images):
    files = {k: v for k, v in tiny_images.items() if "/horse/" not in k}
    with pytest.raises(ValueError, match="wrong folder layout in '.*c.tar.gz'.*found .*'truck'"):
        D.load_cifar10(write_tar(tmp_path / "c.tar.gz", files))


def test_empty_file_is_not_an_archive(tmp_path):
    (tmp_path / "empty.tar.gz").write_bytes(b"")
    with pytest.raises(ValueError, match="'.*empty.tar.gz' is neither a folder nor a tar archive"):
        D.load_cifar10(tmp_path / "empty.tar.gz")


def _cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache").glob("*"))


def test_interrupted_cache_write_leaves_nothing_behind(tmp_path, tiny_images, monkeypatch, capsys):
    """Killed (here: interrupted) while writing the decoded arrays: no cache file and no temporary file remain, and
    the next load decodes again and writes a whole cache."""
    src = write_folder(tmp_path / "png", tiny_images)
    savez = np.savez

    def half_then_interrupt(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(D.np, "savez", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        D.load_cifar10(src)
    assert _cache_files(tmp_path) == []
    monkeypatch.setattr(D.np, "savez", savez)
    first = D.load_cifar10(src)
    assert len(_cache_files(tmp_path)) == 1 and not any(n.endswith(".tmp") for n in _cache_files(tmp_path))
    capsys.readouterr()
    again = D.load_cifar10(src)
    assert "디코딩" not in capsys.readouterr().out  # the whole cache is read back
    assert np.array_equal(again.x_train, first.x_train)


def test_truncated_cache_file_is_rebuilt(tmp_path, tiny_images, capsys):
    src = write_folder(tmp_path / "png", tiny_images)
    first = D.load_cifar10(src)
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    capsys.readouterr()
    rebuilt = D.load_cifar10(src)
    out = capsys.readouterr()
    assert "손상된 캐시" in out.err and cache.name in out.err and "디코딩" in out.out
    assert np.array_equal(rebuilt.x_train, first.x_train) and np.array_equal(rebuilt.y_test, first.y_test)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_usual_mode(tmp_path, tiny_images, umask):
    """Atomic writes go through tempfile (mode 0o600); the files they leave get 0o666 less the umask, like open()."""
    old = os.umask(umask)
    try:
        F.write_json(tmp_path / "out" / "result.json", {"a": 1})
        D.load_cifar10(write_folder(tmp_path / "png", tiny_images))
    finally:
        os.umask(old)
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    for f in (tmp_path / "out" / "result.json", cache):
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, (f.name, oct(f.stat().st_mode))


def test_write_json_of_unserialisable_value_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    F.write_json(path, {"ok": True})
    with pytest.raises(TypeError, match="not JSON serializable"):
        F.write_json(path, {"model": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"ok": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_write_json_into_an_unwritable_folder_names_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"output directory '.*file/sub' is not writable"):
        F.write_json(blocker / "sub" / "result.json", {})


def test_checkpoints_of_uncompiled_or_truncated_models(tmp_path):
    model = _cnn()
    with pytest.raises(ValueError, match=f"model '{model.name}' has no optimizer yet"):
        T.save_checkpoint(tmp_path / "ck.npz", model, {})
    assert not list(tmp_path.iterdir())
    T.compile_model(model, RECIPE, 10)
    T.save_checkpoint(tmp_path / "ck.npz", model, {"epoch": 1})
    assert T.load_checkpoint(tmp_path / "ck.npz", model) == {"epoch": 1}
    raw = (tmp_path / "ck.npz").read_bytes()
    (tmp_path / "ck.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="unreadable checkpoint '.*ck.npz'"):
        T.load_checkpoint(tmp_path / "ck.npz", model)
    with pytest.raises(ValueError, match="has no optimizer yet"):
        T.load_checkpoint(tmp_path / "ck.npz", _cnn())


@pytest.mark.parametrize("content, needle", [
    ("{not json", "JSONDecodeError"),
    (json.dumps({"rows": [], "seeds": [0]}), "KeyError: 'profile'"),
    (json.dumps({"rows": [{"step": 1}], "seeds": [0], "profile": "smoke", "dataset": "synthetic", "seconds": 1}),
     "KeyError: 'rows[0].name'"),
])
def test_broken_ladder_table_names_the_file(tmp_path, content, needle):
    (tmp_path / "ladder.json").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as e:
        LAD.load_ladder(tmp_path)
    assert "ladder.json" in str(e.value) and needle in str(e.value)


@pytest.mark.parametrize("kwargs", [{"seed": -1}, {"epochs": 0}, {"progress_every": 0}, {"profile": "fast"},
                                    {"train_size": -5}])
def test_run_experiment_writes_nothing_for_a_bad_argument(tmp_path, kwargs):
    out = tmp_path / "run"
    with pytest.raises(ValueError):
        E.run_experiment("basic-cnn", **{"profile": "smoke", **kwargs}, data=_data(), out=out, log=lambda s: None)
    assert not out.exists()


def test_run_experiment_refuses_an_output_folder_it_cannot_use(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="'.*file/run' is not writable"):
        E.run_experiment("basic-cnn", profile="smoke", epochs=1, data=_data(), out=blocker / "run", log=lambda s: None)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{half", encoding="utf-8")
    with pytest.raises(ValueError, match="unreadable '.*run.json'"):
        E.run_experiment("basic-cnn", profile="smoke", epochs=1, data=_data(), out=tmp_path / "run",
                         log=lambda s: None)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.json"]


# ----------------------------------------------------------------------------------------------
# The command line: one line on stderr, exit status 2, no traceback, nothing written


def _cli_error(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, needle", [
    (["run", "vgg16", "--profile", "huge"], "'huge'"),
    (["run", "vgg16", "--epochs", "abc"], "'abc'"),
    (["run", "vgg16", "--seed", "1.5"], "'1.5'"),
    (["frobnicate"], "'frobnicate'"),
    (["run"], "experiment"),
    (["run", "vgg16", "--epochs", "0", "--out", "{tmp}/o"], "not 0"),
    (["run", "vgg16", "--epochs", "-2", "--out", "{tmp}/o"], "not -2"),
    (["run", "vgg16", "--seed", str(2**40), "--out", "{tmp}/o"], str(2**40)),
    (["run", "vgg99", "--out", "{tmp}/o"], "'vgg99'"),
    (["run", "basic-cnn", "--data", "", "--out", "{tmp}/o"], "''"),
    (["run", "ladder", "--epochs", "3", "--out", "{tmp}/o"], "--epochs"),
    (["run", "ladder", "--resume", "--out", "{tmp}/o"], "cannot resume"),
    (["run", "vgg16", "--train-size", "0", "--out", "{tmp}/o"], "not 0"),
    (["run", "vgg16", "--train-size", "many", "--out", "{tmp}/o"], "'many'"),
    (["run", "vgg16", "--precision", "bf16", "--out", "{tmp}/o"], "'bf16'"),
    (["reference", "--only", "no-such-run"], "'no-such-run'"),
    (["reference", "--data", "/nonexistent/cifar"], "/nonexistent/cifar"),
    (["run", "ladder", "--train-size", "100", "--out", "{tmp}/o"], "--train-size"),
])
def test_cli_bad_arguments(capsys, tmp_path, argv, needle):
    err = _cli_error(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert needle in err
    assert not (tmp_path / "o").exists()


def test_cli_bad_profile_in_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("VGGLAB_PROFILE", "huge")
    assert "'huge'" in _cli_error(capsys, ["info"])


def test_cli_unreadable_run_record(capsys, tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "run.json").write_text("{half", encoding="utf-8")
    err = _cli_error(capsys, ["run", "basic-cnn", "--profile", "smoke", "--data", "synthetic", "--out",
                              str(tmp_path / "o"), "--resume"])
    assert "run.json" in err


def test_cli_operating_system_errors_are_one_line(capsys, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(E, "run_experiment", disk_full)
    err = _cli_error(capsys, ["run", "basic-cnn", "--profile", "smoke", "--data", "synthetic"])
    assert "OSError: [Errno 28] No space left on device" in err


def test_cli_usage_error_in_a_real_process():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "vgglab", "run", "vgg16", "--profile", "huge"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "'huge'" in proc.stderr and "Traceback" not in proc.stderr

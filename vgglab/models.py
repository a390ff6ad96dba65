"""Every network of the book in one namespace, as ``torchvision.models``: VGG (``vgglab.vggnet``), the small CNNs of
the early chapters (``vgglab.cnn``) and the lineage (``vgglab.lineage``). The building blocks are in
``vgglab.blocks``, dense evaluation in ``vgglab.dense_eval``."""

from vgglab.blocks import LocalResponseNormalization, conv_bn_act
from vgglab.cnn import DOWNSAMPLING, basic_cnn, conv_stack, downsampling_net
from vgglab.lineage import (INCEPTION_SPECS, SHORTCUTS, PadShortcut, alexnet, cifar_resnet, googlenet_mini,
                            inception_block_model, inception_module, inception_params, lenet5, resnet_depth,
                            residual_block)
from vgglab.vggnet import ALIASES, CONFIGS, HEADS, classifier, config_table, features, resolve_config, vgg

__all__ = ["ALIASES", "CONFIGS", "DOWNSAMPLING", "HEADS", "INCEPTION_SPECS", "SHORTCUTS", "LocalResponseNormalization",
           "PadShortcut", "alexnet", "basic_cnn", "cifar_resnet", "classifier", "config_table", "conv_bn_act",
           "conv_stack", "downsampling_net", "features", "googlenet_mini", "inception_block_model", "inception_module",
           "inception_params", "lenet5", "resnet_depth", "residual_block", "resolve_config", "vgg"]

"""vgglab: the package behind the Korean course book on VGG and convolutional networks.

Data flows one way: data -> model -> train -> result -> plot/table.

    import vgglab
    run = vgglab.setup()                      # seed, Korean font, profile, one status line
    data = vgglab.load_for_profile(run.profile)  # CIFAR10Data(name="cifar10" | "cifar10-jpeg" | "synthetic")
    record = vgglab.run_experiment("basic-cnn", profile=run.profile)
"""

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN notes, graph warnings) confuses readers; real errors still raise.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's Python-side notes ("... triggered tf.function retracing") appear when a chapter evaluates several
# fresh models in a row; they are harmless and would fill the training logs. Warnings of other libraries stay.
import logging as _logging  # noqa: E402

_logging.getLogger("tensorflow").setLevel(_logging.ERROR)

__version__ = "0.1.0"

REPO_URL = "https://github.com/vgglab/vgglab"

from vgglab.runtime import PROFILES, Profile, get_profile, setup  # noqa: E402
from vgglab.data import CLASS_NAMES_EN, CLASS_NAMES_KO, load_cifar10  # noqa: E402
from vgglab.models import CONFIGS, basic_cnn, vgg  # noqa: E402
from vgglab.experiments import EXPERIMENTS, load_for_profile, run_experiment  # noqa: E402

__all__ = [
    "CLASS_NAMES_EN",
    "CLASS_NAMES_KO",
    "CONFIGS",
    "EXPERIMENTS",
    "PROFILES",
    "Profile",
    "REPO_URL",
    "basic_cnn",
    "get_profile",
    "load_for_profile",
    "load_cifar10",
    "run_experiment",
    "setup",
    "vgg",
]


def _quiet_tensorflow() -> None:
    """Silence TensorFlow's Python-side warnings too (tf.function retracing when a chapter trains several
    models in a row). In Jupyter, TensorFlow sets its logger to INFO when it is first asked for it, so this
    asks for it first and then raises the level; errors still raise."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


_quiet_tensorflow()

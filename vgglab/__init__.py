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

REPO_URL = "https://github.com/vgglab/vgglab"

from dataclasses import dataclass as _dataclass  # noqa: E402

from vgglab.runtime import PROFILES, VERSION as __version__, Profile, get_profile  # noqa: E402
from vgglab.runtime import device_name as _device_name, quiet_tensorflow as _quiet_tensorflow  # noqa: E402
from vgglab.runtime import set_seed as _set_seed  # noqa: E402
from vgglab.data import CLASS_NAMES_EN, CLASS_NAMES_KO, describe_source as _describe_source, load_cifar10  # noqa: E402
from vgglab.data import load_for_profile  # noqa: E402
from vgglab.models import CONFIGS, basic_cnn, vgg  # noqa: E402
from vgglab.plots import use_korean_font as _use_korean_font  # noqa: E402
from vgglab.registry import EXPERIMENTS  # noqa: E402
from vgglab.experiments import run_experiment  # noqa: E402

__all__ = [
    "CLASS_NAMES_EN",
    "CLASS_NAMES_KO",
    "CONFIGS",
    "EXPERIMENTS",
    "PROFILES",
    "Profile",
    "REPO_URL",
    "Session",
    "basic_cnn",
    "get_profile",
    "load_for_profile",
    "load_cifar10",
    "run_experiment",
    "setup",
    "vgg",
]


@_dataclass(frozen=True)
class Session:
    """What a chapter runs with: the profile, the seed, the data, the backend and the device."""

    profile: Profile
    seed: int
    data: str
    backend: str
    device: str

    def line(self) -> str:
        return (f"vgglab {__version__} | 프로파일 {self.profile.name} | 데이터 {self.data} | "
                f"백엔드 {self.backend} | 장치 {self.device} | 시드 {self.seed}")


def setup(profile: str | Profile | None = None, seed: int = 0, *, font: bool = True, quiet: bool = False) -> Session:
    """Prepare a chapter: seeds, the Korean plot font and the profile; print one line saying what is in use.

    Args:
        profile: ``"smoke"``, ``"cpu"``, ``"gpu"`` or a ``Profile``; None: ``VGGLAB_PROFILE``, else ``gpu`` where a
            GPU is visible and ``cpu`` elsewhere.
        seed: seeds Python, NumPy and the backend (``vgglab.runtime.set_seed``).
        font: use a Korean font for plots (NanumGothic, installed with vgglab).
        quiet: do not print the status line.

    Returns:
        The ``Session``: profile, seed, data, backend and device.
    """
    import keras

    _quiet_tensorflow()
    prof = get_profile(profile)
    _set_seed(seed)
    if font:
        _use_korean_font()
    session = Session(prof, int(seed), _describe_source(), keras.backend.backend(), _device_name())
    if not quiet:
        print(session.line())
    return session

"""Run profiles, seeds, and what machine, backend and versions are in use.

A profile sets how much data a run sees and how wide the networks are, so that one chapter can
run in seconds on CI (``smoke``), in minutes on two CPU cores (``cpu``) or in full on a GPU (``gpu``).
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Profile:
    """How big a run is. Experiments may scale epochs per profile; the sizes here are shared."""

    name: str
    train_size: int | None  # None: every training image left after the validation split
    val_size: int
    test_size: int | None  # None: the whole test set
    width: float  # width multiplier for VGG-style networks
    batch_size: int
    allow_synthetic: bool  # may fall back to synthetic data when no CIFAR-10 can be reached
    description: str


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", 1_000, 200, 1_000, 0.125, 64, True, "몇 초: CI와 빠른 점검용"),
    "cpu": Profile("cpu", 10_000, 1_000, None, 0.25, 128, False, "몇 분: CPU 2코어에서 효과를 보기 위한 축소판"),
    "gpu": Profile("gpu", None, 5_000, None, 1.0, 128, False, "전체 데이터와 전체 폭: GPU용"),
}


def gpu_visible() -> bool:
    """True when the active Keras backend sees a GPU."""
    backend = _backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # a broken driver means no usable GPU, not a crash
        return False
    return False


def get_profile(profile: str | Profile | None = None) -> Profile:
    """The profile named by the argument, else by ``VGGLAB_PROFILE``, else ``gpu`` or ``cpu``."""
    if isinstance(profile, Profile):
        return profile
    if profile is not None and not isinstance(profile, str):
        raise TypeError(f"profile must be a name such as 'cpu', not {type(profile).__name__} {profile!r}")
    name = profile if profile is not None else os.environ.get("VGGLAB_PROFILE") or ("gpu" if gpu_visible() else "cpu")
    if name not in PROFILES:
        source = "VGGLAB_PROFILE" if profile is None else "profile"
        raise ValueError(f"unknown {source} {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def _backend() -> str:
    import keras

    return keras.backend.backend()


def device_name() -> str:
    """A human-readable name of the device the backend computes on."""
    backend = _backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        elif backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform != "cpu":
                return f"{dev.device_kind} x{jax.device_count()}"
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
    except Exception:
        pass
    return f"CPU ({_cpu_model()}, {os.cpu_count()} cores)"


def _cpuinfo(key: str) -> str:
    """The first ``key`` line of Linux's ``/proc/cpuinfo`` (such as ``model name`` or ``flags``); "" elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == key:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Versions of everything that can change a result."""
    import keras

    out = {"python": platform.python_version(), "vgglab": VERSION, "keras": keras.__version__,
           "numpy": np.__version__}
    backend = _backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module:
        out[module] = sys.modules[module].__version__ if module in sys.modules else __import__(module).__version__
    return out


PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``); empty where they cannot be read."""
    return set(_cpuinfo("flags").split())


def _gpu_compute_capability() -> tuple[int, int] | None:
    """The first GPU's (major, minor) compute capability, or None where there is no GPU or it cannot be told."""
    backend = _backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tuple(tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0)))
        elif backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform == "gpu":
                cc = getattr(dev, "compute_capability", None)  # "8.0" on CUDA devices
                if cc:
                    return tuple(int(v) for v in str(cc).split(".")[:2])
                return (7, 5) if any(k in dev.device_kind for k in ("T4", "V100")) else (8, 0)
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return tuple(torch.cuda.get_device_capability(0))
    except Exception:
        return None
    return None


def auto_precision() -> str:
    """The fastest policy that trains as well as float32 here: ``mixed_bfloat16`` on a GPU of compute capability 8
    or more (A100, L4, H100) and on a CPU with AVX512_BF16 or AMX; ``mixed_float16`` on older GPUs with tensor
    cores (T4, V100); ``float32`` elsewhere."""
    cc = _gpu_compute_capability() if gpu_visible() else None
    if cc is not None:
        return "mixed_bfloat16" if cc >= (8, 0) else "mixed_float16" if cc >= (7, 0) else "float32"
    return "mixed_bfloat16" if cpu_flags() & {"avx512_bf16", "amx_bf16"} else "float32"


def resolve_precision(precision: str = "float32") -> str:
    """A Keras dtype policy name for ``precision`` (one of ``PRECISIONS``; ``auto``: ``auto_precision()``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return auto_precision() if precision == "auto" else precision


@contextmanager
def precision_policy(precision: str = "float32"):
    """Build and train inside this block with Keras' global dtype policy set to ``precision``; the old policy
    comes back afterwards. Mixed policies keep the variables in float32 and compute in 16 bits."""
    import keras

    old = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(resolve_precision(precision))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(old)


VERSION = "0.1.0"  # vgglab.__version__

MAX_SEED = 2**32 - 1  # NumPy's legacy seeding, which keras.utils.set_random_seed uses, takes 0 .. 2**32 - 1


def check_seed(seed, label: str = "seed") -> int:
    """``seed`` as an int, or a ValueError naming it: a seed is an integer from 0 to ``MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{label} must be an integer from 0 to 2**32 - 1, not {seed!r}")
    return int(seed)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops."""
    seed = check_seed(seed)
    import keras

    keras.utils.set_random_seed(seed)
    if _backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:  # older TF, or already set
            pass


def in_colab() -> bool:
    return "google.colab" in sys.modules


def quiet_tensorflow() -> None:
    """Silence TensorFlow's Python-side notes ("... triggered tf.function retracing" when a chapter trains several
    models in a row): they are harmless and would fill the training logs. In Jupyter, TensorFlow sets its logger to
    INFO when it is first asked for it, so this asks for it first and then raises the level; errors still raise.
    Warnings of other libraries stay."""
    import keras

    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")

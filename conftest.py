"""pytest set-up shared by the unit tests and nbval's run of the chapters."""

import os

# Chapters run in the quick profile under pytest unless the caller asks for another (VGGLAB_PROFILE=cpu pytest).
os.environ.setdefault("VGGLAB_PROFILE", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ INFO and WARNING lines

# On JAX every new weight shape compiles its initializer (a truncated normal) with XLA, and the unit tests build
# hundreds of small models: at XLA's CPU optimisation level 0 those compiles cost about a third (googlenet_mini
# builds in 18 s instead of 62 s on two cores). Subprocesses and notebook kernels inherit the setting.
if os.environ.get("KERAS_BACKEND") == "jax" and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # nbval not installed: only the unit tests run
    IPyNbCell = None

if IPyNbCell is not None:
    _compare = IPyNbCell.compare_outputs

    def _drop_stderr(outputs):
        return [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]

    def compare_outputs(self, test, ref, skip_compare=None):
        """Compare outputs as nbval does, but not stderr: library log lines differ between machines."""
        return _compare(self, _drop_stderr(test), _drop_stderr(ref), skip_compare)

    IPyNbCell.compare_outputs = compare_outputs

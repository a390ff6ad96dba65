"""pytest set-up shared by the unit tests and nbval's run of the chapters."""

import os

# Chapters run in the quick profile under pytest unless the caller asks for another (VGGLAB_PROFILE=cpu pytest).
os.environ.setdefault("VGGLAB_PROFILE", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ INFO and WARNING lines

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

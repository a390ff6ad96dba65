"""Data parallelism: a run split over two devices matches the same run on one.

The two devices are logical CPU devices, which must be set up before the backend starts, so each backend's case
runs in its own Python process (both at once, to keep the wall time down).
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from vgglab import distribute as DP
from vgglab import train as T
from vgglab import recipes as RC
from vgglab.experiments import run_experiment
from vgglab.models import vgg

ROOT = Path(__file__).resolve().parents[1]

# Relative tolerance on every weight tensor (max |difference| / max |weight|) and on every epoch's loss. Both
# runs do the same arithmetic in a different order (each device sums its half of the batch, then the halves are
# added), so they differ by float32 rounding: the test prints the differences, a few 1e-7 on both backends. A run
# whose steps are not the one-device steps differs far more: on TensorFlow, this model after the same 8 steps
# differed by 0.34 with batch normalisation (statistics per device), by 0.65 with dropout (masks per device) and
# by 7e-3 with a last batch of 49 images split 25 + 24 (which fit therefore refuses).
RTOL = 1e-5
# Two logical CPU devices for JAX, and XLA's CPU code optimisation off: compiling the tiny model's functions then
# takes about a second instead of up to 20 s; both runs are compiled the same way, so the comparison is unchanged.
XLA_FLAGS = "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"

CASE = textwrap.dedent(r'''
    import json, os, sys
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":  # two logical CPU devices, before anything starts TensorFlow's runtime
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from vgglab import data as D, distribute as DP, recipes as RC, train as T
    from vgglab.experiments import run_experiment
    from vgglab.registry import Experiment, VGGBuild
    from vgglab.records import load_records
    from vgglab.runtime import Profile

    # JAX computes on the whole batch as one array split over the devices, so batch normalisation and dropout
    # give the same numbers as on one device; TensorFlow's MirroredStrategy normalises each device's share with
    # its own statistics and draws dropout masks per device, so its case leaves them out.
    layers = {"batch_norm": True, "dropout": 0.3} if backend == "jax" else {}
    build = VGGBuild((8, "M"), initializer="he_normal", head="small", head_units=16, width=1.0, **layers)
    exp = Experiment("dp-test", "data-parallel test", build, RC.Recipe("sgd", "sgd", 0.05, momentum=0.9), {"t": 2})
    prof = Profile("t", 200, 40, None, 1.0, 50, True, "")
    data = D.synthetic_cifar10(300, 61, seed=1)  # 200 training, 40 validation and 61 test images (odd: padded)
    quiet = lambda s: None
    out = {}
    single, m1, _ = run_experiment(exp, profile=prof, data=data, keep_model=True, log=quiet)
    dist = DP.data_parallel()
    many, m2, _ = run_experiment(exp, profile=prof, data=data, distribution=dist, out=sys.argv[1], keep_model=True,
                                   log=quiet)
    pairs = zip(m1.get_weights(), m2.get_weights())
    out["weights"] = max(float(np.max(np.abs(a - b)) / np.max(np.abs(a))) for a, b in pairs)
    for key in ("loss", "val_loss"):
        out[key] = [single["history"][key], many["history"][key]]
    out["test_accuracy"] = [single["test_accuracy"], many["test_accuracy"]]
    out["config"] = [single["config"].get("distribution"), many["config"].get("distribution")]
    out["stored"] = [r["config"].get("distribution") for r in load_records(sys.argv[1])]

    x, y = D.normalize(data.x_train[:200], "minus_one_one"), data.y_train[:200]
    def error(model, n=200, batch_size=50):
        try:
            T.fit(model, x[:n], y[:n], recipe=exp.recipe, epochs=1, batch_size=batch_size, distribution=dist, log=quiet)
        except ValueError as e:
            return str(e)
    with dist.scope():
        inside = build(prof, exp.recipe, 0)
    out["outside"] = error(build(prof, exp.recipe, 0))
    out["odd_batch"] = error(inside, batch_size=25)
    out["last_batch"] = error(inside, n=199)  # batches of 50, 50, 50 and 49
    print("RESULT " + json.dumps(out))
''')


def _start(backend, out):
    env = {**os.environ, "KERAS_BACKEND": backend, "XLA_FLAGS": XLA_FLAGS,
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CASE, str(out)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each installed backend's case (CI installs TensorFlow only), started together; their results by backend."""
    procs = {b: _start(b, tmp_path_factory.mktemp(b)) for b in ("jax", "tensorflow") if importlib.util.find_spec(b)}
    results = {}
    for backend, proc in procs.items():
        text, _ = proc.communicate(timeout=300)
        lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, f"{backend} case failed:\n{text[-3000:]}"
        results[backend] = json.loads(lines[-1].removeprefix("RESULT "))
    return results


def _result(runs, backend):
    if backend not in runs:
        pytest.skip(f"{backend} is not installed")
    return runs[backend]


@pytest.mark.parametrize("backend, kind", [("jax", "DataParallel"), ("tensorflow", "MirroredStrategy")])
def test_two_devices_match_one(runs, backend, kind):
    r = _result(runs, backend)
    losses = {key: max(abs(b / a - 1) for a, b in zip(*r[key])) for key in ("loss", "val_loss")}
    print(f"\n{backend} {kind}, 2 devices vs 1: weights {r['weights']:.1e}, training loss {losses['loss']:.1e}, "
          f"validation loss {losses['val_loss']:.1e} (largest relative differences)")
    assert r["weights"] < RTOL, r["weights"]
    for key in ("loss", "val_loss"):
        one, two = r[key]
        np.testing.assert_allclose(two, one, rtol=RTOL, err_msg=key)
    assert r["test_accuracy"][0] == r["test_accuracy"][1]
    # the record says how the run was split; a single-device record stays as records always were
    assert r["config"] == [None, {"kind": kind, "replicas": 2}]
    assert r["stored"] == [{"kind": kind, "replicas": 2}]


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_bad_splits_are_refused(runs, backend):
    r = _result(runs, backend)
    assert "built outside" in r["outside"]
    assert "batch_size 25 does not divide among 2 devices" in r["odd_batch"]
    # every training batch must split, the last one too (TensorFlow would split 49 images 25 + 24 and weight the
    # two means equally: not the step on one device)
    assert "199 training images in batches of 50 leave a last batch of 49" in r["last_batch"]


def test_unknown_distribution_is_a_type_error():
    model = vgg([4, "M"], input_shape=(32, 32, 3), num_classes=10, head="gap")
    x, y = np.zeros((4, 32, 32, 3), "float32"), np.arange(4)
    with pytest.raises(TypeError, match="not builtins.str"):
        T.fit(model, x, y, recipe=RC.RECIPES["adam"], epochs=1, distribution="gpu", log=lambda s: None)
    with pytest.raises(TypeError, match="not builtins.object"):
        run_experiment("basic-cnn", profile="smoke", distribution=object())


def test_unsupported_backend_is_named(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(ValueError, match="not supported on the torch backend"):
        DP.data_parallel()
    with pytest.raises(ValueError, match="needs the tensorflow backend, not torch"):
        DP.tpu_strategy()


def test_no_distribution_changes_nothing():
    assert DP.describe(None) is None
    with DP.scope(None):
        pass

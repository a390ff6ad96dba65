"""Mixed precision: the policy a run asks for is the one it trains in, its record names it, and it is undone after."""

import json

import keras
import numpy as np
import pytest

from vgglab import data as D
from vgglab import experiments as E
from vgglab import runtime as R
from vgglab.models import vgg

DATA = D.synthetic_cifar10(n_train=600, n_test=100)


def test_auto_follows_the_cpu_flags_without_a_gpu(monkeypatch):
    monkeypatch.setattr(R, "gpu_visible", lambda: False)
    monkeypatch.setattr(R, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert R.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(R, "cpu_flags", lambda: {"amx_bf16"})
    assert R.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(R, "cpu_flags", lambda: {"avx2"})
    assert R.resolve_precision("auto") == "float32"


@pytest.mark.parametrize("cc, want", [((9, 0), "mixed_bfloat16"), ((8, 0), "mixed_bfloat16"), ((7, 5), "mixed_float16"),
                                      ((6, 0), "float32")])
def test_auto_on_a_gpu_follows_its_compute_capability(monkeypatch, cc, want):
    monkeypatch.setattr(R, "gpu_visible", lambda: True)
    monkeypatch.setattr(R, "_gpu_compute_capability", lambda: cc)
    assert R.auto_precision() == want


def test_named_policies_pass_through_and_others_are_refused():
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert R.resolve_precision(name) == name
    with pytest.raises(ValueError, match="'bf16'"):
        R.resolve_precision("bf16")


def test_precision_policy_sets_and_restores_the_global_policy():
    assert keras.mixed_precision.global_policy().name == "float32"
    with R.precision_policy("mixed_bfloat16"):
        model = vgg([8, "M"], input_shape=(8, 8, 3), num_classes=3, head="small", head_units=4)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    conv = model.get_layer("block1_conv1")
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"  # 16-bit compute, float32 weights
    assert model.get_layer("predictions").compute_dtype == "float32"  # the softmax stays in float32
    out = model(np.zeros((2, 8, 8, 3), np.float32))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    with pytest.raises(RuntimeError):
        with R.precision_policy("mixed_float16"):
            raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after an error too


def test_a_bf16_run_trains_in_bf16_and_its_record_says_so(tmp_path):
    record = E.run_experiment("basic-cnn", profile="smoke", data=DATA, epochs=1, train_size=128,
                              precision="mixed_bfloat16", out=tmp_path / "r", log=lambda s: None)
    assert record["precision"] == "mixed_bfloat16" and record["config"]["precision"] == "mixed_bfloat16"
    assert np.isfinite(record["history"]["loss"][0])
    saved = json.loads((tmp_path / "r" / "result.json").read_text(encoding="utf-8"))
    assert saved["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    # a float32 record keeps the config it had before precision existed (no key), so old runs still resume
    plain = E.run_experiment("basic-cnn", profile="smoke", data=DATA, epochs=1, train_size=128, log=lambda s: None)
    assert plain["precision"] == "float32" and "precision" not in plain["config"]


def test_resuming_in_another_precision_is_refused(tmp_path):
    out = tmp_path / "r"
    E.run_experiment("basic-cnn", profile="smoke", data=DATA, epochs=1, train_size=128, out=out, log=lambda s: None)
    (out / "result.json").unlink()
    with pytest.raises(ValueError, match="precision"):
        E.run_experiment("basic-cnn", profile="smoke", data=DATA, epochs=1, train_size=128, out=out, resume=True,
                         precision="mixed_bfloat16", log=lambda s: None)

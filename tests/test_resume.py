"""A run killed with SIGKILL and resumed with --resume ends exactly like an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

ARGS = ["run", "basic-cnn", "--profile", "smoke", "--data", "synthetic", "--epochs", "3", "--seed", "7"]


def _env(tmp_path):
    return {**os.environ, "VGGLAB_CACHE": str(tmp_path / "cache"), "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}


def _cli(out, tmp_path, *extra):
    return [sys.executable, "-m", "vgglab", *ARGS, "--out", str(out), *extra]


def _epochs_done(out) -> int:
    try:
        with np.load(out / "checkpoint.npz") as z:
            return json.loads(str(z["state"]))["epoch"]
    except (OSError, KeyError, ValueError):
        return 0


def _kill_after(out, tmp_path, epochs_done, resume):
    proc = subprocess.Popen(_cli(out, tmp_path, *(["--resume"] if resume else [])), env=_env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _epochs_done(out) < epochs_done and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _epochs_done(out) >= epochs_done
    assert not (out / "result.json").exists()  # no record until the run is complete


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    full = tmp_path / "full"
    subprocess.run(_cli(full, tmp_path), env=_env(tmp_path), check=True, capture_output=True)
    reference = json.loads((full / "result.json").read_text(encoding="utf-8"))

    killed = tmp_path / "killed"
    _kill_after(killed, tmp_path, 1, resume=False)  # killed during epoch 2
    _kill_after(killed, tmp_path, 2, resume=True)   # killed again, after resuming once
    done = subprocess.run(_cli(killed, tmp_path, "--resume"), env=_env(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "체크포인트에서 이어서" in done.stdout
    record = json.loads((killed / "result.json").read_text(encoding="utf-8"))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert record["history"][key] == reference["history"][key], key
    assert record["test_accuracy"] == reference["test_accuracy"]
    assert record["confusion_matrix"] == reference["confusion_matrix"]
    assert not [p for p in os.listdir(killed) if p.endswith(".tmp")]

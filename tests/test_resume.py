"""A run killed with SIGKILL and resumed with --resume ends exactly like an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

# 512 training images (8 steps per epoch) keep each killed and resumed process short on every backend
ARGS = ["run", "basic-cnn", "--profile", "smoke", "--data", "synthetic", "--epochs", "3", "--seed", "7",
        "--train-size", "512"]


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


# Runs the CLI in a process that kills itself with SIGKILL at its N-th rename of a file named NAME, the temporary file
# cut to half its size ("half": a write torn by the kill) or whole ("whole": complete but not yet renamed). The
# library writes every record and checkpoint through one os.replace (vgglab.files.atomic_write), so the fault is
# injected there, from outside.
FAULTY_CLI = """
import os, signal, sys
name, n, how = sys.argv[1].split(":")
real_replace, seen = os.replace, [0]

def replace(src, dst, *args, **kwargs):
    if os.path.basename(dst) == name:
        seen[0] += 1
        if seen[0] == int(n):
            if how == "half":
                os.truncate(src, os.path.getsize(src) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
from vgglab.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_with_fault(out, tmp_path, fault, resume):
    cli = _cli(out, tmp_path, *(["--resume"] if resume else []))
    proc = subprocess.run([sys.executable, "-c", FAULTY_CLI, fault, *cli[3:]], env=_env(tmp_path), capture_output=True)
    assert proc.returncode == -signal.SIGKILL, (fault, proc.returncode, proc.stderr[-1000:])
    assert not (out / "result.json").exists()


def test_kills_during_the_checkpoint_and_record_writes(tmp_path):
    """SIGKILL inside the atomic writes themselves: a torn temporary checkpoint, a complete one not yet renamed,
    and the final record's write. Each resume continues from the last whole checkpoint and ends like an
    uninterrupted run."""
    full = tmp_path / "full"
    subprocess.run(_cli(full, tmp_path), env=_env(tmp_path), check=True, capture_output=True)
    reference = json.loads((full / "result.json").read_text(encoding="utf-8"))

    out = tmp_path / "faults"
    _run_with_fault(out, tmp_path, "checkpoint.npz:2:half", resume=False)  # torn write of epoch 2's checkpoint
    assert _epochs_done(out) == 1 and any(p.endswith(".tmp") for p in os.listdir(out))
    _run_with_fault(out, tmp_path, "checkpoint.npz:2:whole", resume=True)  # epoch 3's checkpoint, before rename
    assert _epochs_done(out) == 2
    _run_with_fault(out, tmp_path, "result.json:1:whole", resume=True)  # all epochs done, record not yet renamed
    assert _epochs_done(out) == 3
    done = subprocess.run(_cli(out, tmp_path, "--resume"), env=_env(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((out / "result.json").read_text(encoding="utf-8"))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert record["history"][key] == reference["history"][key], key
    assert record["test_accuracy"] == reference["test_accuracy"]
    assert record["confusion_matrix"] == reference["confusion_matrix"]
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]

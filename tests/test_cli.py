import json
import os
import subprocess
import sys

import pytest

from vgglab.cli import main
from vgglab.experiments import RESULT_KEYS


def _one_line_error(capsys, argv, *needles):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err
    return err


def test_unknown_experiment(capsys, tmp_path):
    _one_line_error(capsys, ["run", "vgg99", "--out", str(tmp_path / "o")], "'vgg99'", "vgg16", "basic-cnn")
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_missing_data_path(capsys, tmp_path):
    _one_line_error(capsys, ["run", "vgg16", "--data", str(tmp_path / "none.tar.gz")], "none.tar.gz")


def test_corrupt_data_path(capsys, tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    _one_line_error(capsys, ["run", "basic-cnn", "--profile", "smoke", "--data", str(bad)], "bad.tar.gz")


def test_unwritable_output_directory(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(capsys, ["run", "basic-cnn", "--profile", "smoke", "--data", "synthetic",
                             "--out", str(blocker / "sub")], "not writable")


def test_resume_needs_out_and_seed_must_be_valid(capsys):
    _one_line_error(capsys, ["run", "vgg16", "--resume"], "--resume needs --out")
    _one_line_error(capsys, ["run", "vgg16", "--seed", "-3"], "-3")


def test_bad_profile_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "vgg16", "--profile", "huge"])
    assert e.value.code == 2 and "huge" in capsys.readouterr().err


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vgg16" in out and "basic-cnn" in out and "smoke" in out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "keras" in out and "backend" in out and "device" in out


def test_cli_run_writes_a_complete_record(tmp_path):
    out = tmp_path / "vgg16"
    env = {**os.environ, "VGGLAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "vgglab", "run", "vgg16", "--profile", "smoke", "--data", "synthetic",
                           "--train-size", "256", "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "에포크 1/" in proc.stdout and "완료: vgg16" in proc.stdout and "학습 256장" in proc.stdout
    record = json.loads((out / "result.json").read_text(encoding="utf-8"))
    for key in RESULT_KEYS:
        assert key in record, key
    assert record["experiment"] == "vgg16" and record["dataset"] == "synthetic" and record["profile"] == "smoke"
    assert record["config"]["train_size"] == 256 and sum(map(sum, record["confusion_matrix"])) == 500
    assert record["train_images_per_second"] > 0 and record["versions"]["keras"]
    assert (out / "checkpoint.npz").exists() and (out / "run.json").exists()
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]

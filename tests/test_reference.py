"""The queue of reference runs: finished runs are skipped, started ones resume, and only records are left to commit."""

import json

import pytest

from vgglab import reference as R

RUNS = (R.ReferenceRun("basic/seed-0", "basic-cnn", 0, profile="smoke", precision="float32", epochs=2, train_size=256),
        R.ReferenceRun("basic/seed-1", "basic-cnn", 1, profile="smoke", precision="float32", epochs=1))


def test_the_declared_runs_are_valid_and_in_distinct_folders():
    folders = [r.folder for r in R.REFERENCE_RUNS]
    assert len(folders) == len(set(folders))
    assert all(r.profile == "gpu" for r in R.REFERENCE_RUNS)  # full data, full width


@pytest.mark.parametrize("kwargs, needle", [({"folder": "/abs"}, "'/abs'"), ({"experiment": "nope"}, "'nope'"),
                                            ({"precision": "auto"}, "'auto'"), ({"seed": -1}, "-1"),
                                            ({"epochs": 0}, "not 0"), ({"train_size": 0}, "not 0"),
                                            ({"test_scales": (32, 32)}, "distinct test scales")])
def test_bad_declarations_are_refused_by_name(kwargs, needle):
    args = {"folder": "x/seed-0", "experiment": "basic-cnn", **kwargs}
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        R.ReferenceRun(**args)


def test_queue_runs_what_is_left_and_skips_what_is_done(tmp_path):
    logs = []
    # a run that was cut short after its first epoch: its settings and checkpoint exist, its record does not
    first = R.run_queue(RUNS[:1], tmp_path, source="synthetic", log=logs.append)
    (tmp_path / "basic/seed-0/result.json").unlink()
    assert R.state(RUNS[0], tmp_path) == "started" and R.state(RUNS[1], tmp_path) == "new"
    done = R.run_queue(RUNS, tmp_path, source="synthetic", log=logs.append)
    assert [r["seed"] for r in done] == [0, 1]
    assert done[0]["resumed_from_epoch"] == 2 and done[0]["test_accuracy"] == first[0]["test_accuracy"]
    assert any("basic/seed-0의 체크포인트에서 이어서 학습합니다: 에포크 2/2까지" in line for line in logs)
    assert any("basic/seed-1에 이어 갈 체크포인트가 없어 처음부터 학습합니다" in line for line in logs)
    assert all(R.state(r, tmp_path) == "done" for r in RUNS)
    assert "완료" in R.progress(RUNS[1], tmp_path)
    again = R.run_queue(RUNS, tmp_path, source="synthetic", log=logs.append)
    assert again == [] and "기준 실행 0개" in logs[-1]
    record = json.loads((tmp_path / "basic/seed-1/result.json").read_text(encoding="utf-8"))
    assert record["precision"] == "float32" and (tmp_path / "basic/seed-1/test_predictions.npz").is_file()
    assert done[0]["config"]["train_size"] == 256


def test_only_picks_runs_by_folder(tmp_path):
    done = R.run_queue(RUNS, tmp_path, only="seed-1", source="synthetic", log=lambda s: None)
    assert [r["seed"] for r in done] == [1] and R.state(RUNS[0], tmp_path) == "new"
    with pytest.raises(ValueError, match="'seed-9'"):
        R.run_queue(RUNS, tmp_path, only="seed-9", source="synthetic", log=lambda s: None)

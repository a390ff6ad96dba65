"""Chapter 13's helpers: saved test predictions, the seeds' ensemble, per-class accuracy, time estimates."""

import json

import numpy as np
import pytest

from vgglab import analysis as A
from vgglab import data as D
from vgglab import experiments as E
from vgglab import registry as REG
from vgglab import records as RS
from vgglab import plots


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    data = D.synthetic_cifar10(n_train=600, n_test=200)
    exp = REG.get_experiment("vgg16").variant("vgg16-test", epochs={"smoke": 1}, train_size={"smoke": 128})
    for seed in (0, 1):
        E.run_experiment(exp, profile="smoke", seed=seed, data=data, out=root / f"seed-{seed}", log=lambda *a: None)
    return root, RS.load_records(root, experiment="vgg16-test")


def test_each_run_saves_its_test_predictions_beside_the_record(two_seeds):
    root, records = two_seeds
    assert [r["seed"] for r in records] == [0, 1]
    probs, labels = RS.load_predictions(records[0])
    assert probs.shape == (len(labels), 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-2)
    assert float((probs.argmax(-1) == labels).mean()) == pytest.approx(records[0]["test_accuracy"], abs=0.01)
    cm = np.array(records[0]["confusion_matrix"])
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(labels, minlength=10))


def test_seed_ensemble_averages_the_saved_probabilities(two_seeds):
    root, records = two_seeds
    ens = RS.seed_ensemble(records)
    (p0, y), (p1, _) = RS.load_predictions(records[0]), RS.load_predictions(records[1])
    assert ens["ensemble_accuracy"] == pytest.approx(float((((p0 + p1) / 2).argmax(-1) == y).mean()))
    assert ens["seeds"] == [0, 1] and ens["members"] == 2
    with pytest.raises(ValueError, match="at least 2 runs, got 1"):
        RS.seed_ensemble(records[:1])
    with pytest.raises(ValueError, match="no test_predictions.npz beside '/nowhere/result.json'"):
        RS.load_predictions({"path": "/nowhere/result.json"})


def test_seed_ensemble_refuses_runs_on_different_test_images(two_seeds, tmp_path):
    root, records = two_seeds
    probs, labels = RS.load_predictions(records[1])
    other = tmp_path / "other"
    other.mkdir()
    RS.save_predictions(other / RS.PREDICTIONS_FILE, probs, np.roll(labels, 1))
    (other / "result.json").write_text(json.dumps({**records[1], "path": None}), encoding="utf-8")
    (moved,) = RS.load_records(other)
    with pytest.raises(ValueError, match="different images"):
        RS.seed_ensemble([records[0], moved])


def test_confused_pairs_count_both_directions_and_put_the_largest_first():
    cm = np.array([[50, 3, 1], [6, 40, 0], [2, 9, 30]])
    assert A.confused_pairs(cm, 2) == [(9, 0, 1), (9, 1, 2)]
    assert A.confused_pairs(cm)[-1] == (3, 0, 2)
    with pytest.raises(ValueError, match="square"):
        A.confused_pairs(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="k must be a positive integer, not -1"):
        A.confused_pairs(cm, -1)


def test_per_class_accuracy():
    cm = np.array([[8, 2], [1, 9]])
    np.testing.assert_allclose(A.per_class_accuracy(cm), [0.8, 0.9])
    with pytest.raises(ValueError, match=r"must be square, got shape \(2, 3\)"):
        A.per_class_accuracy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class 1 has no test images"):
        A.per_class_accuracy(np.array([[3, 0], [0, 0]]))
    with pytest.raises(ValueError, match="holds counts, found -1"):
        A.per_class_accuracy(np.array([[3, -1], [0, 2]]))


def test_training_seconds_is_work_over_delivered_speed():
    # 1e6 images of 2 GFLOP on a 100 TFLOP/s device at 40%: 2e15 / 4e13 = 50 s
    assert A.training_seconds(2e9, 1_000_000, 100, 0.4) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="utilization must be a fraction in \\(0, 1\\], not 40"):
        A.training_seconds(2e9, 1_000, 100, 40)
    with pytest.raises(ValueError, match="peak_tflops must be a positive number, not 0"):
        A.training_seconds(2e9, 1_000, 0, 0.4)


def test_confusion_matrix_plot_shows_row_percentages():
    import matplotlib.pyplot as plt

    ax = plots.confusion_matrix(np.array([[3, 1], [0, 4]]), ["고양이", "개"])
    assert [t.get_text() for t in ax.texts] == ["75", "25", "0", "100"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["고양이", "개"]
    with pytest.raises(ValueError, match="one row per class \\(3\\), got shape \\(2, 2\\)"):
        plots.confusion_matrix(np.eye(2), ["a", "b", "c"])
    plt.close("all")


def test_anchors_are_sorted_and_below_the_goals():
    accs = [a for _, a, _ in RS.VGG16_ANCHORS]
    assert accs == sorted(accs) and max(accs) < RS.VGG16_GOALS["single"] < RS.VGG16_GOALS["ensemble"]


def test_summarize_seeds(two_seeds):
    root, records = two_seeds
    s = RS.summarize_seeds(records)
    assert s["seeds"] == [0, 1] and s["profile"] == "smoke" and s["dataset"] == records[0]["dataset"]
    accs = [r["test_accuracy"] for r in records]
    assert s["mean"] == pytest.approx(np.mean(accs)) and s["std"] == pytest.approx(np.std(accs, ddof=1))
    assert s["ensemble"]["ensemble_accuracy"] == RS.seed_ensemble(records)["ensemble_accuracy"]
    with pytest.raises(ValueError, match="mix experiments"):
        RS.summarize_seeds([records[0], {**records[1], "profile": "cpu"}])
    with pytest.raises(ValueError, match="no records"):
        RS.summarize_seeds([])


def test_speedrun_rows_and_table():
    def rec(seed, acc, secs):
        return {"profile": "gpu", "seed": seed, "test_accuracy": acc, "test_accuracy_no_tta": acc - 0.01,
                "train_seconds": secs, "eval_seconds": 1.0, "history": {"epoch_seconds": [secs / 2 + 5, secs / 2 - 5]}}
    rows = RS.speedrun_rows({"speedrun": [rec(0, 0.942, 100), rec(1, 0.938, 120), rec(2, 0.941, 110)]})
    (row,) = rows
    assert row["runs"] == 3 and row["median_seconds"] == 111.0 and row["median_compile"] == 10.0
    assert row["reached"] == 2 and row["median_accuracy"] == 0.941 and row["median_no_tta"] == pytest.approx(0.931)
    text = RS.speedrun_table(rows)
    assert "speedrun" in text and "2/3" in text and "94.10%" in text
    import unicodedata

    def columns(line):  # a fixed-width font gives Hangul two columns
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
    head, rule, body = text.splitlines()
    assert "실험" in head and columns(head) == len(rule) == columns(body), text  # the Korean header lines up
    with pytest.raises(ValueError, match="'speedrun-x' has no records"):
        RS.speedrun_rows({"speedrun-x": []})


def test_arm_stats_give_mean_and_sample_std_and_say_when_arms_are_apart():
    runs = {"a": [{"test_accuracy": 0.30}, {"test_accuracy": 0.34}, {"test_accuracy": 0.32}],
            "b": [{"test_accuracy": 0.20}, {"test_accuracy": 0.21}, {"test_accuracy": 0.22}],
            "c": [{"test_accuracy": 0.31}, {"test_accuracy": 0.24}, {"test_accuracy": 0.27}]}
    s = RS.arm_stats(runs, "test_accuracy")
    assert s["a"]["mean"] == pytest.approx(0.32) and s["a"]["std"] == pytest.approx(0.02)
    assert RS.apart(s["a"], s["b"]) and not RS.apart(s["a"], s["c"])  # 0.05 apart, but spreads 0.02 + 0.035
    assert RS.mean_std(s["a"]) == "32.0% ± 2.0%"
    loss = RS.arm_stats({"x": [{"history": {"loss": [2.0, 1.5]}}]}, lambda r: r["history"]["loss"][-1])
    assert loss["x"] == {"values": [1.5], "mean": 1.5, "std": None}
    with pytest.raises(ValueError, match="two seeds"):
        RS.apart(loss["x"], loss["x"])
    with pytest.raises(ValueError, match="non-empty list"):
        RS.arm_stats({"x": []}, "test_accuracy")

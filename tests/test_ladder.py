"""The technique ladder: its steps, the runner and its table, stored records, and ``run ladder`` on the CLI."""

import json
from dataclasses import fields

import numpy as np
import pytest

from vgglab import ladder as LAD
from vgglab import registry as REG
from vgglab import records
from vgglab import recipes as RC
from vgglab.cli import main
from vgglab.data import synthetic_cifar10
from vgglab.runtime import PROFILES

# What each step changes, relative to the step before it (fields of VGGBuild or of the recipe).
EXPECTED_CHANGES = {3: {"activation"}, 4: {"initializer"}, 5: {"optimizer", "lr", "momentum"}, 6: {"normalization"},
                    7: {"batch_norm"}, 8: {"dropout"}, 9: {"l2"}, 10: {"augment"}}


def _choices(exp):
    recipe = {f.name: getattr(exp.recipe, f.name) for f in fields(exp.recipe) if f.name not in ("name", "notes")}
    build = {f.name: getattr(exp.build, f.name) for f in fields(exp.build)} if isinstance(exp.build, REG.VGGBuild) else {}
    return {**recipe, **build}


def test_ladder_steps_are_registered_small_changes():
    assert [s.number for s in REG.LADDER] == list(range(1, 12))
    trained = [s for s in REG.LADDER if s.ensemble_of is None]
    assert len(trained) == 10 and all(s.name in REG.EXPERIMENTS for s in trained)
    exps = {s.number: REG.EXPERIMENTS[s.name] for s in trained}
    for n, changed in EXPECTED_CHANGES.items():
        before, after = _choices(exps[n - 1]), _choices(exps[n])
        assert {k for k in after if after[k] != before[k]} == changed, n
    assert exps[2].build.activation == "sigmoid" and exps[2].build.initializer == "normal(0.01)"
    assert exps[2].build.config == "B" and exps[2].build.width is None  # config B at the profile's width
    assert exps[5].recipe.optimizer == "adam" and exps[5].recipe.lr == 1e-4
    assert exps[8].build.dropout == pytest.approx(1 - 0.7) and exps[9].build.l2 == 5e-4
    assert exps[9].recipe.weight_decay == 0, "step 9 is L2 in the loss, as the workshop did"
    assert REG.LADDER[-1].ensemble_of == exps[10].name
    assert {s.number: s.reported for s in REG.LADDER if s.reported} == {1: 0.69, 2: 0.10, 3: 0.10, 5: 0.787, 9: 0.842}


def test_ladder_budget_is_set_for_every_profile():
    for name in PROFILES:
        b = LAD.ladder_budget(name)
        assert b["epochs"] >= 1 and len(b["seeds"]) >= (1 if name == "smoke" else 3)
        for s in REG.LADDER:
            if s.ensemble_of is None:
                assert REG.EXPERIMENTS[s.name].epochs_for(PROFILES[name]) == b["epochs"]
    assert LAD.ladder_budget("gpu")["train_size"] is None
    assert LAD.ladder_budget("cpu")["test_size"] <= 10_000


def _tiny_ladder():
    """Two steps on a tiny network (training runs cost seconds): one trained step and its ensemble."""
    recipe = RC.Recipe("t", "adam", 3e-3, batch_size=50)
    base = REG.Experiment("tiny-a", "작은 망", REG.VGGBuild((4, "M"), head="gap", width=1.0),
                        recipe, {"smoke": 1, "cpu": 1, "gpu": 1}, {"smoke": 200})
    REG.EXPERIMENTS["tiny-a"] = base
    return [REG.LadderStep(1, "tiny-a", "가", "기준", 0.5),
            REG.LadderStep(2, "tiny-ens", "앙상블", "평균", None, ensemble_of="tiny-a")]


@pytest.fixture
def tiny(monkeypatch):
    steps = _tiny_ladder()
    monkeypatch.setattr(LAD, "LADDER", steps)
    yield steps
    REG.EXPERIMENTS.pop("tiny-a", None)


def test_run_ladder_tabulates_seeds_and_the_ensemble(tiny, tmp_path):
    data = synthetic_cifar10(600, 300, seed=2)
    result = LAD.run_ladder("smoke", data=data, seeds=(0, 1), out=tmp_path / "lad", log=lambda s: None)
    assert [r["step"] for r in result.rows] == [1, 2] and result.seeds == (0, 1)
    r = result.row(1)
    assert len(r["accuracies"]) == 2 and r["mean"] == pytest.approx(np.mean(r["accuracies"]))
    assert r["std"] == pytest.approx(np.std(r["accuracies"], ddof=1))
    ens = result.ensemble
    assert result.row(2)["std"] is None and result.row(2)["mean"] == ens["ensemble_accuracy"]
    assert ens["member_accuracies"] == pytest.approx(r["accuracies"])  # the same test images as each run
    assert ens["test_images"] == 300 == sum(map(sum, result.records["tiny-a"][0]["confusion_matrix"]))
    text = result.table()
    assert "50.0%" in text and "±" in text and "—" in text and "synthetic" in text
    # records on disk, readable with load_records
    saved_records = records.load_records(tmp_path / "lad")
    assert sorted(r["experiment"] for r in saved_records) == ["tiny-a", "tiny-a", "tiny-ens"]
    assert [r["seed"] for r in records.load_records(tmp_path / "lad", experiment="tiny-a")] == [0, 1]
    saved = json.loads((tmp_path / "lad" / "ladder.json").read_text(encoding="utf-8"))
    assert saved["rows"] == json.loads(json.dumps(result.rows))
    with pytest.raises(ValueError, match="already holds ladder records"):
        LAD.run_ladder("smoke", data=data, seeds=(0, 1), out=tmp_path / "lad", log=lambda s: None)
    # and the whole ladder back with load_ladder
    loaded = LAD.load_ladder(tmp_path / "lad")
    assert loaded.table() == result.table().replace(f"{result.seconds / 60:.1f}분", f"{round(result.seconds, 1) / 60:.1f}분")
    assert [r["seed"] for r in loaded.records["tiny-a"]] == [0, 1] and loaded.ensemble == json.loads(json.dumps(ens))
    (tmp_path / "lad" / "tiny-a" / "seed1" / "result.json").unlink()  # an interrupted or edited folder
    with pytest.raises(ValueError, match="do not match ladder.json"):
        LAD.load_ladder(tmp_path / "lad")
    with pytest.raises(ValueError, match="holds no ladder.json"):
        LAD.load_ladder(tmp_path / "nothing")


def test_run_ladder_checks_its_arguments(tiny):
    for bad in ((), (0, 0), (-1,)):
        with pytest.raises(ValueError, match="seeds"):
            LAD.run_ladder("smoke", seeds=bad, data=synthetic_cifar10(100, 50))
    with pytest.raises(ValueError, match="not an earlier step"):
        LAD.run_ladder("smoke", steps=[tiny[1]], data=synthetic_cifar10(100, 50))


def _record(tmp_path, rel, **fields):
    path = tmp_path / rel / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"experiment": "vgg16", "profile": "gpu", "test_accuracy": 0.9, **fields}))
    return path


def test_load_records_filters_by_experiment_and_profile(tmp_path):
    _record(tmp_path, "a/seed0", seed=0)
    _record(tmp_path, "a/seed1", seed=1, test_accuracy=0.91)
    _record(tmp_path, "b", profile="cpu")
    _record(tmp_path, "c", experiment="basic-cnn")
    (tmp_path / "chapter_times.json").write_text("{}")  # other JSON files are not records
    assert len(records.load_records(tmp_path)) == 4
    gpu = records.load_records(tmp_path, experiment="vgg16", profile="gpu")
    assert [r["test_accuracy"] for r in gpu] == [0.9, 0.91] and gpu[0]["path"].endswith("a/seed0/result.json")
    assert records.load_records(tmp_path, profile="smoke") == []
    assert records.load_records(tmp_path / "missing") == []  # e.g. Colab, without the repository's book/results
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "result.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable record"):
        records.load_records(tmp_path)
    with pytest.raises(ValueError, match="is a file"):
        records.load_records(tmp_path / "chapter_times.json")
    with pytest.raises(TypeError):
        records.load_records(3)


def test_load_records_rejects_files_that_are_not_records(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "result.json").write_text(json.dumps({"accuracy": 1}))
    with pytest.raises(ValueError, match="not a vgglab result record"):
        records.load_records(tmp_path)


def test_cli_runs_the_ladder_and_prints_the_table(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(LAD, "LADDER", tiny[:1])  # one run keeps the test short; run_ladder is tested above
    monkeypatch.setitem(REG.LADDER_SEEDS, "smoke", (0,))
    out = tmp_path / "ladder"
    assert main(["run", "ladder", "--profile", "smoke", "--data", "synthetic", "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "단계  기법" in printed and "50.0%" in printed and "ladder.json" in printed
    saved = json.loads((out / "ladder.json").read_text(encoding="utf-8"))
    assert saved["seeds"] == [3] and [r["step"] for r in saved["rows"]] == [1]
    assert (out / "tiny-a" / "seed3" / "result.json").exists()


def _one_line_error(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and needle in err, err


def test_cli_ladder_errors_are_one_line(tiny, tmp_path, capsys):
    _one_line_error(capsys, ["run", "ladder", "--profile", "smoke", "--epochs", "2"], "--epochs")
    _one_line_error(capsys, ["run", "ladder", "--profile", "smoke", "--resume", "--out", str(tmp_path)], "cannot resume")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(capsys, ["run", "ladder", "--profile", "smoke", "--data", "synthetic", "--out", str(blocker / "o")],
                    "not writable")
    assert main(["list"]) == 0 and "ladder" in capsys.readouterr().out


def test_ladder_chart_draws_error_bars_and_reported_marks():
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from vgglab import plots

    rows = [{"step": 1, "label": "기본 CNN", "mean": 0.3, "std": 0.02, "reported": 0.69},
            {"step": 2, "label": "앙상블", "mean": 0.35, "std": None, "reported": None}]
    font = plots.use_korean_font()
    with warnings.catch_warnings():
        if font:
            warnings.simplefilter("error")  # a missing Korean glyph would fail here
        ax = plots.ladder_chart(rows)
        ax.figure.canvas.draw()
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([30.0, 35.0])
    assert len(ax.collections) >= 1  # the reported figure's marker
    with pytest.raises(ValueError):
        plots.ladder_chart([])

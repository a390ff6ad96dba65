import json
from dataclasses import replace

import keras
import numpy as np
import pytest

from vgglab import data as D
from vgglab import train as T
from vgglab import augment as AUG, recipes as RC
from vgglab import registry as REG
from vgglab.experiments import RESULT_KEYS, prepare, run_experiment
from vgglab.models import vgg
from vgglab.runtime import PROFILES, get_profile, set_seed

RECIPE = replace(RC.RECIPES["modern"], lr=0.05, augment=("flip", "translate"))


@pytest.fixture(scope="module")
def small_data():
    d = D.synthetic_cifar10(240, 60, seed=1)
    x = D.normalize(d.x_train, "minus_one_one")
    return x[:200], d.y_train[:200], x[200:], d.y_train[200:]


def _model(recipe=RECIPE):
    # batch norm, dropout and both augmentation layers: every kind of state a resume must restore
    return vgg([8, "M", 16, "M"], input_shape=(32, 32, 3), num_classes=10, batch_norm=True, head="small",
               head_units=16, dropout=0.3, augmentation=AUG.augmentation_layers(recipe, seed=0))


def _fit(data, **kw):
    set_seed(0)
    model = _model(kw.get("recipe", RECIPE))
    args = {"recipe": RECIPE, "epochs": 3, "batch_size": 50, "seed": 0, "log": lambda s: None, **kw}
    return T.fit(model, *data, **args), model


def test_same_seed_gives_identical_history(small_data):
    (a, ma), (b, mb) = _fit(small_data), _fit(small_data)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert a.history[key] == b.history[key], key
    assert all(np.array_equal(x, y) for x, y in zip(ma.get_weights(), mb.get_weights()))


def test_resume_after_interruption_matches_an_uninterrupted_run(small_data, tmp_path):
    full, full_model = _fit(small_data)
    ckpt = tmp_path / "ck.npz"

    def stop_after(n):
        def cb(done):
            if done == n:
                raise KeyboardInterrupt

        return cb

    with pytest.raises(KeyboardInterrupt):
        _fit(small_data, checkpoint=ckpt, on_epoch_end=[stop_after(1)])
    with pytest.raises(KeyboardInterrupt):  # interrupted again, after resuming once
        _fit(small_data, checkpoint=ckpt, resume=True, on_epoch_end=[stop_after(2)])
    resumed, model = _fit(small_data, checkpoint=ckpt, resume=True)
    assert resumed.resumed_from_epoch == 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert resumed.history[key] == full.history[key], key
    assert all(np.array_equal(x, y) for x, y in zip(model.get_weights(), full_model.get_weights()))
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


def test_checkpoint_of_another_model_is_refused(small_data, tmp_path):
    ckpt = tmp_path / "ck.npz"
    _fit(small_data, epochs=1, checkpoint=ckpt)
    other = vgg([4, "M"], input_shape=(32, 32, 3), num_classes=10, head="gap")
    T.compile_model(other, RECIPE, 10)
    with pytest.raises(ValueError, match="does not match this model"):
        T.load_checkpoint(ckpt, other)
    (tmp_path / "bad.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable checkpoint"):
        T.load_checkpoint(tmp_path / "bad.npz", other)


def test_plateau_schedule_divides_lr_by_ten(small_data):
    recipe = replace(RC.RECIPES["paper"], lr=1e-3, plateau_patience=1)
    logs = []
    result, _ = _fit(small_data, recipe=recipe, epochs=4, log=logs.append)
    lrs = result.history["lr"]
    assert lrs[0] == pytest.approx(1e-3)
    # after each epoch's line, a drop message means the next epoch runs at a tenth of the rate
    epoch_lines = [i for i, line in enumerate(logs) if line.startswith("에포크")]
    dropped = ["학습률을" in "".join(logs[i + 1: j]) for i, j in zip(epoch_lines, epoch_lines[1:])]
    assert any(dropped)
    for e, drop in enumerate(dropped):
        assert lrs[e + 1] == pytest.approx(lrs[e] / 10 if drop else lrs[e])


def test_onecycle_rises_then_falls():
    s = RC.OneCycle(0.1, 100)
    values = [float(s(i)) for i in (0, 15, 50, 100)]
    assert values[0] == pytest.approx(0.01) and values[1] == pytest.approx(0.1)
    assert values[2] < values[1] and values[3] == pytest.approx(0.0, abs=1e-7)


def test_one_line_per_epoch_without_carriage_returns(small_data):
    logs = []
    _fit(small_data, epochs=2, log=logs.append)
    assert len(logs) == 2 and all(line.startswith(f"에포크 {i + 1}/2") for i, line in enumerate(logs))
    assert not any("\r" in line for line in logs)


@pytest.mark.parametrize("kw, message", [
    ({"epochs": 0}, "epochs must be a positive integer, not 0"),
    ({"batch_size": -1}, "batch_size must be a positive integer"),
])
def test_fit_rejects_bad_arguments(small_data, kw, message):
    with pytest.raises(ValueError, match=message):
        _fit(small_data, **kw)


def test_fit_rejects_out_of_range_labels(small_data):
    x, y, xv, yv = small_data
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        _fit((x, y + 5, xv, yv))


def test_profiles():
    assert set(PROFILES) == {"smoke", "cpu", "gpu"}
    assert get_profile("smoke").allow_synthetic and not get_profile("cpu").allow_synthetic
    assert get_profile().name == "cpu"  # no GPU on the test machine, no VGGLAB_PROFILE
    with pytest.raises(ValueError, match="unknown profile 'fast'; choose one of smoke, cpu, gpu"):
        get_profile("fast")


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("VGGLAB_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    monkeypatch.setenv("VGGLAB_PROFILE", "huge")
    with pytest.raises(ValueError, match="unknown VGGLAB_PROFILE 'huge'"):
        get_profile()


def test_prepare_takes_balanced_subsets():
    d = D.synthetic_cifar10(2_000, 1_500)
    s = prepare(d, PROFILES["smoke"])
    assert len(s.y_train) == 1_000 and len(s.y_val) == 200 and len(s.y_test) == 1_000
    assert s.x_train.dtype == np.float32 and s.x_train.min() >= -1 and s.x_train.max() <= 1
    assert np.bincount(s.y_val).tolist() == [20] * 10


def test_run_experiment_writes_a_complete_record(tmp_path):
    d = D.synthetic_cifar10(1_300, 300)
    record = run_experiment("basic-cnn", profile="smoke", epochs=1, out=tmp_path / "run", data=d, log=lambda s: None)
    saved = json.loads((tmp_path / "run" / "result.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(record))
    for key in RESULT_KEYS:
        assert key in saved, key
    assert saved["dataset"] == "synthetic" and saved["profile"] == "smoke"
    assert saved["backend"] == keras.backend.backend()
    assert 0 <= saved["test_accuracy"] <= 1 and len(saved["history"]["loss"]) == 1
    assert np.sum(saved["confusion_matrix"]) == 300
    # a second run in the same folder without --resume is refused; a resume of a finished run returns it
    with pytest.raises(ValueError, match="add --resume"):
        run_experiment("basic-cnn", profile="smoke", epochs=1, out=tmp_path / "run", data=d, log=lambda s: None)
    again = run_experiment("basic-cnn", profile="smoke", epochs=1, out=tmp_path / "run", data=d, resume=True,
                           log=lambda s: None)
    assert again == saved
    with pytest.raises(ValueError, match="different settings.*epochs: 1 vs 2"):
        run_experiment("basic-cnn", profile="smoke", epochs=2, out=tmp_path / "run", data=d, resume=True,
                       log=lambda s: None)


def test_paper_recipe_uses_its_own_batch_size():
    from vgglab.experiments import batch_size
    from vgglab.registry import EXPERIMENTS

    assert batch_size(EXPERIMENTS["vgg16-paper"], PROFILES["cpu"]) == 256  # the paper's batch
    assert batch_size(EXPERIMENTS["vgg16"], PROFILES["cpu"]) == PROFILES["cpu"].batch_size
    paper = RC.RECIPES["paper"]
    assert (paper.momentum, paper.weight_decay, paper.lr, paper.schedule) == (0.9, 5e-4, 1e-2, "plateau")


def test_variant_changes_one_thing_and_runs_without_registration():
    from vgglab.registry import EXPERIMENTS, get_experiment

    base = EXPERIMENTS["basic-cnn"]
    relu = base.variant("basic-relu", build=lambda prof, recipe, seed: vgg(
        [8, "M", 16, "M"], input_shape=(32, 32, 3), num_classes=10, head="small", head_units=16), lr=1e-2)
    assert relu.recipe.lr == 1e-2 and relu.recipe.optimizer == base.recipe.optimizer and base.recipe.lr == 1e-3
    assert relu.epochs == base.epochs and "basic-relu" not in EXPERIMENTS and get_experiment(relu) is relu
    record = run_experiment(relu, profile="smoke", epochs=1, data=D.synthetic_cifar10(1_300, 300), log=lambda s: None)
    assert record["experiment"] == "basic-relu" and record["config"]["recipe"]["lr"] == 1e-2
    with pytest.raises(ValueError, match="unknown experiment field 'epoch'"):
        base.variant("x", epoch=3)
    with pytest.raises(ValueError, match="unknown optimizer 'sgdd'"):
        base.variant("x", optimizer="sgdd")
    with pytest.raises(ValueError, match="no epochs for profile 'gpu'"):
        base.variant("x", epochs={"smoke": 1}).epochs_for(PROFILES["gpu"])


def test_a_variant_with_another_recipe_says_so_in_its_title():
    
    base = REG.EXPERIMENTS["vgg13-he"]
    sgd = base.variant("vgg13-sgd", optimizer="sgd", lr=0.01)
    assert sgd.title != base.title and "optimizer sgd" in sgd.title and "lr 0.01" in sgd.title
    assert base.variant("v", title="SGD 0.01", lr=0.01).title == "SGD 0.01"  # a title given is kept
    assert base.variant("v", epochs={"smoke": 1}).title == base.title  # no recipe change: the same title

"""Named experiments: a model builder, a recipe and per-profile epochs, run through one path.

``run_experiment("vgg16", profile="smoke", out="runs/vgg16")`` loads the data the profile asks
for, builds the model, trains it with ``vgglab.train.fit``, evaluates it once on the test set and
returns a record (written atomically as ``result.json`` when ``out`` is given).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from vgglab import distribute, train
from vgglab.data import (CIFAR10Data, channel_stats, content_key, load_for_profile, normalize, stratified_indices,
                         train_val_split)
from vgglab.dense_eval import multiscale_accuracy, scale_combos, to_fully_convolutional
from vgglab.evaluate import evaluate, no_retracing_warnings
from vgglab.files import write_json
from vgglab.records import PREDICTIONS_FILE, save_predictions
from vgglab.registry import Experiment, get_experiment
from vgglab.runtime import (Profile, check_seed, device_name, get_profile, precision_policy, resolve_precision,
                            set_seed, versions)
from vgglab.speedrun import adapt_layers

RESULT_KEYS = ("experiment", "profile", "dataset", "backend", "device", "seed", "epochs", "test_accuracy",
               "history", "wall_seconds", "train_images_per_second", "versions")


def batch_size(exp: Experiment, profile: Profile) -> int:
    """The experiment's batch size for this profile where it names one, else the recipe's (the paper's 256), else
    the profile's."""
    exp, profile = get_experiment(exp), get_profile(profile)
    return exp.batch_sizes.get(profile.name) or exp.recipe.batch_size or profile.batch_size


# ----------------------------------------------------------------------------------------------
# Data for a profile


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    dataset: str
    source: str


def prepare(data: CIFAR10Data, profile: "str | Profile", *, normalization: str = "minus_one_one", seed: int = 0,
            train_size: int | None = None) -> Splits:
    """Split off validation images, take the profile's class-balanced subsets, normalise to float32."""
    check_data(data)
    profile = get_profile(profile)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(data.x_train, data.y_train,
                                                     min(profile.val_size, len(data.y_train) // 5), seed)
    n_train = train_size if train_size is not None else profile.train_size
    if n_train is not None and n_train < len(y_tr):
        keep = stratified_indices(y_tr, n_train, seed)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    x_te, y_te = data.x_test, data.y_test
    if profile.test_size is not None and profile.test_size < len(y_te):
        keep = stratified_indices(y_te, profile.test_size, seed)
        x_te, y_te = x_te[keep], y_te[keep]
    stats = channel_stats(x_tr) if normalization == "standardize" else None
    norm = lambda x: normalize(x, normalization, stats)  # noqa: E731
    return Splits(norm(x_tr), y_tr, norm(x_val), y_val, norm(x_te), y_te, data.name, data.source)


def check_out(out) -> None:
    """``out`` is None or a folder path, or a TypeError naming it."""
    if out is not None and (not isinstance(out, (str, os.PathLike)) or not str(out)):
        raise TypeError(f"out must be a folder path or None, not {type(out).__name__} {out!r}")


def check_data(data) -> CIFAR10Data:
    """``data`` itself, or a TypeError naming what was given instead of a ``CIFAR10Data``."""
    if not isinstance(data, CIFAR10Data):
        raise TypeError(f"data must be a vgglab.CIFAR10Data (from load_cifar10 or load_for_profile), "
                        f"not {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------------------------
# Running


def run_config(exp: Experiment, profile: Profile, epochs: int, seed: int, dataset: str, source: str,
               distribution=None, precision: str = "float32", data_seed: int | None = None) -> dict:
    """Everything that decides a run, as JSON would hold it; a resume must match it exactly.

    A data-parallel run adds ``"distribution": {"kind": ..., "replicas": n}`` (``vgglab.distribute.describe``),
    and a mixed-precision run ``"precision": "mixed_bfloat16"`` (or ``mixed_float16``), and a run whose images were
    chosen with another seed than its own ``"data_seed"``; a float32 run on one device has none of these keys, as the
    records written before they existed.
    """
    config = {"experiment": exp.name, "profile": profile.name, "epochs": epochs, "seed": seed,
              "batch_size": batch_size(exp, profile), "width": profile.width,
              "train_size": exp.train_size.get(profile.name, profile.train_size), "val_size": profile.val_size,
              "test_size": profile.test_size, "recipe": _recipe_config(exp.recipe), "dataset": dataset,
              "source_sha256": _source_id(source), "backend": keras.backend.backend()}
    if distribution is not None:
        config["distribution"] = distribute.describe(distribution)
    if precision != "float32":
        config["precision"] = precision
    if data_seed is not None and data_seed != seed:
        config["data_seed"] = data_seed
    return json.loads(json.dumps(config))


# Recipe fields added after records were first written, at the value that leaves a run as it was: left out of a run's
# settings, so that a run started before they existed still resumes and its record still compares equal.
_LATER_RECIPE_DEFAULTS = {"decay_shifts": False}


def _recipe_config(recipe) -> dict:
    return {k: v for k, v in asdict(recipe).items() if not (k in _LATER_RECIPE_DEFAULTS and v == _LATER_RECIPE_DEFAULTS[k])}


def _source_id(source: str) -> str:
    path = Path(source)
    return content_key(path)[:16] if path.exists() else source


def _prepare_out(out: Path, config: dict, resume: bool) -> tuple[Path, dict | None]:
    """Check ``out`` is usable for this run; return the checkpoint path and any finished record."""
    check_writable(out)
    run_file, result_file, ckpt = out / "run.json", out / "result.json", out / "checkpoint.npz"
    for stale in out.glob(".*.tmp"):  # left by a run killed in the middle of an atomic write
        stale.unlink(missing_ok=True)
    if run_file.exists():
        try:
            old = json.loads(run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"unreadable {str(run_file)!r} ({e}); use another --out directory") from None
        if not resume:
            raise ValueError(f"{str(out)!r} already holds a run of {old.get('experiment')!r}; "
                             "add --resume to continue it, or choose another --out directory")
        if old != config:
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise ValueError(f"cannot resume in {str(out)!r}: it holds a run with different settings "
                             f"({', '.join(f'{k}: {old.get(k)!r} vs {config.get(k)!r}' for k in diff)})")
        if result_file.exists():
            return ckpt, json.loads(result_file.read_text(encoding="utf-8"))
    else:
        write_json(run_file, config)
    return ckpt, None


def run_experiment(name: "str | Experiment", *, profile: str | Profile | None = None, epochs: int | None = None, seed: int = 0,
                   out: str | os.PathLike | None = None, resume: bool = False, source=None, data=None,
                   progress_every: float | None = None, distribution=None, train_size: int | None = None,
                   precision: str = "float32", keep_model: bool = False, data_seed: int | None = None,
                   test_scales: tuple | None = None, log=print) -> "dict | Run":
    """Run a named experiment (or an ``Experiment``) and return its record (see ``RESULT_KEYS``).

    Args:
        name: a registered experiment's name (``python -m vgglab list``) or an ``Experiment`` (say, a variant).
        profile: ``"smoke"``, ``"cpu"``, ``"gpu"`` or a ``Profile`` (default: ``VGGLAB_PROFILE``, else by device).
        epochs, seed: override the experiment's epochs for the profile; the seed of everything random.
        out, resume: a folder for ``run.json``, checkpoints, ``result.json`` and test predictions; continue the
            run in it from its last epoch.
        source, data: where CIFAR-10 comes from, or the loaded ``CIFAR10Data`` itself.
        progress_every: seconds between progress lines inside an epoch (None: one line per epoch).
        keep_model: also return the trained model and the data it used, as a ``Run``.
        data_seed: the seed that picks the training subset and the validation split (default: ``seed``). Members of
            an ensemble that should differ only in their start and batch order share one ``data_seed``.
        test_scales: also evaluate the trained VGG densely at these test scales Q, as the VGG paper did (say
            ``(32, 48, 64)``), with and without mirrored images; the record's ``multiscale_accuracy`` holds the
            accuracy of each combination (``vgglab.dense_eval.scale_combos``) and ``multiscale_seconds`` its time.

    Returns:
        The record: the experiment, profile, data, backend, device, precision, seed, per-epoch history, test
        accuracy and confusion matrix, times and versions (also written to ``out/result.json``). With
        ``keep_model=True``, a ``Run(record, model, splits)``: ``record, model, splits = run_experiment(...)``.

    ``train_size`` trains on that many training images (a class-balanced subset) instead of the number the
    experiment and profile set, for a quicker try; the record's ``config`` holds it, so a resume must match it.

    With ``distribution`` (``vgglab.distribute.data_parallel()``) the model is built, trained and tested inside
    its scope, every batch split among its devices; the record's ``config`` names it.

    ``precision`` is a Keras dtype policy: ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"``, or ``"auto"``
    (``vgglab.runtime.auto_precision``: bf16 on a CPU with AVX512_BF16 or AMX and on recent GPUs). The record's
    ``precision`` names the policy the run used.
    """
    exp = get_experiment(name)
    precision = resolve_precision(precision)
    prof = get_profile(profile)
    if train_size is not None:
        if isinstance(train_size, bool) or not isinstance(train_size, (int, np.integer)) or train_size < 1:
            raise ValueError(f"train_size must be a positive integer (a number of training images), not {train_size!r}")
        exp = replace(exp, train_size={**exp.train_size, prof.name: int(train_size)})
    if distribution is not None:  # a wrong object or a batch size that does not split fails before loading data
        distribute.check_batches(distribution, batch_size(exp, prof), 0)
    if epochs is None:
        epochs = exp.epochs_for(prof)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, not {epochs!r}")
    if test_scales is not None:
        scale_combos(test_scales)
    seed = check_seed(seed)  # every argument is checked before anything is loaded or written
    data_seed = seed if data_seed is None else check_seed(data_seed, "data_seed")
    train.check_progress_every(progress_every)
    check_out(out)
    if data is not None:
        check_data(data)
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    data = data if data is not None else load_for_profile(prof, source, log)
    config = run_config(exp, prof, int(epochs), seed, data.name, data.source, distribution, precision, data_seed)
    ckpt, done = _prepare_out(Path(out), config, resume) if out is not None else (None, None)
    if done is not None:
        if test_scales is not None and "multiscale_accuracy" not in done:
            raise ValueError(f"the run in {str(out)!r} had already finished without test_scales, so it has no "
                             "multi-scale accuracy; use another out directory")
        if keep_model:
            raise ValueError(f"the run in {str(out)!r} had already finished, so no model was trained; load it from its "
                             "checkpoint or use another out directory")
        log(f"{out} 의 실행은 이미 끝났습니다: 테스트 정확도 {done['test_accuracy']:.1%}")
        return done
    if resume and ckpt is not None and not ckpt.exists():
        log(f"{out}에 이어 갈 체크포인트가 없어 처음부터 학습합니다")
    set_seed(seed)
    splits = prepare(data, prof, normalization=exp.recipe.normalization, seed=data_seed,
                     train_size=exp.train_size.get(prof.name))
    with distribute.scope(distribution), precision_policy(precision), no_retracing_warnings():
        model = exp.build(prof, exp.recipe, seed)
        adapted = adapt_layers(model, splits.x_train, seed)  # e.g. the speed run's patch whitening
        for q in test_scales or ():  # a model that cannot be tested densely fails now, not after its training
            to_fully_convolutional(model, (q, q, splits.x_train.shape[-1]))
        log(f"실험 {exp.name} ({exp.title}) · 프로파일 {prof.name} · 데이터 {data.name} · 학습 {len(splits.y_train):,}장"
            f" · 검증 {len(splits.y_val):,}장 · 테스트 {len(splits.y_test):,}장 · 파라미터 {model.count_params():,}개")
        fit = train.fit(model, splits.x_train, splits.y_train, splits.x_val, splits.y_val, recipe=exp.recipe,
                    epochs=int(epochs), batch_size=batch_size(exp, prof), seed=seed, checkpoint=ckpt, resume=resume,
                    progress_every=progress_every, distribution=distribution, log=log)
        t_eval = time.perf_counter()
        test = evaluate(model, splits.x_test, splits.y_test, tta=exp.recipe.tta, probabilities=True)
        eval_seconds = time.perf_counter() - t_eval
        if test_scales is not None:
            t_scales = time.perf_counter()
            test["multiscale_accuracy"] = multiscale_accuracy(model, splits.x_test, splits.y_test, test_scales)
            test["multiscale_seconds"] = round(time.perf_counter() - t_scales, 2)
        probabilities = test.pop("probabilities")
    if exp.recipe.tta:
        log(f"테스트 정확도 {test['test_accuracy']:.1%} (TTA {'+'.join(exp.recipe.tta)}; 없이는 "
            f"{test['test_accuracy_no_tta']:.1%}) ({data.name}, 테스트 {len(splits.y_test):,}장)")
    else:
        log(f"테스트 정확도 {test['test_accuracy']:.1%} ({data.name}, 테스트 {len(splits.y_test):,}장)")
    record = {
        "experiment": exp.name, "title": exp.title, "profile": prof.name, "dataset": data.name,
        "data_source": data.source, "backend": keras.backend.backend(), "device": device_name(), "seed": seed,
        "precision": precision,
        "epochs": int(epochs), **test, "history": fit.history,
        "wall_seconds": round(time.perf_counter() - t_start, 2), "train_seconds": round(fit.train_seconds, 2),
        "eval_seconds": round(eval_seconds, 2), "adapted_layers": adapted,
        "train_images_per_second": round(train.steady_images_per_second(fit.history), 1),
        "resumed_from_epoch": fit.resumed_from_epoch, "params": int(model.count_params()),
        "config": config, "versions": versions(), "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "started_at": started, "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if out is not None:  # the test predictions first, so that a finished result.json always has them beside it
        save_predictions(Path(out) / PREDICTIONS_FILE, probabilities, splits.y_test)
        write_json(Path(out) / "result.json", record)
    return Run(record, model, splits) if keep_model else record


class Run(NamedTuple):
    """A run with its trained model (``run_experiment(..., keep_model=True)``): for weight statistics, ensembles and
    evaluations of one's own. ``splits`` are the arrays it trained, validated and was tested on."""

    record: dict
    model: keras.Model
    splits: Splits


def experiment_splits(name: "str | Experiment", profile: str | Profile | None, data: CIFAR10Data,
                      seed: int = 0) -> Splits:
    """The training, validation and test arrays that ``run_experiment(name, seed=seed)`` uses."""
    exp, prof = get_experiment(name), get_profile(profile)
    return prepare(data, prof, normalization=exp.recipe.normalization, seed=seed,
                   train_size=exp.train_size.get(prof.name))


def overfit_summary(record: dict, model: keras.Model, splits: Splits) -> dict:
    """How far a trained model fits its training images beyond new ones.

    ``train_accuracy`` is measured after training in inference mode on the (unaugmented) training images, so
    dropout and augmentation do not lower it; ``gap`` is that minus the last epoch's validation accuracy.
    """
    if not isinstance(record, dict):
        raise TypeError(f"record must be the dict that run_experiment returns, not {type(record).__name__}")
    if not record.get("history", {}).get("val_accuracy"):
        raise ValueError("the record has no validation accuracy; run with a profile that keeps validation images")
    train = evaluate(model, splits.x_train, splits.y_train)["test_accuracy"]
    val = record["history"]["val_accuracy"][-1]
    return {"train_accuracy": train, "val_accuracy": val, "test_accuracy": record["test_accuracy"], "gap": train - val}


COMPARISON_TEST_SIZE = {"cpu": 2_000}  # profile -> test images for a chapter's many short comparison arms


def comparison_profile(profile: "str | Profile | None" = None) -> Profile:
    """The profile for a chapter's short comparison arms: on ``cpu`` the test set is cut to a class-balanced
    2,000 images, since testing on all 10,000 would cost each short arm about as much as its training.
    Other profiles are returned unchanged (``smoke`` already tests on 1,000, ``gpu`` on all 10,000)."""
    prof = get_profile(profile)
    size = COMPARISON_TEST_SIZE.get(prof.name)
    if size is None or (prof.test_size is not None and prof.test_size <= size):
        return prof
    return replace(prof, test_size=size)


def check_writable(out: Path) -> None:
    """Make ``out`` (and its parents) and write a probe file there, or a ValueError naming the folder."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"output directory {str(out)!r} is not writable: {e.strerror or e}") from None

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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, NamedTuple

import keras
import numpy as np

from vgglab import distribute, train
from vgglab.data import (CIFAR10Data, channel_stats, content_key, load_for_profile, normalize, stratified_indices,
                         train_val_split)
from vgglab.augment import RandomScaleCrop, augmentation_layers
from vgglab.evaluate import ensemble_scores, evaluate, no_retracing_warnings
from vgglab.recipes import RECIPES, Recipe, check_recipe
from vgglab.checks import keras_object, positive_int
from vgglab.files import write_json
from vgglab.records import PREDICTIONS_FILE, load_records, save_predictions
from vgglab.tables import text_table
from vgglab.lineage import alexnet, cifar_resnet, googlenet_mini, lenet5
from vgglab.cnn import basic_cnn
from vgglab.vggnet import HEADS, resolve_config, vgg
from vgglab.runtime import (Profile, check_seed, device_name, get_profile, precision_policy, resolve_precision,
                            set_seed, versions)
from vgglab.speedrun import AIRBENCH, SpeedrunBuild, adapt_layers

RESULT_KEYS = ("experiment", "profile", "dataset", "backend", "device", "seed", "epochs", "test_accuracy",
               "history", "wall_seconds", "train_images_per_second", "versions")


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    build: Callable[[Profile, Recipe, int], keras.Model]  # (profile, recipe, seed) -> uncompiled model
    recipe: Recipe
    epochs: dict  # profile name -> epochs
    train_size: dict = field(default_factory=dict)  # profile name -> override of the profile's train_size
    batch_sizes: dict = field(default_factory=dict)  # profile name -> batch size, over the recipe's and the profile's

    def __post_init__(self):
        if not callable(self.build):
            raise TypeError(f"build must be callable (profile, recipe, seed) -> model, not {self.build!r}")
        check_recipe(self.recipe)
        for label, table in (("epochs", self.epochs), ("train_size", self.train_size)):
            if not isinstance(table, dict):
                raise TypeError(f"{label} must be a dict of profile name -> count such as {{'smoke': 2}}, not {table!r}")
            bad = [(k, v) for k, v in table.items()
                   if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1]
            if bad:
                raise ValueError(f"{label} must map profile names to positive integers, not {bad[0][0]!r}: {bad[0][1]!r}")

    def epochs_for(self, profile: Profile) -> int:
        if profile.name not in self.epochs:
            raise ValueError(f"experiment {self.name!r} has no epochs for profile {profile.name!r}; "
                             f"it has {', '.join(self.epochs)}")
        return self.epochs[profile.name]

    def variant(self, name: str, title: str | None = None, **changes) -> "Experiment":
        """This experiment with a new name and some fields changed (``build``, ``recipe``, ``epochs``, ...).

        A recipe field can be changed directly too: ``exp.variant("x", lr=1e-4)`` replaces the recipe's ``lr``.
        Without a ``title`` the variant's title is the base title with the changed recipe fields after it
        (``"... Adam 1e-4 (바꾼 설정: optimizer sgd, lr 0.01)"``), so a log never shows a variant under its base's name.
        """
        recipe_fields = {k: changes.pop(k) for k in list(changes) if k in Recipe.__dataclass_fields__}
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown experiment field {unknown[0]!r}; change one of "
                             f"{', '.join([*self.__dataclass_fields__, *Recipe.__dataclass_fields__])}")
        recipe = changes.pop("recipe", self.recipe)
        if recipe_fields:
            recipe = replace(recipe, **recipe_fields)
        if title is None and recipe_fields:
            title = f"{self.title} (바꾼 설정: {', '.join(f'{k} {v}' for k, v in recipe_fields.items())})"
        return replace(self, name=name, title=title or self.title, recipe=check_recipe(recipe), **changes)


def _vgg16(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
    return vgg("D", input_shape=(32, 32, 3), num_classes=10, batch_norm=True, width=profile.width, head="small",
               dropout=0.5, initializer="he_normal", augmentation=augmentation_layers(recipe, seed), name="vgg16_bn")


def _vgg16_paper(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
    return vgg("D", input_shape=(32, 32, 3), num_classes=10, width=profile.width, head="paper", dropout=0.5,
               initializer="glorot_uniform", name="vgg16")


def _basic(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
    return basic_cnn(augmentation=augmentation_layers(recipe, seed))


EXPERIMENTS: dict[str, Experiment] = {
    "vgg16": Experiment("vgg16", "VGG-16 + 배치 정규화, CIFAR-10용 (현대적 레시피)", _vgg16, RECIPES["modern"],
                        {"smoke": 3, "cpu": 4, "gpu": 60}),
    "vgg16-paper": Experiment("vgg16-paper", "VGG-16 (배치 정규화 없음), 논문의 학습 레시피를 CIFAR-10에", _vgg16_paper,
                              RECIPES["paper"], {"smoke": 1, "cpu": 4, "gpu": 74}),
    "basic-cnn": Experiment("basic-cnn", "기본 CNN: 합성곱 2층 + 완전 연결 384, 시그모이드", _basic, RECIPES["adam"],
                            {"smoke": 4, "cpu": 6, "gpu": 30}, {"smoke": 3_000}),
}


def batch_size(exp: Experiment, profile: Profile) -> int:
    """The experiment's batch size for this profile where it names one, else the recipe's (the paper's 256), else
    the profile's."""
    exp, profile = get_experiment(exp), get_profile(profile)
    return exp.batch_sizes.get(profile.name) or exp.recipe.batch_size or profile.batch_size


def get_experiment(name: "str | Experiment") -> Experiment:
    """A registered experiment by name; an ``Experiment`` (say, a chapter's variant) is returned as it is."""
    if isinstance(name, Experiment):
        return name
    if not isinstance(name, str) or name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


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
    _check_data(data)
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


def _check_out(out) -> None:
    if out is not None and (not isinstance(out, (str, os.PathLike)) or not str(out)):
        raise TypeError(f"out must be a folder path or None, not {type(out).__name__} {out!r}")


def _check_data(data) -> CIFAR10Data:
    if not isinstance(data, CIFAR10Data):
        raise TypeError(f"data must be a vgglab.CIFAR10Data (from load_cifar10 or load_for_profile), "
                        f"not {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------------------------
# Running


def run_config(exp: Experiment, profile: Profile, epochs: int, seed: int, dataset: str, source: str,
               distribution=None, precision: str = "float32") -> dict:
    """Everything that decides a run, as JSON would hold it; a resume must match it exactly.

    A data-parallel run adds ``"distribution": {"kind": ..., "replicas": n}`` (``vgglab.distribute.describe``),
    and a mixed-precision run ``"precision": "mixed_bfloat16"`` (or ``mixed_float16``); a float32 run on one device
    has neither key, as the records written before they existed.
    """
    config = {"experiment": exp.name, "profile": profile.name, "epochs": epochs, "seed": seed,
              "batch_size": batch_size(exp, profile), "width": profile.width,
              "train_size": exp.train_size.get(profile.name, profile.train_size), "val_size": profile.val_size,
              "test_size": profile.test_size, "recipe": asdict(exp.recipe), "dataset": dataset,
              "source_sha256": _source_id(source), "backend": keras.backend.backend()}
    if distribution is not None:
        config["distribution"] = distribute.describe(distribution)
    if precision != "float32":
        config["precision"] = precision
    return json.loads(json.dumps(config))


def _source_id(source: str) -> str:
    path = Path(source)
    return content_key(path)[:16] if path.exists() else source


def _prepare_out(out: Path, config: dict, resume: bool) -> tuple[Path, dict | None]:
    """Check ``out`` is usable for this run; return the checkpoint path and any finished record."""
    _check_writable(out)
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
                   precision: str = "float32", keep_model: bool = False, log=print) -> "dict | Run":
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
    seed = check_seed(seed)  # every argument is checked before anything is loaded or written
    train.check_progress_every(progress_every)
    _check_out(out)
    if data is not None:
        _check_data(data)
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    data = data if data is not None else load_for_profile(prof, source, log)
    config = run_config(exp, prof, int(epochs), seed, data.name, data.source, distribution, precision)
    ckpt, done = _prepare_out(Path(out), config, resume) if out is not None else (None, None)
    if done is not None:
        if keep_model:
            raise ValueError(f"the run in {str(out)!r} had already finished, so no model was trained; load it from its "
                             "checkpoint or use another out directory")
        log(f"{out} 의 실행은 이미 끝났습니다: 테스트 정확도 {done['test_accuracy']:.1%}")
        return done
    if resume and ckpt is not None and not ckpt.exists():
        log(f"{out}에 이어 갈 체크포인트가 없어 처음부터 학습합니다")
    set_seed(seed)
    splits = prepare(data, prof, normalization=exp.recipe.normalization, seed=seed,
                     train_size=exp.train_size.get(prof.name))
    with distribute.scope(distribution), precision_policy(precision), no_retracing_warnings():
        model = exp.build(prof, exp.recipe, seed)
        adapted = adapt_layers(model, splits.x_train, seed)  # e.g. the speed run's patch whitening
        log(f"실험 {exp.name} ({exp.title}) · 프로파일 {prof.name} · 데이터 {data.name} · 학습 {len(splits.y_train):,}장"
            f" · 검증 {len(splits.y_val):,}장 · 테스트 {len(splits.y_test):,}장 · 파라미터 {model.count_params():,}개")
        fit = train.fit(model, splits.x_train, splits.y_train, splits.x_val, splits.y_val, recipe=exp.recipe,
                    epochs=int(epochs), batch_size=batch_size(exp, prof), seed=seed, checkpoint=ckpt, resume=resume,
                    progress_every=progress_every, distribution=distribution, log=log)
        t_eval = time.perf_counter()
        test = evaluate(model, splits.x_test, splits.y_test, tta=exp.recipe.tta, probabilities=True)
        eval_seconds = time.perf_counter() - t_eval
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


# ----------------------------------------------------------------------------------------------
# Chapters 11-12: a VGG builder whose choices are data, regularisation arms, the technique ladder,
# runs that keep their model, and reading stored records

import re  # noqa: E402


@dataclass(frozen=True)
class VGGBuild:
    """An ``Experiment.build`` that keeps its design choices as data, so that a variant changes one of them.

    ``VGGBuild("B", activation="sigmoid").but(activation="relu")`` is the same network with ReLU. The fields
    map onto ``vgglab.vgg``: ``width=None`` takes the profile's width; ``initializer`` is a Keras name
    (``"glorot_uniform"`` is Xavier, ``"he_normal"`` is He) or ``"normal(0.01)"`` for N(0, 0.01²);
    ``l1`` and ``l2`` add ``keras.regularizers`` penalties, l1·Σ|w| and l2·Σw², to the loss for every
    kernel (not for biases or batch-normalisation scales). The recipe's augmentation goes in front.
    """

    config: object = "B"
    activation: str = "relu"
    initializer: str = "glorot_uniform"
    batch_norm: bool = False
    dropout: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    head: str = "small"
    head_units: int | None = None
    width: float | None = None

    def __post_init__(self):
        if isinstance(self.config, list):
            object.__setattr__(self, "config", tuple(self.config))
        for label in ("l1", "l2"):
            v = getattr(self, label)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ValueError(f"{label} must be a penalty coefficient in [0, 1), not {v!r}")
        # fail here, on the bad choice, not in the middle of a run
        resolve_config(list(self.config) if isinstance(self.config, tuple) else self.config)
        keras_object("activation", keras.activations.get, self.activation)
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; choose one of {', '.join(HEADS)}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a rate in [0, 1), not {self.dropout!r}")
        if self.head_units is not None:
            positive_int(self.head_units, "head_units")
        if self.width is not None and (isinstance(self.width, bool) or not isinstance(self.width, (int, float))
                                       or not (self.width > 0 and np.isfinite(self.width))):
            raise ValueError(f"width must be a positive number or None (the profile's), not {self.width!r}")
        self.keras_initializer()

    def but(self, **changes) -> "VGGBuild":
        """This build with some fields changed."""
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown VGGBuild field {unknown[0]!r}; change one of {', '.join(self.__dataclass_fields__)}")
        return replace(self, **changes)

    def keras_initializer(self):
        match = re.fullmatch(r"normal\(([0-9.eE+-]+)\)", str(self.initializer))
        if match:
            std = float(match.group(1))
            if not std > 0:
                raise ValueError(f"initializer {self.initializer!r}: the standard deviation must be positive")
            return keras.initializers.RandomNormal(0.0, std)
        try:
            return keras.initializers.get(self.initializer)
        except (ValueError, TypeError) as e:
            raise ValueError(f"unknown initializer {self.initializer!r}: use a Keras name such as 'he_normal' "
                             f"or 'normal(0.01)' ({e})") from None

    def regularizer(self):
        if self.l1 and self.l2:
            return keras.regularizers.L1L2(l1=self.l1, l2=self.l2)
        if self.l1:
            return keras.regularizers.L1(self.l1)
        return keras.regularizers.L2(self.l2) if self.l2 else None

    def __call__(self, profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
        return vgg(list(self.config) if isinstance(self.config, tuple) else self.config, input_shape=(32, 32, 3),
                   num_classes=10, batch_norm=self.batch_norm, activation=self.activation,
                   initializer=self.keras_initializer(), dropout=self.dropout, width=self.width or profile.width,
                   head=self.head, head_units=self.head_units, regularizer=self.regularizer(),
                   augmentation=augmentation_layers(recipe, seed))

    def describe(self) -> str:
        """The choices in a few words: ``B · relu · glorot_uniform · BN · 드롭아웃 0.3 · L2 0.0005``."""
        parts = [self.config if isinstance(self.config, str) else "사용자 구성", self.activation, str(self.initializer)]
        parts += ["BN"] if self.batch_norm else []
        parts += [f"드롭아웃 {self.dropout:g}"] if self.dropout else []
        parts += [f"L1 {self.l1:g}"] if self.l1 else []
        parts += [f"L2 {self.l2:g}"] if self.l2 else []
        return " · ".join(parts)


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


# Chapter 11's arms: a three-layer VGG with batch normalisation (about 950 img/s at width 0.25 on two CPU cores),
# trained with momentum SGD on 1,000 images for 15 epochs, so that it overfits within half a minute. With SGD an L2
# penalty in the loss and weight decay are the same update, so L1 and L2 are compared as the same kind of loss term.
REG_BUILD = VGGBuild((64, "M", 128, "M", 256, "M"), activation="relu", initializer="he_normal", batch_norm=True,
                     head="small")
REG_RECIPE = Recipe("sgd-momentum", "sgd", 0.05, momentum=0.9, batch_size=32,
                      notes="모멘텀 0.9의 SGD, 학습률 0.05 고정, 배치 32")
REG_L2, REG_L1 = 5e-3, 5e-4  # strong enough to see within a few hundred steps
EXPERIMENTS["reg-none"] = Experiment("reg-none", "규제 실험: 합성곱 3층 VGG + BN, 규제 없음", REG_BUILD, REG_RECIPE,
                                     {"smoke": 2, "cpu": 15, "gpu": 30}, {"smoke": 500, "cpu": 1_000, "gpu": 5_000})
EXPERIMENTS["reg-l2"] = EXPERIMENTS["reg-none"].variant("reg-l2", "규제 실험: L2 규제", build=REG_BUILD.but(l2=REG_L2))
EXPERIMENTS["reg-l1"] = EXPERIMENTS["reg-none"].variant("reg-l1", "규제 실험: L1 규제", build=REG_BUILD.but(l1=REG_L1))
EXPERIMENTS["reg-augment"] = EXPERIMENTS["reg-none"].variant("reg-augment", "규제 실험: 뒤집기 + 이동 + 컷아웃 증강",
                                                             augment=("flip", "translate", "cutout"))


# Chapter 10's arms: one 3x3 convolution per block under the paper's head (fc1, fc2, predictions), so that, as in
# VGG-16, most parameters sit in the fully connected layers; 2,000 training images make it overfit within minutes.
# Adam with a one-cycle rate ends at lr 0, so the last epoch's figures do not wobble.
FC_BUILD = VGGBuild((64, "M", 128, "M", 256, "M"), initializer="he_normal", head="paper")
FC_RECIPE = Recipe("adam-onecycle", "adam", 1e-3, schedule="onecycle",
                     notes="Adam, 학습률을 0.001까지 올렸다가 0까지 선형으로 내림")
EXPERIMENTS["fc-none"] = Experiment("fc-none", "완전 연결층 실험: 합성곱 3층 + 논문 head, 드롭아웃 없음", FC_BUILD,
                                    FC_RECIPE, {"smoke": 10, "cpu": 15, "gpu": 30},
                                    {"smoke": 1_000, "cpu": 2_000, "gpu": 5_000})
EXPERIMENTS["fc-dropout"] = EXPERIMENTS["fc-none"].variant("fc-dropout", "완전 연결층 실험: fc1·fc2 뒤 드롭아웃 0.5",
                                                           build=FC_BUILD.but(dropout=0.5))

# ----------------------------------------------------------------------------------------------
# The technique ladder (chapter 12): a CIFAR-10 workshop's steps, each a small change to the one before.
#
# Budget: 30 training runs (10 steps x 3 seeds) plus the ensemble on two CPU cores, which other people share. A run
# pays 10-12 s of fixed cost (building, tracing the train/validation/test functions, the validation and test passes);
# configuration B at width 0.25 trains at about 330 img/s on TensorFlow, slower with augmentation. At 1,500 images x 2
# epochs (48 updates) step 1 stayed at chance (10.1%, seed 0), so the cpu ladder sees 2,000 images x 3 epochs
# (94 updates): 21-39 s per run, 15.9 minutes in all, measured with `python -m vgglab run ladder --profile cpu`
# (book/results/ladder-cpu). The test set is a fixed class-balanced subset of 2,000 images (200 per class), so the
# 30 test passes stay cheap and every run and the ensemble are scored on the same images. Smoke (CI) runs one seed:
# its runs cost almost only the fixed cost.

LADDER_EPOCHS = {"smoke": 1, "cpu": 3, "gpu": 40}
LADDER_TRAIN_SIZE = {"smoke": 500, "cpu": 2_000}  # gpu: every training image
LADDER_TEST_SIZE = {"smoke": 500, "cpu": 2_000}  # gpu: the whole test set
LADDER_BATCH_SIZE = 64
LADDER_SEEDS = {"smoke": (0,), "cpu": (0, 1, 2), "gpu": (0, 1, 2)}


@dataclass(frozen=True)
class LadderStep:
    number: int
    name: str  # a registered experiment, or for the ensemble step the name of its record
    label: str  # a short Korean label for tables and charts
    change: str  # what this step changes
    reported: float | None  # the workshop's reported test accuracy, where it gave one
    ensemble_of: str | None = None  # the ensemble step: the step whose seeds' models it averages


def _ladder() -> list[LadderStep]:
    budget = {"epochs": LADDER_EPOCHS, "train_size": LADDER_TRAIN_SIZE}
    s1 = EXPERIMENTS["basic-cnn"].variant("ladder-01-basic", "사다리 1: 기본 CNN (합성곱 2층, 시그모이드)",
                                          normalization="unit", batch_size=LADDER_BATCH_SIZE, **budget)
    sgd = Recipe("sgd-momentum", "sgd", 0.01, momentum=0.9, normalization="unit", batch_size=LADDER_BATCH_SIZE,
                   notes="모멘텀 SGD, 학습률 0.01")
    s2 = s1.variant("ladder-02-vgg-sigmoid", "사다리 2: 합성곱 10층 VGG (구성 B), 시그모이드, N(0, 0.01²)",
                    build=VGGBuild("B", activation="sigmoid", initializer="normal(0.01)"), recipe=sgd)
    s3 = s2.variant("ladder-03-relu", "사다리 3: ReLU", build=s2.build.but(activation="relu"))
    s4 = s3.variant("ladder-04-xavier", "사다리 4: Xavier 초기화", build=s3.build.but(initializer="glorot_uniform"))
    s5 = s4.variant("ladder-05-adam", "사다리 5: Adam (학습률 1e-4)",
                    recipe=Recipe("adam-1e-4", "adam", 1e-4, normalization="unit", batch_size=LADDER_BATCH_SIZE,
                                    notes="Adam, 학습률 1e-4"))
    s6 = s5.variant("ladder-06-normalize", "사다리 6: 입력을 [-1, 1]로", normalization="minus_one_one")
    s7 = s6.variant("ladder-07-bn", "사다리 7: 배치 정규화", build=s6.build.but(batch_norm=True))
    s8 = s7.variant("ladder-08-dropout", "사다리 8: 드롭아웃 (유지 확률 0.7)", build=s7.build.but(dropout=0.3))
    s9 = s8.variant("ladder-09-l2", "사다리 9: L2 규제 5e-4 (손실 항)", build=s8.build.but(l2=5e-4))
    s10 = s9.variant("ladder-10-augment", "사다리 10: 데이터 증강 (뒤집기 + 이동)", augment=("flip", "translate"))
    for exp in (s1, s2, s3, s4, s5, s6, s7, s8, s9, s10):
        EXPERIMENTS[exp.name] = exp
    return [
        LadderStep(1, s1.name, "기본 CNN", "합성곱 2층 + 완전 연결 384, 시그모이드, Adam 1e-3, 입력 [0, 1]", 0.69),
        LadderStep(2, s2.name, "VGG + 시그모이드", "합성곱 10층 VGG(구성 B), N(0, 0.01²) 초기화, 모멘텀 SGD 0.01", 0.10),
        LadderStep(3, s3.name, "ReLU", "활성화 함수를 ReLU로", 0.10),
        LadderStep(4, s4.name, "Xavier", "초기화를 Xavier(glorot_uniform)로", None),
        LadderStep(5, s5.name, "Adam", "옵티마이저를 Adam(학습률 1e-4)으로", 0.787),
        LadderStep(6, s6.name, "입력 정규화", "입력을 [0, 1]에서 [-1, 1]로", None),
        LadderStep(7, s7.name, "배치 정규화", "합성곱층마다 배치 정규화", None),
        LadderStep(8, s8.name, "드롭아웃", "완전 연결층 뒤에 드롭아웃 0.3 (유지 확률 0.7)", None),
        LadderStep(9, s9.name, "L2 규제", "모든 커널에 L2 5e-4 (손실 항)", 0.842),
        LadderStep(10, s10.name, "데이터 증강", "좌우 뒤집기 + 최대 4픽셀 이동", None),
        LadderStep(11, "ladder-11-ensemble", "앙상블", "10단계의 시드별 모델의 소프트맥스 평균", None,
                   ensemble_of=s10.name),
    ]


LADDER: list[LadderStep] = _ladder()


def ladder_budget(profile: str | Profile | None = None) -> dict:
    """What one ladder run sees in a profile: epochs, training and test images, seeds."""
    prof = get_profile(profile)
    return {"profile": prof.name, "epochs": LADDER_EPOCHS[prof.name],
            "train_size": LADDER_TRAIN_SIZE.get(prof.name, prof.train_size),
            "test_size": LADDER_TEST_SIZE.get(prof.name, prof.test_size), "seeds": LADDER_SEEDS[prof.name],
            "width": prof.width, "batch_size": LADDER_BATCH_SIZE}


@dataclass
class LadderResult:
    rows: list  # one dict per step: step, name, label, change, accuracies, mean, std, reported, seconds
    records: dict  # experiment name -> the records of its seeds
    ensemble: dict | None
    profile: str
    dataset: str
    seeds: tuple
    seconds: float

    def row(self, number: int) -> dict:
        return next(r for r in self.rows if r["step"] == number)

    def table(self) -> str:
        """The ladder as text: mean ± sample standard deviation over seeds, and the workshop's figure."""
        rows = [(r["step"], r["label"], f"{r['mean']:.1%} ± {r['std']:.1%}" if r["std"] is not None else
                 f"{r['mean']:.1%}", f"{r['reported']:.1%}" if r["reported"] is not None else "—") for r in self.rows]
        return (text_table(["단계", "기법", "테스트 정확도", "워크숍"], rows, right=(0, 2, 3))
                + f"\n프로파일 {self.profile} · 데이터 {self.dataset} · 시드 {', '.join(map(str, self.seeds))}"
                f" · {self.seconds / 60:.1f}분")

    def to_json(self) -> dict:
        return {"profile": self.profile, "dataset": self.dataset, "seeds": list(self.seeds),
                "seconds": round(self.seconds, 1), "rows": self.rows, "ensemble": self.ensemble}


def run_ladder(profile: str | Profile | None = None, *, data: CIFAR10Data | None = None, seeds=None,
               out: str | os.PathLike | None = None, steps: list[LadderStep] | None = None, source=None,
               epoch_logs: bool = True, log=print) -> LadderResult:
    """Run every ladder step for several seeds at the profile's ladder budget and tabulate the test accuracy.

    Every run sees the same fixed test subset (``LADDER_TEST_SIZE``). The ensemble step averages the softmax
    outputs of the models that its ``ensemble_of`` step trained with each seed. With ``out``, each run's
    record is written to ``out/<experiment>/seed<k>/result.json``, the ensemble's to
    ``out/ladder-11-ensemble/result.json`` and the table to ``out/ladder.json``. ``epoch_logs=False`` logs one
    line per run instead of one per epoch.
    """
    prof = get_profile(profile)
    steps = LADDER if steps is None else list(steps)
    if not steps or not all(isinstance(s, LadderStep) for s in steps):
        raise TypeError(f"steps must be a non-empty list of LadderStep (such as LADDER), not {steps!r}")
    if data is not None:
        _check_data(data)
    _check_out(out)
    seeds = tuple(LADDER_SEEDS[prof.name] if seeds is None else seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, not {seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"seeds must be non-negative integers, not {s!r}")
    names = [s.name for s in steps if s.ensemble_of is None]
    for s in steps:
        if s.ensemble_of is None:
            get_experiment(s.name)
        elif s.ensemble_of not in names:
            raise ValueError(f"ensemble step {s.name!r} averages {s.ensemble_of!r}, which is not an earlier step")
    out = Path(out) if out is not None else None
    if out is not None:
        _check_writable(out)
        if (out / "ladder.json").exists() or any(out.glob("*/seed*/result.json")):
            raise ValueError(f"{str(out)!r} already holds ladder records; choose another --out directory")
    t0 = time.perf_counter()
    data = data if data is not None else load_for_profile(prof, source, log)
    n_test = LADDER_TEST_SIZE.get(prof.name)
    if n_test is not None and n_test < len(data.y_test):
        data = data.subset(test_size=n_test, seed=0)
    keep = {s.ensemble_of for s in steps if s.ensemble_of}
    rows, records, probs, ensemble = [], {}, {}, None
    for step in steps:
        if step.ensemble_of is None:
            exp = get_experiment(step.name)
            records[exp.name], accs, secs = [], [], 0.0
            for seed in seeds:
                if epoch_logs:
                    log(f"── 사다리 {step.number}단계 ({step.label}) · 시드 {seed}")
                record, model, splits = run_experiment(exp, profile=prof, data=data, seed=seed, keep_model=True,
                                                       log=log if epoch_logs else (lambda s: None))
                if not epoch_logs:
                    log(f"{step.number:>2}단계 {step.label} · 시드 {seed} · 테스트 정확도 {record['test_accuracy']:.1%}"
                        f" · 마지막 에포크 학습 손실 {record['history']['loss'][-1]:.3f} · {record['wall_seconds']:.0f}초")
                record["ladder_step"], record["test_images"] = step.number, len(data.y_test)
                if exp.name in keep:
                    with no_retracing_warnings():
                        probs.setdefault(exp.name, []).append(model.predict(splits.x_test, batch_size=256, verbose=0))
                del model
                keras.backend.clear_session()
                records[exp.name].append(record)
                accs.append(record["test_accuracy"])
                secs += record["wall_seconds"]
                if out is not None:
                    write_json(out / exp.name / f"seed{seed}" / "result.json", record)
            rows.append(_ladder_row(step, accs, secs))
        else:
            splits = experiment_splits(step.ensemble_of, prof, data, seeds[0])
            ensemble = ensemble_scores(probs[step.ensemble_of], splits.y_test)
            ensemble.update({"experiment": step.name, "test_accuracy": ensemble["ensemble_accuracy"],
                             "ensemble_of": step.ensemble_of, "seeds": list(seeds),
                             "profile": prof.name, "dataset": data.name, "data_source": data.source,
                             "backend": keras.backend.backend(), "device": device_name(),
                             "test_images": len(splits.y_test), "ladder_step": step.number, "versions": versions()})
            log(f"── 사다리 {step.number}단계 ({step.label}): 시드 {len(seeds)}개 모델의 앙상블 "
                f"{ensemble['ensemble_accuracy']:.1%} (모델 평균 {ensemble['mean_member_accuracy']:.1%})")
            rows.append({**_ladder_row(step, [ensemble["ensemble_accuracy"]], 0.0), "std": None,
                         "members_mean": ensemble["mean_member_accuracy"]})
            if out is not None:
                write_json(out / step.name / "result.json", ensemble)
    result = LadderResult(rows, records, ensemble, prof.name, data.name, seeds, time.perf_counter() - t0)
    if out is not None:
        write_json(out / "ladder.json", result.to_json())
    return result


def load_ladder(folder: str | os.PathLike) -> LadderResult:
    """The ladder that ``run_ladder(out=folder)`` (or ``python -m vgglab run ladder --out folder``) saved.

    Reads ``folder/ladder.json`` and each run's ``result.json``; raises ValueError naming the folder when the table
    is missing or a step's records do not match it (say, a run that was interrupted).
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path, not {type(folder).__name__} {folder!r}")
    root = Path(folder)
    path = root / "ladder.json"
    if not path.is_file():
        raise ValueError(f"{str(root)!r} holds no ladder.json; run python -m vgglab run ladder --out {root}")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        rows, seeds = saved["rows"], tuple(saved["seeds"])
        missing = [k for k in ("profile", "dataset", "seconds") if k not in saved]
        missing += [f"rows[{i}].{k}" for i, r in enumerate(rows) for k in ("step", "name", "label", "mean", "accuracies")
                    if k not in r]
        if missing:
            raise KeyError(missing[0])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"unreadable ladder table {str(path)!r}: {type(e).__name__}: {e}") from None
    records = {}
    for row in rows:
        if row.get("std") is None and "members_mean" in row:
            continue  # the ensemble step: its record is saved['ensemble']
        found = sorted(load_records(root / row["name"], experiment=row["name"]), key=lambda r: r["seed"])
        if [r["seed"] for r in found] != list(seeds) or [r["test_accuracy"] for r in found] != row["accuracies"]:
            raise ValueError(f"the records of {row['name']!r} in {str(root)!r} do not match ladder.json")
        records[row["name"]] = found
    return LadderResult(rows, records, saved.get("ensemble"), saved["profile"], saved["dataset"], seeds,
                        float(saved["seconds"]))


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"output directory {str(out)!r} is not writable: {e.strerror or e}") from None


def _ladder_row(step: LadderStep, accs: list, seconds: float) -> dict:
    return {"step": step.number, "name": step.name, "label": step.label, "change": step.change,
            "accuracies": [float(a) for a in accs], "mean": float(np.mean(accs)),
            "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else None, "reported": step.reported,
            "seconds": round(seconds, 1)}


# ----------------------------------------------------------------------------------------------
# The ladder of a CIFAR-10 workshop on VGG configuration B (10 convolutions, the small head, no dropout):
# which activation and which initialisation let a plain 10-convolution network learn at all.
# Chapters 05 (activation functions) and 06 (weight initialisation) run these.


def vgg_b_builder(activation="relu", initializer="he_normal", batch_norm: bool = False, name: str | None = None):
    """A ``build(profile, recipe, seed)`` for an ``Experiment``: VGG configuration B (10 convolutions) for CIFAR-10
    at the profile's width, with the small head, no dropout and the given activation, initialiser and batch norm.

    ``initializer`` is a Keras name (``"he_normal"``), a config dict such as ``NORMAL_001`` or an initialiser;
    ``vgg()`` gives every layer its own copy.
    """

    keras_object("activation", keras.activations.get, activation)  # fail here, not in the middle of a run
    keras_object("initializer", keras.initializers.get, initializer)

    def build(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
        return vgg("B", input_shape=(32, 32, 3), num_classes=10, activation=activation, initializer=initializer,
                   batch_norm=batch_norm, dropout=0.0, width=profile.width, head="small",
                   augmentation=augmentation_layers(recipe, seed), name=name or "vgg_b")

    return build


NORMAL_001 = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.01}}
_LADDER_EPOCHS = {"smoke": 3, "cpu": 3, "gpu": 30}
_LADDER_TRAIN = {"cpu": 3_000}

EXPERIMENTS.update({
    "vggb-sigmoid": Experiment("vggb-sigmoid", "합성곱 10층(VGG 구성 B), 시그모이드, Glorot 초기화",
                               vgg_b_builder("sigmoid", "glorot_uniform", name="vggb_sigmoid"), RECIPES["adam"],
                               _LADDER_EPOCHS, _LADDER_TRAIN),
    "vggb-relu-normal": Experiment("vggb-relu-normal", "합성곱 10층, ReLU, N(0, 0.01²) 초기화",
                                   vgg_b_builder("relu", NORMAL_001, name="vggb_relu_normal"), RECIPES["adam"],
                                   _LADDER_EPOCHS, _LADDER_TRAIN),
    "vggb-relu-glorot": Experiment("vggb-relu-glorot", "합성곱 10층, ReLU, Glorot 초기화",
                                   vgg_b_builder("relu", "glorot_uniform", name="vggb_relu_glorot"), RECIPES["adam"],
                                   _LADDER_EPOCHS, _LADDER_TRAIN),
    "vggb-relu-he": Experiment("vggb-relu-he", "합성곱 10층, ReLU, He 초기화",
                               vgg_b_builder("relu", "he_normal", name="vggb_relu_he"), RECIPES["adam"],
                               _LADDER_EPOCHS, _LADDER_TRAIN),
    "vggb-relu-normal-bn": Experiment("vggb-relu-normal-bn", "합성곱 10층, ReLU, N(0, 0.01²) 초기화 + 배치 정규화",
                                      vgg_b_builder("relu", NORMAL_001, batch_norm=True, name="vggb_relu_normal_bn"),
                                      RECIPES["adam"], _LADDER_EPOCHS, _LADDER_TRAIN),
})


# ----------------------------------------------------------------------------------------------
# Keeping the trained model (chapter 09 measures trained networks after their run)


# ----------------------------------------------------------------------------------------------
# The VGG paper chapter: scale jittering on CIFAR-10, and keeping a trained model for test-time evaluation


# Configuration A's first four blocks: four poolings leave a 2x2 feature map at 32x32, so in dense evaluation
# fc1 becomes a 2x2 convolution (the 7x7 of ImageNet), and the test sizes 32, 48 and 64 are all multiples of 16.
VGG_A4 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M"]


def _vgg_a4(scale_range: tuple[int, int] | None):
    def build(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
        # The paper's training scale S at CIFAR size: a 32x32 crop of the image rescaled to S, plus flips.
        jitter = [RandomScaleCrop(*scale_range, seed=seed, name="augment_scale")] if scale_range else []
        return vgg(VGG_A4, input_shape=(32, 32, 3), num_classes=10, batch_norm=True, width=profile.width,
                   head="small", dropout=0.0, initializer="he_normal",
                   augmentation=[*jitter, *augmentation_layers(recipe, seed)], name="vgg_a4_bn")
    return build


_A4_RECIPE = replace(RECIPES["modern"], augment=("flip",))
EXPERIMENTS["vgg-a4-s32"] = Experiment(
    "vgg-a4-s32", "구성 A의 앞 네 블록 + 배치 정규화, 고정 척도 S=32 + 좌우 뒤집기", _vgg_a4(None), _A4_RECIPE,
    {"smoke": 2, "cpu": 3, "gpu": 60})
EXPERIMENTS["vgg-a4-jitter"] = Experiment(
    "vgg-a4-jitter", "구성 A의 앞 네 블록 + 배치 정규화, 척도 지터링 S∈[32, 64] + 좌우 뒤집기", _vgg_a4((32, 64)),
    _A4_RECIPE, {"smoke": 2, "cpu": 3, "gpu": 60})


# ----------------------------------------------------------------------------------------------
# Chapter 15 (CNN의 계보): the lineage models at one small budget, and the degradation experiment of
# He et al. (2016): a deep plain network trains worse than a shallow one, and its residual twin does not.


LINEAGE_EPOCHS = {"smoke": 2, "cpu": 3, "gpu": 30}
LINEAGE_TRAIN_SIZE = {"smoke": 1_000, "cpu": 2_500}
# (shallow, deep) plain depths, both 6n + 2; the gpu profile runs the paper's plain-20 / plain-56 pair.
DEGRADATION_DEPTHS = {"smoke": (8, 14), "cpu": (8, 26), "gpu": (20, 56)}
# The lineage arms each profile trains (chapter 15) besides the degradation runs; on two CPU cores the budget
# leaves out AlexNet, VGG-16 and GoogLeNet (the degradation experiment alone takes about 3.5 minutes there).
LINEAGE_ARMS = {"smoke": ("lenet5",), "cpu": ("lenet5",),
                "gpu": ("lenet5", "alexnet", "vgg16-lineage", "googlenet-mini")}


def resnet_width(profile: "str | Profile") -> float:
    """The CIFAR ResNets are narrow already (16-32-64 channels), so they get twice the profile's width (at most 1)."""
    return min(1.0, 2 * get_profile(profile).width)


def degradation_depths(profile: "str | Profile") -> tuple[int, int]:
    """The (shallow, deep) depths of the degradation experiment in this profile."""
    profile = get_profile(profile)
    if profile.name not in DEGRADATION_DEPTHS:
        raise ValueError(f"no degradation depths for profile {profile.name!r}; it has {', '.join(DEGRADATION_DEPTHS)}")
    return DEGRADATION_DEPTHS[profile.name]


def _lenet5(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
    return lenet5()


def _alexnet(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
    return alexnet(width=profile.width, augmentation=augmentation_layers(recipe, seed))


def _googlenet(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
    return googlenet_mini(width=profile.width, augmentation=augmentation_layers(recipe, seed))


def _degradation_net(which: str, residual: bool):
    def build(profile: Profile, recipe: Recipe, seed: int) -> keras.Model:
        depth = degradation_depths(profile)[0 if which == "shallow" else 1]
        return cifar_resnet(depth, residual=residual, width=resnet_width(profile), shortcut="pad",
                            augmentation=augmentation_layers(recipe, seed))
    return build


EXPERIMENTS.update({
    "lenet5": Experiment("lenet5", "LeNet-5 (tanh, 평균 풀링)", _lenet5, RECIPES["adam"], LINEAGE_EPOCHS,
                         LINEAGE_TRAIN_SIZE),
    "alexnet": Experiment("alexnet", "AlexNet, 32x32용 (LRN, 겹치는 풀링, 드롭아웃)", _alexnet, RECIPES["adam"],
                          LINEAGE_EPOCHS, LINEAGE_TRAIN_SIZE),
    "googlenet-mini": Experiment("googlenet-mini", "작은 GoogLeNet (인셉션 모듈 6개)", _googlenet, RECIPES["adam"],
                                 LINEAGE_EPOCHS, LINEAGE_TRAIN_SIZE),
    "vgg16-lineage": EXPERIMENTS["vgg16"].variant("vgg16-lineage", "VGG-16 + 배치 정규화, 계보 비교용 (Adam)",
                                                  recipe=RECIPES["adam"], epochs=LINEAGE_EPOCHS,
                                                  train_size=LINEAGE_TRAIN_SIZE),
    "plain-shallow": Experiment("plain-shallow", "얕은 플레인 네트워크 (지름길 없음)", _degradation_net("shallow", False),
                                RECIPES["adam"], LINEAGE_EPOCHS, LINEAGE_TRAIN_SIZE),
    "plain-deep": Experiment("plain-deep", "깊은 플레인 네트워크 (지름길 없음)", _degradation_net("deep", False),
                             RECIPES["adam"], LINEAGE_EPOCHS, LINEAGE_TRAIN_SIZE),
    "resnet-deep": Experiment("resnet-deep", "깊은 잔차 네트워크 (옵션 A 지름길)", _degradation_net("deep", True),
                              RECIPES["adam"], LINEAGE_EPOCHS, LINEAGE_TRAIN_SIZE),
})


# ----------------------------------------------------------------------------------------------
# VGG-13 (configuration B: ten 3x3 convolutions) with ReLU and He initialisation, with and without
# batch normalisation: the network on which the optimiser and normalisation chapters compare recipes.

VGG13_HE = VGGBuild("B", initializer="he_normal", head="small")  # ReLU, one FC layer, no dropout
EXPERIMENTS["vgg13-he"] = Experiment("vgg13-he", "VGG-13(구성 B), ReLU + He 초기화, 배치 정규화 없음, Adam 1e-4", VGG13_HE,
                                     Recipe("adam-1e-4", "adam", 1e-4, notes="Adam, 학습률 1e-4 고정"),
                                     {"smoke": 2, "cpu": 2, "gpu": 10}, {"smoke": 600, "cpu": 2_500})
EXPERIMENTS["vgg13-he-bn"] = EXPERIMENTS["vgg13-he"].variant(
    "vgg13-he-bn", "VGG-13(구성 B), ReLU + He 초기화 + 배치 정규화, Adam 1e-4", build=VGG13_HE.but(batch_norm=True))

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


# ----------------------------------------------------------------------------------------------
# The speed run (chapter 14): time to a target test accuracy with a small whitened VGG-style net (vgglab.speedrun).
#
# The recipe follows airbench94 where Keras allows: Nesterov SGD, label smoothing 0.2, flips and 4-pixel shifts,
# flip test-time augmentation, standardised inputs, a large batch on the GPU. Budget on two CPU cores: the net at
# width 0.25 (16/64/64 channels) trained at 57 img/s with flips and shifts while other jobs shared the cores (175 s
# for an epoch of 10,000 images), so the cpu run sees 5,000 images for 4 epochs (80 updates of 256).
# The gpu run is airbench94's: every training image, 10 epochs, batch 1024.

SPEEDRUN_RECIPE = Recipe("speedrun", "sgd", 0.2, momentum=0.9, nesterov=True, weight_decay=5e-4,
                           schedule="onecycle", label_smoothing=0.2, augment=("flip", "translate"),
                           normalization="standardize", tta=("flip",),
                           notes="네스테로프 SGD, 원사이클, 레이블 스무딩 0.2, 뒤집기+이동 증강, 표준화, 뒤집기 TTA")
SPEEDRUN_TARGET = {"smoke": 0.0, "cpu": 0.40, "gpu": 0.94}  # test accuracy a run must reach to count (cpu: a level the
# cpu-scale recipe reaches, 41.7% on its first run; gpu: airbench94's 94%)

EXPERIMENTS["speedrun"] = Experiment(
    "speedrun", "빠르게 학습하기: 패치 화이트닝 + 작은 VGG (airbench 방식)", SpeedrunBuild(), SPEEDRUN_RECIPE,
    {"smoke": 2, "cpu": 4, "gpu": 10}, {"smoke": 1_000, "cpu": 5_000}, {"smoke": 128, "cpu": 256, "gpu": 1024})


def speedrun_summary(record: dict, target: float | None = None) -> dict:
    """How a speed run went: ``seconds`` (training plus the final evaluation, compiling included),
    ``compile_seconds`` (the first epoch's time beyond the median of the others: tracing and compiling),
    ``test_accuracy`` and whether it ``reached`` the target (the profile's ``SPEEDRUN_TARGET`` by default)."""
    if not isinstance(record, dict) or "history" not in record or "test_accuracy" not in record:
        raise ValueError(f"not a run record (no history or test_accuracy): {str(record)[:80]!r}")
    if target is None:
        target = SPEEDRUN_TARGET.get(record.get("profile"))
        if target is None:
            raise ValueError(f"no speed-run target for profile {record.get('profile')!r}; pass target=")
    epochs = record["history"]["epoch_seconds"]
    compile_s = max(0.0, epochs[0] - float(np.median(epochs[1:]))) if len(epochs) > 1 else None
    seconds = float(record["train_seconds"]) + float(record.get("eval_seconds", 0.0))
    return {"seconds": round(seconds, 2), "compile_seconds": None if compile_s is None else round(compile_s, 2),
            "test_accuracy": record["test_accuracy"], "test_accuracy_no_tta": record.get("test_accuracy_no_tta"),
            "target": target, "reached": bool(record["test_accuracy"] >= target)}


def _speedrun_ablations() -> dict[str, tuple[str, Experiment]]:
    base = EXPERIMENTS["speedrun"]
    arms = {
        "speedrun-no-whiten": ("패치 화이트닝 대신 학습되는 2x2 합성곱", {"build": SpeedrunBuild(whiten=False)}),
        "speedrun-no-smoothing": ("레이블 스무딩 없음", {"label_smoothing": 0.0}),
        "speedrun-no-logit-scale": ("로짓 축소 없음 (x1)", {"build": SpeedrunBuild(logit_scale=1.0)}),
        "speedrun-flip-only": ("이동 증강 없음 (뒤집기만)", {"augment": ("flip",)}),
        "speedrun-relu": ("GELU 대신 ReLU", {"build": SpeedrunBuild(activation="relu")}),
    }
    return {name: (label, base.variant(name, f"빠르게 학습하기 (절제 실험): {label}", **changes))
            for name, (label, changes) in arms.items()}


# Each ablation turns one trick off; flip TTA needs no run of its own (every record has both accuracies).
SPEEDRUN_ABLATIONS = _speedrun_ablations()
EXPERIMENTS.update({name: exp for name, (_, exp) in SPEEDRUN_ABLATIONS.items()})

# airbench94's whole recipe, in mean-loss terms. airbench sums the loss over its batch of 1,024 and asks PyTorch's SGD
# for lr 11.5 / (1024 x (1 + 1 / (1 - 0.85))) per image, so per batch mean the peak rate is 11.5 / 7.67 = 1.5. Its
# weight decay, 0.0153 of each weight per step at the peak (after momentum), is Keras' decoupled weight_decay
# 0.0153 / 1.5 (Keras multiplies it by the scheduled rate, as airbench's schedule scales both). Batch-norm shifts learn
# 64 times faster; the rate rises from 0.2 to 1 times the peak over 23% of the steps and falls to 0.07 times it; from
# epoch 3 a Lookahead average of the weights is kept; images are flipped alternately and shifted by up to 2 pixels
# with mirrored borders; the test adds mirror and one-pixel-shift views.
AIRBENCH_RECIPE = Recipe("airbench94", "sgd", 11.5 / (1 + 1 / (1 - 0.85)), momentum=0.85, nesterov=True,
                           weight_decay=0.0153 / (11.5 / (1 + 1 / (1 - 0.85))), schedule="triangle",
                           label_smoothing=0.2, augment=("flip-alternating", "translate-reflect"),
                           normalization="standardize", tta=("flip", "translate"), bias_lr_scale=64.0,
                           lookahead_from=3, notes="airbench94의 레시피: 네스테로프 SGD 0.85, 삼각형 학습률, "
                           "BN 이동값 64배 학습률, 3 에포크부터 룩어헤드 평균, 교대 뒤집기+반사 이동 2픽셀, 뒤집기+이동 TTA")
EXPERIMENTS["speedrun94"] = Experiment(
    "speedrun94", "빠르게 학습하기: airbench94의 네트워크와 레시피 전부", AIRBENCH, AIRBENCH_RECIPE,
    {"smoke": 2, "cpu": 4, "gpu": 10}, {"smoke": 1_000, "cpu": 5_000}, {"smoke": 128, "cpu": 256, "gpu": 1024})


def speedrun_rows(records: dict) -> list[dict]:
    """One row per experiment of ``{experiment: [records]}``: runs, median seconds and compile seconds, how many
    reached the target, and the median test accuracy with and without flip TTA."""
    if not isinstance(records, dict):
        raise TypeError(f"records must be a dict of {{experiment: [records]}}, not {type(records).__name__}")
    rows = []
    for name, recs in records.items():
        if not recs:
            raise ValueError(f"experiment {name!r} has no records")
        s = [speedrun_summary(r) for r in recs]
        compiles = [x["compile_seconds"] for x in s if x["compile_seconds"] is not None]
        no_tta = [x["test_accuracy_no_tta"] for x in s if x["test_accuracy_no_tta"] is not None]
        rows.append({"experiment": name, "runs": len(s), "median_seconds": float(np.median([x["seconds"] for x in s])),
                     "median_compile": float(np.median(compiles)) if compiles else None,
                     "reached": sum(x["reached"] for x in s), "target": s[0]["target"],
                     "median_accuracy": float(np.median([x["test_accuracy"] for x in s])),
                     "median_no_tta": float(np.median(no_tta)) if no_tta else None,
                     "accuracies": [x["test_accuracy"] for x in s]})
    return rows


def speedrun_table(rows: list[dict]) -> str:
    """``speedrun_rows`` as a fixed-width text table with Korean headers (Hangul counted as two columns)."""
    keys = {"experiment", "runs", "median_seconds", "median_compile", "reached", "median_accuracy", "median_no_tta"}
    if isinstance(rows, (str, dict)) or not all(isinstance(r, dict) and keys <= set(r) for r in rows):
        raise ValueError(f"rows must be the list that speedrun_rows returns, not {str(rows)[:80]!r}")
    head = ["실험", "실행", "중앙값 초", "컴파일 초", "도달", "정확도 (TTA)", "TTA 없이"]
    cells = [[r["experiment"], r["runs"], f"{r['median_seconds']:.1f}",
              f"{r['median_compile']:.1f}" if r["median_compile"] is not None else "-", f"{r['reached']}/{r['runs']}",
              f"{r['median_accuracy']:.2%}", f"{r['median_no_tta']:.2%}" if r["median_no_tta"] is not None else "-"]
             for r in rows]
    return text_table(head, cells)

"""Named experiments: a model builder, a recipe and per-profile epochs, run through one path.

``run_experiment("vgg16", profile="smoke", out="runs/vgg16")`` loads the data the profile asks
for, builds the model, trains it with ``vgglab.train.fit``, evaluates it once on the test set and
returns a record (written atomically as ``result.json`` when ``out`` is given).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from vgglab import data as D
from vgglab import train as T
from vgglab.models import basic_cnn, vgg
from vgglab.runtime import Profile, device_name, get_profile, set_seed, versions

RESULT_KEYS = ("experiment", "profile", "dataset", "backend", "device", "seed", "epochs", "test_accuracy",
               "history", "wall_seconds", "train_images_per_second", "versions")


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    build: Callable[[Profile, T.Recipe, int], keras.Model]  # (profile, recipe, seed) -> uncompiled model
    recipe: T.Recipe
    epochs: dict  # profile name -> epochs
    train_size: dict = field(default_factory=dict)  # profile name -> override of the profile's train_size

    def epochs_for(self, profile: Profile) -> int:
        if profile.name not in self.epochs:
            raise ValueError(f"experiment {self.name!r} has no epochs for profile {profile.name!r}; "
                             f"it has {', '.join(self.epochs)}")
        return self.epochs[profile.name]

    def variant(self, name: str, title: str | None = None, **changes) -> "Experiment":
        """This experiment with a new name and some fields changed (``build``, ``recipe``, ``epochs``, ...).

        A recipe field can be changed directly too: ``exp.variant("x", lr=1e-4)`` replaces the recipe's ``lr``.
        """
        recipe_fields = {k: changes.pop(k) for k in list(changes) if k in T.Recipe.__dataclass_fields__}
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown experiment field {unknown[0]!r}; change one of "
                             f"{', '.join([*self.__dataclass_fields__, *T.Recipe.__dataclass_fields__])}")
        recipe = changes.pop("recipe", self.recipe)
        if recipe_fields:
            recipe = replace(recipe, **recipe_fields)
        return replace(self, name=name, title=title or self.title, recipe=T.check_recipe(recipe), **changes)


def _vgg16(profile: Profile, recipe: T.Recipe, seed: int) -> keras.Model:
    return vgg("D", input_shape=(32, 32, 3), num_classes=10, batch_norm=True, width=profile.width, head="small",
               dropout=0.5, initializer="he_normal", augmentation=T.augmentation_layers(recipe, seed), name="vgg16_bn")


def _vgg16_paper(profile: Profile, recipe: T.Recipe, seed: int) -> keras.Model:
    return vgg("D", input_shape=(32, 32, 3), num_classes=10, width=profile.width, head="paper", dropout=0.5,
               initializer="glorot_uniform", name="vgg16")


def _basic(profile: Profile, recipe: T.Recipe, seed: int) -> keras.Model:
    return basic_cnn(augmentation=T.augmentation_layers(recipe, seed))


EXPERIMENTS: dict[str, Experiment] = {
    "vgg16": Experiment("vgg16", "VGG-16 + 배치 정규화, CIFAR-10용 (현대적 레시피)", _vgg16, T.RECIPES["modern"],
                        {"smoke": 3, "cpu": 4, "gpu": 60}),
    "vgg16-paper": Experiment("vgg16-paper", "VGG-16 (배치 정규화 없음), 논문의 학습 레시피를 CIFAR-10에", _vgg16_paper,
                              T.RECIPES["paper"], {"smoke": 1, "cpu": 4, "gpu": 74}),
    "basic-cnn": Experiment("basic-cnn", "기본 CNN: 합성곱 2층 + 완전 연결 384, 시그모이드", _basic, T.RECIPES["adam"],
                            {"smoke": 4, "cpu": 6, "gpu": 30}, {"smoke": 3_000}),
}


def batch_size(exp: Experiment, profile: Profile) -> int:
    """The recipe's batch size where it names one (the paper's 256), else the profile's."""
    return exp.recipe.batch_size or profile.batch_size


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


def load_for_profile(profile: Profile, source=None, log=print) -> D.CIFAR10Data:
    """CIFAR-10 for a profile. Only ``smoke`` may fall back to synthetic data, and it says so loudly."""
    try:
        return D.load_cifar10(source)
    except D.DataUnavailableError as e:
        if not profile.allow_synthetic:
            raise
        log("!" * 72)
        log(f"!! 경고: CIFAR-10을 읽을 수 없어 합성 데이터(synthetic)로 대신합니다. ({e})")
        log("!! 이 결과는 CIFAR-10의 결과가 아닙니다. VGGLAB_CIFAR10을 설정하세요.")
        log("!" * 72)
        return D.synthetic_cifar10(n_train=2_000, n_test=1_000)


def prepare(data: D.CIFAR10Data, profile: Profile, *, normalization: str = "minus_one_one", seed: int = 0,
            train_size: int | None = None) -> Splits:
    """Split off validation images, take the profile's class-balanced subsets, normalise to float32."""
    (x_tr, y_tr), (x_val, y_val) = D.train_val_split(data.x_train, data.y_train,
                                                     min(profile.val_size, len(data.y_train) // 5), seed)
    n_train = train_size if train_size is not None else profile.train_size
    if n_train is not None and n_train < len(y_tr):
        keep = D.stratified_indices(y_tr, n_train, seed)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    x_te, y_te = data.x_test, data.y_test
    if profile.test_size is not None and profile.test_size < len(y_te):
        keep = D.stratified_indices(y_te, profile.test_size, seed)
        x_te, y_te = x_te[keep], y_te[keep]
    stats = D.channel_stats(x_tr) if normalization == "standardize" else None
    norm = lambda x: D.normalize(x, normalization, stats)  # noqa: E731
    return Splits(norm(x_tr), y_tr, norm(x_val), y_val, norm(x_te), y_te, data.name, data.source)


# ----------------------------------------------------------------------------------------------
# Running


def run_config(exp: Experiment, profile: Profile, epochs: int, seed: int, dataset: str, source: str) -> dict:
    """Everything that decides a run, as JSON would hold it; a resume must match it exactly."""
    return json.loads(json.dumps({"experiment": exp.name, "profile": profile.name, "epochs": epochs, "seed": seed,
            "batch_size": batch_size(exp, profile), "width": profile.width,
            "train_size": exp.train_size.get(profile.name, profile.train_size), "val_size": profile.val_size,
            "test_size": profile.test_size, "recipe": asdict(exp.recipe), "dataset": dataset,
            "source_sha256": _source_id(source), "backend": keras.backend.backend()}))


def _source_id(source: str) -> str:
    path = Path(source)
    return D._content_key(path)[:16] if path.exists() else source


def _prepare_out(out: Path, config: dict, resume: bool) -> tuple[Path, dict | None]:
    """Check ``out`` is usable for this run; return the checkpoint path and any finished record."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"output directory {str(out)!r} is not writable: {e.strerror or e}") from None
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
        T.write_json(run_file, config)
    return ckpt, None


def run_experiment(name: "str | Experiment", *, profile: str | Profile | None = None, epochs: int | None = None, seed: int = 0,
                   out: str | os.PathLike | None = None, resume: bool = False, source=None, data=None,
                   progress_every: float | None = None, log=print) -> dict:
    """Run a named experiment (or an ``Experiment``) and return its record (see ``RESULT_KEYS``)."""
    exp = get_experiment(name)
    prof = get_profile(profile)
    if epochs is None:
        epochs = exp.epochs_for(prof)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, not {epochs!r}")
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    data = data if data is not None else load_for_profile(prof, source, log)
    config = run_config(exp, prof, int(epochs), seed, data.name, data.source)
    ckpt, done = _prepare_out(Path(out), config, resume) if out is not None else (None, None)
    if done is not None:
        log(f"{out} 의 실행은 이미 끝났습니다: 테스트 정확도 {done['test_accuracy']:.1%}")
        return done
    set_seed(seed)
    splits = prepare(data, prof, normalization=exp.recipe.normalization, seed=seed,
                     train_size=exp.train_size.get(prof.name))
    model = exp.build(prof, exp.recipe, seed)
    log(f"실험 {exp.name} ({exp.title}) · 프로파일 {prof.name} · 데이터 {data.name} · 학습 {len(splits.y_train):,}장"
        f" · 검증 {len(splits.y_val):,}장 · 테스트 {len(splits.y_test):,}장 · 파라미터 {model.count_params():,}개")
    fit = T.fit(model, splits.x_train, splits.y_train, splits.x_val, splits.y_val, recipe=exp.recipe,
                epochs=int(epochs), batch_size=batch_size(exp, prof), seed=seed, checkpoint=ckpt, resume=resume,
                progress_every=progress_every, log=log)
    test = T.evaluate(model, splits.x_test, splits.y_test)
    log(f"테스트 정확도 {test['test_accuracy']:.1%} ({data.name}, 테스트 {len(splits.y_test):,}장)")
    record = {
        "experiment": exp.name, "title": exp.title, "profile": prof.name, "dataset": data.name,
        "data_source": data.source, "backend": keras.backend.backend(), "device": device_name(), "seed": seed,
        "epochs": int(epochs), **test, "history": fit.history,
        "wall_seconds": round(time.perf_counter() - t_start, 2), "train_seconds": round(fit.train_seconds, 2),
        "train_images_per_second": round(T.steady_images_per_second(fit.history), 1),
        "resumed_from_epoch": fit.resumed_from_epoch, "params": int(model.count_params()),
        "config": config, "versions": versions(), "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "started_at": started, "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if out is not None:
        T.write_json(Path(out) / "result.json", record)
    return record


# ----------------------------------------------------------------------------------------------
# VGG-13 (configuration B: ten 3x3 convolutions) with ReLU and He initialisation, with and without
# batch normalisation: the network on which the optimiser and normalisation chapters compare recipes.

from functools import partial  # noqa: E402


def _vgg13_he(profile: Profile, recipe: T.Recipe, seed: int, *, batch_norm: bool = False,
              input_scale: float | None = None) -> keras.Model:
    """Configuration B at the profile's width, a small head (one FC layer) and no dropout.

    ``input_scale`` puts a ``Rescaling`` layer first: with the ``unit`` normalisation and ``input_scale=255``
    the first convolution sees raw pixel values 0-255.
    """
    front = [keras.layers.Rescaling(input_scale, name="input_scale")] if input_scale is not None else []
    return vgg("B", input_shape=(32, 32, 3), num_classes=10, batch_norm=batch_norm, width=profile.width,
               head="small", dropout=0.0, initializer="he_normal",
               augmentation=front + T.augmentation_layers(recipe, seed),
               name="vgg13_he_bn" if batch_norm else "vgg13_he")


def vgg13_he_builder(batch_norm: bool = False, input_scale: float | None = None):
    """A ``build(profile, recipe, seed)`` for ``Experiment``: configuration B with ReLU and He initialisation."""
    if not isinstance(batch_norm, bool):
        raise TypeError(f"batch_norm must be True or False, not {batch_norm!r}")
    if input_scale is not None and (isinstance(input_scale, bool) or not isinstance(input_scale, (int, float))
                                    or not input_scale > 0):
        raise ValueError(f"input_scale must be a positive number or None, not {input_scale!r}")
    return partial(_vgg13_he, batch_norm=batch_norm, input_scale=input_scale)


EXPERIMENTS.update({
    "vgg13-he": Experiment("vgg13-he", "VGG-13(구성 B), ReLU + He 초기화, 배치 정규화 없음, Adam 1e-4",
                           vgg13_he_builder(False), T.Recipe("adam-1e-4", "adam", 1e-4, notes="Adam, 학습률 1e-4 고정"),
                           {"smoke": 2, "cpu": 2, "gpu": 10}, {"smoke": 600, "cpu": 2_500}),
    "vgg13-he-bn": Experiment("vgg13-he-bn", "VGG-13(구성 B), ReLU + He 초기화 + 배치 정규화, Adam 1e-4",
                              vgg13_he_builder(True), T.Recipe("adam-1e-4", "adam", 1e-4, notes="Adam, 학습률 1e-4 고정"),
                              {"smoke": 2, "cpu": 2, "gpu": 10}, {"smoke": 600, "cpu": 2_500}),
})

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

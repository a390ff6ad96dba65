"""The technique ladder of chapter 13: every step's seeds, run and tabled, their ensemble, and the stored result read
back. The steps themselves (``LADDER``) are declared in ``vgglab.registry``."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from vgglab.data import CIFAR10Data, load_for_profile
from vgglab.evaluate import ensemble_scores, no_retracing_warnings
from vgglab.experiments import check_data, check_out, check_writable, experiment_splits, run_experiment
from vgglab.files import write_json
from vgglab.records import load_records, mean_and_std
from vgglab.registry import (LADDER, LADDER_BATCH_SIZE, LADDER_EPOCHS, LADDER_SEEDS, LADDER_TEST_SIZE, LADDER_TRAIN_SIZE,
                             LadderStep, get_experiment)
from vgglab.runtime import Profile, device_name, get_profile, versions
from vgglab.tables import text_table


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
        check_data(data)
    check_out(out)
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
        check_writable(out)
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


def _ladder_row(step: LadderStep, accs: list, seconds: float) -> dict:
    return {"step": step.number, "name": step.name, "label": step.label, "change": step.change,
            "accuracies": [float(a) for a in accs], **mean_and_std(accs), "reported": step.reported,
            "seconds": round(seconds, 1)}



"""Run records: the ``result.json`` files and test predictions that runs leave in ``book/results``, and what chapters
compute from them (several seeds' spread and their ensemble), with the published figures they are set against."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from vgglab.evaluate import ensemble_scores
from vgglab.files import atomic_write
from vgglab.registry import SPEEDRUN_TARGET
from vgglab.tables import text_table

def load_records(folder: str | os.PathLike, experiment: str | None = None, profile: str | None = None) -> list[dict]:
    """Every ``result.json`` under ``folder`` (recursively), optionally only one experiment's or profile's.

    Each record gets ``"path"``, the file it came from. A folder that does not exist holds no records
    (say, a chapter opened in Colab without the repository's ``book/results``). A file that is not a
    record raises ValueError naming it.
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path, not {type(folder).__name__} {folder!r}")
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{str(root)!r} is a file, not a folder of result.json files")
    out = []
    for path in sorted(root.rglob("result.json")) if root.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"unreadable record {str(path)!r}: {e}") from None
        if not isinstance(record, dict) or "experiment" not in record or "test_accuracy" not in record:
            raise ValueError(f"{str(path)!r} is not a vgglab result record (no experiment or test_accuracy)")
        if experiment is not None and record["experiment"] != experiment:
            continue
        if profile is not None and record.get("profile") != profile:
            continue
        out.append({**record, "path": str(path)})
    return out


PREDICTIONS_FILE = "test_predictions.npz"


def save_predictions(path: Path, probabilities, labels) -> None:
    """The test set's class probabilities (float16) and labels, written atomically beside a run's record."""
    probs, labels = np.asarray(probabilities, np.float16), np.asarray(labels)
    if probs.ndim != 2 or labels.ndim != 1 or len(probs) != len(labels):
        raise ValueError(f"probabilities must have shape (N, classes) for N labels; got {probs.shape} for "
                         f"labels of shape {labels.shape}")
    labels = labels.astype(np.uint8)
    atomic_write(Path(path), lambda f: np.savez_compressed(f, probabilities=probs, labels=labels))


def predictions_path(record: dict) -> Path:
    """Where the test predictions of a record that ``load_records`` read are saved."""
    return Path(record.get("path", "")).parent / PREDICTIONS_FILE


def load_predictions(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities and labels saved beside a record that ``load_records`` read."""
    path = predictions_path(record)
    if not path.is_file():
        raise ValueError(f"no {PREDICTIONS_FILE} beside {record.get('path')!r}: the run saved no test predictions")
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["probabilities"].astype(np.float64), z["labels"].astype(np.int64)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"unreadable test predictions {str(path)!r}: {e}") from None


def seed_ensemble(records: list[dict]) -> dict:
    """The ensemble of several runs (say, one experiment's seeds) from their saved test predictions:
    ``vgglab.evaluate.ensemble_scores`` plus ``seeds``. The runs must have scored the same test images."""
    records = list(records)
    if len(records) < 2:
        raise ValueError(f"an ensemble needs at least 2 runs, got {len(records)}")
    probs, labels = zip(*(load_predictions(r) for r in records))
    if any(lab.shape != labels[0].shape or (lab != labels[0]).any() for lab in labels):
        raise ValueError("the runs were tested on different images; their predictions cannot be averaged")
    return {**ensemble_scores(np.stack(probs), labels[0]), "seeds": [r.get("seed") for r in records]}


# Published CIFAR-10 test accuracies of VGG-16 that chapter 13 compares with (official CIFAR-10 data).
VGG16_ANCHORS = (
    ("syim의 VGG-16 코드", 0.772, "syim"),
    ("CIFAR-10 워크숍의 최고 단일 모델", 0.842, "13장 기법 사다리의 출처"),
    ("kuangliu의 PyTorch VGG16", 0.9264, "kuangliu/pytorch-cifar"),
    ("geifmany의 Keras VGG16 (250 에포크)", 0.9356, "geifmany/cifar-vgg"),
    ("최근 논문의 VGG-16-BN 기준선", 0.9396, "여러 논문의 기준선"),
)
VGG16_GOALS = {"single": 0.945, "ensemble": 0.955}


def summarize_seeds(records: list[dict]) -> dict:
    """Several seeds of one experiment: test accuracy mean, sample std, min and max; the median wall time; where
    and on what they ran; and their ensemble when each saved its test predictions."""
    records = sorted(records, key=lambda r: r["seed"])
    if not records:
        raise ValueError("no records to summarize")
    names = {(r["experiment"], r.get("profile"), r.get("dataset")) for r in records}
    if len(names) != 1:
        raise ValueError(f"the records mix experiments, profiles or data: {sorted(map(str, names))}")
    accs = np.array([r["test_accuracy"] for r in records])
    out = {"experiment": records[0]["experiment"], "profile": records[0].get("profile"),
           "dataset": records[0].get("dataset"), "seeds": [r["seed"] for r in records],
           "accuracies": accs.tolist(), **mean_and_std(accs), "min": float(accs.min()),
           "max": float(accs.max()), "median_wall_seconds": float(np.median([r["wall_seconds"] for r in records])),
           "devices": sorted({r.get("device", "?") for r in records}),
           "backends": sorted({r.get("backend", "?") for r in records}), "ensemble": None}
    if len(records) > 1 and all(predictions_path(r).is_file() for r in records):
        out["ensemble"] = seed_ensemble(records)
    return out


# ----------------------------------------------------------------------------------------------
# Speed runs (chapter 15): time and accuracy against the profile's target


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


# ----------------------------------------------------------------------------------------------
# Arms of a comparison, each run with several seeds: mean ± sample standard deviation, and whether two arms differ by
# more than their seeds do.


def arm_stats(runs: dict, metric) -> dict:
    """Each arm's ``metric`` over its seeds: values, mean and sample standard deviation.

    Args:
        runs: ``{arm: [record, ...]}``, one record (``run_experiment``'s dict) per seed.
        metric: a record key such as ``"test_accuracy"``, or a function of a record, such as
            ``lambda r: r["history"]["loss"][-1]``.

    Returns:
        ``{arm: {"values": [...], "mean": m, "std": s}}`` (``std`` is None for a single seed).
    """
    if not isinstance(runs, dict) or not all(isinstance(v, (list, tuple)) and v for v in runs.values()):
        raise ValueError(f"runs must be a dict of arm -> non-empty list of records, not {str(runs)[:80]!r}")
    get = metric if callable(metric) else (lambda r: r[metric])
    out = {}
    for arm, recs in runs.items():
        values = [float(get(r)) for r in recs]
        out[arm] = {"values": values, **mean_and_std(values)}
    return out


def mean_and_std(values) -> dict:
    """``{"mean": m, "std": s}`` of several seeds' values: ``s`` is the sample standard deviation (None for one value)."""
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else None}


def apart(a: dict, b: dict) -> bool:
    """Whether two arms of ``arm_stats`` differ by more than their seeds spread: |mean_a - mean_b| > std_a + std_b."""
    if a["std"] is None or b["std"] is None:
        raise ValueError("comparing arms needs at least two seeds in each")
    return abs(a["mean"] - b["mean"]) > a["std"] + b["std"]


def mean_std(stat: dict, fmt: str = "{:.1%}") -> str:
    """``"35.9% ± 2.1%"``: an arm's mean and sample standard deviation in ``fmt``."""
    return fmt.format(stat["mean"]) + ("" if stat["std"] is None else " ± " + fmt.format(stat["std"]))

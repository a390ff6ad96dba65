"""The reference runs: the full-data runs whose records the chapters read, declared in one list and worked
through by one command that can be stopped and started again.

    python -m vgglab reference --list                               # what is declared, and how far each run is
    nohup python -m vgglab reference > runs/reference.log 2>&1 &    # work through the list in the background

Each run writes into its own folder under ``book/results/``: ``run.json`` (its settings) and ``checkpoint.npz``
after every epoch while it trains, then ``test_predictions.npz`` and ``result.json`` when it ends. Git ignores
``run.json`` and the checkpoints, so committing ``book/results`` commits only finished records. The command skips
finished runs and resumes unfinished ones from their last epoch, so a run cut short (the machine stopped, the
process was killed) continues where it stopped the next time the command is given.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from vgglab.runtime import PRECISIONS

RESULTS_DIR = Path(__file__).resolve().parents[1] / "book" / "results"


@dataclass(frozen=True)
class ReferenceRun:
    """One run of a registered experiment: where its record goes (under ``book/results``) and how it is run."""

    folder: str
    experiment: str
    seed: int = 0
    profile: str = "gpu"  # gpu: every training image left after the validation split, width 1
    precision: str = "mixed_bfloat16"  # named, not "auto", so that a resume elsewhere keeps the same policy
    epochs: int | None = None  # None: the experiment's epochs for the profile
    train_size: int | None = None  # None: every training image the profile gives (45,000 for gpu)
    test_scales: tuple | None = None  # also evaluate densely at these test scales Q (the VGG paper's multi-scale test)

    def __post_init__(self):
        from vgglab.registry import get_experiment
        from vgglab.runtime import check_seed, get_profile

        if not isinstance(self.folder, str) or not self.folder or self.folder.startswith(("/", "..")):
            raise ValueError(f"folder must be a path inside book/results such as 'vgg16-full/seed-0', not {self.folder!r}")
        get_experiment(self.experiment).epochs_for(get_profile(self.profile))
        check_seed(self.seed)
        if self.precision not in PRECISIONS or self.precision == "auto":
            raise ValueError(f"precision must be one of {', '.join(p for p in PRECISIONS if p != 'auto')}, "
                             f"not {self.precision!r}")
        if self.test_scales is not None:
            from vgglab.dense_eval import scale_combos

            scale_combos(self.test_scales)
        for label in ("epochs", "train_size"):
            v = getattr(self, label)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{label} must be a positive integer or None, not {v!r}")


def _seeds(folder: str, experiment: str, seeds, **kw) -> tuple[ReferenceRun, ...]:
    return tuple(ReferenceRun(f"{folder}/seed-{s}", experiment, s, **kw) for s in seeds)


# In the order they run. VGG-16-BN's 60 epochs at width 1 take hours on two CPU cores and span several sittings of the
# queue; each record's train_seconds and history say how long its run took.
REFERENCE_RUNS: tuple[ReferenceRun, ...] = (
    *_seeds("speedrun94-full", "speedrun94", (0,)),
    # Does bf16 train as well as float32? The speed run on 10,000 images for 5 epochs, 3 seeds in each precision.
    *(ReferenceRun(f"precision/{p}/seed-{s}", "speedrun94", s, precision=p, epochs=5, train_size=10_000)
      for p in ("mixed_bfloat16", "float32") for s in (0, 1, 2)),
    # Choosing the epochs on the validation split: 10 epochs (airbench94's) reached 89.7% validation accuracy here.
    ReferenceRun("speedrun94-tuning/epochs-15/seed-0", "speedrun94", 0, epochs=15),
    *_seeds("speedrun94-full", "speedrun94", (1, 2)),
    *_seeds("vgg16-full", "vgg16", (0,)),
    # Where the port differed from airbench94 (registry.SPEEDRUN94_FIXES): two seeds, compared on the validation split
    # with speedrun94-full's three.
    *(ReferenceRun(f"speedrun94-tuning/fixes/seed-{s}", "speedrun94-fixes", s) for s in (0, 1)),
    # Chapter 04 at a budget where the paper's claim can show: a stage of three 3x3 convolutions against one 7x7, at
    # C = 64 (width 1) on all 45,000 training images for 15 epochs, 3 seeds each, the arms of one seed side by side.
    *(ReferenceRun(f"stack/{arm}/seed-{s}", f"stack-{arm}", s, epochs=15) for s in (0, 1, 2) for arm in ("3x3", "7x7")),
    # Chapter 15: airbench94 without its patch whitening, at full scale (10 epochs of 45,000 images), 3 seeds.
    *_seeds("speedrun94-no-whiten", "speedrun94-no-whiten", (0, 1, 2)),
    # Chapter 05: scale jittering against a fixed training scale, trained on all 45,000 images for 15 epochs at width 1
    # and tested densely at Q = 32, 48 and 64 with and without mirrored images, 3 seeds each.
    *(ReferenceRun(f"scale/{arm}/seed-{s}", f"vgg-a4-{arm}", s, epochs=15, test_scales=(32, 48, 64))
      for s in (0, 1, 2) for arm in ("s32", "jitter")),
    # Chapter 14: two more seeds of VGG-16-BN for the seed spread and the ensemble (each a few hours).
    *_seeds("vgg16-full", "vgg16", (1, 2)),
)


def state(run: ReferenceRun, root: str | Path = RESULTS_DIR) -> str:
    """``"done"`` (its result.json exists), ``"started"`` (a checkpoint or settings file exists) or ``"new"``."""
    folder = Path(root) / run.folder
    if (folder / "result.json").is_file():
        return "done"
    return "started" if (folder / "run.json").is_file() else "new"


def progress(run: ReferenceRun, root: str | Path = RESULTS_DIR) -> str:
    """One line on a run: its state, and for a finished run its test accuracy and training time."""
    folder = Path(root) / run.folder
    what = state(run, root)
    if what == "done":
        r = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        return (f"완료 · 테스트 정확도 {r['test_accuracy']:.2%} · 학습 {r['train_seconds'] / 60:.0f}분 · "
                f"{r.get('precision', 'float32')}")
    return {"started": "시작했으나 끝나지 않음 (다음 실행에서 이어 갑니다)", "new": "아직 시작 전"}[what]


def run_queue(runs=REFERENCE_RUNS, root: str | Path = RESULTS_DIR, *, only: str | None = None, source=None,
              log=print) -> list[dict]:
    """Run every unfinished run of ``runs`` in order (only those whose folder contains ``only``, if given),
    resuming any that had started; return the records of the runs this call finished."""
    from vgglab.experiments import run_experiment

    todo = [r for r in runs if (only is None or only in r.folder) and state(r, root) != "done"]
    if only is not None and not any(only in r.folder for r in runs):
        raise ValueError(f"no reference run's folder contains {only!r}; see python -m vgglab reference --list")
    log(f"기준 실행 {len(todo)}개가 남았습니다 ({Path(root)})")
    finished = []
    for i, run in enumerate(todo, start=1):
        log(f"[{i}/{len(todo)}] {run.folder}: {run.experiment} · 시드 {run.seed} · 프로파일 {run.profile} · "
            f"{run.precision} · {progress(run, root)}")
        t0 = time.perf_counter()
        record = run_experiment(run.experiment, profile=run.profile, epochs=run.epochs, seed=run.seed,
                                out=Path(root) / run.folder, resume=True, source=source, progress_every=60.0,
                                precision=run.precision, train_size=run.train_size, test_scales=run.test_scales, log=log)
        log(f"[{i}/{len(todo)}] {run.folder}: 끝 · 테스트 정확도 {record['test_accuracy']:.2%} · "
            f"이번 프로세스 {(time.perf_counter() - t0) / 60:.1f}분 · 학습 누적 {record['train_seconds'] / 60:.1f}분")
        finished.append(record)
    return finished

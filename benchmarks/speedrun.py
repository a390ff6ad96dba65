"""The speed run: time to the profile's target test accuracy, over several runs, with its ablations side by side.

    python benchmarks/speedrun.py --profile gpu --runs 5 --out book/results/speedrun-gpu
    python benchmarks/speedrun.py --profile cpu --runs 3 --experiments speedrun speedrun-no-whiten --out runs/sr

Every run is a fresh ``python -m vgglab run EXPERIMENT --seed S --out OUT/EXPERIMENT/seed-S`` process, so each
pays its own tracing and compiling; the experiments take turns (round robin) so that a noisy neighbour hits them
alike. A run's time is its training plus the final (test-time augmented) evaluation, from data in memory to the
last prediction, compile included; the compile time is also given on its own (the first epoch's time beyond the
median of the others). The table gives the median time over runs, the fraction of runs that reached the target
(``vgglab.registry.SPEEDRUN_TARGET``), and the median test accuracy with and without flip TTA. Records stay in
``--out`` (finished runs there are reused, not repeated, so an interrupted benchmark continues where it stopped).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vgglab import records, registry  # noqa: E402


def run_once(experiment: str, profile: str, seed: int, out: Path) -> dict:
    folder = out / experiment / f"seed-{seed}"
    if not (folder / "result.json").exists():
        cmd = [sys.executable, "-m", "vgglab", "run", experiment, "--profile", profile, "--seed", str(seed),
               "--out", str(folder), "--resume"]
        proc = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise SystemExit(f"{experiment} seed {seed} failed: {lines[-1] if lines else proc.returncode}")
    (record,) = records.load_records(folder)
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    p.add_argument("--runs", type=int, default=5, help="runs (seeds 0, 1, ...) per experiment")
    p.add_argument("--experiments", nargs="+", default=["speedrun"],
                   help=f"the speed run and any of its ablations: {', '.join(registry.SPEEDRUN_ABLATIONS)}")
    p.add_argument("--out", required=True, help="folder for the runs' records")
    args = p.parse_args(argv)
    unknown = [e for e in args.experiments if e != "speedrun" and e not in registry.SPEEDRUN_ABLATIONS]
    if unknown:
        p.error(f"unknown experiment {unknown[0]!r}; choose speedrun or one of {', '.join(registry.SPEEDRUN_ABLATIONS)}")
    if args.runs < 1:
        p.error(f"--runs must be at least 1, not {args.runs}")
    out = Path(args.out)
    runs: dict[str, list[dict]] = {e: [] for e in args.experiments}
    for seed in range(args.runs):
        for exp in args.experiments:
            rec = run_once(exp, args.profile, seed, out)
            runs[exp].append(rec)
            s = records.speedrun_summary(rec)
            print(f"  [{seed + 1}/{args.runs}] {exp}: {s['seconds']:.1f} s (compile {s['compile_seconds'] or 0:.1f} s), "
                  f"test {s['test_accuracy']:.2%}", flush=True)
    first = runs[args.experiments[0]][0]
    print(f"\nspeed run · profile {args.profile} · target {registry.SPEEDRUN_TARGET[args.profile]:.0%} · data {first['dataset']} "
          f"· backend {first['backend']} · device {first['device']} · keras {first['versions'].get('keras')}")
    print(records.speedrun_table(records.speedrun_rows(runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

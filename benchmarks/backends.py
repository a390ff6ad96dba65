"""Training throughput of one experiment on each Keras backend, measured side by side in one run.

    python benchmarks/backends.py --experiment vgg16 --profile smoke --backends tensorflow torch jax --repeats 3

Each run is a fresh ``python -m vgglab run`` subprocess with ``KERAS_BACKEND`` set; the backends take
turns (round robin) so that a noisy neighbour on a shared machine hits them alike. The table gives,
per backend, the median over repeats of the run's training images per second (the median over its
epochs after the first, or the only epoch's when there is one), and the ratio to the first backend.
A backend that is not installed is reported as such, not guessed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def run_once(backend: str, experiment: str, profile: str, epochs: int | None, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "vgglab", "run", experiment, "--profile", profile, "--seed", str(seed),
               "--out", tmp]
        if epochs:
            cmd += ["--epochs", str(epochs)]
        proc = subprocess.run(cmd, env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{backend}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return json.loads(Path(tmp, "result.json").read_text(encoding="utf-8"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="vgg16")
    p.add_argument("--profile", default="smoke")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--backends", nargs="+", default=["tensorflow", "torch", "jax"])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the raw records' summaries here")
    args = p.parse_args(argv)
    present = [b for b in args.backends if importlib.util.find_spec(MODULES[b])]
    for b in args.backends:
        if b not in present:
            print(f"{b}: not installed, skipped")
    runs: dict[str, list[dict]] = {b: [] for b in present}
    for r in range(args.repeats):
        for b in present:
            rec = run_once(b, args.experiment, args.profile, args.epochs, seed=0)
            runs[b].append(rec)
            print(f"  [{r + 1}/{args.repeats}] {b}: {rec['train_images_per_second']:.0f} img/s, "
                  f"test {rec['test_accuracy']:.1%}", flush=True)
    rows = []
    for b, recs in runs.items():
        ips = statistics.median(x["train_images_per_second"] for x in recs)
        first = statistics.median(x["history"]["images_per_second"][0] for x in recs)
        rows.append({"backend": b, "version": recs[0]["versions"].get(MODULES[b], "?"), "img_s": ips,
                     "first_epoch_img_s": first, "test_accuracy": [x["test_accuracy"] for x in recs],
                     "epochs": recs[0]["epochs"], "dataset": recs[0]["dataset"], "device": recs[0]["device"]})
    base = rows[0]["img_s"] if rows else 1
    print(f"\n{args.experiment} · profile {args.profile} · data {rows[0]['dataset'] if rows else '?'} · "
          f"device {rows[0]['device'] if rows else '?'} · repeats {args.repeats} · keras {runs[present[0]][0]['versions']['keras'] if rows else '?'}")
    print(f"{'backend':<12}{'version':<10}{'epochs':>7}{'img/s (median)':>16}{'first epoch':>13}{'ratio':>8}  test accuracy")
    for row in rows:
        accs = ", ".join(f"{a:.1%}" for a in row["test_accuracy"])
        print(f"{row['backend']:<12}{row['version']:<10}{row['epochs']:>7}{row['img_s']:>16,.0f}"
              f"{row['first_epoch_img_s']:>13,.0f}{row['img_s'] / base:>8.2f}  {accs}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

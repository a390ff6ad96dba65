"""Training throughput and model FLOPs utilisation (MFU) of VGG-16-BN and the speed-run net, over batch size,
precision and jit, beside the device's own matrix-multiply rate in each precision.

    KERAS_BACKEND=jax python benchmarks/throughput.py --batch-sizes 128 256 512 1024 --precisions float32 mixed_bfloat16
    python benchmarks/throughput.py --models vgg16 speedrun --batch-sizes 128 --jit off --steps 20   # on a CPU

Each setting builds the book's CIFAR-10 VGG-16-BN (``vgglab.registry.EXPERIMENTS["vgg16"]``'s model, without
its augmentation layers, at the given width) or the speed-run net (``vgglab.speedrun.speedrun_net``), compiles it
with the book's modern recipe and trains it on random
32x32 inputs that already sit on the device, so the figure is the model's training speed, not the input pipeline's.

Beside them, the same run times a 2048 x 2048 matrix product (``keras.ops.matmul``) in float32 and bfloat16 (the
dense arithmetic rate this device reaches from Keras), and gives each training setting's GFLOP/s as a fraction
of the matmul rate in its own precision ("of matmul"); on a CPU that is the measure to read, since no peak is known.
The first ``--warmup`` steps (compilation) are timed separately; then ``--repeats`` timed windows of ``--steps``
steps each, and the table gives their median. Settings run in round robin so that a noisy neighbour hits them alike.

MFU = images/s x training FLOPs per image / the device's peak. Training FLOPs per image are taken as three times
the forward FLOPs that ``vgglab.analysis.flops`` counts (forward, and backward for activations and weights): about
1.9 GFLOP for VGG-16-BN at width 1. The peak is ``--peak-tflops``, or a dense bf16 figure for a known GPU
(printed with the table); on a CPU no MFU is given unless a peak is named.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time

# dense bf16 tensor-core peaks, TFLOP/s, from the vendors' data sheets (no sparsity)
KNOWN_PEAKS = {"H100": 800.0, "H200": 800.0, "A100": 312.0, "L4": 121.0, "T4": 65.0}


def peak_for(device: str, given: float | None) -> tuple[float | None, str]:
    if given is not None:
        return given, "--peak-tflops"
    for key, value in KNOWN_PEAKS.items():
        if key in device:
            return value, f"{key} bf16 dense (about)"
    return None, "unknown device: pass --peak-tflops"


MODELS = ("vgg16", "speedrun")
MATMUL_N = 2048


def matmul_gflops(dtype: str, n: int = MATMUL_N, repeats: int = 5) -> float:
    """The median rate of an n x n matrix product in ``dtype`` (2 n^3 FLOPs each), from Keras on this device."""
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)
    a = ops.convert_to_tensor(rng.normal(size=(n, n)).astype("float32"), dtype=dtype)
    b = ops.convert_to_tensor(rng.normal(size=(n, n)).astype("float32"), dtype=dtype)
    ops.convert_to_numpy(ops.cast(ops.sum(ops.matmul(a, b)), "float32"))  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ops.convert_to_numpy(ops.cast(ops.sum(ops.matmul(a, b)), "float32"))  # waits for the product
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def build(model_name: str, width: float, jit: bool, batch: int, precision: str):
    import keras

    from vgglab import analysis
    from vgglab import train as T
    from vgglab.recipes import RECIPES
    from vgglab.models import vgg
    from vgglab.speedrun import speedrun_net

    keras.mixed_precision.set_global_policy(precision)
    if model_name == "speedrun":
        model = speedrun_net(width=width)
    else:
        model = vgg("D", input_shape=(32, 32, 3), num_classes=10, batch_norm=True, width=width, head="small",
                    dropout=0.5, initializer="he_normal", name="vgg16_bn")
    T.compile_model(model, RECIPES["modern"], steps=10_000)
    model.jit_compile = jit
    return model, 3 * analysis.flops(model)


def measure(model, batch: int, steps: int, warmup: int) -> dict:
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 10, size=batch * steps), 10)
    t0 = time.perf_counter()
    model.fit(x[: batch * warmup], y[: batch * warmup], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    return {"warmup_seconds": warm, "images_per_second": batch * steps / (time.perf_counter() - t0)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["vgg16"], choices=MODELS)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 512])
    p.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                   choices=["float32", "mixed_float16", "mixed_bfloat16"])
    p.add_argument("--jit", nargs="+", default=["on", "off"], choices=["on", "off"])
    p.add_argument("--steps", type=int, default=50, help="steps in one timed window")
    p.add_argument("--warmup", type=int, default=5, help="steps before timing (compilation)")
    p.add_argument("--repeats", type=int, default=3, help="timed windows per setting (median)")
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    for name in ("width", "steps", "warmup", "repeats"):
        if not getattr(args, name) > 0:
            p.error(f"--{name} must be positive, not {getattr(args, name)}")
    if any(b < 1 for b in args.batch_sizes):
        p.error(f"batch sizes must be positive, not {args.batch_sizes}")

    import keras

    from vgglab.runtime import device_name, versions

    device = device_name()
    peak, peak_source = peak_for(device, args.peak_tflops)
    matmul = {}
    for precision in args.precisions:
        dtype = "float32" if precision == "float32" else precision.split("_", 1)[1]
        if dtype not in matmul:
            matmul[dtype] = matmul_gflops(dtype)
            print(f"  matmul {MATMUL_N}x{MATMUL_N} {dtype}: {matmul[dtype]:,.0f} GFLOP/s", flush=True)
    settings = list(itertools.product(args.models, args.precisions, args.jit, args.batch_sizes))
    models, runs = {}, {s: [] for s in settings}
    for rep in range(args.repeats):
        for s in settings:
            model_name, precision, jit, batch = s
            if s not in models:
                keras.backend.clear_session()
                models[s] = build(model_name, args.width, jit == "on", batch, precision) + ({},)
            model, train_flops, first = models[s]
            try:
                m = measure(model, batch, args.steps, args.warmup if not first else 1)
            except Exception as e:  # an out-of-memory batch, or jit unsupported on this backend
                m = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"}
            first.setdefault("warmup_seconds", m.get("warmup_seconds"))
            runs[s].append(m)
            print(f"  [{rep + 1}/{args.repeats}] {model_name} {precision} jit {jit} batch {batch}: "
                  f"{m.get('images_per_second', 0):,.0f} img/s" if "error" not in m else f"  {s}: {m['error']}",
                  flush=True)
        keras.mixed_precision.set_global_policy("float32")

    rows = []
    for s in settings:
        ok = [m["images_per_second"] for m in runs[s] if "images_per_second" in m]
        ips = statistics.median(ok) if ok else None
        train_flops = models[s][1]
        mfu = ips * train_flops / (peak * 1e12) if ips and peak else None
        gflops = ips * train_flops / 1e9 if ips else None
        dtype = "float32" if s[1] == "float32" else s[1].split("_", 1)[1]
        rows.append({"model": s[0], "precision": s[1], "jit": s[2], "batch": s[3], "images_per_second": ips,
                     "compile_seconds": models[s][2].get("warmup_seconds"), "train_gflop_per_image": train_flops / 1e9,
                     "gflops": gflops, "matmul_gflops": matmul[dtype],
                     "of_matmul": gflops / matmul[dtype] if gflops else None,
                     "mfu": mfu, "error": next((m["error"] for m in runs[s] if "error" in m), None)})
    v = versions()
    print(f"\nwidth x{args.width} · 32x32 · backend {keras.backend.backend()} · device {device} · "
          f"{', '.join(f'{k} {x}' for k, x in v.items())}")
    print(f"training FLOPs per image = 3 x forward · peak {peak or '-'} TFLOP/s ({peak_source}) · median of "
          f"{args.repeats} windows of {args.steps} steps · matmul {MATMUL_N}x{MATMUL_N}: "
          + ", ".join(f"{k} {x:,.0f} GFLOP/s" for k, x in matmul.items()))
    print(f"{'model':<10}{'precision':<16}{'jit':<5}{'batch':>6}{'GFLOP/img':>10}{'img/s':>8}{'GFLOP/s':>9}"
          f"{'of matmul':>11}{'MFU':>7}{'compile s':>11}")
    for r in rows:
        if r["images_per_second"] is None:
            print(f"{r['model']:<10}{r['precision']:<16}{r['jit']:<5}{r['batch']:>6}  {r['error']}")
            continue
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(f"{r['model']:<10}{r['precision']:<16}{r['jit']:<5}{r['batch']:>6}{r['train_gflop_per_image']:>10.3f}"
              f"{r['images_per_second']:>8,.0f}{r['gflops']:>9,.0f}{r['of_matmul']:>11.0%}{mfu:>7}"
              f"{r['compile_seconds']:>11.1f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"device": device, "backend": keras.backend.backend(), "versions": v, "width": args.width,
                       "peak_tflops": peak, "matmul_gflops": matmul, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())

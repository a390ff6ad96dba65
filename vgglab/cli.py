"""``python -m vgglab``: run, list and info.

Errors print one line and exit with status 2, without a traceback; every argument is checked before
anything is written, and records and checkpoints are written atomically, so nothing half-done is left.
"""

from __future__ import annotations

import argparse
import os
import sys


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error (argparse would print the usage first)."""

    def error(self, message):
        self.exit(2, f"vgglab: 오류: {message} ({self.prog} --help 참고)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m vgglab", description="vgglab: VGG와 CNN 실험을 실행합니다.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="이름 붙은 실험을 실행합니다")
    run.add_argument("experiment", help="실험 이름 (python -m vgglab list 참고), 또는 기법 사다리 전체를 돌리는 ladder")
    run.add_argument("--profile", choices=["smoke", "cpu", "gpu"], default=None,
                     help="실행 규모 (기본: VGGLAB_PROFILE, 없으면 GPU가 있으면 gpu, 아니면 cpu)")
    run.add_argument("--epochs", type=int, default=None, help="에포크 수 (기본: 실험과 프로파일이 정함)")
    run.add_argument("--seed", type=int, default=0, help="난수 시드 (기본 0)")
    run.add_argument("--out", default=None, help="체크포인트와 result.json을 쓸 폴더")
    run.add_argument("--resume", action="store_true", help="--out 폴더의 체크포인트에서 이어서 학습")
    run.add_argument("--train-size", type=int, default=None, metavar="N",
                     help="학습 이미지 수 (클래스 균형 부분집합; 기본: 실험과 프로파일이 정함)")
    run.add_argument("--data", default=None, help="CIFAR-10 경로 (기본: VGGLAB_CIFAR10, 없으면 공식 다운로드)")
    run.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"], default="float32",
                     help="계산 정밀도 (기본 float32; auto: AVX512_BF16·AMX CPU와 최근 GPU에서 bfloat16, T4·V100에서 float16)")
    ref = sub.add_parser("reference", help="책이 읽는 전체 데이터 기준 실행을 차례로 (끝난 것은 건너뛰고, 끊긴 것은 이어서)")
    ref.add_argument("--list", action="store_true", help="선언된 기준 실행과 각각의 진행 상황만 보여 줍니다")
    ref.add_argument("--only", default=None, metavar="TEXT", help="폴더 이름에 TEXT가 들어간 실행만")
    ref.add_argument("--data", default=None, help="CIFAR-10 경로 (기본: VGGLAB_CIFAR10, 없으면 공식 다운로드)")
    sub.add_parser("list", help="실험과 프로파일 목록")
    sub.add_parser("info", help="버전, 백엔드, 장치, 데이터")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return _dispatch(args)
    except (ValueError, TypeError, OSError) as e:  # OSError: a full disk, a folder that vanished mid-run, ...
        print(f"vgglab: 오류: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vgglab: 중단되었습니다. 마지막으로 끝난 에포크의 체크포인트는 남아 있습니다 (--resume).", file=sys.stderr)
        return 130


def _one_line(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, (ValueError, TypeError, FileNotFoundError)) else f"{type(e).__name__}: {text}"


def _dispatch(args) -> int:
    from vgglab import experiments, registry, runtime
    from vgglab.data import describe_source

    runtime.quiet_tensorflow()

    if args.command == "list":
        print("실험:")
        for e in registry.EXPERIMENTS.values():
            eps = ", ".join(f"{k} {v}" for k, v in e.epochs.items())
            print(f"  {e.name:<12} {e.title} (에포크: {eps}; 레시피 {e.recipe.name})")
        print("  ladder       기법 사다리: ladder-01 ~ ladder-10을 시드 여러 개로 돌리고 앙상블까지 한 표로")
        print("프로파일:")
        for p in runtime.PROFILES.values():
            print(f"  {p.name:<6} 학습 {p.train_size or '전체'} · 검증 {p.val_size} · 테스트 {p.test_size or '전체'}"
                  f" · 폭 x{p.width} · 배치 {p.batch_size} · {p.description}")
        return 0
    if args.command == "info":
        for k, v in runtime.versions().items():
            print(f"{k:<10} {v}")
        import keras

        print(f"{'backend':<10} {keras.backend.backend()}")
        print(f"{'device':<10} {runtime.device_name()}")
        print(f"{'profile':<10} {runtime.get_profile().name}")
        print(f"{'data':<10} {describe_source()}")
        if os.environ.get("VGGLAB_CIFAR10"):
            print(f"{'source':<10} {os.environ['VGGLAB_CIFAR10']}")
        return 0
    if args.command == "reference":
        return _run_reference(args)
    runtime.check_seed(args.seed, "--seed")
    if args.resume and not args.out:
        raise ValueError("--resume needs --out DIR (the folder that holds the checkpoint)")
    if args.data not in (None, "synthetic") and not os.path.exists(args.data):
        raise FileNotFoundError(f"CIFAR-10 source not found: {args.data!r}")
    if args.train_size is not None and args.train_size < 1:
        raise ValueError(f"--train-size must be a positive number of training images, not {args.train_size}")
    if args.experiment == "ladder":
        return _run_ladder(args)
    registry.get_experiment(args.experiment)  # fail fast, before loading data
    record = experiments.run_experiment(args.experiment, profile=args.profile, epochs=args.epochs, seed=args.seed,
                                        out=args.out, resume=args.resume, source=args.data, progress_every=30.0,
                                        train_size=args.train_size, precision=args.precision,
                                        log=lambda s: print(s, flush=True))
    where = f" → {os.path.join(args.out, 'result.json')}" if args.out else ""
    print(f"완료: {record['experiment']} · 테스트 정확도 {record['test_accuracy']:.2%} · {record['precision']} · "
          f"{record['train_images_per_second']:,.0f} img/s · {record['wall_seconds']:.0f}초{where}")
    return 0


def _run_ladder(args) -> int:
    """``run ladder``: every ladder step for several seeds (``--seed`` is the first), then the table."""
    from vgglab import ladder, registry, runtime

    if args.epochs is not None:
        raise ValueError("the ladder sets its epochs per profile (vgglab.registry.LADDER_EPOCHS); leave out --epochs")
    if args.resume:
        raise ValueError("the ladder cannot resume; run it again with a new --out directory")
    if args.train_size is not None:
        raise ValueError("the ladder sets its training images per profile (vgglab.registry.LADDER_TRAIN_SIZE); "
                         "leave out --train-size")
    prof = runtime.get_profile(args.profile)
    seeds = tuple(args.seed + i for i in range(len(registry.LADDER_SEEDS[prof.name])))
    result = ladder.run_ladder(prof, seeds=seeds, out=args.out, source=args.data,
                               log=lambda s: print(s, flush=True))
    print(result.table())
    if args.out:
        print(f"기록: {os.path.join(args.out, 'ladder.json')}")
    return 0


def _run_reference(args) -> int:
    """``reference``: list the reference runs, or work through the unfinished ones."""
    from vgglab import reference
    from vgglab.tables import text_table

    if args.data not in (None, "synthetic") and not os.path.exists(args.data):
        raise FileNotFoundError(f"CIFAR-10 source not found: {args.data!r}")
    if args.list:
        print(text_table(["폴더", "실험", "시드", "프로파일", "에포크", "정밀도", "진행"],
                         [[run.folder, run.experiment, run.seed, run.profile, run.epochs or "실험의 값", run.precision,
                           reference.progress(run)] for run in reference.REFERENCE_RUNS], right=[2, 4]))
        return 0
    reference.run_queue(only=args.only, source=args.data, log=lambda s: print(s, flush=True))
    return 0

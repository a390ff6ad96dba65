"""Execute chapters in place so that their committed outputs come from the code as it is now.

    VGGLAB_PROFILE=cpu VGGLAB_CIFAR10=../shared/data/cifar10-jpg.tar.gz python scripts/run_chapters.py [book/NN_*.ipynb ...]

Each notebook runs in its own kernel with book/ as the working directory; the wall time of each is
printed and written to book/results/chapter_times.json together with the profile, data and device. A chapter whose
cell fails is left as it was, the error is printed and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
# TensorFlow's C++ log lines (absl's start-up notice, grappler's "remapper failed" and the like) reach stderr
# whatever TF_CPP_MIN_LOG_LEVEL says; they are about the library, not the lesson, so they are left out.
CPP_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} \d\d:\d\d:\d\d)")


def drop_library_logs(nb) -> int:
    """Remove TensorFlow's C++ log lines from the notebook's stderr outputs; return how many lines went."""
    dropped = 0
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines = out["text"].splitlines(keepends=True)
                rest = [line for line in lines if not CPP_LOG.match(line)]
                dropped += len(lines) - len(rest)
                if not rest:
                    continue
                out["text"] = "".join(rest)
            kept.append(out)
        if "outputs" in cell:
            cell["outputs"] = kept
    return dropped


def main(paths: list[str]) -> int:
    notebooks = [Path(p).resolve() for p in paths] or sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    times_file = ROOT / "book" / "results" / "chapter_times.json"
    times = json.loads(times_file.read_text(encoding="utf-8")) if times_file.exists() else {}
    import vgglab
    from vgglab.runtime import device_name, get_profile, versions
    from vgglab.data import describe_source

    failed = []
    for nb_path in notebooks:
        nb = nbformat.read(nb_path, as_version=4)
        client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}})
        t0 = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError as e:  # the notebook stays as it was; the others still run
            failed.append(nb_path.name)
            print(f"{nb_path.name}: FAILED after {time.perf_counter() - t0:.0f} s\n{str(e)[-3000:]}", flush=True)
            continue
        seconds = time.perf_counter() - t0
        drop_library_logs(nb)
        nbformat.write(nb, nb_path)
        times[nb_path.name] = {"seconds": round(seconds, 1), "profile": get_profile().name, "data": describe_source(),
                               "device": device_name(), "versions": versions(),
                               "date": time.strftime("%Y-%m-%d", time.gmtime())}
        times_file.parent.mkdir(parents=True, exist_ok=True)
        times_file.write_text(json.dumps(times, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{nb_path.name}: {seconds:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

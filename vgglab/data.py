"""CIFAR-10 from every source, decoded once and cached; subsets, splits and normalisation.

Sources, in the order ``load_cifar10`` looks for them:

1. the ``source`` argument, else the ``VGGLAB_CIFAR10`` environment variable: a folder or ``.tar.gz``
   holding class folders (``train/<class>/*.jpg|png``, ``test/<class>/...``), or the official
   ``cifar-10-batches-py`` folder or ``cifar-10-python.tar.gz``; ``"synthetic"`` gives the small
   generated set used by the tests;
2. the official download through ``keras.datasets.cifar10``.

The dataset's name travels with the arrays: ``cifar10`` (official, or lossless PNG class folders),
``cifar10-jpeg`` (JPEG class folders, such as the offline copy) or ``synthetic``.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import sys
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgglab.files import atomic_write
from vgglab.runtime import Profile, check_seed, get_profile

CLASS_NAMES_EN = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CLASS_NAMES_KO = ("비행기", "자동차", "새", "고양이", "사슴", "개", "개구리", "말", "배", "트럭")
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)
ENV_SOURCE = "VGGLAB_CIFAR10"
ENV_CACHE = "VGGLAB_CACHE"
_CACHE_FORMAT = 1
_IMAGE_RE = re.compile(r"(?:^|/)(train|test)/([^/]+)/([^/]+\.(?:jpe?g|png))$", re.IGNORECASE)
_BATCH_RE = re.compile(r"(?:^|/)(data_batch_[1-5]|test_batch)$")


class DataUnavailableError(FileNotFoundError):
    """No CIFAR-10 could be read from the requested source."""


@dataclass(frozen=True, repr=False)
class CIFAR10Data:
    """Train and test arrays (uint8 NHWC images, int64 labels) with the dataset's name and source."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str

    def __repr__(self) -> str:
        shown = self.source if self.source in ("synthetic", "keras") else Path(self.source).name  # not the folders
        return (f"CIFAR10Data(name={self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"source={shown!r})")

    def subset(self, train_size: int | None = None, test_size: int | None = None, seed: int = 0) -> "CIFAR10Data":
        """A class-balanced subset; ``None`` keeps a split whole."""
        tr = slice(None) if train_size is None else stratified_indices(self.y_train, train_size, seed)
        te = slice(None) if test_size is None else stratified_indices(self.y_test, test_size, seed)
        return CIFAR10Data(self.x_train[tr], self.y_train[tr], self.x_test[te], self.y_test[te], self.name, self.source)


# ----------------------------------------------------------------------------------------------
# Loading


def load_cifar10(source: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                 verbose: bool = True) -> CIFAR10Data:
    """Load CIFAR-10 from ``source``, ``$VGGLAB_CIFAR10`` or the official Keras download.

    Decoded arrays are cached under ``cache_dir`` (default ``$VGGLAB_CACHE`` or ``~/.cache/vgglab``),
    keyed by the source's content; a cache that fails its checksum is rebuilt, not trusted.

    Args:
        source: a folder or ``.tar.gz`` of class folders (``train/<class>/*.jpg``), the official
            ``cifar-10-batches-py`` folder or ``cifar-10-python.tar.gz``; None: ``$VGGLAB_CIFAR10``, else the download.
        cache_dir: where decoded arrays are kept.
        verbose: print one line while decoding for the first time.

    Returns:
        A ``CIFAR10Data``: uint8 images (N, 32, 32, 3), integer labels, and the data set's ``name`` (``cifar10``, or
        ``cifar10-jpeg`` for a JPEG re-encoding) and ``source``.
    """
    if source is None:
        source = os.environ.get(ENV_SOURCE) or None
    _check_path(cache_dir, "cache_dir", optional=True)
    if source is None:
        return _load_keras_download()
    _check_path(source, "source")
    if str(source) == "synthetic":
        return synthetic_cifar10()
    path = Path(source).expanduser()
    if not path.exists():
        raise DataUnavailableError(f"CIFAR-10 source not found: {str(path)!r} "
                                   f"(expected a folder or .tar.gz of class folders, or cifar-10-python.tar.gz)")
    cache_file = _cache_file(Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(),
                             content_key(path))
    cached = _read_cache(cache_file, str(path))
    if cached is not None:
        return cached
    if verbose:
        print(f"CIFAR-10 디코딩 중: {path} (한 번만 합니다; 이후에는 캐시를 읽습니다)", flush=True)
    data = _decode(path)
    _write_cache(cache_file, data)
    return data


def describe_source(source: str | os.PathLike | None = None) -> str:
    """One short phrase naming the data a load would use, without decoding it: the data set and its file's name
    (``cifar10-jpeg (cifar10-jpg.tar.gz)``), not the folder it sits in."""
    source = source if source is not None else os.environ.get(ENV_SOURCE) or None
    _check_path(source, "source", optional=True)
    if source is None:
        return "cifar10 (Keras 공식 다운로드)"
    if str(source) == "synthetic":
        return "synthetic (합성 데이터)"
    path = Path(source).expanduser()
    if not path.exists():
        return f"없음: {path}"
    return f"{_guess_name(path)} ({path.name})"


def _check_path(value, label: str, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, (str, os.PathLike)):
        what = "a path or 'synthetic'" if label == "source" else "a path"
        raise TypeError(f"{label} must be {what}, not {type(value).__name__} {value!r}")
    if not str(value):  # Path("") is the current folder, which would be read (and hashed) whole
        raise ValueError(f"{label} must not be empty, not {str(value)!r}")


def _load_keras_download() -> CIFAR10Data:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as e:  # no network, a broken download
        raise DataUnavailableError(
            f"the official CIFAR-10 download failed ({type(e).__name__}: {e}); set {ENV_SOURCE} to a local "
            "folder or .tar.gz of class folders, or to cifar-10-python.tar.gz") from None
    return CIFAR10Data(x_train, y_train.reshape(-1).astype(np.int64), x_test, y_test.reshape(-1).astype(np.int64),
                       "cifar10", "keras.datasets.cifar10")


def _guess_name(path: Path) -> str:
    """cifar10 for the official batches or PNG folders, cifar10-jpeg for JPEG folders."""
    for name in _list_names(path, first_only=True):
        if _BATCH_RE.search(name):
            return "cifar10"
        if _IMAGE_RE.search(name):
            return "cifar10" if name.lower().endswith(".png") else "cifar10-jpeg"
    return "cifar10"


def _list_names(path: Path, first_only: bool = False):
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                yield Path(root, f).relative_to(path).as_posix()
                if first_only:
                    return
    else:
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.isfile():
                        yield member.name
                        if first_only and (_IMAGE_RE.search(member.name) or _BATCH_RE.search(member.name)):
                            return
        except (tarfile.TarError, EOFError, OSError, zlib.error):
            return


def _decode(path: Path) -> CIFAR10Data:
    try:
        if path.is_dir():
            entries = ((rel, (path / rel).read_bytes) for rel in _list_names(path))
            return _from_entries(entries, str(path))
        if not tarfile.is_tarfile(path):
            raise ValueError(f"{str(path)!r} is neither a folder nor a tar archive of CIFAR-10")
        with tarfile.open(path, "r:*") as tar:
            entries = ((m.name, _reader(tar, m)) for m in tar if m.isfile())
            return _from_entries(entries, str(path))
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise ValueError(f"corrupt or truncated archive {str(path)!r}: {type(e).__name__}: {e}") from None


def _reader(tar: tarfile.TarFile, member: tarfile.TarInfo):
    return lambda: tar.extractfile(member).read()


def _from_entries(entries, source: str) -> CIFAR10Data:
    """Build arrays from (relative name, read-bytes callable) pairs of either layout."""
    images: dict[str, list] = {"train": [], "test": []}
    batches: dict[str, bytes] = {}
    for name, read in entries:
        m = _IMAGE_RE.search(name)
        if m:
            split, cls, fname = m.groups()
            images[split].append((cls, fname, name, read()))
            continue
        b = _BATCH_RE.search(name)
        if b:
            batches[b.group(1)] = read()
    if batches:
        return _from_batches(batches, source)
    if not images["train"] and not images["test"]:
        raise ValueError(f"no CIFAR-10 images in {source!r}: expected train/<class>/*.jpg|png and "
                         f"test/<class>/*.jpg|png, or the official cifar-10-batches-py files")
    arrays, jpeg = {}, False
    for split in ("train", "test"):
        found = sorted({cls for cls, *_ in images[split]})
        if found != sorted(CLASS_NAMES_EN):
            raise ValueError(f"wrong folder layout in {source!r}: {split}/ must hold the 10 class folders "
                             f"{', '.join(CLASS_NAMES_EN)}; found {found or 'none'}")
        items = sorted(images[split], key=lambda t: (CLASS_NAMES_EN.index(t[0]), t[1]))
        x = np.empty((len(items), *IMAGE_SHAPE), np.uint8)
        for i, (_, fname, name, raw) in enumerate(items):
            x[i] = _decode_image(raw, name, source)
            jpeg = jpeg or not fname.lower().endswith(".png")
        y = np.array([CLASS_NAMES_EN.index(cls) for cls, *_ in items], np.int64)
        arrays[split] = (x, y)
    name = "cifar10-jpeg" if jpeg else "cifar10"
    return CIFAR10Data(*arrays["train"], *arrays["test"], name, source)


def _decode_image(raw: bytes, name: str, source: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as im:
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"undecodable image {name!r} in {source!r}: {e}") from None
    if arr.shape != IMAGE_SHAPE:
        raise ValueError(f"image {name!r} in {source!r} is {arr.shape[1]}x{arr.shape[0]}; CIFAR-10 images are 32x32")
    return arr


# The official batches are pickles of a dict of bytes, lists and NumPy arrays (and scalars); a pickle can name any callable,
# so only the globals that NumPy arrays need (old and new NumPy, protocols 2 to 5) may be loaded.
_BATCH_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
                  ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                  ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _BATCH_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays, "
                                         "lists and bytes")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # pickled by NumPy 1, loaded by NumPy 2
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def _from_batches(batches: dict[str, bytes], source: str) -> CIFAR10Data:
    needed = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [b for b in needed if b not in batches]
    if missing:
        raise ValueError(f"official CIFAR-10 batches in {source!r} are incomplete: missing {', '.join(missing)}")
    parts = {}
    for name in needed:
        try:
            d = _BatchUnpickler(io.BytesIO(batches[name]), encoding="bytes").load()
            x = np.asarray(d[b"data"], np.uint8)
            y = np.asarray(d[b"labels"], np.int64)
        except Exception as e:
            raise ValueError(f"corrupt CIFAR-10 batch {name!r} in {source!r}: {type(e).__name__}: {e}") from None
        if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y) or (len(y) and (y.min() < 0 or y.max() > 9)):
            raise ValueError(f"CIFAR-10 batch {name!r} in {source!r} has data {x.shape} and labels {y.shape}; "
                             "expected (N, 3072) uint8 and N labels in 0..9")
        parts[name] = (x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y)
    x_train = np.concatenate([parts[n][0] for n in needed[:5]])
    y_train = np.concatenate([parts[n][1] for n in needed[:5]])
    return CIFAR10Data(x_train, y_train, *parts["test_batch"], "cifar10", source)


# ----------------------------------------------------------------------------------------------
# Cache


def content_key(path: Path) -> str:
    """SHA-256 of the source's bytes (for a folder: of every file's relative name and bytes)."""
    h = hashlib.sha256(f"vgglab-cache-{_CACHE_FORMAT}".encode())
    if path.is_dir():
        for rel in _list_names(path):
            h.update(rel.encode())
            h.update((path / rel).read_bytes())
    else:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "vgglab")


def _array_digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _cache_file(cache: Path, key: str) -> Path:
    return cache / f"cifar10-{key[:24]}.npz"


def _read_cache(f: Path, source: str) -> CIFAR10Data | None:
    if not f.exists():
        return None
    try:
        with np.load(f, allow_pickle=False) as z:
            arrays = [z[k] for k in ("x_train", "y_train", "x_test", "y_test")]
            name, digest = str(z["name"]), str(z["digest"])
        if digest != _array_digest(arrays):
            raise ValueError("checksum mismatch")
    except Exception as e:
        print(f"경고: 손상된 캐시 {f} 를 버리고 다시 만듭니다 ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    return CIFAR10Data(*arrays, name, source)


def _write_cache(f: Path, data: CIFAR10Data) -> None:
    """Write atomically (temporary file, then rename); an unwritable cache only costs time."""
    arrays = (data.x_train, data.y_train, data.x_test, data.y_test)
    try:
        atomic_write(f, lambda out: np.savez(out, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
                                             y_test=data.y_test, name=np.array(data.name),
                                             digest=np.array(_array_digest(arrays))))
    except (OSError, ValueError) as e:
        print(f"경고: 캐시를 쓸 수 없어 건너뜁니다 ({f.parent}: {e})", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# Synthetic data for tests and for the smoke profile's fallback


def synthetic_cifar10(n_train: int = 2_000, n_test: int = 500, seed: int = 0) -> CIFAR10Data:
    """A deterministic, learnable 10-class set of 32x32 RGB images (a coloured stripe pattern per class)."""
    for label, n in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < NUM_CLASSES:
            raise ValueError(f"{label} must be an integer of at least {NUM_CLASSES}, not {n!r}")
    rng = np.random.default_rng(check_seed(seed))
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    colours = rng.uniform(0.2, 0.9, size=(NUM_CLASSES, 3)).astype(np.float32)

    def make(n):
        y = np.arange(n) % NUM_CLASSES
        rng.shuffle(y)
        angle = y * np.pi / NUM_CLASSES
        phase = rng.uniform(0, 2 * np.pi, size=n)
        wave = np.sin((np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy) * 0.6
                      + phase[:, None, None])
        img = colours[y][:, None, None, :] * (0.6 + 0.4 * wave[..., None])
        img += rng.normal(0, 0.08, size=img.shape)
        return (np.clip(img, 0, 1) * 255).astype(np.uint8), y.astype(np.int64)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return CIFAR10Data(x_train, y_train, x_test, y_test, "synthetic", f"synthetic(seed={seed})")


# ----------------------------------------------------------------------------------------------
# Subsets, splits and normalisation


def _check_labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got shape {y.shape} and dtype {y.dtype}")
    return y


def stratified_indices(y, n: int, seed: int = 0) -> np.ndarray:
    """``n`` indices into ``y`` with the classes as balanced as possible, in a seeded order."""
    y = _check_labels(y)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(y):
        raise ValueError(f"subset size must be an integer from 1 to {len(y)}, not {n!r}")
    rng = np.random.default_rng(check_seed(seed))
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    rounds = max(len(p) for p in per_class)
    order = [p[i] for i in range(rounds) for p in per_class if i < len(p)]  # round-robin over classes
    return np.sort(np.array(order[:n], np.int64))


def train_val_split(x, y, val_size: int, seed: int = 0):
    """Split off a class-balanced validation set: ``(x_train, y_train), (x_val, y_val)``."""
    y = _check_labels(y)
    if not hasattr(x, "__len__") or np.ndim(x) == 0:
        raise TypeError(f"x must be an array of images, not {type(x).__name__} {x!r}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels")
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)) or not 0 <= val_size < len(y):
        raise ValueError(f"val_size must be an integer from 0 to {len(y) - 1}, not {val_size!r}")
    if val_size == 0:
        return (x, y), (x[:0], y[:0])
    val = stratified_indices(y, val_size, seed)
    mask = np.ones(len(y), bool)
    mask[val] = False
    return (x[mask], y[mask]), (x[val], y[val])


NORMALIZATIONS = ("raw", "unit", "minus_one_one", "standardize")


def channel_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation on the 0-1 scale."""
    x = _check_images(x)
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
    return flat.mean(0).astype(np.float32), flat.std(0).astype(np.float32)


def normalize(x, method: str = "minus_one_one", stats: tuple | None = None) -> np.ndarray:
    """uint8 images to float32.

    - ``raw``: the pixel values themselves, 0-255, as float32 (to show what normalising does);
    - ``unit``: x / 255, in [0, 1];
    - ``minus_one_one``: centre and scale, x / 127.5 - 1, in [-1, 1];
    - ``standardize``: (x / 255 - mean) / std per channel, with ``stats=(mean, std)`` from the
      *training* images (``channel_stats``).
    """
    x = _check_images(x)
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {method!r}; choose one of {', '.join(NORMALIZATIONS)}")
    if method == "raw":
        return x.astype(np.float32)
    if method == "unit":
        return x.astype(np.float32) / 255.0
    if method == "minus_one_one":
        return x.astype(np.float32) / 127.5 - 1.0
    if stats is None:
        raise ValueError("standardize needs stats=(mean, std) from the training images; see channel_stats()")
    mean, std = (np.asarray(s, np.float32).reshape(-1) for s in stats)
    if mean.shape != (x.shape[-1],) or std.shape != (x.shape[-1],) or not np.all(std > 0) \
            or not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)):
        raise ValueError(f"stats must be two arrays of {x.shape[-1]} finite values with positive std, got {stats!r}")
    return (x.astype(np.float32) / 255.0 - mean) / std


def _check_images(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"images must be uint8 of shape (N, H, W, 3), got dtype {x.dtype} and shape {x.shape}")
    return x


def load_for_profile(profile: "str | Profile", source=None, log=print) -> CIFAR10Data:
    """CIFAR-10 for a profile. Only ``smoke`` may fall back to synthetic data, and it says so loudly.

    Args:
        profile: ``"smoke"``, ``"cpu"``, ``"gpu"`` or a ``Profile``.
        source: as for ``vgglab.load_cifar10``.
        log: where the fallback warning goes.

    Returns:
        The whole ``CIFAR10Data``; ``prepare`` and ``run_experiment`` take the profile's subsets from it.
    """
    profile = get_profile(profile)
    try:
        return load_cifar10(source)
    except DataUnavailableError as e:
        if not profile.allow_synthetic:
            raise
        log("!" * 72)
        log(f"!! 경고: CIFAR-10을 읽을 수 없어 합성 데이터(synthetic)로 대신합니다. ({e})")
        log("!! 이 결과는 CIFAR-10의 결과가 아닙니다. VGGLAB_CIFAR10을 설정하세요.")
        log("!" * 72)
        return synthetic_cifar10(n_train=2_000, n_test=1_000)

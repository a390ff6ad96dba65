import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from vgglab.data import CLASS_NAMES_EN


def _png(rgb) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(rgb) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture
def tiny_images():
    """Two train and one test image per class, with labels readable from the pixels (value = 20 * label)."""
    files = {}
    for split, n in (("train", 2), ("test", 1)):
        for c, name in enumerate(CLASS_NAMES_EN):
            for i in range(n):
                files[f"{split}/{name}/{i:04d}.png"] = np.full((32, 32, 3), 20 * c + i, np.uint8)
    return files


def write_folder(root, files, encode=_png):
    for rel, rgb in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(encode(rgb) if isinstance(rgb, np.ndarray) else rgb)
    return root


def write_tar(path, files, encode=_png, prefix=""):
    with tarfile.open(path, "w:gz") as tar:
        for rel, rgb in files.items():
            raw = encode(rgb) if isinstance(rgb, np.ndarray) else rgb
            info = tarfile.TarInfo(prefix + rel)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets its own cache and no data source from the environment."""
    monkeypatch.setenv("VGGLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VGGLAB_CIFAR10", raising=False)
    monkeypatch.delenv("VGGLAB_PROFILE", raising=False)

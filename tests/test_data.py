import os
import pickle
import tarfile

import numpy as np
import pytest

from tests.conftest import _jpeg, write_folder, write_tar
from vgglab import data as D


def _check_tiny(d, name):
    assert d.name == name
    assert d.x_train.shape == (20, 32, 32, 3) and d.x_train.dtype == np.uint8
    assert d.x_test.shape == (10, 32, 32, 3)
    assert d.y_train.dtype == np.int64
    # folder index = official label: the pixel value encodes the class
    assert np.array_equal(d.x_train[:, 0, 0, 0] // 20, d.y_train)
    assert np.array_equal(d.y_test, np.arange(10))


def test_folder_of_png_is_lossless_cifar10(tmp_path, tiny_images):
    d = D.load_cifar10(write_folder(tmp_path / "png", tiny_images))
    _check_tiny(d, "cifar10")


def test_tar_of_jpeg_is_named_cifar10_jpeg(tmp_path, tiny_images):
    files = {k.replace(".png", ".jpg"): v for k, v in tiny_images.items()}
    path = write_tar(tmp_path / "c.tar.gz", files, encode=_jpeg, prefix="cifar10/")
    d = D.load_cifar10(path)
    assert d.name == "cifar10-jpeg"
    assert np.array_equal(d.y_test, np.arange(10))
    assert np.array_equal(np.round(d.x_train[:, 0, 0, 0] / 20), d.y_train)  # lossy, within a few levels


def test_environment_variable_names_the_source(tmp_path, tiny_images, monkeypatch):
    monkeypatch.setenv("VGGLAB_CIFAR10", str(write_folder(tmp_path / "png", tiny_images)))
    _check_tiny(D.load_cifar10(), "cifar10")
    assert D.describe_source() == "cifar10 (png)"  # the data set and its file's name, not the folders above it
    assert str(tmp_path) not in D.describe_source()
    assert "source='png'" in repr(D.load_cifar10()) and str(tmp_path) not in repr(D.load_cifar10())


def _official_batches(root):
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        y = list(rng.integers(0, 10, 4))
        x = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        (root / name).write_bytes(pickle.dumps({b"data": x, b"labels": y}))
    return root


def test_official_python_batches_folder_and_tar(tmp_path):
    folder = _official_batches(tmp_path / "cifar-10-batches-py")
    d = D.load_cifar10(folder)
    assert d.name == "cifar10" and d.x_train.shape == (20, 32, 32, 3) and d.x_test.shape == (4, 32, 32, 3)
    raw = pickle.loads((folder / "test_batch").read_bytes())
    # channel-first rows become HWC images
    assert np.array_equal(d.x_test[1, :, :, 2].ravel(), raw[b"data"][1, 2048:])
    tar = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(folder, arcname="cifar-10-batches-py")
    d2 = D.load_cifar10(tar)
    assert np.array_equal(d2.x_train, d.x_train) and np.array_equal(d2.y_test, d.y_test)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_official_batches_load_only_arrays_never_code(tmp_path, protocol):
    folder = _official_batches(tmp_path / "cifar-10-batches-py")
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:  # the same data in another protocol
        d = pickle.loads((folder / name).read_bytes())
        (folder / name).write_bytes(pickle.dumps(d, protocol=protocol))
    assert D.load_cifar10(folder).x_train.shape == (20, 32, 32, 3)
    if protocol == 2:  # the official batches were pickled by Python 2 and NumPy 1: numpy.core.multiarray
        old = (folder / "test_batch").read_bytes().replace(b"numpy._core.", b"numpy.core.")
        assert b"numpy.core.multiarray" in old
        (folder / "test_batch").write_bytes(old)
        assert D.load_cifar10(folder).x_test.shape == (4, 32, 32, 3)
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Payload(marker), b"labels": []}, protocol=protocol))
    with pytest.raises(ValueError, match=r"corrupt CIFAR-10 batch 'data_batch_3'.*refusing to load posix\.system"):
        D.load_cifar10(folder)
    assert not marker.exists()


def test_cache_is_used_and_a_corrupt_cache_is_rebuilt(tmp_path, tiny_images, capsys):
    src = write_folder(tmp_path / "png", tiny_images)
    first = D.load_cifar10(src)
    assert "디코딩" in capsys.readouterr().out
    cache_files = list((tmp_path / "cache").glob("cifar10-*.npz"))
    assert len(cache_files) == 1
    again = D.load_cifar10(src)
    assert "디코딩" not in capsys.readouterr().out  # read from the cache
    assert np.array_equal(again.x_train, first.x_train) and again.name == first.name
    # corrupt the cache: flip bytes in the middle
    raw = bytearray(cache_files[0].read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = b"\xff" * 64
    cache_files[0].write_bytes(bytes(raw))
    rebuilt = D.load_cifar10(src)
    out = capsys.readouterr()
    assert "손상된 캐시" in out.err and "디코딩" in out.out
    assert np.array_equal(rebuilt.x_train, first.x_train)


def test_cache_key_follows_content(tmp_path, tiny_images):
    src = write_folder(tmp_path / "png", tiny_images)
    D.load_cifar10(src)
    (src / "test/cat/0000.png").write_bytes(_jpeg(np.full((32, 32, 3), 200, np.uint8)))
    d = D.load_cifar10(src)
    assert d.x_test[3, 0, 0, 0] > 150  # the edited image, not the cached one
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 2


def test_unwritable_cache_only_warns(tmp_path, tiny_images, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    d = D.load_cifar10(write_folder(tmp_path / "png", tiny_images), cache_dir=blocker / "sub")
    assert d.x_train.shape[0] == 20
    assert "캐시를 쓸 수 없어" in capsys.readouterr().err


def test_missing_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        D.load_cifar10(tmp_path / "nowhere")


def test_bad_source_type():
    with pytest.raises(TypeError, match="source must be"):
        D.load_cifar10(42)


def test_truncated_archive_is_a_clear_error(tmp_path, tiny_images):
    path = write_tar(tmp_path / "c.tar.gz", tiny_images)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.tar.gz"):
        D.load_cifar10(cut)


def test_not_an_archive(tmp_path):
    f = tmp_path / "junk.tar.gz"
    f.write_bytes(b"this is not a tar file at all")
    with pytest.raises(ValueError, match="junk.tar.gz"):
        D.load_cifar10(f)


def test_undecodable_image_names_the_file(tmp_path, tiny_images):
    tiny_images["train/dog/0001.png"] = b"garbage bytes"
    with pytest.raises(ValueError, match="undecodable image.*dog/0001.png"):
        D.load_cifar10(write_folder(tmp_path / "png", tiny_images))


def test_wrong_image_size(tmp_path, tiny_images):
    tiny_images["test/ship/0000.png"] = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(ValueError, match="ship/0000.png.*28x28"):
        D.load_cifar10(write_folder(tmp_path / "png", tiny_images))


def test_wrong_folder_layout(tmp_path, tiny_images):
    files = {k.replace("/truck/", "/lorry/"): v for k, v in tiny_images.items()}
    with pytest.raises(ValueError, match="wrong folder layout.*lorry"):
        D.load_cifar10(write_folder(tmp_path / "png", files))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no CIFAR-10 images"):
        D.load_cifar10(empty)


def test_incomplete_official_batches(tmp_path):
    folder = _official_batches(tmp_path / "b")
    os.remove(folder / "data_batch_3")
    with pytest.raises(ValueError, match="missing data_batch_3"):
        D.load_cifar10(folder)


def test_download_failure_is_a_clear_error(monkeypatch):
    import keras

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(D.DataUnavailableError, match="VGGLAB_CIFAR10"):
        D.load_cifar10()


def test_synthetic_is_deterministic_and_balanced():
    a, b = D.synthetic_cifar10(200, 50, seed=3), D.synthetic_cifar10(200, 50, seed=3)
    assert a.name == "synthetic"
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert np.bincount(a.y_train).tolist() == [20] * 10
    assert not np.array_equal(a.x_train, D.synthetic_cifar10(200, 50, seed=4).x_train)
    with pytest.raises(ValueError, match="n_train"):
        D.synthetic_cifar10(5)


def test_stratified_subset_and_split():
    d = D.synthetic_cifar10(1000, 100)
    idx = D.stratified_indices(d.y_train, 95, seed=1)
    counts = np.bincount(d.y_train[idx], minlength=10)
    assert counts.sum() == 95 and counts.max() - counts.min() <= 1 and len(set(idx)) == 95
    assert np.array_equal(idx, D.stratified_indices(d.y_train, 95, seed=1))
    (xt, yt), (xv, yv) = D.train_val_split(d.x_train, d.y_train, 100, seed=0)
    assert len(yt) == 900 and np.bincount(yv).tolist() == [10] * 10
    sub = d.subset(train_size=50, test_size=20)
    assert sub.x_train.shape[0] == 50 and sub.x_test.shape[0] == 20 and sub.name == "synthetic"
    with pytest.raises(ValueError, match="subset size.*5000"):
        D.stratified_indices(d.y_train, 5000)
    with pytest.raises(ValueError, match="val_size"):
        D.train_val_split(d.x_train, d.y_train, -1)
    with pytest.raises(ValueError, match="1-D integer"):
        D.stratified_indices(d.y_train.astype(float), 10)


def test_normalizations():
    x = np.array([[[[0, 128, 255]]]], np.uint8)
    assert np.allclose(D.normalize(x, "unit"), [0, 128 / 255, 1])
    assert np.allclose(D.normalize(x, "minus_one_one"), [-1, 128 / 127.5 - 1, 1], atol=1e-6)
    d = D.synthetic_cifar10(200, 20)
    stats = D.channel_stats(d.x_train)
    z = D.normalize(d.x_train, "standardize", stats)
    assert z.dtype == np.float32
    assert np.allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-4) and np.allclose(z.reshape(-1, 3).std(0), 1, atol=1e-3)
    with pytest.raises(ValueError, match="unknown normalisation 'zscore'"):
        D.normalize(x, "zscore")
    with pytest.raises(ValueError, match="needs stats"):
        D.normalize(x, "standardize")
    with pytest.raises(ValueError, match="uint8"):
        D.normalize(x.astype(np.float32), "unit")


def test_class_names():
    assert len(D.CLASS_NAMES_KO) == len(D.CLASS_NAMES_EN) == 10
    assert D.CLASS_NAMES_EN == tuple(sorted(D.CLASS_NAMES_EN))  # folder order = label order
    assert D.CLASS_NAMES_KO[3] == "고양이"

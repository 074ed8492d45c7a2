"""relgrad.datasets: CIFAR-10 (both distributed forms, extracted and as archives), MNIST's
IDX files and the paper's 2-D toy sets. Small files in the publishers' formats; the batch
sizes and validation counts are shrunk through the modules' constants."""

from __future__ import annotations

import gzip
import io
import math
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from relgrad import datasets
from relgrad.datasets import DataFormatError, cifar10, mnist, toys

PER_BATCH, VAL = 4, 6  # images per CIFAR batch file, validation images


@pytest.fixture
def small_cifar(monkeypatch):
    monkeypatch.setattr(cifar10, "IMAGES_PER_BATCH", PER_BATCH)
    monkeypatch.setattr(cifar10, "VAL_IMAGES", VAL)


def _hwc(pixels: np.ndarray) -> np.ndarray:
    """Channel-major rows of 3072 bytes -> (n, 32, 32, 3), pixel by pixel."""
    out = np.empty((len(pixels), 32, 32, 3), dtype=np.uint8)
    for ch in range(3):
        for r in range(32):
            out[:, r, :, ch] = pixels[:, ch * 1024 + r * 32 : ch * 1024 + r * 32 + 32]
    return out


@pytest.fixture
def cifar_root(tmp_path: Path, small_cifar):
    """Both versions, extracted and archived: (root, expected train, val, test)."""
    rng = np.random.default_rng(6)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    pixels = {n: rng.integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8) for n in names}
    labels = {n: rng.integers(0, 10, size=PER_BATCH, dtype=np.uint8) for n in names}
    bin_dir, py_dir = tmp_path / "cifar-10-batches-bin", tmp_path / "cifar-10-batches-py"
    bin_dir.mkdir()
    py_dir.mkdir()
    for n in names:
        records = np.hstack((labels[n][:, None], pixels[n]))
        (bin_dir / f"{n}.bin").write_bytes(records.tobytes())
        batch = {
            b"batch_label": n.encode(),
            b"labels": [int(v) for v in labels[n]],
            b"data": pixels[n],
            b"filenames": [b"x.png"] * PER_BATCH,
        }
        (py_dir / n).write_bytes(pickle.dumps(batch, protocol=2))
    for d, archive in ((bin_dir, "cifar-10-binary.tar.gz"), (py_dir, "cifar-10-python.tar.gz")):
        with tarfile.open(tmp_path / archive, "w:gz") as tar:
            tar.add(d, arcname=d.name)
    train_all = np.concatenate([_hwc(pixels[n]) for n in names[:5]])
    return tmp_path, train_all[VAL:], train_all[:VAL], _hwc(pixels["test_batch"])


def _check(s, expected):
    _, train, val, test = expected
    assert s.levels == 256 and s.shape == (32, 32, 3)
    for got, want in zip((s.train, s.val, s.test), (train, val, test)):
        assert got.dtype == np.uint8 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)


def test_cifar_all_forms_give_the_same_images(cifar_root):
    root = cifar_root[0]
    assert (cifar_root[1].shape[0], cifar_root[2].shape[0]) == (5 * PER_BATCH - VAL, VAL)
    _check(datasets.load("cifar10", root), cifar_root)  # cifar-10-batches-bin/
    _check(datasets.load("cifar10", root / "cifar-10-batches-py"), cifar_root)
    _check(datasets.load("cifar10", root / "cifar-10-binary.tar.gz"), cifar_root)
    _check(datasets.load("CIFAR", root / "cifar-10-python.tar.gz"), cifar_root)


def test_cifar_refuses_truncated_and_foreign_files(cifar_root, tmp_path: Path):
    root = cifar_root[0]
    f = root / "cifar-10-batches-bin" / "data_batch_3.bin"
    f.write_bytes(f.read_bytes()[: 2 * 3073 + 100])
    with pytest.raises(
        DataFormatError,
        match=r"data_batch_3.bin: truncated at record 3 of 4: a record is 3073 bytes .*should have 12292 bytes; it has 6246",
    ):
        datasets.load("cifar10", root / "cifar-10-batches-bin")
    f.write_bytes(b"\x0c" + bytes(4 * 3073 - 1))
    with pytest.raises(DataFormatError, match="record 1 of 4 starts with the label byte 12"):
        datasets.load("cifar10", root / "cifar-10-batches-bin")
    p = root / "cifar-10-batches-py" / "test_batch"
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(DataFormatError, match="test_batch: truncated or damaged pickle"):
        datasets.load("cifar10", root / "cifar-10-batches-py")
    p.write_bytes(
        pickle.dumps({b"data": __import__("os").getcwd}, protocol=2)
    )  # not an array: refused unread
    with pytest.raises(DataFormatError, match="refusing to unpickle"):
        datasets.load("cifar10", root / "cifar-10-batches-py")
    a = root / "cifar-10-python.tar.gz"
    a.write_bytes(a.read_bytes()[:300])
    with pytest.raises(DataFormatError, match="cifar-10-python.tar.gz: truncated or damaged archive"):
        datasets.load("cifar10", a)
    with pytest.raises(FileNotFoundError, match="cs.toronto.edu"):
        datasets.load("cifar10", tmp_path / "nothing-here-" / "..")


def test_cifar_archive_missing_member(tmp_path: Path, small_cifar):
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz") as tar:
        data = bytes(PER_BATCH * 3073)
        info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataFormatError, match="lacks data_batch_2.bin"):
        datasets.load("cifar10", tmp_path)


def _idx(images: np.ndarray) -> bytes:
    n, r, c = images.shape
    return struct.pack(">IIII", 0x803, n, r, c) + images.tobytes()


def test_mnist_idx_files(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(mnist, "VAL_IMAGES", 3)
    rng = np.random.default_rng(7)
    train = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(train)))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx(test))  # not gzipped: read too
    s = datasets.load("mnist", tmp_path)
    assert s.levels == 256 and s.shape == (28, 28)
    np.testing.assert_array_equal(s.train, train[:7])  # the first images
    np.testing.assert_array_equal(s.val, train[7:])  # the last VAL_IMAGES, as the paper's code
    np.testing.assert_array_equal(s.test, test)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx(test)[: 16 + 2 * 784 + 5])
    with pytest.raises(
        DataFormatError,
        match=r"t10k-images-idx3-ubyte: truncated at image 3 of 4: an image is 28 x 28 = 784 bytes",
    ):
        datasets.load("mnist", tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">II", 0x801, 4) + bytes(4))
    with pytest.raises(DataFormatError, match="label file"):
        datasets.load("mnist", tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.*not found"):
        datasets.load("mnist", tmp_path)


def test_prepare_images_writes_uint8(cifar_root, tmp_path: Path):
    info = datasets.prepare("cifar10", cifar_root[0] / "cifar-10-binary.tar.gz", tmp_path / "c")
    assert info["levels"] == 256 and info["image_shape"] == [32, 32, 3]
    a = np.load(tmp_path / "c" / "val.npy")
    assert a.dtype == np.uint8 and a.shape == (VAL, 32, 32, 3)
    np.testing.assert_array_equal(a, cifar_root[2])


# ---------------------------------------------------------------- toys

N = 4000


@pytest.mark.parametrize("name", list(toys.TOYS))
def test_toys_shape_and_reproducible(name):
    a = toys.sample(name, N, random_state=1)
    assert a.shape == (N, 2) and a.dtype == np.float64 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, toys.sample(name, N, random_state=1))
    assert not np.array_equal(a, toys.sample(name, N, random_state=2))


def _nearest(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    return np.argmin(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)


def test_toy_mixtures_follow_the_paper():
    x = toys.sample("trimodal2", N, random_state=0)
    centers = np.array([(0, 0), (5, 5), (5, -5)])
    k = _nearest(x, centers)
    for j in range(3):  # equal weights, sd 0.5 each (trimodal: 1, 0.5, 0.5)
        assert abs(np.mean(k == j) - 1 / 3) < 0.04
        assert np.std(x[k == j] - centers[j]) == pytest.approx(0.5, rel=0.08)
    x = toys.sample("trimodal", N, random_state=0)
    assert np.std(x[_nearest(x, centers) == 0]) == pytest.approx(1.0, rel=0.1)
    x = toys.sample("smile", N, random_state=0)
    eyes_nose = np.array([(2, -4 * math.sqrt(3) / 2), (-2, -4 * math.sqrt(3) / 2), (0, 0)])
    near = np.min(((x[:, None, :] - eyes_nose[None]) ** 2).sum(-1), axis=1) < 1.5**2
    assert abs(near.mean() - 0.5) < 0.05  # eyes and nose weigh 0.5/3 each, the mouth 0.5
    mouth = x[~near]
    assert np.median(np.hypot(*mouth.T)) == pytest.approx(4.0, abs=0.3) and (mouth[:, 1] > 0).mean() > 0.95
    x = toys.sample("8gaussians", N, random_state=0)
    assert np.median(np.hypot(*x.T)) == pytest.approx(2 * math.sqrt(2), abs=0.1)


def test_toy_shapes_follow_the_paper():
    x = toys.sample("checkerboard", N, random_state=0)
    assert (np.abs(x) <= 4).all()
    assert ((np.floor(x[:, 0] / 2) + np.floor(x[:, 1] / 2)) % 2 == 0).all()  # 8 of the 16 squares
    x = toys.sample("rings", N, random_state=0)
    r = np.hypot(*x.T)
    for radius in (0.75, 1.5, 2.25, 3.0):
        assert ((np.abs(r - radius) < 0.3).mean()) > 0.15
    x = toys.sample("sine", N, random_state=0)
    assert (np.abs(x[:, 0]) <= 2).all() and np.std(x[:, 1] - np.sin(3 * x[:, 0])) == pytest.approx(
        0.25, rel=0.08
    )
    x = toys.sample("2spirals", N, random_state=0)
    np.testing.assert_allclose(np.median(x[: N // 2], 0), -np.median(x[N // 2 :], 0), atol=0.15)
    with pytest.raises(ValueError, match="even"):
        toys.sample("2spirals", 5)
    with pytest.raises(ValueError, match="unknown toy set 'spiral'"):
        toys.sample("spiral", 5)


def test_toy_splits_are_independent_draws():
    s = datasets.load("smile", seed=3)
    assert (s.train.shape, s.val.shape, s.test.shape) == ((5000, 2), (5000, 2), (5000, 2))
    rng = np.random.default_rng(3)
    want = [toys.sample("smile", 5000, rng) for _ in range(3)]
    for got, w in zip((s.train, s.val, s.test), want):
        np.testing.assert_array_equal(got, w)
    with pytest.raises(TypeError, match="unexpected option"):
        datasets.load("smile", n=3)


def test_docstring_examples():
    import doctest

    from relgrad.datasets import _registry

    for module in (datasets, toys, _registry):
        failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert failures == 0, module.__name__

"""Data files as people's tools write them, read by the command-line tool.

Each file is written by the tool a user would use (NumPy's ``np.save``, ``np.savez``,
``np.savetxt``; the ``csv`` module with Excel's dialects and encodings; pandas'
``to_csv``) and scored with ``relgrad score`` under a fixed model: a file that is read
right gives the same scores as a plain float64 ``.npy`` file of the same values (each
row's score depends only on that row). Files that cannot be read surely are refused with
a message that names the file, the position and what to do.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import CLI

#: Values every form holds exactly (half precision and decimal text included).
X = np.array([[1.5, -2.0], [0.25, 3.0], [-1.0, 0.5], [2.0, 1.25], [0.0, -0.75], [1.0, 2.5]])
INTS = np.array([[1, -2], [0, 3], [-1, 5], [2, 1], [0, -7], [1, 2]])
UINTS = np.abs(INTS)
BOOLS = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]])

_count = itertools.count()


@pytest.fixture(scope="module")
def run(cli, tmp_path_factory) -> Path:
    """A two-column model, trained for one epoch."""
    out = tmp_path_factory.mktemp("forms") / "run"
    cli("train", "--data", "moons", "--n", "200", "--epochs", "1", "--quiet", "--out", str(out))
    return out


@pytest.fixture
def scores(cli, run, tmp_path):
    """The scores of a data argument (a path, or ``FILE.npz:KEY``) under the model."""

    def score(data, *extra: str) -> np.ndarray:
        out = tmp_path / f"scores-{next(_count)}.npy"
        cli("score", str(run), "--data", str(data), "--out", str(out), *extra)
        return np.load(out)

    return score


@pytest.fixture
def reference(scores, tmp_path):
    """The scores of an array's values saved as a plain float64 ``.npy`` file."""

    def ref(a: np.ndarray) -> np.ndarray:
        p = tmp_path / f"reference-{next(_count)}.npy"
        np.save(p, np.asarray(a, dtype=np.float64))
        return scores(p)

    return ref


@pytest.fixture
def refused(run, tmp_path):
    """``relgrad score`` of a data argument fails (exit 1) with every needle on stderr."""

    def check(data, *needles: str) -> str:
        r = subprocess.run(
            [str(CLI), "score", str(run), "--data", str(data), "--out", str(tmp_path / "x.npy")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 1, r.stderr
        assert "panicked" not in r.stderr
        for n in needles:
            assert n in r.stderr, f"{n!r} not in:\n{r.stderr}"
        return r.stderr

    return check


# --- NumPy ---------------------------------------------------------------------------


@pytest.mark.parametrize("fortran", [False, True], ids=["C", "F"])
@pytest.mark.parametrize(
    "dtype, values",
    [
        ("float16", X),
        (">f2", X),
        ("<f4", X),
        (">f4", X),
        (">f8", X),
        ("int8", INTS),
        (">i2", INTS),
        ("<i4", INTS),
        (">i8", INTS),
        ("uint8", UINTS),
        ("uint16", UINTS),
        (">u2", UINTS),
        (">u4", UINTS),
        ("<u8", UINTS),
        ("bool", BOOLS),
    ],
)
def test_np_save_of_every_numeric_dtype_and_order(tmp_path, scores, reference, dtype, values, fortran):
    a = values.astype(dtype)
    if fortran:
        a = np.asfortranarray(a)
        assert a.flags.f_contiguous and not a.flags.c_contiguous
    p = tmp_path / "a.npy"
    np.save(p, a)
    np.testing.assert_array_equal(scores(p), reference(values))


def test_np_save_of_higher_rank_arrays_flattens_the_other_axes(tmp_path, scores, reference):
    p = tmp_path / "r3.npy"
    np.save(p, np.asfortranarray(X.reshape(6, 1, 2).astype(">f4")))
    np.testing.assert_array_equal(scores(p), reference(X))


@pytest.mark.parametrize(
    "name, array, needles",
    [
        ("complex.npy", X.astype(np.complex128), ["(complex128) is not read", "arr.real"]),
        ("longdouble.npy", X.astype(np.longdouble), ["numpy.longdouble", "arr.astype(np.float64)"]),
        ("text.npy", X.astype(str), ["(text) is not read", "arr.astype(np.float64)"]),
        ("dates.npy", np.array([["2020-01-01", "2021-01-01"]], dtype="datetime64[ns]"), ["datetime64"]),
        ("scalar.npy", np.float64(2.5), ["0-dimensional", "reshape(-1, 1)"]),
        (
            "records.npy",
            np.zeros(3, dtype=[("x", "<f8"), ("y", "<i4")]),
            ["structured", "('x', '<f8'), ('y', '<i4')", "structured_to_unstructured"],
        ),
    ],
)
def test_np_save_of_what_has_no_numeric_reading_is_refused(tmp_path, refused, name, array, needles):
    if name == "longdouble.npy" and np.dtype(np.longdouble).itemsize == 8:
        pytest.skip("longdouble is float64 on this machine")
    p = tmp_path / name
    np.save(p, array)
    refused(p, name, *needles)


def test_np_save_of_objects_is_refused_without_unpickling(tmp_path, refused):
    p = tmp_path / "objects.npy"
    np.save(p, np.array([1.5, "a"], dtype=object), allow_pickle=True)
    refused(p, "objects.npy", "pickled", "arr.astype(np.float64)")


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["savez", "savez_compressed"])
def test_npz_archives(tmp_path, scores, reference, refused, save):
    want = reference(X)
    one = tmp_path / "one.npz"
    save(one, X.astype(np.float16))
    np.testing.assert_array_equal(scores(one), want)
    splits = tmp_path / "splits.npz"
    save(splits, train=np.asfortranarray(X), val=X[:3].astype(">f4"))
    np.testing.assert_array_equal(scores(f"{splits}:train"), want)
    np.testing.assert_array_equal(scores(f"{splits}:val"), want[:3])
    refused(splits, "splits.npz holds 2 arrays (train, val); select one with", f"{splits}:KEY")
    refused(f"{splits}:test", 'splits.npz has no array "test"; its arrays are: train, val')


def test_npz_keys_train_and_validate(cli, tmp_path):
    splits = tmp_path / "splits.npz"
    rng = np.random.default_rng(0)
    np.savez_compressed(splits, train=rng.normal(size=(200, 2)), val=rng.normal(size=(50, 2)))
    out = tmp_path / "run"
    cli("train", "--data", f"{splits}:train", "--val", f"{splits}:val", "--test-fraction", "0",
        "--epochs", "1", "--quiet", "--out", str(out))
    assert (out / "model.safetensors").is_file()


def test_np_savetxt(tmp_path, scores, reference):
    want = reference(X)
    p = tmp_path / "savetxt.txt"
    np.savetxt(p, X, header="a b")  # blanks, '# ' comment header, 18 digits
    np.testing.assert_array_equal(scores(p), want)
    p = tmp_path / "savetxt.csv"
    np.savetxt(p, X, delimiter=";", header="a;b", comments="", fmt="%g")
    np.testing.assert_array_equal(scores(p), want)


# --- the csv module, as Excel writes ---------------------------------------------------


def write_rows(path: Path, rows, encoding: str = "utf-8", **fmt) -> Path:
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f, **fmt)
        w.writerows(rows)
    return path


def test_csv_excel_dialect_with_bom_crlf_and_quoted_names(tmp_path, scores, reference):
    header = ['mass "m", kg', "height; cm"]
    rows = [header, *X.tolist()]
    p = write_rows(tmp_path / "excel.csv", rows, encoding="utf-8-sig", dialect="excel")
    assert p.read_bytes().startswith(b"\xef\xbb\xbf") and b"\r\n" in p.read_bytes()
    np.testing.assert_array_equal(scores(p), reference(X))
    p = write_rows(tmp_path / "all.csv", rows, dialect="excel", quoting=csv.QUOTE_ALL)
    np.testing.assert_array_equal(scores(p), reference(X))


@pytest.mark.parametrize("decimal", [".", ","])
def test_csv_excel_tab_in_utf16_as_excel_unicode_text(tmp_path, scores, reference, decimal):
    rows = [["a", "b"], *[[f"{v:g}".replace(".", decimal) for v in r] for r in X]]
    p = write_rows(tmp_path / "unicode.txt", rows, encoding="utf-16", dialect="excel-tab")
    assert p.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    np.testing.assert_array_equal(scores(p), reference(X))


def test_text_with_old_mac_line_ends_and_latin1_names(cli, run, tmp_path, scores, reference):
    p = tmp_path / "mac.csv"
    p.write_bytes(("a,b\r" + "".join(f"{a},{b}\r" for a, b in X)).encode())
    np.testing.assert_array_equal(scores(p), reference(X))
    p = tmp_path / "latin1.csv"
    p.write_text("température °C,b\n" + "".join(f"{a},{b}\n" for a, b in X), encoding="latin-1")
    r = cli("score", str(run), "--data", str(p), "--out", str(tmp_path / "s.npy"))
    assert "latin1.csv: line 1 has bytes that are not UTF-8" in r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), reference(X))


def test_gzipped_csv(tmp_path, scores, reference):
    p = tmp_path / "d.csv.gz"
    with gzip.open(p, "wt", encoding="utf-16", newline="") as f:
        csv.writer(f).writerows([["a", "b"], *X.tolist()])
    np.testing.assert_array_equal(scores(p), reference(X))


@pytest.mark.parametrize(
    "name, text, needles",
    [
        ("empty.csv", "a,b\n1,2\n3,\n", ["line 3 (data row 2), column 2: the cell is empty", "fill it in"]),
        ("thousands.csv", 'a,b\n"1,234.5",2\n', ["line 2 (data row 1), column 1", "thousands separator"]),
        ("headers.csv", "mass,height\nkg,cm\n1,2\n", ["line 2 is a second header line", "start them with '#'"]),
        ("mixed.csv", "a;b\n1,5;2\n2.5;1\n", ["line 3 (data row 2), column 1", "one decimal separator"]),
        ("word.csv", "a,b\n1,2\n3,four\n", ['line 3 (data row 2), column 2: expected a number, found "four"']),
    ],
)
def test_text_that_cannot_be_read_surely_is_refused(tmp_path, refused, name, text, needles):
    p = tmp_path / name
    p.write_text(text)
    refused(p, name, *needles)


# --- pandas ------------------------------------------------------------------------------


@pytest.fixture
def df():
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=["mass (kg)", "height, cm"])


def test_pandas_to_csv(tmp_path, df, scores, reference, refused):
    want = reference(X)
    p = tmp_path / "plain.csv"
    df.to_csv(p, index=False)
    np.testing.assert_array_equal(scores(p), want)
    p = tmp_path / "european.csv"
    df.to_csv(p, sep=";", decimal=",", index=False)
    assert "1,5;" in p.read_text()
    np.testing.assert_array_equal(scores(p), want)
    p = tmp_path / "utf16.tsv"
    df.to_csv(p, sep="\t", index=False, encoding="utf-16")
    np.testing.assert_array_equal(scores(p), want)
    p = tmp_path / "crlf.csv"
    df.to_csv(p, index=False, lineterminator="\r\n", encoding="utf-8-sig")
    np.testing.assert_array_equal(scores(p), want)
    # The default writes the index as an unnamed first column: refused, saying how.
    p = tmp_path / "index.csv"
    df.to_csv(p)
    refused(p, "index.csv", "line 1, column 1", "index=False")


def test_pandas_missing_values(tmp_path, df, scores, reference, refused):
    df = df.copy()
    df.iloc[2, 1] = np.nan
    p = tmp_path / "gaps.csv"
    df.to_csv(p, index=False)  # NaN as an empty cell
    refused(p, "gaps.csv", "line 4 (data row 3), column 2: the cell is empty")
    p = tmp_path / "nan.csv"
    df.to_csv(p, index=False, na_rep="NaN")
    s = scores(p, "--skip-invalid")
    want = reference(X)
    assert np.isnan(s[2])
    np.testing.assert_array_equal(np.delete(s, 2), np.delete(want, 2))

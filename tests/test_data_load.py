"""load / load_dataset: named data sets, IDX folders, the user's .npy/.npz/CSV files, and every error."""

from __future__ import annotations

import sys
import tracemalloc
import warnings

import numpy as np
import pytest

from scratchae.data import load, load_dataset, sources, split_indices, write_idx
from scratchae.errors import ArgumentError, DataError, DataNotFoundError, DTypeError, ShapeError

IDX_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _write_mnist_like(folder, n_train=12, n_test=5, gz=True, seed=0):
    """Four small IDX files of random 28x28 uint8 images and labels 0..9; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train).astype(np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test).astype(np.uint8),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in zip(IDX_NAMES, arrays, strict=True):
        write_idx(folder / (name + (".gz" if gz else "")), arr)
    return arrays


@pytest.fixture
def no_system_dirs(monkeypatch, tmp_path):
    monkeypatch.setitem(sources.SYSTEM_DIRS, "fashion-mnist", (tmp_path / "system-empty",))


# ---- digits


def test_digits_shapes_range_labels_and_split():
    ds = load("digits")
    assert ds.X_train.shape == (1438, 64) and ds.X_test.shape == (359, 64)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0 and ds.X_test.max() <= 1.0
    assert set(np.unique(ds.y_train)) == set(range(10)) == set(np.unique(ds.y_test))
    assert ds.image_shape == (8, 8) and ds.n_classes == 10 and ds.name == "digits"
    # stratified: each class has about 20% of its examples in the test part
    counts_test, counts_all = np.bincount(ds.y_test), np.bincount(ds.y_test) + np.bincount(ds.y_train)
    assert np.all(np.abs(counts_test / counts_all - 0.2) < 0.02)


def test_digits_values_are_sklearn_pixels_over_16():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = load("digits", scale=None)
    train, test = split_indices(len(ref.target), 0.2, ref.target, 0)
    np.testing.assert_array_equal(ds.X_train, ref.data[train].astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, ref.target[test])
    np.testing.assert_array_equal(load("digits").X_test, (ref.data[test] / 16).astype(np.float32))


def test_digits_split_is_deterministic_and_seeded():
    a, b = load_dataset("digits"), load_dataset("digits")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other = load("digits", split_seed=1)
    assert not np.array_equal(other.y_test, a[3])


def test_digits_limits_and_fraction():
    ds = load("digits", n_train=100, n_test=7, test_fraction=0.5)
    assert ds.X_train.shape == (100, 64) and ds.y_train.shape == (100,)
    assert ds.X_test.shape == (7, 64) and ds.y_test.shape == (7,)
    assert load("digits", n_train=10**6).X_train.shape == (1438, 64)


def test_digits_without_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataNotFoundError, match=r"scratchae\[data\]"):
        load("digits")


# ---- IDX data sets


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_data_dir(tmp_path, gz):
    X, y, Xt, yt = _write_mnist_like(tmp_path, gz=gz)
    ds = load("mnist", data_dir=tmp_path)
    assert ds.X_train.shape == (12, 784) and ds.X_test.shape == (5, 784)
    np.testing.assert_allclose(ds.X_train, X.reshape(12, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, y)
    np.testing.assert_array_equal(ds.y_test, yt)
    assert ds.image_shape == (28, 28) and ds.n_classes == 10
    assert 0.0 <= ds.X_test.min() and ds.X_test.max() <= 1.0


def test_float_idx_images_are_taken_as_they_are(tmp_path):
    """IDX images stored as float32 in [0, 1] have no pixel scale: scale="auto" keeps them (uint8 ones are
    divided by 255), and a set whose parts have different dtypes is refused under "auto"."""
    X, y, Xt, yt = _write_mnist_like(tmp_path, gz=False)
    for name, arr in zip(IDX_NAMES[::2], (X, Xt), strict=True):
        write_idx(tmp_path / name, (arr / 255.0).astype(np.float32))
    ds = load("mnist", data_dir=tmp_path)
    np.testing.assert_allclose(ds.X_train, X.reshape(12, -1) / 255.0, rtol=1e-6)
    assert ds.full_scale is None
    write_idx(tmp_path / IDX_NAMES[2], Xt)  # the test images as uint8 again
    with pytest.raises(DataError, match="X has dtype float32 and X_test dtype uint8"):
        load("mnist", data_dir=tmp_path)


def test_fashion_mnist_from_data_dir_and_subfolder(tmp_path, no_system_dirs):
    X = _write_mnist_like(tmp_path / "fashion-mnist")[0]
    ds = load("fashion_mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.X_train, (X.reshape(12, -1) / np.float32(255)).astype(np.float32))
    assert ds.class_names[9] == "Ankle boot" and ds.name == "fashion-mnist"


def test_fashion_mnist_falls_back_to_system_dir(tmp_path, monkeypatch):
    _write_mnist_like(tmp_path / "sys", n_train=3, n_test=2)
    monkeypatch.setitem(sources.SYSTEM_DIRS, "fashion-mnist", (tmp_path / "sys",))
    X_train, y_train, X_test, y_test = load_dataset("fashion-mnist", data_dir=tmp_path / "empty")
    assert X_train.shape == (3, 784) and X_test.shape == (2, 784)


def test_fashion_mnist_absent_says_where_and_how(tmp_path, no_system_dirs):
    _write_mnist_like(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError) as info:
        load("fashion-mnist", data_dir=tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "missing t10k-labels-idx1-ubyte[.gz]" in msg
    assert "system-empty" in msg and "apt-get install dataset-fashion-mnist" in msg and "data_dir" in msg


def test_idx_files_under_other_names_are_not_guessed_but_the_names_are_given(tmp_path, no_system_dirs):
    _write_mnist_like(tmp_path)
    for path in tmp_path.glob("*-idx?-ubyte.gz"):  # train-images.idx3-ubyte.gz: a common variant
        path.rename(path.with_name(path.name.replace("-idx", ".idx")))
    with pytest.raises(DataNotFoundError) as info:
        load("mnist", data_dir=tmp_path)
    msg = str(info.value)
    assert f"{tmp_path} (no IDX files)" in msg
    assert "named train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]" in msg


def test_mnist_needs_data_dir():
    with pytest.raises(DataNotFoundError, match="no data_dir was given.*data_dir="):
        load("mnist")


def test_idx_label_count_mismatch_and_range(tmp_path):
    _write_mnist_like(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, dtype=np.uint8))
    with pytest.raises(ShapeError, match=r"y_train has shape \(11,\), expected \(12,\): one label per example"):
        load("mnist", data_dir=tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(12, 10, dtype=np.uint8))
    with pytest.raises(DataError, match=r"label 10 is out of range: expected 0..9"):
        load("mnist", data_dir=tmp_path)


def test_real_fashion_mnist_when_installed():
    if not all((sources.SYSTEM_DIRS["fashion-mnist"][0] / f"{n}.gz").is_file() for n in IDX_NAMES):
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    ds = load("fashion-mnist", n_train=1000, n_test=500)
    assert ds.X_train.shape == (1000, 784) and ds.X_test.shape == (500, 784)
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0
    assert set(np.unique(ds.y_train)) == set(range(10))


# ---- the user's files


def test_npy_features_only_split(tmp_path):
    X = np.random.default_rng(0).random((50, 6))
    np.save(tmp_path / "x.npy", X)
    ds = load(tmp_path / "x.npy", test_fraction=0.3)
    assert ds.y_train is None and ds.y_test is None and ds.n_classes is None and ds.image_shape is None
    assert ds.X_train.shape == (35, 6) and ds.X_test.shape == (15, 6) and ds.X_train.dtype == np.float32
    # together the two parts are exactly the rows of X
    np.testing.assert_array_equal(
        np.sort(np.concatenate([ds.X_train, ds.X_test])[:, 0]), np.sort(X[:, 0].astype(np.float32))
    )


def test_npy_uint8_images_flattened_and_scaled(tmp_path):
    X = np.random.default_rng(0).integers(0, 256, (10, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "img.npy", X)
    ds = load(str(tmp_path / "img.npy"))
    assert ds.image_shape == (4, 3) and ds.X_train.shape == (8, 12)
    assert ds.X_train.max() <= 1.0 and ds.X_train.max() > 0.5


def test_npz_with_labels_and_test_part(tmp_path):
    rng = np.random.default_rng(0)
    X, Xt = rng.random((20, 3)), rng.random((4, 3))
    np.savez(tmp_path / "d.npz", x=X, labels=np.arange(20) % 3, X_test=Xt, y_test=np.array([0, 1, 2, 2]))
    ds = load(tmp_path / "d.npz", scale=None)
    np.testing.assert_allclose(ds.X_train, X.astype(np.float32))
    np.testing.assert_allclose(ds.X_test, Xt.astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, [0, 1, 2, 2])
    assert ds.n_classes == 3 and ds.y_train.dtype == np.int64


def test_npz_missing_keys(tmp_path):
    np.savez(tmp_path / "d.npz", features=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"expected key X or x.*found \['features'\]"):
        load(tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", X=np.zeros((3, 2)), y=np.zeros(3), X_test=np.zeros((2, 2)))
    with pytest.raises(DataError, match="y_test"):
        load(tmp_path / "e.npz")


def test_npz_test_feature_mismatch(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2)), X_test=np.zeros((2, 5)))
    with pytest.raises(ShapeError, match="X_test has 5 features, X_train has 2"):
        load(tmp_path / "d.npz")


def test_npz_parts_that_would_scale_differently_are_refused(tmp_path):
    """uint8 pixels beside float test images: scaling one by 255 and not the other gives wrong test figures."""
    images = np.random.default_rng(0).integers(0, 256, (6, 4), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", X=images, X_test=images[:2] / 255.0)
    with pytest.raises(DataError, match="X has dtype uint8 and X_test dtype float64.*store both parts with one dtype"):
        load(tmp_path / "d.npz")
    for scale in ("minmax", None):  # nothing scales them differently there
        assert load(tmp_path / "d.npz", scale=scale).X_test.shape == (2, 4)
    np.savez(tmp_path / "e.npz", X=images / 255.0, X_test=(images[:2] / 255.0).astype(np.float32))
    ds = load(tmp_path / "e.npz")  # float64 beside float32: neither is rescaled
    np.testing.assert_allclose(ds.X_test, images[:2] / 255.0, rtol=1e-6)


def test_csv_with_header_and_labels(tmp_path):
    path = tmp_path / "d.csv"
    rows = "\n".join(f"{i / 10},{i % 2},{i % 3}" for i in range(10))
    path.write_text("a,b,label\n" + rows + "\n")
    ds = load(path, csv_labels=True, test_fraction=0.4, scale=None)
    assert ds.X_train.shape[1] == 2 and ds.n_classes == 3
    assert len(ds.X_train) + len(ds.X_test) == 10
    np.testing.assert_array_equal(ds.y_train, np.round(ds.X_train[:, 0] * 10).astype(int) % 3)


def test_csv_labels_in_the_first_column(tmp_path):
    """The layout of many published CSV files: a header, then label,pixel1,pixel2,... on each line."""
    path = tmp_path / "d.csv"
    rows = "\n".join(f"{i % 3},{i / 10},{i % 2}" for i in range(10))
    path.write_text("label,p1,p2\n" + rows + "\n")
    ds = load(path, csv_labels="first", test_fraction=0.4, scale=None)
    assert ds.X_train.shape[1] == 2 and ds.n_classes == 3
    np.testing.assert_array_equal(ds.y_train, np.round(ds.X_train[:, 0] * 10).astype(int) % 3)
    assert load(path, csv_labels="last", test_fraction=0.4).n_classes == 2  # the last column: i % 2
    with pytest.raises(ArgumentError, match="csv_labels must be False, True \\(the last column\\), 'first' or 'last'"):
        load(path, csv_labels="middle")


def test_csv_minmax_scaling(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("\n".join(f"{2 * i - 5},{i}" for i in range(10)))
    ds = load(path, scale="minmax")
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0


def test_csv_ragged_line_is_named(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,2,3\n4,5,6\n\n7,8\n")
    with pytest.raises(DataError, match="line 4 has 2 fields, expected 3 as on line 1"):
        load(path)


@pytest.mark.parametrize("text", ["", "a,b,c\n", "\n\n"], ids=["empty", "header only", "blank lines"])
def test_a_csv_without_data_lines_is_named_without_a_warning(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's own "input contained no data" would fail here
        with pytest.raises(ShapeError, match="is empty: it has no data lines"):
            load(path)


def test_a_csv_with_a_byte_order_mark_reads_as_without(tmp_path):
    """Spreadsheets may write UTF-8 with a BOM first: it is not part of the first number (or header)."""
    for name, text in (("plain.csv", "0.1,0.2\n0.3,0.4\n"), ("header.csv", "a,b\n0.1,0.2\n0.3,0.4\n")):
        (tmp_path / name).write_text(text, encoding="utf-8-sig")
        np.testing.assert_array_equal(load(tmp_path / name, scale=None, test_fraction=0.5).X_train.shape, (1, 2))


def test_csv_non_numeric_field_is_named(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,2\n3,oops\n")
    with pytest.raises(DTypeError, match="line 2, column 2: 'oops' is not a number$"):
        load(path)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_csv_with_another_separator_is_named_and_its_line_cut_short(tmp_path, sep):
    """A semicolon- or tab-separated file reads as one field a line (the first taken for a header): the
    error shows that field's first 37 characters and says what separates the fields."""
    path = tmp_path / "d.csv"
    path.write_text("".join(sep.join(["0.25"] * 30) + "\n" for _ in range(3)))
    with pytest.raises(
        DTypeError, match=r"line 2, column 1: '0\.25.*'\.\.\. is not a number \(fields are separated"
    ) as info:
        load(path)
    assert f"by commas, not by {sep!r})" in str(info.value) and len(str(info.value)) < len(str(path)) + 140


def test_csv_fractional_labels(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("\n".join(f"{i},{i / 4}" for i in range(10)))
    with pytest.raises(DataError, match="integer class labels, got dtype float64 with the value 0.25"):
        load(path, csv_labels=True)


def test_nan_and_inf_counted_and_located(tmp_path):
    X = np.zeros((5, 3))
    X[2, 1] = np.nan
    X[3, 0] = np.inf
    X[4, 2] = 1e300  # beyond float32
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(DataError, match="1 NaN and 2 infinite values.*row 2, column 1"):
        load(tmp_path / "x.npy")


def test_object_and_string_arrays_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DTypeError, match="object"):
        load(tmp_path / "o.npy")
    np.savez(tmp_path / "s.npz", X=np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(DTypeError, match="numeric"):
        load(tmp_path / "s.npz")


@pytest.mark.parametrize("shape", [(6,), (2, 3, 4, 5)])
def test_wrong_rank(tmp_path, shape):
    np.save(tmp_path / "x.npy", np.zeros(shape))
    with pytest.raises(ShapeError, match=r"\(N, D\) or \(N, H, W\)"):
        load(tmp_path / "x.npy")


def test_negative_labels_and_label_length(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 2)), y=np.array([0, 1, -1, 0]))
    with pytest.raises(DataError, match=r"y_train must be >= 0 \(and at most 2\*\*53\), got values from -1 to 1"):
        load(tmp_path / "d.npz")
    for huge in (np.array([0, 1, 2**63, 0], dtype=np.uint64), np.array([0.0, 1.0, 1e20, 0.0])):  # not cast to < 0
        np.savez(tmp_path / "h.npz", X=np.zeros((4, 2)), y=huge)
        with pytest.raises(DataError, match=r"y_train must be >= 0 \(and at most 2\*\*53\), got values from 0"):
            load(tmp_path / "h.npz")
    np.savez(tmp_path / "e.npz", X=np.zeros((4, 2)), y=np.zeros(3, dtype=int))
    with pytest.raises(ShapeError, match=r"y_train has shape \(3,\), expected \(4,\)"):
        load(tmp_path / "e.npz")
    np.savez(tmp_path / "f.npz", X=np.zeros((4, 2)), y=np.array([True, False, True, True]))
    d = load(tmp_path / "f.npz")  # a bool column reads as 0 and 1
    assert d.y_train.dtype == np.int64 and sorted([*d.y_train.tolist(), *d.y_test.tolist()]) == [0, 1, 1, 1]


def test_corrupt_npy_and_missing_file(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="not a valid NumPy file"):
        load(tmp_path / "bad.npy")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load(tmp_path / "absent.npz")


def test_image_shape_argument(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 12)))
    assert load(tmp_path / "x.npy", image_shape=(3, 4)).image_shape == (3, 4)
    with pytest.raises(ShapeError, match="image_shape"):
        load(tmp_path / "x.npy", image_shape=(5, 5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "cifar"}, "unknown data set 'cifar'"),
        ({"name": "digits", "scale": "zscore"}, "scale must be one of"),
        ({"name": "digits", "n_train": 0}, "n_train must be a positive integer"),
        ({"name": "digits", "test_fraction": 1.0}, r"test_fraction must be a number in \(0, 1\)"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        load(**kwargs)


def test_split_too_small_for_a_test_part():
    with pytest.raises(DataError, match="empty train or test set"):
        split_indices(3, 0.1)


@pytest.mark.parametrize("shape", [(0, 64), (5, 0), (0, 8, 8)], ids=["no rows", "no features", "no images"])
def test_an_empty_array_file_is_a_shape_error_as_in_fit(tmp_path, shape):
    """The same mistake gets the same error from data.load as from a model's fit: ShapeError."""
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros(shape, np.float32))
    with pytest.raises(ShapeError, match=r"empty\.npy: X_train is empty \(shape .*need at least one example"):
        load(path)


def test_labels_that_leave_classes_without_examples_are_warned_of(tmp_path):
    """A -1 stored as uint8 (255) among labels 0..9 would make 256 classes, 245 of them empty."""
    y = np.arange(40) % 10
    y[0] = 255
    X = np.random.default_rng(0).random((40, 4))
    np.savez(tmp_path / "d.npz", X=X, y=y.astype(np.uint8), X_test=X[:10], y_test=np.arange(10))
    with pytest.warns(UserWarning, match=r"labels run from 0 to 255, so 256 classes, but 245 .*\(10, 11, .*\.\.\.\)"):
        ds = load(tmp_path / "d.npz")
    assert ds.n_classes == 256
    np.savez(tmp_path / "e.npz", X=X, y=np.arange(40) % 10, X_test=X[:10], y_test=np.arange(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(tmp_path / "e.npz").n_classes == 10


@pytest.mark.parametrize("stray", [10**12, 2**53, 5000])
def test_labels_too_sparse_to_be_class_numbers_are_refused_without_allocating(tmp_path, stray):
    """One label of 10**12 among 0..9 would make 10**12 classes (the old check of which had no example
    allocated all of them): more than 1000 classes and 100 times the distinct labels are refused."""
    y = np.arange(40) % 10
    y[3] = stray
    X = np.random.default_rng(0).random((40, 4))
    np.savez(tmp_path / "d.npz", X=X, y=y)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=rf"labels run up to {stray}, which makes {stray + 1} classes for 11 "):
            load(tmp_path / "d.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak
    y[3] = 999  # 1000 classes: a sparse set of class numbers, warned of, not refused
    np.savez(tmp_path / "e.npz", X=X, y=y)
    with pytest.warns(UserWarning, match="so 1000 classes, but 989 of them have no training example"):
        assert load(tmp_path / "e.npz").n_classes == 1000
    many = np.random.default_rng(2).permutation(np.repeat(np.arange(1500), 4))  # 1500 classes of 4 examples
    np.savez(tmp_path / "many.npz", X=np.random.default_rng(1).random((6000, 2)), y=many)
    for n_train, n_test in ((20, None), (5, 5), (8, 4)):  # limits that keep few of the classes: not refused
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the classes the limit left without a training example
            assert load(tmp_path / "many.npz", n_train=n_train, n_test=n_test).n_classes <= 1500

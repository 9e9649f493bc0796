import numpy as np
import pytest

from epochscope import encode_labels


@pytest.mark.parametrize("given", [[2, 0, 1], np.array([2.0, 0.0, 1.0]), np.eye(3)[[2, 0, 1]], [[2], [0], [1]]])
def test_numeric_forms(given):
    idx, names = encode_labels(given)
    assert idx.tolist() == [2, 0, 1] and names == ("0", "1", "2")


def test_strings_and_given_names():
    idx, names = encode_labels(["dog", "cat", "dog"])
    assert idx.tolist() == [1, 0, 1] and names == ("cat", "dog")
    idx, names = encode_labels(["dog", "cat"], ["dog", "cat", "eel"])
    assert idx.tolist() == [0, 1] and names == ("dog", "cat", "eel")


@pytest.mark.parametrize("given,message", [
    ([0.5, 1.0], "float labels must be whole numbers"),
    ([-1, 0], "must be >= 0"),
    ([], "no labels given"),
    (np.zeros((2, 2, 2)), "expected one label per example"),
])
def test_bad_labels_explain(given, message):
    with pytest.raises(ValueError, match=message):
        encode_labels(given)


def test_unknown_string_and_index_beyond_names():
    with pytest.raises(ValueError, match=r"labels \['fox'\] are not among class_names"):
        encode_labels(["fox"], ["cat"])
    with pytest.raises(ValueError, match="class index 3 but only 2 class_names"):
        encode_labels([3], ["a", "b"])

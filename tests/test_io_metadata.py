"""nnfast.io's optional metadata: saved beside a net, read back checked, ignored by load."""
import zipfile

import numpy as np
import pytest

import nnfast
from nnfast import io


@pytest.fixture
def net():
    return nnfast.Net([3, 4, 2], loss="cross_entropy", seed=0)


def test_metadata_round_trip(tmp_path, net):
    metadata = dict(name="iris", count=3, ratio=0.25, flag=True, names=["a", "bc"], mean=[1.5, -2.0], ids=[4, 5])
    path = io.save(net, tmp_path / "m.npz", metadata=metadata)
    loaded, read = io.load_with_metadata(path)
    assert read.keys() == metadata.keys()
    assert read["name"] == "iris" and read["count"] == 3 and read["ratio"] == 0.25 and read["flag"] is True
    assert read["names"].tolist() == ["a", "bc"]
    assert read["mean"].dtype == np.float64 and read["mean"].tolist() == [1.5, -2.0]
    assert read["ids"].dtype == np.int64 and read["ids"].tolist() == [4, 5]
    np.testing.assert_array_equal(loaded.parameters, net.parameters)


def test_load_ignores_metadata_and_files_without_it_are_unchanged(tmp_path, net):
    with_metadata = io.save(net, tmp_path / "a.npz", metadata={"note": "x"})
    without = io.save(net, tmp_path / "b.npz")
    assert isinstance(nnfast.load(with_metadata), nnfast.Net)
    np.testing.assert_array_equal(nnfast.load(with_metadata).parameters, net.parameters)
    assert io.load_with_metadata(without)[1] == {}
    with zipfile.ZipFile(without) as archive:
        assert not any(name.startswith("metadata/") for name in archive.namelist())


@pytest.mark.parametrize(("metadata", "message"), [
    ({"not an identifier": 1}, "metadata keys must be identifiers"),
    ({"a": [[1, 2]]}, r"metadata\['a'\] must be a bool, int, float or str"),
    ({"a": None}, r"metadata\['a'\] must be"),
    ({"a": float("inf")}, r"metadata\['a'\] must be finite"),
])
def test_bad_metadata_is_refused_and_nothing_is_written(tmp_path, net, metadata, message):
    with pytest.raises(ValueError, match=message):
        io.save(net, tmp_path / "m.npz", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_metadata_with_an_ensemble_is_refused(tmp_path):
    ensemble = nnfast.Ensemble([2, 3, 1], n_members=2, seed=0)
    with pytest.raises(TypeError, match="not with an ensemble"):
        io.save(ensemble, tmp_path / "e.npz", metadata={"a": 1})


def _rewrite(path, **entries):
    """Rewrite the archive at ``path`` with ``entries`` (name -> array) added or replaced."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays.update(entries)
    np.savez(path, **arrays)


@pytest.mark.parametrize(("entry", "value", "message"), [
    ("metadata/a", np.zeros((2, 2)), "must be 0-d or 1-d"),
    ("metadata/a", np.array([1.0, np.nan]), "must be finite"),
    ("metadata/not-a-key", np.array(1), "its key is not an identifier"),
    ("metadata/a", np.array([b"bytes"]), "which no nnfast entry has"),
])
def test_hostile_metadata_is_refused_with_one_message(tmp_path, net, entry, value, message):
    path = io.save(net, tmp_path / "m.npz", metadata={"a": 1})
    _rewrite(path, **{entry: value})
    with pytest.raises(ValueError, match=f"is not a valid nnfast file: .*{message}"):
        io.load_with_metadata(path)
    with pytest.raises(ValueError, match=message):
        nnfast.load(path)

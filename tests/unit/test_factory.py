"""The generic Factory and import-path targets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hkdeploy.datasets import Dataset, DatasetFactory
from hkdeploy.errors import UserError
from hkdeploy.factory import Factory, import_object


def test_register_get_has_list_unregister() -> None:
    f: Factory[int] = Factory("widget")
    assert f.list() == [] and not f.has("a")
    f.register("b", 2)
    f.register("a", 1)
    assert f.list() == ["a", "b"] and f.has("a") and "a" in f
    assert f.get("a") == 1
    with pytest.raises(ValueError, match="already registered"):
        f.register("a", 3)
    f.register("a", 3, override=True)
    assert f.get("a") == 3
    f.unregister("a")
    assert not f.has("a")
    with pytest.raises(KeyError):
        f.unregister("a")


def test_unknown_name_suggests_closest() -> None:
    f: Factory[int] = Factory("runner")
    f.register("jlink", 1)
    f.register("pyocd", 2)
    with pytest.raises(UserError) as err:
        f.get("jlnk")
    assert "unknown runner 'jlnk'" in err.value.message
    assert err.value.hint and "did you mean 'jlink'" in err.value.hint


def test_decorator_registers() -> None:
    f: Factory[type] = Factory("thing")

    @f.decorator("mine")
    class Mine:
        pass

    assert f.get("mine") is Mine


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_ds_mod.py").write_text(
        "import numpy as np\n"
        "from hkdeploy.datasets import Dataset, DataSplit\n"
        "class Mine(Dataset):\n"
        "    def __init__(self, n=4):\n"
        "        super().__init__()\n"
        "        self.n = n\n"
        "    def load(self, split, *, sampling_rate, frame_size, seed, test_patients):\n"
        "        return DataSplit(np.ones((self.n, frame_size, 1), np.float32), np.zeros(self.n, np.int64))\n"
        "broken = 1\n"
    )
    (tmp_path / "my_bad_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_ds_mod"
    sys.modules.pop("my_ds_mod", None)
    sys.modules.pop("my_bad_mod", None)


def test_import_path_good(user_module: str) -> None:
    cls = DatasetFactory.get(f"{user_module}:Mine", allow_import=True)
    assert isinstance(cls, type) and issubclass(cls, Dataset)
    assert not DatasetFactory.has(f"{user_module}:Mine")  # imported, not registered


def test_import_path_only_when_allowed(user_module: str) -> None:
    with pytest.raises(UserError, match="only allowed from a configuration file"):
        DatasetFactory.get(f"{user_module}:Mine")


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
        ("my_ds_mod:Missing", "has no attribute 'Missing'"),
        ("my_bad_mod:X", "RuntimeError: boom at import"),
    ],
)
def test_import_path_bad(user_module: str, path: str, fragment: str) -> None:
    with pytest.raises(UserError) as err:
        import_object(path)
    assert fragment in err.value.message


def test_user_dataset_from_config(user_module: str) -> None:
    from hkdeploy.config import load_params
    from hkdeploy.datasets import load_split

    p = load_params(
        data={
            "datasets": [{"name": f"{user_module}:Mine", "params": {"n": 3}}],
            "frame_size": 8,
            "num_classes": 2,
        }
    ).params
    split = load_split(p, "test")
    assert split.x.shape == (3, 8, 1)
    bad = load_params(data={"datasets": [{"name": f"{user_module}:broken"}], "frame_size": 8}).params
    with pytest.raises(UserError, match="is not a Dataset class"):
        load_split(bad, "test")

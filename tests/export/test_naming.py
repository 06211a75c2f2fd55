"""C naming rules: tflm_var_name validation and include guards."""

from __future__ import annotations

import pytest

from hkdeploy.codegen.naming import c_identifier_problem, include_guard


@pytest.mark.parametrize("name", ["g_model", "model", "_private", "hk_model_x", "a" * 59, "m2"])
def test_good_names(name: str) -> None:
    assert c_identifier_problem(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("1model", "start with a letter"),
        ("g-model", "only letters, digits"),
        ("g model", "only letters, digits"),
        ("", "start with a letter"),
        ("int", "keyword"),
        ("not", "keyword"),  # a C++ alternative token
        ("static_assert", "keyword"),
        ("__model", "reserved"),
        ("_Model", "reserved"),
        ("HK_MODEL_DATA", "clash with the macros"),
        ("a" * 60, "longer than 59"),
    ],
)
def test_bad_names(name: str, fragment: str) -> None:
    problem = c_identifier_problem(name)
    assert problem is not None and fragment in problem


def test_invalid_tflm_var_name_is_a_config_error() -> None:
    from hkdeploy.config import load_params
    from hkdeploy.errors import ConfigError

    with pytest.raises(ConfigError, match="tflm_var_name"):
        load_params(data={"tflm_var_name": "not"})


def test_include_guard_has_no_leading_underscore() -> None:
    assert include_guard("g_model", "buffer_h") == "G_MODEL_BUFFER_H"
    assert include_guard("_g", "ops_h") == "G_OPS_H"
    assert include_guard("x.y", "config_h") == "X_Y_CONFIG_H"

"""The nesting check that runs before json.loads on untrusted bodies."""

import pytest

from services import safe_json


def test_depth_counts_arrays_and_objects_but_not_brackets_inside_strings():
    assert not safe_json.too_deep(b'{"a": [[1]]}', 3)
    assert safe_json.too_deep(b'{"a": [[[1]]]}', 3)
    assert not safe_json.too_deep(b'{"a": "[[[[[[[[\\"[[[[{{{{"}', 2)  # escaped quote stays inside the string
    assert safe_json.loads(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == {"a": "[" * 41}


def test_a_deep_body_is_a_value_error_not_a_recursion_error():
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50 + b"1" + b"}" * 50):
        with pytest.raises(safe_json.TooDeep):
            safe_json.loads(body)
    with pytest.raises(ValueError):
        safe_json.loads(b"[" * 100_000)  # unbalanced too

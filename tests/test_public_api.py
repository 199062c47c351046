"""The names of the Python API load from `parallel_r1` on first use; importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import parallel_r1


def test_every_api_name_resolves_and_is_listed():
    for name in parallel_r1._LAZY:
        assert getattr(parallel_r1, name) is not None, name
        assert name in dir(parallel_r1) and name in parallel_r1.__all__
    from parallel_r1.engine.torch_engine import TorchEngine

    assert parallel_r1.TorchEngine is TorchEngine


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'TorchEngin'"):
        parallel_r1.TorchEngin  # noqa: B018


def test_reading_a_light_name_loads_nothing_heavy():
    code = ("import sys, parallel_r1; parallel_r1.parse('a<Parallel>'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'trl', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""Shared fixtures: tiny test models loaded as Programs and compiled once per session.

Running the tests:

    pytest -q                      # everything, as CI runs it
    pytest -q -m "not slow"        # the quick loop: under 10 minutes on a 2-core machine
    pytest -q tests/ops            # the op suite: every op on every target (~3 min)
    pytest -q -m arm_emulation     # only the runs of arm64 builds under qemu-aarch64

`slow` marks a test that takes over ~10 s on 2 cores (or a case of one that pays a shared start-up, such as
the qemu run every arm64 op comparison shares); find candidates with `pytest --durations=40`. Models come
from tests/models.py, which serves the shared model set (benchmarks/zoo.py) under the names tests use.
"""

from __future__ import annotations

import warnings

import pytest

from support import model_ref

warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)


@pytest.fixture(scope="session")
def mlp_program():
    from cascc import frontends

    return frontends.load(model_ref("mlp"))


@pytest.fixture(scope="session")
def cnn_program():
    from cascc import frontends

    return frontends.load(model_ref("cnn"))


@pytest.fixture(scope="session")
def separable_program():
    from cascc import frontends

    return frontends.load(model_ref("separable_cnn"))


@pytest.fixture(scope="session")
def lenet_program():
    from cascc import frontends

    return frontends.load(model_ref("lenet_300_100"))


@pytest.fixture(scope="session")
def digits_mlp_program():
    from cascc import frontends
    from support import EXAMPLES

    return frontends.load(f"{EXAMPLES / 'digits.py'}:mlp")


@pytest.fixture(scope="session")
def digits_cnn_program():
    from cascc import frontends
    from support import EXAMPLES

    return frontends.load(f"{EXAMPLES / 'digits.py'}:cnn")

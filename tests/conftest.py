"""Shared fixtures: tiny test models loaded as Programs and compiled once per session."""

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

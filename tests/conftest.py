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

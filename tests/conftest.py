"""Shared test set-up. Tests make their own data and models; nothing is downloaded."""

import os

import pytest

# Quiet TensorFlow's C++ logging in tests that use the training half.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


@pytest.fixture(scope="session", autouse=True)
def edgecnn_cache(tmp_path_factory):
    """Built-in datasets go to a temporary cache, never into the user's ~/.cache."""
    previous = os.environ.get("EDGECNN_CACHE")
    path = tmp_path_factory.mktemp("edgecnn-cache")
    os.environ["EDGECNN_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("EDGECNN_CACHE", None)
    else:
        os.environ["EDGECNN_CACHE"] = previous

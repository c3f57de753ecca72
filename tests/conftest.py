"""Shared test set-up. Tests make their own data and models; nothing is downloaded."""

import os

# Quiet TensorFlow's C++ logging in tests that use the training half.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

"""Shared test set-up. Tests make their own data and models; nothing is downloaded."""

import os

import pytest

# Quiet TensorFlow's C++ logging in tests that use the training half.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# Deterministic kernels: the same seed gives the same trained weights on every run, so tolerances in
# the parity suite are checked against one outcome, not a lottery of thread scheduling. (Measured: no
# slower for these tiny models; without it two identical runs differed in the third decimal of the loss.)
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
# LiteRT's GPU accelerator runs on SwiftShader, a software Vulkan driver (tools/gpu_emulation.sh installs
# it; .ci/run calls that). Point the Vulkan loader at it unless the caller chose a driver already, so the
# GPU tests run here for real. (VK_ICD_FILENAMES is the older loaders' name for VK_DRIVER_FILES.)
SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json"
if os.path.isfile(SWIFTSHADER_ICD) and not (os.environ.get("VK_DRIVER_FILES") or os.environ.get("VK_ICD_FILENAMES")):
    os.environ["VK_DRIVER_FILES"] = os.environ["VK_ICD_FILENAMES"] = SWIFTSHADER_ICD


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


# Settings of the shared tiny run: a real model trained on real digits in seconds (about 94% validation
# accuracy). Tests that need a trained run use it rather than training their own.
TINY_RUN = {"model": "mobilenet_v1_tiny", "size": 16, "epochs": 4, "batch_size": 32, "augment": False, "seed": 0}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, edgecnn_cache):
    """A finished run directory (RunDir) of TINY_RUN on the built-in digits. Treat it as read-only:
    copy it (shutil.copytree) before changing anything in it."""
    from edgecnn.training.fit.train import train_run

    out = tmp_path_factory.mktemp("tiny") / "run"
    return train_run("digits", out, log=lambda message: None, **TINY_RUN)


@pytest.fixture(scope="session")
def gpu_accelerator():
    """Skip unless LiteRT's GPU accelerator initialises here, saying why.

    The probe runs in a subprocess: a failed adapter search inside the test process is what
    preceded the exit crash seen with Mesa's drivers (issue 13), so it is kept out of it.
    """
    import subprocess
    import sys

    probe = ("from edgecnn.runtime.delegate_probe import probe_delegate; r = probe_delegate('gpu'); "
             "import sys; print(r.detail, file=sys.stderr); sys.exit(0 if r.works else 3)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        pytest.skip(f"LiteRT's GPU accelerator does not initialise here ({reason}); "
                    "run tools/gpu_emulation.sh to install SwiftShader")


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config):
    """Leave without native teardown once LiteRT's GPU accelerator was loaded in this process: on
    machines with Mesa's Vulkan drivers the process died after the summary (free(): invalid pointer,
    exit 134) with every test green. Same containment as the CLI's (edgecnn/runtime/native_exit.py)."""
    from edgecnn.runtime import native_exit

    if native_exit.accelerator_loaded() and _EXIT_STATUS in config.stash:
        native_exit.finish(config.stash[_EXIT_STATUS])


_EXIT_STATUS = pytest.StashKey[int]()

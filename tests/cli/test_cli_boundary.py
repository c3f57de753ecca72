"""The two-halves boundary: the CLI's import, `edgecnn --help` and every TF-free module load no TensorFlow.

Each check runs in a fresh interpreter (this test process has TensorFlow loaded already), one per
module, so a failure names the module that pulled TensorFlow in. The TF-free packages (the model
file, the device runtime, image sets, parity) are walked recursively on disk, so a new module or
sub-package is covered the moment it is added.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import edgecnn

PACKAGE = Path(edgecnn.__file__).parent
HEAVY = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "sklearn")
TF_FREE_PACKAGES = ("tflite", "runtime", "imagesets", "parity", "explain", "serve")


def modules_under(package: str) -> list[str]:
    """Every module of ``edgecnn/<package>/``, sub-packages included, as dotted names."""
    names = []
    for path in (PACKAGE / package).rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        names.append(".".join(("edgecnn", *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return sorted(names)


RUNTIME_MODULES = [m for package in TF_FREE_PACKAGES for m in modules_under(package)]
# Modules outside those packages that the device half or `--help` rely on, and the training half's TF-free ones.
LIGHT_MODULES = ["edgecnn", "edgecnn.cli", "edgecnn.errors", "edgecnn.atomic", "edgecnn.rundir", "edgecnn.recipe",
                 "edgecnn.export_plan",
                 "edgecnn.model_sizes", "edgecnn.training.data.builtin"]

PROBE = """
import importlib, json, sys
importlib.import_module({module!r})
{then}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def heavy_modules_after(module: str, then: str = "") -> list[str]:
    code = PROBE.format(module=module, then=then, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_runtime_modules_are_found():
    assert {"edgecnn.tflite.metadata", "edgecnn.runtime.preprocess"} <= set(RUNTIME_MODULES)


@pytest.mark.parametrize("module", RUNTIME_MODULES + LIGHT_MODULES)
def test_module_imports_no_tensorflow(module):
    assert heavy_modules_after(module) == []


def test_help_imports_no_tensorflow():
    then = ("from edgecnn.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code")
    assert heavy_modules_after("edgecnn.cli", then) == []


def test_the_probe_sees_a_heavy_module():
    # The checks above are not vacuous: a module that lands in sys.modules is reported.
    then = "import types; sys.modules['tf_keras.src'] = types.ModuleType('tf_keras.src')"
    assert heavy_modules_after("edgecnn.errors", then) == ["tf_keras.src"]

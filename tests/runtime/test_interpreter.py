"""Loading models into a TFLite runtime: runtime choice, delegates, bad files."""

import ctypes.util
import sys

import numpy as np
import pytest
from tflite_models import build_classifier, write_model

from edgecnn.errors import ModelError, RecipeError, RuntimeUnavailable
from edgecnn.runtime import interpreter as interp
from edgecnn.runtime.interpreter import load_interpreter, runtime_info


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m") / "float.tflite")


def test_loads_with_ai_edge_litert_on_cpu(model):
    loaded = load_interpreter(model, threads=2)
    assert loaded.runtime == "ai_edge_litert"
    assert loaded.delegate == "cpu" and loaded.threads == 2 and loaded.warnings == []
    assert loaded.runtime_version.count(".") >= 1
    detail = loaded.interpreter.get_input_details()[0]
    assert list(detail["shape"]) == [1, 8, 8, 3]


def test_default_threads_is_bounded(model):
    loaded = load_interpreter(model)
    assert 1 <= loaded.threads <= 4


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_interpreter(tmp_path / "nope.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="is not a TFLite model"):
        load_interpreter(junk)
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(build_classifier()[:60])
    with pytest.raises(ModelError, match="corrupt or truncated|not a TFLite|no subgraph"):
        load_interpreter(truncated)


def test_model_that_cannot_be_allocated_is_a_model_error(tmp_path):
    path = tmp_path / "custom.tflite"
    path.write_bytes(build_classifier(custom_op="NoSuchOp"))
    with pytest.raises(ModelError, match=r"cannot be loaded by ai_edge_litert \(Encountered unresolved custom op: NoSuchOp"):
        load_interpreter(path)


def test_edgetpu_compiled_model_is_refused_on_cpu(tmp_path):
    path = tmp_path / "m_edgetpu.tflite"
    path.write_bytes(build_classifier(custom_op=interp.EDGETPU_CUSTOM_OP))
    with pytest.raises(ModelError, match="compiled for the Edge TPU and runs only with --delegate edgetpu"):
        load_interpreter(path)


# Whether Coral's runtime is installed, asked of the dynamic loader's cache (ldconfig), not of edgecnn.
HAS_LIBEDGETPU = ctypes.util.find_library("edgetpu") is not None
WITHOUT_LIBEDGETPU = pytest.mark.skipif(HAS_LIBEDGETPU, reason="libedgetpu is installed here: its absence cannot "
                                        "be arranged; test_installed_edgetpu_library_is_used runs the real path")


@WITHOUT_LIBEDGETPU
def test_absent_edgetpu_names_library_and_install(model):
    with pytest.raises(RuntimeUnavailable, match=r"libedgetpu.so.1 is not installed; .*apt-get install libedgetpu1-std"):
        load_interpreter(model, delegate="edgetpu", device="usb:0")


@pytest.mark.skipif(not HAS_LIBEDGETPU, reason="libedgetpu is not installed here (Coral's apt repository only)")
def test_installed_edgetpu_library_is_used(model):
    # The real library: with a Coral attached the interpreter runs on it; without one, the library loads and
    # says no device opened. Either way it is the Edge TPU path, never a silent CPU run.
    try:
        loaded = load_interpreter(model, delegate="edgetpu")
    except RuntimeUnavailable as exc:
        assert "could not open a Coral" in str(exc)
    else:
        assert loaded.delegate == "edgetpu" and loaded.warnings == []


@WITHOUT_LIBEDGETPU
def test_absent_edgetpu_with_fallback_warns_and_runs_on_cpu(model):
    loaded = load_interpreter(model, delegate="edgetpu", fallback="cpu")
    assert loaded.delegate == "cpu"
    assert len(loaded.warnings) == 1
    assert "libedgetpu.so.1 is not installed" in loaded.warnings[0]
    assert loaded.warnings[0].endswith("running on the CPU instead (--fallback cpu)")


def test_edgetpu_library_present_but_no_device(model, monkeypatch):
    # Simulates a host with libedgetpu but no Coral plugged in: load_delegate raises ValueError.
    monkeypatch.setattr(interp, "library_loadable", lambda name: True)

    def failing_load_delegate(library, options=None):
        assert options == {"device": "usb:1"}
        raise ValueError(f"Failed to load delegate from {library}\n")

    real_import = interp.import_runtime

    def runtime_with_failing_delegate():
        runtime = real_import()
        runtime.load_delegate = failing_load_delegate
        return runtime

    monkeypatch.setattr(interp, "import_runtime", runtime_with_failing_delegate)
    with pytest.raises(RuntimeUnavailable, match=r"could not open a Coral at usb:1 .*plugged in"):
        load_interpreter(model, delegate="edgetpu", device="usb:1")


def test_gpu_without_accelerator_or_library(model, tmp_path):
    with pytest.raises(RuntimeUnavailable, match="delegate library .*missing.so does not exist"):
        load_interpreter(model, delegate="gpu", delegate_path=tmp_path / "missing.so")
    not_a_library = tmp_path / "fake.so"
    not_a_library.write_bytes(b"not an ELF file")
    with pytest.raises(RuntimeUnavailable, match="fake.so could not be loaded"):
        load_interpreter(model, delegate="gpu", delegate_path=not_a_library)
    import numpy._core._multiarray_umath as numpy_core  # a real shared library that is no TFLite delegate

    with pytest.raises(RuntimeUnavailable, match="does not export tflite_plugin_create_delegate"):
        load_interpreter(model, delegate="gpu", delegate_path=numpy_core.__file__)
    loaded = load_interpreter(model, delegate="gpu", delegate_path=not_a_library, fallback="cpu")
    assert loaded.delegate == "cpu" and "could not be loaded" in loaded.warnings[0]


def test_bad_options_are_one_line_errors(model):
    with pytest.raises(RecipeError, match="unknown delegate 'edgtpu' \\(did you mean 'edgetpu'\\?\\)"):
        load_interpreter(model, delegate="edgtpu")
    with pytest.raises(RecipeError, match="threads must be a whole number >= 1"):
        load_interpreter(model, threads=0)
    with pytest.raises(RecipeError, match="only applies to --delegate edgetpu"):
        load_interpreter(model, device="usb:0")
    with pytest.raises(RecipeError, match="Edge TPU device 'usb0' is not valid"):
        load_interpreter(model, delegate="edgetpu", device="usb0")
    with pytest.raises(RecipeError, match="only fallback is 'cpu'"):
        load_interpreter(model, fallback="gpu")


def test_runtime_preference_falls_back_and_says_so(model, monkeypatch):
    # None in sys.modules makes an import fail, as if the package were not installed.
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    monkeypatch.setitem(sys.modules, "tensorflow.lite", None)
    with pytest.raises(RuntimeUnavailable, match=r"no TFLite runtime is installed .*pip install \"edgecnn\[device\]\""):
        load_interpreter(model)
    info = runtime_info()
    assert info["runtime"] is None and "no TFLite runtime" in info["runtime_warning"]


def test_runtime_info_reports_litert_and_edgetpu_absence():
    info = runtime_info()
    assert info["runtime"] == "ai_edge_litert"
    assert info["edgetpu_library"] == "libedgetpu.so.1" and info["edgetpu_library_found"] is HAS_LIBEDGETPU


def test_gpu_adapter_matches_interpreter_on_cpu(tmp_path):
    # No GPU here: drive the adapter with a CPU CompiledModel to check its Interpreter-like surface.
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator

    from edgecnn.runtime.litert_gpu import GpuInterpreter

    data = build_classifier(kind="int8")
    adapter = GpuInterpreter(CompiledModel.from_buffer(data, hardware_accel=HardwareAccelerator.CPU), data)
    reference = interp._create_interpreter(interp.import_runtime(), data, "m", 1, [])
    a_in, r_in = adapter.get_input_details()[0], reference.get_input_details()[0]
    assert a_in["quantization"] == pytest.approx(r_in["quantization"])
    assert adapter.get_output_details()[0]["quantization"] == pytest.approx(reference.get_output_details()[0]["quantization"])
    x = np.random.default_rng(0).integers(-128, 128, (1, 8, 8, 3), dtype=np.int8)
    for runner, detail in ((adapter, a_in), (reference, r_in)):
        runner.set_tensor(detail["index"], x)
        runner.invoke()
    out_a = adapter.get_tensor(adapter.get_output_details()[0]["index"])
    out_r = reference.get_tensor(reference.get_output_details()[0]["index"])
    np.testing.assert_array_equal(out_a, out_r)


def test_gpu_accelerator_absent_when_no_vulkan_driver(model):
    # Absence is arranged, not assumed: with no Vulkan driver to find, no adapter initialises. In a
    # subprocess, so the failed adapter search stays out of this process (see tests/conftest.py).
    import os
    import subprocess

    code = ("import sys; from edgecnn.errors import RuntimeUnavailable; "
            "from edgecnn.runtime.interpreter import load_interpreter\n"
            "try:\n    load_interpreter(sys.argv[1], delegate='gpu')\n"
            "except RuntimeUnavailable as exc:\n    print(exc); sys.exit(0)\nsys.exit(1)")
    done = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "VK_DRIVER_FILES": "/nonexistent", "VK_ICD_FILENAMES": "/nonexistent"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("no usable GPU accelerator here") and "VK_DRIVER_FILES=/nonexistent" in done.stdout

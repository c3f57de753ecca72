"""The profiler's pieces: statistics, the timed loop, representative inputs, sysinfo, full reports."""

import time

import numpy as np
import pytest
from tflite_models import write_model

from edgecnn.errors import ModelError, RecipeError
from edgecnn.runtime.profile import sysinfo
from edgecnn.runtime.profile.profiler import (
    SUMMARY_FIELDS,
    ProfileSettings,
    latency_summary,
    parse_threads,
    profile_model,
    representative_input,
    time_invokes,
)
from edgecnn.tflite.metadata import ModelMetadata, read_metadata

PI5_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1
"""


# --- statistics and the timed loop --------------------------------------------------------

def test_latency_summary_on_known_samples():
    summary = latency_summary([ms * 1_000_000 for ms in (1, 2, 3, 4, 5)])
    assert summary["p50"] == 3.0
    assert summary["min"] == 1.0 and summary["max"] == 5.0 and summary["mean"] == 3.0
    assert summary["p90"] == pytest.approx(4.6)  # linear interpolation between 4 and 5
    assert summary["std"] == pytest.approx(1.5811, abs=1e-4)  # sample standard deviation


def test_time_invokes_calls_once_per_run_and_measures_the_call():
    calls = []
    samples = time_invokes(lambda: calls.append(1), 7)
    assert len(calls) == 7 and samples.shape == (7,)
    slow = time_invokes(lambda: time.sleep(0.002), 3)
    assert (slow >= 2_000_000).all()  # each sample covers the whole call


def test_time_invokes_restores_the_garbage_collector():
    import gc

    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        time_invokes(lambda: 1 / 0, 2)
    assert gc.isenabled()


@pytest.mark.parametrize("text,expected", [("1", (1,)), ("1,2,4", (1, 2, 4)), (" 2 , 3 ", (2, 3))])
def test_parse_threads(text, expected):
    assert parse_threads(text) == expected


@pytest.mark.parametrize("text,fragment", [
    ("0", "--threads values must be whole numbers >= 1, got 0"),
    ("two", "--threads takes whole numbers >= 1 separated by commas, got 'two'"),
    ("1,,2", "got '1,,2'"), ("-1", "got '-1'"),
])
def test_parse_threads_refuses_bad_values(text, fragment):
    with pytest.raises(RecipeError, match=fragment):
        parse_threads(text)


def test_settings_refuse_zero_runs():
    with pytest.raises(RecipeError, match="--runs must be a whole number >= 1, got 0"):
        ProfileSettings(threads=(1,), runs=0)


# --- representative inputs ----------------------------------------------------------------

def _detail(shape, dtype):
    return {"name": "x", "shape": np.array(shape), "dtype": dtype}


def test_quantized_inputs_use_the_whole_type_range():
    rng = np.random.default_rng(0)
    for dtype, low, high in ((np.int8, -128, 127), (np.uint8, 0, 255)):
        x = representative_input(_detail([1, 32, 32, 3], dtype), None, rng)
        assert x.dtype == dtype and x.shape == (1, 32, 32, 3)
        assert x.min() <= low + 10 and x.max() >= high - 10


def test_float_inputs_follow_the_models_normalization():
    md = ModelMetadata(labels=["a"], height=8, width=8, mean=[0.0], std=[255.0])
    x = representative_input(_detail([1, 8, 8, 3], np.float32), md, np.random.default_rng(0))
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    bare = representative_input(_detail([1, 5], np.float32), None, np.random.default_rng(0))
    assert -1.0 <= bare.min() and bare.max() <= 1.0


def test_wide_integer_inputs_stay_small_and_non_negative():
    x = representative_input(_detail([64], np.int32), None, np.random.default_rng(0))
    assert x.dtype == np.int32 and x.min() >= 0 and x.max() < 16


def test_string_inputs_are_refused_with_the_reason():
    with pytest.raises(ModelError, match="has type .* which profile cannot fill"):
        representative_input(_detail([1], np.object_), None, np.random.default_rng(0))


# --- sysinfo ----------------------------------------------------------------------------

def test_cpu_model_of_a_pi5_from_its_part_number():
    assert sysinfo.cpu_model(PI5_CPUINFO) == "ARM Cortex-A76"
    assert sysinfo.cpu_model("model name\t: Intel(R) Xeon(R)\n") == "Intel(R) Xeon(R)"


def test_temperature_reads_millidegrees(tmp_path):
    (tmp_path / "temp").write_text("48312\n")
    assert sysinfo.read_temperature_c(tmp_path / "temp") == 48.3
    assert sysinfo.read_temperature_c(tmp_path / "absent") is None


def test_throttling_verdict():
    state = sysinfo.ThermalState
    assert sysinfo.parse_throttled("throttled=0x50005\n") == 0x50005
    # Sticky bits from before the run are not held against it.
    assert sysinfo.throttling_verdict(state(50.0, 0x50000), state(51.0, 0x50000)) == (False, [])
    throttled, reasons = sysinfo.throttling_verdict(state(70.0, 0x0), state(82.0, 0x40004))
    assert throttled and "throttled (after)" in reasons and "throttled occurred during the run" in reasons
    assert sysinfo.throttling_verdict(state(None, None), state(None, None)) == (False, [])


def test_peak_rss_follows_an_allocation():
    if not sysinfo.reset_peak_rss():
        pytest.skip("this kernel cannot reset the peak-RSS mark")
    before = sysinfo.peak_rss_bytes()
    block = np.ones(64 * 2**20, np.uint8)  # 64 MiB, touched
    assert sysinfo.peak_rss_bytes() - before >= 60 * 2**20
    del block


# --- whole reports ------------------------------------------------------------------------

def test_report_has_one_row_per_thread_count_and_summarises_the_fastest(tmp_path):
    path = write_model(tmp_path / "m.tflite", height=16, width=16)
    report = profile_model(path, ProfileSettings(threads=(1, 2), runs=20, warmup=2))
    assert [row["threads"] for row in report["rows"]] == [1, 2]
    fastest = min(report["rows"], key=lambda r: r["latency_ms"]["p50"])
    for field in SUMMARY_FIELDS:
        if field != "throttled":
            assert report[field] == fastest[field]
    for row in report["rows"]:
        lat = row["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert row["runs"] == 20 and row["init_ms"] > 0 and row["first_invoke_ms"] > 0
        assert row["peak_rss_mb"] > 10
    # An edgecnn model is identified by its content hash (stable across metadata edits).
    assert report["model"]["id"] == read_metadata(path).content_hash
    assert report["runtime"] == "ai_edge_litert" and report["environment"]["usable_cores"] >= 1


def test_int8_model_without_metadata_is_profiled_and_identified_by_file_hash(tmp_path):
    import hashlib

    path = write_model(tmp_path / "q.tflite", kind="int8", metadata=False)
    report = profile_model(path, ProfileSettings(threads=(1,), runs=5, warmup=0))
    assert report["model"]["inputs"][0]["dtype"] == "int8"
    assert report["model"]["id"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert report["model"]["edgecnn_metadata"] is False

"""Latency and memory of a .tflite model on this machine (device half: no TensorFlow).

For each thread count: load + allocate (init), one first invoke (XNNPACK packs weights
then), ``warmup`` untimed invokes, then ``runs`` timed invokes. Inputs are set once before
the loop and the loop times ``invoke()`` plus reading the outputs with ``time.perf_counter_ns``
(an asynchronous accelerator has finished only once its output can be read), so the figure
is the interpreter's, not ours (tools/bench_profiler.py checks it against a bare loop and
against LiteRT's own benchmark tool).

Works on any .tflite: several inputs or outputs, float or integer tensors, dynamic batch
dimensions (set to 1). Inputs get representative values: image-like pixels normalized the
model's way when it carries edgecnn metadata, else random values in the range the tensor's
type suggests.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import hashlib
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edgecnn.errors import ModelError, RecipeError
from edgecnn.runtime.interpreter import import_runtime, load_interpreter
from edgecnn.runtime.profile import sysinfo
from edgecnn.tflite.flatbuffer import read_tflite_bytes
from edgecnn.tflite.described import EDGECNN_SOURCE, describe
from edgecnn.tflite.metadata import ModelMetadata

REPORT_SCHEMA = "edgecnn.profile/1"
# Fields of a row that are also copied to the top level of a report (from its fastest row),
# so that a one-row report reads like a flat record.
SUMMARY_FIELDS = ("threads", "delegate", "init_ms", "first_invoke_ms", "latency_ms", "throughput_ips",
                  "peak_rss_mb", "throttled")
# Integer inputs wider than 16 bits are usually indices or lengths, not quantized pixels: small
# non-negative values keep gathers and embeddings in range.
INDEX_INPUT_HIGH = 16


@dataclasses.dataclass(frozen=True)
class ProfileSettings:
    threads: tuple[int, ...]
    runs: int = 100
    warmup: int = 10
    delegate: str = "cpu"
    fallback: str | None = None
    delegate_path: str | None = None
    edgetpu_device: str | None = None
    seed: int = 0

    def __post_init__(self):
        check_threads(self.threads)
        if not isinstance(self.runs, int) or self.runs < 1:
            raise RecipeError(f"--runs must be a whole number >= 1, got {self.runs!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise RecipeError(f"--warmup must be a whole number >= 0, got {self.warmup!r}")


def check_threads(threads: Sequence[int]) -> tuple[int, ...]:
    if not threads:
        raise RecipeError("--threads needs at least one thread count, e.g. --threads 1,2,4")
    for n in threads:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise RecipeError(f"--threads values must be whole numbers >= 1, got {n!r}; e.g. --threads 1,2,4")
    return tuple(threads)


def parse_threads(text: str) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4), with a one-line error for '0', 'two' or ''."""
    parts = [p.strip() for p in str(text).split(",")]
    values = []
    for part in parts:
        if not part.isdigit():
            raise RecipeError(f"--threads takes whole numbers >= 1 separated by commas, got {text!r}; e.g. --threads 1,2,4")
        values.append(int(part))
    return check_threads(values)


# --- inputs -------------------------------------------------------------------------------

def representative_input(detail: dict, metadata: ModelMetadata | None, rng: np.random.Generator) -> np.ndarray:
    """Values for one input tensor that look like what the model will see on the device."""
    shape = tuple(int(d) for d in detail["shape"])
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return _float_input(shape, dtype, metadata, rng)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if dtype.itemsize <= 2:  # int8/uint8/int16: quantized activations; their whole range is used
            return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        return rng.integers(0, INDEX_INPUT_HIGH, size=shape, dtype=dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    raise ModelError(f"input {detail.get('name', '?')!r} has type {dtype}, which profile cannot fill; "
                     "only numeric and boolean inputs are supported")


def _float_input(shape, dtype, metadata: ModelMetadata | None, rng) -> np.ndarray:
    if metadata is not None and len(shape) == 4 and shape[-1] == metadata.channels:
        # Pixels 0..255, normalized exactly as the model expects: (pixel - mean) / std.
        pixels = rng.integers(0, 256, size=shape).astype(np.float32)
        mean = np.asarray(metadata.mean, np.float32)
        std = np.asarray(metadata.std, np.float32)
        return ((pixels - mean) / std).astype(dtype)
    # No metadata: the common normalized image range.
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def fix_dynamic_shapes(interpreter) -> bool:
    """Resize inputs whose signature has unknown (-1) dimensions to 1 and re-allocate. True if it did."""
    resized = False
    for detail in interpreter.get_input_details():
        signature = detail.get("shape_signature")
        if signature is not None and len(signature) and min(signature) < 0:
            interpreter.resize_tensor_input(detail["index"], [1 if d < 0 else int(d) for d in signature])
            resized = True
    if resized:
        interpreter.allocate_tensors()
    return resized


def set_representative_inputs(interpreter, metadata: ModelMetadata | None, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], representative_input(detail, metadata, rng))


# --- timing -------------------------------------------------------------------------------

def time_invokes(invoke: Callable[[], object], runs: int) -> np.ndarray:
    """Nanoseconds of each of ``runs`` calls to ``invoke``.

    The loop is kept minimal on purpose (a preallocated list, a local clock, nothing else
    between the two clock reads), and the garbage collector is paused so that a collection
    does not land inside one sample.
    """
    clock = time.perf_counter_ns
    samples = [0] * runs
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(runs):
            start = clock()
            invoke()
            samples[i] = clock() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(samples, dtype=np.int64)


def invoke_and_read(interpreter) -> Callable[[], None]:
    """One inference as a caller sees it: invoke, then read every output.

    Accelerators may return from ``invoke`` before the work is done (LiteRT's GPU path on
    SwiftShader: 0.042 ms for invoke alone, 2.27 ms until the output was read), so timing stops
    only once the outputs are in host memory. On the CPU the read is a copy of a few bytes.
    """
    indices = [d["index"] for d in interpreter.get_output_details()]
    invoke, get_tensor = interpreter.invoke, interpreter.get_tensor

    def step() -> None:
        invoke()
        for index in indices:
            get_tensor(index)

    return step


def latency_summary(samples_ns) -> dict:
    """p50, p90, p99, mean, std, min, max in milliseconds (numpy's linear-interpolated percentiles)."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        raise ValueError("no samples")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50": _round(p50), "p90": _round(p90), "p99": _round(p99), "mean": _round(ms.mean()),
        "std": _round(ms.std(ddof=1) if ms.size > 1 else 0.0), "min": _round(ms.min()), "max": _round(ms.max()),
    }


def _round(value: float) -> float:
    return round(float(value), 4)  # 0.1 us: enough for sub-millisecond models


# --- one row, one report ------------------------------------------------------------------

def profile_row(model_path, threads: int, settings: ProfileSettings,
                metadata: ModelMetadata | None) -> tuple[dict, dict]:
    """Load the model with ``threads`` threads and measure it: (one row of a report, its inputs/outputs)."""
    before = sysinfo.read_thermal_state()
    rss_per_row = sysinfo.reset_peak_rss()

    start = time.perf_counter_ns()
    loaded = load_interpreter(model_path, threads=threads, delegate=settings.delegate,
                              device=settings.edgetpu_device, delegate_path=settings.delegate_path,
                              fallback=settings.fallback)
    interpreter = loaded.interpreter
    fix_dynamic_shapes(interpreter)
    init_ns = time.perf_counter_ns() - start

    set_representative_inputs(interpreter, metadata, settings.seed)
    step = invoke_and_read(interpreter)
    first_ns = int(time_invokes(step, 1)[0])
    if settings.warmup:
        time_invokes(step, settings.warmup)
    samples = time_invokes(step, settings.runs)

    after = sysinfo.read_thermal_state()
    throttled, reasons = sysinfo.throttling_verdict(before, after)
    latency = latency_summary(samples)
    batch = _batch_size(interpreter)
    peak = sysinfo.peak_rss_bytes()
    io = {"inputs": tensor_summary(interpreter.get_input_details()),
          "outputs": tensor_summary(interpreter.get_output_details())}
    row = {
        "threads": loaded.threads,
        "delegate": loaded.delegate,
        "runtime": loaded.runtime,
        "runtime_version": loaded.runtime_version,
        "init_ms": _round(init_ns / 1e6),
        "first_invoke_ms": _round(first_ns / 1e6),
        "latency_ms": latency,
        "throughput_ips": _round(1000.0 * batch / latency["mean"]) if latency["mean"] > 0 else None,
        "batch": batch,
        "runs": settings.runs,
        "warmup": settings.warmup,
        "peak_rss_mb": None if peak is None else round(peak / 2**20, 1),
        "peak_rss_scope": "row" if rss_per_row else "process",
        "temperature_c_before": before.temperature_c,
        "temperature_c_after": after.temperature_c,
        "throttled_raw_before": before.to_dict()["throttled_raw"],
        "throttled_raw_after": after.to_dict()["throttled_raw"],
        "throttled": throttled,
        "throttle_reasons": reasons,
        "warnings": list(loaded.warnings),
    }
    return row, io


def _batch_size(interpreter) -> int:
    details = interpreter.get_input_details()
    shape = details[0]["shape"] if details else []
    return int(shape[0]) if len(shape) >= 1 and int(shape[0]) > 0 else 1


def model_identity(path, data: bytes, metadata: ModelMetadata | None) -> dict:
    """What says two reports measured the same model: content hash when edgecnn made it, else the file hash."""
    sha = "sha256:" + hashlib.sha256(data).hexdigest()
    return {
        "path": str(path),
        "file": Path(path).name,
        "name": (metadata.model_name if metadata and metadata.model_name else Path(path).stem),
        "quantization": metadata.quantization if metadata else None,
        "size_bytes": len(data),
        "sha256": sha,
        "id": metadata.content_hash if metadata and metadata.content_hash else sha,
        "edgecnn_metadata": metadata is not None,
    }


def tensor_summary(details) -> list[dict]:
    return [{"name": d["name"], "shape": [int(x) for x in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
            for d in details]


def profile_model(model_path, settings: ProfileSettings, *, device_profile: str | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """A full report (see docs/profiling.md): one row per thread count plus the environment.

    The top level repeats the fastest row's SUMMARY_FIELDS, so ``report["latency_ms"]["p50"]``
    is always the best figure and ``report["rows"]`` holds every thread count.
    """
    data = read_tflite_bytes(model_path)
    described = describe(data, name=str(model_path))  # edgecnn's entry, else TFLITE_METADATA (inputs only)
    metadata = described.metadata if described.source == EDGECNN_SOURCE else None
    environment = sysinfo.system_info()
    import_runtime()  # the module import is a one-off cost of the process, not of loading a model
    rows, io = [], {}
    for threads in settings.threads:
        if progress:
            progress(f"profiling {Path(model_path).name}: {threads} thread(s), "
                     f"{settings.warmup} warm-up + {settings.runs} timed runs")
        row, io = profile_row(model_path, threads, settings, described.metadata)
        rows.append(row)
        if progress:
            progress(f"  p50 {rows[-1]['latency_ms']['p50']:.4g} ms")

    best = min(rows, key=lambda row: row["latency_ms"]["p50"])
    report = {
        "schema": REPORT_SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model_identity(model_path, data, metadata) | io,
        "device": device_profile or sysinfo.device_label(environment),
        "device_profile": device_profile,
        "runtime": best["runtime"],
        "runtime_version": best["runtime_version"],
        "requested_delegate": settings.delegate,
        "environment": environment,
        "warnings": sorted({w for row in rows for w in row["warnings"]}),
    }
    report.update({field: best[field] for field in SUMMARY_FIELDS})
    report["throttled"] = any(row["throttled"] for row in rows)
    report["rows"] = rows
    return report

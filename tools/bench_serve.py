"""Load test of ``edgecnn serve`` on loopback (issue 18). Not a test: prints figures as JSON lines.

    python tools/bench_serve.py [--clients 1,4,16] [--seconds 5] [--workers 1] [--image 96] [--soak 0]

Model: MobileNetV1 0.25, 96x96, full-integer int8 (tools/bench_model.py builds it once). A server
process is started on 127.0.0.1 and a free port; for each client count, that many threads each
keep one HTTP/1.1 connection and POST the same JPEG (``--image`` px square, camera-like noise)
back to back for ``--seconds`` after a one-second warm-up. Reported: req/s, p50/p99 latency as the
client sees it, errors (any status but 200), the server's RSS. ``--soak N`` then sends N more
requests and reports RSS before/after. The reference is ``edgecnn profile``'s throughput for the
model alone (invoke only) on the same cores, run first.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))
from bench_model import ensure_model  # noqa: E402
from server_process import ServerProcess  # noqa: E402


def jpeg(size: int) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", pixels)[1].tobytes()


def profile_ips(model: Path) -> float:
    out = subprocess.run([sys.executable, "-m", "edgecnn", "profile", str(model), "--json", "--runs", "500"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{"):])["throughput_ips"]


def client(port: int, body: bytes, until: float, latencies: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "image/jpeg"}
    while time.perf_counter() < until:
        start = time.perf_counter()
        try:
            conn.request("POST", "/v1/classify", body, headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except OSError as exc:
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            errors.append(type(exc).__name__)
        (latencies if ok else errors).append(time.perf_counter() - start)
    conn.close()


def drive(port: int, body: bytes, clients: int, seconds: float) -> dict:
    latencies: list = []
    errors: list = []
    until = time.perf_counter() + seconds
    threads = [threading.Thread(target=client, args=(port, body, until, latencies, errors)) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1e3
    return {"clients": clients, "requests": len(latencies), "errors": len(errors),
            "req_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 3) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 3) if len(ms) else None}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def soak(server, body: bytes, count: int) -> dict:
    before = rss_mb(server.proc.pid)
    conn = server.connection()
    failures = 0
    for _ in range(count):
        conn.request("POST", "/v1/classify", body, {"Content-Type": "image/jpeg"})
        response = conn.getresponse()
        response.read()
        failures += response.status != 200
    conn.close()
    return {"soak_requests": count, "failures": failures, "rss_before_mb": before, "rss_after_mb": rss_mb(server.proc.pid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--image", type=int, default=96)
    parser.add_argument("--soak", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    model = args.model or ensure_model(size=96)
    print(json.dumps({"model": str(model), "profile_ips": round(profile_ips(model), 1)}), flush=True)
    body = jpeg(args.image)
    log_dir = Path("/tmp/edgecnn-bench")
    log_dir.mkdir(exist_ok=True)
    server = ServerProcess(model, "--workers", args.workers, "--max-concurrent", "64", log_dir=log_dir)
    try:
        drive(server.port, body, 1, 1.0)  # warm-up
        for clients in map(int, args.clients.split(",")):
            row = drive(server.port, body, clients, args.seconds)
            print(json.dumps({**row, "workers": args.workers, "image_px": args.image,
                              "server_rss_mb": rss_mb(server.proc.pid)}), flush=True)
        if args.soak:
            print(json.dumps(soak(server, body, args.soak)), flush=True)
    finally:
        print(json.dumps({"exit_code": server.terminate()}), flush=True)


if __name__ == "__main__":
    main()

"""``edgecnn serve`` as a client sees it: a real server process on 127.0.0.1, real HTTP requests.

Each answer is checked against what really happened: scores against ``edgecnn classify`` on the
same files, metrics against the requests this test made, the exit code against the process's own.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import uuid
import zlib

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from server_process import ServerProcess, _get, metric_samples, multipart
from tflite_models import write_model

from edgecnn.cli import cli

COLOURS = {"red": (230, 20, 20), "green": (30, 200, 40), "blue": (10, 40, 250), "grey": (128, 128, 128)}
TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    model = write_model(folder / "model.tflite", kind="int8")
    rng = np.random.default_rng(0)
    images = {}
    for name, rgb in COLOURS.items():
        noise = rng.integers(-15, 16, size=(40, 56, 3))
        pixels = np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)
        for ext in (".jpg", ".png"):
            path = folder / f"{name}{ext}"
            cv2.imwrite(str(path), pixels[..., ::-1])
            images[path.name] = path
    return {"folder": folder, "model": model, "images": images}


@pytest.fixture(scope="module")
def server(files):
    proc = ServerProcess(files["model"], "--max-body", "0.25", log_dir=files["folder"])
    yield proc
    assert proc.terminate() == 0, proc.output()


def post_image(server, data: bytes, content_type="image/jpeg", path="/v1/classify", headers=None):
    return server.request("POST", path, data, {"Content-Type": content_type, **(headers or {})})


def cli_results(files) -> dict[str, dict]:
    paths = [str(p) for p in files["images"].values()]
    result = CliRunner().invoke(cli, ["classify", str(files["model"]), *paths, "--json", "--top-k", "3"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {p.split("/")[-1]: {k: line[k] for k in ("label", "score", "top_k")} for line in lines
            for p in [line["path"]]}


def test_classify_agrees_with_the_classify_command(server, files):
    expected = cli_results(files)
    assert len(expected) == len(files["images"]) == 8
    for name, path in files["images"].items():
        kind = "image/png" if name.endswith(".png") else "image/jpeg"
        status, _, body = post_image(server, path.read_bytes(), kind, "/v1/classify?top_k=3")
        assert status == 200, body
        answer = json.loads(body)
        (result,) = answer["results"]
        assert {k: result[k] for k in ("label", "score", "top_k")} == expected[name]
        assert answer["model"].startswith("test-pool-fc@sha256:")
        assert answer["latency_ms"] > 0 and result["latency_ms"] > 0
    # The colours are told apart (the comparison above is not between two constant answers).
    assert {expected[f"{c}.png"]["label"] for c in ("red", "green", "blue")} == {"red", "green", "blue"}


def test_one_multipart_request_classifies_a_batch_in_order(server, files):
    names = ["blue.png", "red.jpg", "green.png"]
    body, kind = multipart({n: files["images"][n].read_bytes() for n in names})
    status, _, data = post_image(server, body, kind, "/v1/classify?top_k=3")
    assert status == 200, data
    results = json.loads(data)["results"]
    expected = cli_results(files)
    assert [r["name"] for r in results] == names
    assert [{k: r[k] for k in ("label", "score", "top_k")} for r in results] == [expected[n] for n in names]


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def bad_requests(files):
    jpeg = files["images"]["red.jpg"].read_bytes()
    cases = {
        "truncated jpeg": (jpeg[: len(jpeg) // 2], "image/jpeg", 400),
        "truncated png": (files["images"]["red.png"].read_bytes()[:40], "image/png", 400),
        "zero bytes": (b"", "image/jpeg", 400),
        "30000x30000 png header": (png_header(30000, 30000) + b"\x00" * 64, "image/png", 413),
        "over the body limit": (jpeg + b"\x00" * (300 * 1024), "image/jpeg", 413),
        "text as jpeg": (b"hello, not an image", "image/jpeg", 415),
        "wrong content type": (jpeg, "text/plain", 415),
        "no content type": (jpeg, "", 415),
        "multipart without files": (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n",
                                    "multipart/form-data; boundary=x", 400),
    }
    assert list(cases) == BAD_CASES
    return cases


BAD_CASES = ["truncated jpeg", "truncated png", "zero bytes", "30000x30000 png header", "over the body limit",
             "text as jpeg", "wrong content type", "no content type", "multipart without files"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_gets_its_4xx_and_the_server_stays_up(server, files, case):
    data, kind, expected = bad_requests(files)[case]
    status, _, body = post_image(server, data, kind)
    assert status == expected, body
    assert json.loads(body)["error"]
    status, _, body = post_image(server, files["images"]["green.png"].read_bytes(), "image/png")
    assert status == 200 and json.loads(body)["results"][0]["label"] == "green"


def test_a_bad_part_fails_the_whole_batch(server, files):
    body, kind = multipart({"red.jpg": files["images"]["red.jpg"].read_bytes(), "bomb.png": png_header(30000, 30000)})
    status, _, data = post_image(server, body, kind)
    assert status == 413 and "bomb.png" in json.loads(data)["error"]


def test_bad_top_k_is_400(server, files):
    for value in ("0", "-1", "abc", "1000"):
        status, _, _ = post_image(server, files["images"]["red.jpg"].read_bytes(), path=f"/v1/classify?top_k={value}")
        assert status == 400, value


def test_metrics_count_the_requests_made(server, files):
    before = metric_samples(server)
    blue = files["images"]["blue.png"].read_bytes()
    for _ in range(3):
        assert post_image(server, blue, "image/png")[0] == 200
    body, kind = multipart({"red.png": files["images"]["red.png"].read_bytes(), "blue.jpg": files["images"]["blue.jpg"].read_bytes()})
    assert post_image(server, body, kind)[0] == 200
    assert post_image(server, b"", "image/png")[0] == 400
    assert post_image(server, blue, "text/plain")[0] == 415
    after = metric_samples(server)

    def delta(name, **labels):
        return _get(after, name, **labels) - _get(before, name, **labels)

    classify = {"endpoint": "/v1/classify", "method": "POST"}
    assert delta("edgecnn_http_requests_total", status="200", **classify) == 4
    assert delta("edgecnn_http_requests_total", status="400", **classify) == 1
    assert delta("edgecnn_http_requests_total", status="415", **classify) == 1
    assert delta("edgecnn_http_request_duration_seconds_count", endpoint="/v1/classify", status="200") == 4
    assert delta("edgecnn_classified_images_total") == 5
    assert delta("edgecnn_predictions_total", label="blue", origin="request") == 4
    assert delta("edgecnn_predictions_total", label="red", origin="request") == 1
    assert delta("edgecnn_prediction_confidence_count", origin="request") == 5
    assert delta("edgecnn_prediction_confidence_bucket", origin="request", le="+Inf") == 5
    # A probe of an unknown path is counted under one 'other' series, whatever the path.
    server.request("GET", f"/no/such/{uuid.uuid4().hex}")
    assert _get(metric_samples(server), "edgecnn_http_requests_total", endpoint="other", method="GET", status="404") >= 1


def test_model_health_ready_and_openapi(server, files):
    status, info = server.json("GET", "/v1/model")
    assert status == 200 and info["labels"] == ["red", "green", "blue"]
    assert info["input"] == {"height": 8, "width": 8, "channels": 3, "channel_order": "RGB", "dtype": "int8"}
    assert server.json("GET", "/healthz") == (200, {"status": "alive"})
    assert server.json("GET", "/readyz")[0] == 200
    status, document = server.json("GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    served = {"/v1/classify", "/v1/model", "/v1/stream.mjpg", "/healthz", "/readyz", "/metrics", "/openapi.json"}
    assert set(document["paths"]) == served
    for path in served - {"/v1/classify", "/v1/stream.mjpg"}:
        assert server.request("GET", path)[0] == 200, path
    status, _, body = server.request("GET", "/v1/stream.mjpg")
    assert status == 404 and b"--source" in body  # no source attached to this server


@pytest.fixture(scope="module")
def token_server(files):
    token_file = files["folder"] / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    proc = ServerProcess(files["model"], "--token-file", token_file, log_dir=files["folder"])
    yield proc
    assert proc.terminate() == 0
    assert TOKEN not in proc.output()  # never logged


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_missing_or_wrong_token_is_401(token_server, files, header):
    headers = {"Authorization": header} if header else {}
    jpeg = files["images"]["red.jpg"].read_bytes()
    status, response_headers, body = post_image(token_server, jpeg, headers=headers)
    assert status == 401 and response_headers.get("www-authenticate") == "Bearer"
    assert TOKEN.encode() not in body
    for path in ("/metrics", "/v1/model", "/readyz"):
        assert token_server.request("GET", path, headers=headers)[0] == 401
    assert token_server.request("GET", "/healthz")[0] == 200  # liveness needs no token
    status, _, body = post_image(token_server, jpeg, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and json.loads(body)["results"][0]["label"] == "red"


def start_slow_request(server, jpeg: bytes):
    """A classify request whose body is only half sent: it stays in flight until ``finish`` is called."""
    conn = server.connection()
    conn.putrequest("POST", "/v1/classify")
    conn.putheader("Content-Type", "image/jpeg")
    conn.putheader("Content-Length", str(len(jpeg)))
    conn.endheaders()
    conn.send(jpeg[: len(jpeg) // 2])

    def finish():
        conn.send(jpeg[len(jpeg) // 2:])
        response = conn.getresponse()
        result = response.status, json.loads(response.read())
        conn.close()
        return result

    return finish


def test_full_server_answers_503_with_retry_after(files):
    proc = ServerProcess(files["model"], "--max-concurrent", "1", log_dir=files["folder"])
    try:
        jpeg = files["images"]["blue.jpg"].read_bytes()
        finish = start_slow_request(proc, jpeg)
        time.sleep(0.3)  # let the server start reading the first body
        status, headers, body = post_image(proc, jpeg)
        assert status == 503 and headers.get("retry-after") == "1", body
        status, answer = finish()
        assert status == 200 and answer["results"][0]["label"] == "blue"
        assert post_image(proc, jpeg)[0] == 200  # the slot is free again
    finally:
        assert proc.terminate() == 0


def test_sigterm_drains_the_request_in_flight_and_exits_0(files):
    proc = ServerProcess(files["model"], log_dir=files["folder"])
    jpeg = files["images"]["green.jpg"].read_bytes()
    finish = start_slow_request(proc, jpeg)
    time.sleep(0.3)
    proc.proc.send_signal(15)
    time.sleep(0.3)
    assert proc.proc.poll() is None  # still draining
    status, answer = finish()
    assert status == 200 and answer["results"][0]["label"] == "green"
    assert proc.terminate() == 0, proc.output()


def test_non_local_bind_needs_a_token_or_insecure(files):
    result = CliRunner().invoke(cli, ["serve", str(files["model"]), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: --host 0.0.0.0 accepts connections from other machines")
    assert "Traceback" not in result.output


def test_a_short_token_file_is_refused(files):
    token_file = files["folder"] / "short-token"
    token_file.write_text("abc\n")
    result = CliRunner().invoke(cli, ["serve", str(files["model"]), "--token-file", str(token_file)])
    assert result.exit_code == 2 and "at least 16 characters" in result.output


def write_clip(path, frames=20, size=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[..., 0] = 220  # BGR: blue
        writer.write(frame)
    writer.release()
    return path


def test_an_attached_source_feeds_metrics_and_readiness(files):
    clip = write_clip(files["folder"] / "clip.avi")
    proc = ServerProcess(files["model"], "--source", clip, log_dir=files["folder"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.request("GET", "/readyz")[0] != 200:
            time.sleep(0.1)
        first = metric_samples(proc)
        time.sleep(1.5)
        second = metric_samples(proc)
        status, ready = proc.json("GET", "/readyz")
        assert status == 200 and ready["source"] == str(clip)
        frames = _get(second, "edgecnn_source_frames_total") - _get(first, "edgecnn_source_frames_total")
        # The clip plays in real time (20 fps) and loops: about 30 frames in 1.5 s (10..45 allows a busy machine).
        assert 10 <= frames <= 45, frames
        assert _get(second, "edgecnn_source_fps") > 0
        for stage in ("capture", "preprocess", "inference", "postprocess"):
            count = _get(second, "edgecnn_source_stage_seconds_count", stage=stage)
            assert count >= frames, (stage, count)
        assert _get(second, "edgecnn_predictions_total", label="blue", origin="source") >= frames
        assert _get(second, "edgecnn_predictions_total", label="red", origin="source") == 0
        # The API still answers beside the loop.
        assert post_image(proc, files["images"]["red.jpg"].read_bytes())[0] == 200
    finally:
        assert proc.terminate() == 0, proc.output()


def test_a_source_that_cannot_open_makes_readyz_503(files):
    # No camera on these machines (docs/guide: VideoCapture(0) fails); index 7 is absent on a device too.
    proc = ServerProcess(files["model"], "--source", "7", log_dir=files["folder"])
    try:
        status, ready = proc.json("GET", "/readyz")
        assert status == 503 and "not delivering" in ready["reason"]
        assert proc.request("GET", "/healthz")[0] == 200
        assert post_image(proc, files["images"]["red.jpg"].read_bytes())[0] == 200
    finally:
        assert proc.terminate() == 0, proc.output()


def test_a_missing_source_is_refused_before_serving(files):
    result = CliRunner().invoke(cli, ["serve", str(files["model"]), "--source", str(files["folder"] / "nothing")])
    assert result.exit_code == 2 and result.output.startswith("Error: unknown source"), result.output


def read_mjpeg_frames(conn, count: int) -> list[np.ndarray]:
    """``count`` JPEG parts of a multipart/x-mixed-replace stream, decoded."""
    response = conn.getresponse()
    assert response.status == 200
    boundary = response.getheader("content-type").split("boundary=")[1].encode()
    frames = []
    while len(frames) < count:
        line = response.fp.readline()
        if line.strip() != b"--" + boundary:
            continue
        headers = {}
        while (line := response.fp.readline().strip()):
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        data = response.fp.read(int(headers["content-length"]))
        frames.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    return frames


def test_stream_mjpg_shows_the_annotated_source_to_several_viewers(files):
    clip = write_clip(files["folder"] / "clip-stream.avi")
    proc = ServerProcess(files["model"], "--source", clip, log_dir=files["folder"])
    try:
        viewers = [proc.connection(timeout=10) for _ in range(2)]
        for conn in viewers:
            conn.request("GET", "/v1/stream.mjpg")
        for conn in viewers:
            frames = read_mjpeg_frames(conn, 3)
            for frame in frames:
                assert frame is not None and frame.shape == (48, 64, 3)
                # The clip is blue (BGR 220, 0, 0); the overlay's text changes some pixels, not most.
                blue = (frame[..., 0] > 150) & (frame[..., 2] < 100)
                assert 0.5 < blue.mean() < 1.0, blue.mean()
        started = time.monotonic()
        assert proc.terminate() == 0, proc.output()  # open viewers do not hold up SIGTERM
        assert time.monotonic() - started < 5.0
    finally:
        for conn in viewers:
            conn.close()
        proc.terminate()


def test_a_client_too_slow_to_send_its_body_gets_408(files):
    proc = ServerProcess(files["model"], "--body-timeout", "0.5", log_dir=files["folder"])
    try:
        jpeg = files["images"]["red.jpg"].read_bytes()
        conn = proc.connection()
        conn.putrequest("POST", "/v1/classify")
        conn.putheader("Content-Type", "image/jpeg")
        conn.putheader("Content-Length", str(len(jpeg)))
        conn.endheaders()
        conn.send(jpeg[:100])  # and never the rest
        started = time.monotonic()
        response = conn.getresponse()
        assert response.status == 408 and "0.5 s" in json.loads(response.read())["error"]
        assert time.monotonic() - started < 5.0
        conn.close()
        assert post_image(proc, jpeg)[0] == 200
    finally:
        assert proc.terminate() == 0, proc.output()


def fuzz_cases(files, count: int, seed: int = 0):
    """Requests a hostile or broken client might send: methods, paths, content types, mangled images."""
    rng = np.random.default_rng(seed)
    images = [p.read_bytes() for p in files["images"].values()]
    paths = ["/v1/classify", "/v1/classify?top_k=2", "/v1/classify?top_k=%00", "/v1/model", "/healthz",
             "/readyz", "/metrics", "/openapi.json", "/v1/stream.mjpg", "/../etc/passwd", "/v1/classify/../model",
             "/%2e%2e/x", "/v1/" + "a" * 2000]
    kinds = ["image/jpeg", "image/png", "multipart/form-data; boundary=zz", "multipart/form-data",
             "application/json", "image/jpeg; charset=binary", "IMAGE/PNG", ""]
    for _ in range(count):
        body = bytearray(images[rng.integers(len(images))])
        mode = rng.integers(4)
        if mode == 0:  # flip bytes anywhere, header included
            for i in rng.integers(0, len(body), size=rng.integers(1, 20)):
                body[i] = rng.integers(256)
        elif mode == 1:
            body = body[: rng.integers(0, len(body))]
        elif mode == 2:
            body = bytearray(rng.integers(0, 256, size=rng.integers(0, 4000), dtype=np.uint8).tobytes())
        # Most cases are classify requests (where the parsing is); the rest probe the other routes.
        method = "POST" if rng.random() < 0.7 else ["GET", "PUT", "DELETE", "HEAD"][rng.integers(4)]
        path = paths[rng.integers(3)] if rng.random() < 0.7 else paths[rng.integers(len(paths))]
        yield method, path, bytes(body), kinds[rng.integers(len(kinds))]


def test_fuzzed_requests_never_get_a_5xx_and_the_server_stays_up(server, files):
    statuses = {}
    for method, path, body, kind in fuzz_cases(files, 300):
        status, _, _ = server.request(method, path, body if method != "GET" else None, {"Content-Type": kind})
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (method, path, kind, body[:40])
    # The cases reach the parser's answers, not only routing's (seed 0: 109 x 400, 35 x 415, 16 x 200, 31 x 404, 109 x 405).
    assert {200, 400, 415} <= set(statuses), statuses
    assert server.request("GET", "/healthz")[0] == 200
    assert _get(metric_samples(server), "edgecnn_http_requests_total", endpoint="/v1/classify", method="POST",
                status="500") == 0


def run_cli_process(*args, block=()):
    code = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in block) + \
           "from edgecnn.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_without_the_serve_extra_the_error_names_it(files):
    proc = run_cli_process("serve", files["model"], block=("starlette", "uvicorn"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert 'pip install "edgecnn[serve]"' in proc.stderr


def test_a_missing_model_is_one_line(files):
    proc = run_cli_process("serve", files["folder"] / "nope.tflite")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("Error: ") and len(proc.stderr.strip().splitlines()) == 1

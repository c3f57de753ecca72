"""Start and stop ``mjpeg_server.py`` processes for tests, and read what they logged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SERVER = Path(__file__).with_name("mjpeg_server.py")


class Server:
    """One server process; ``port`` is known once it listens. Kill it with a real signal."""

    def __init__(self, folder: Path, *args, port: int = 0, log: Path | None = None):
        self.folder = Path(folder)
        self.log = log or self.folder / "server.jsonl"
        port_file = self.folder / f"port-{time.monotonic_ns()}"
        self.process = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), "--port-file",
                                         str(port_file), "--log", str(self.log), *map(str, args)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mjpeg server did not start: {self.process.stderr.read().decode()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        self.process.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def events(log: Path, kind: str | None = None) -> list[dict]:
    if not Path(log).exists():
        return []
    rows = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
    return [r for r in rows if kind is None or r["event"] == kind]


RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # the GStreamer bindings are Debian packages, not in the venv


def rtsp_unavailable() -> str | None:
    """Why an RTSP server cannot be started here (None when it can)."""
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "missing = [n for n in ('videotestsrc', 'jpegenc', 'rtpjpegpay') if not Gst.ElementFactory.find(n)]; "
             "print(' '.join(missing))")
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing"
    done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"GStreamer RTSP server bindings missing (run tools/rtsp_server_deps.sh): {done.stderr.strip()[-200:]}"
    if done.stdout.strip():
        return f"GStreamer elements missing: {done.stdout.strip()} (gstreamer1.0-plugins-base/-good)"
    return None


class RtspServer(Server):
    """``tests/rtsp_server.py``: rtsp://127.0.0.1:PORT/cam, MJPEG over RTP at 20 FPS."""

    def __init__(self, folder: Path, port: int = 0):  # noqa: super().__init__ starts another program
        self.folder = Path(folder)
        port_file = self.folder / f"rtsp-port-{time.monotonic_ns()}"
        self.process = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(port_file), str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rtsp server did not start: {self.process.stderr.read().decode()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

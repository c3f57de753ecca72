"""An RTSP camera for stream tests, from Debian's GStreamer RTSP server (run with the system python3).

    /usr/bin/python3 tests/rtsp_server.py PORT_FILE [PORT]

Serves ``rtsp://127.0.0.1:PORT/cam``: a test pattern as MJPEG over RTP (jpegenc ! rtpjpegpay), 20 FPS,
128x96. Needs python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-good
(tools/rtsp_server_deps.sh installs them); the test skips, saying so, where they are missing.
"""

import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = ("( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=128,height=96,framerate=20/1 "
            "! jpegenc ! rtpjpegpay name=pay0 pt=26 )")


def main() -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(sys.argv[2] if len(sys.argv) > 2 else "0")  # a given port (a restart), or any free one
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)
    port_file = sys.argv[1]
    with open(f"{port_file}.tmp", "w") as f:
        f.write(str(server.get_bound_port()))
    os.replace(f"{port_file}.tmp", port_file)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()

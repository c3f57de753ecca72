"""A small MJPEG-over-HTTP camera for stream tests, run as its own process (so a test can kill it).

    python tests/mjpeg_server.py --port-file P --log L [--fps 20] [--mode normal|stall-accept|
        stall-after N|corrupt-every N] [--epoch T] [--frames N]

It serves ``multipart/x-mixed-replace`` JPEG frames on 127.0.0.1, as IP cameras do. Frame ``n`` is
the ``n``-th tick of a clock that started at ``--epoch`` (like a camera that keeps running while a
client is away), and carries ``n`` drawn as 16 black/white blocks along its bottom edge
(``frame_number`` reads them back), so a test can tell which frames a client really got.
Every event goes as one JSON line into ``--log``, with ``time.time()`` on the server's side:
``listening``, ``accept`` (each connection: reconnect attempts show here), ``sent`` (frame n),
``corrupt`` (frame n sent truncated), ``stall``.

Modes: ``normal``; ``stall-accept`` (accept, never answer); ``stall-after N`` (send N frames then
go silent with the connection open); ``corrupt-every N`` (every N-th frame is cut to half its bytes,
from the 6th frame of a connection on, so that none falls into FFmpeg's probing at open, and never
the last one before ``--frames`` closes the connection).
``--frames K`` closes each connection after K frames; ``--then`` says what happens after the first
connection closed: ``serve`` (later ones are served alike), ``reject`` (later ones are accepted,
logged and closed at once: each is one reconnect attempt, with its time), ``exit`` (the process ends).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time

import cv2
import numpy as np

BOUNDARY = "edgecnnframe"
BITS = 16
SIZE = (96, 128)  # height, width
COLOURS_BGR = ((0, 0, 220), (0, 220, 0), (220, 0, 0))  # red, green, blue: 10 frames each, cycling


def make_frame(n: int) -> np.ndarray:
    image = np.full((*SIZE, 3), COLOURS_BGR[(n // 10) % 3], np.uint8)
    block = SIZE[1] // BITS
    for bit in range(BITS):
        value = 255 if (n >> bit) & 1 else 0
        image[-block:, bit * block:(bit + 1) * block] = value
    return image


def frame_number(image: np.ndarray) -> int:
    """The number ``make_frame`` drew into ``image`` (after JPEG, resizing by whole factors is fine)."""
    height, width = image.shape[:2]
    block = width // BITS
    row = image[height - block // 2, :, :].astype(np.int32).mean(axis=1)
    return sum(1 << bit for bit in range(BITS) if row[bit * block + block // 2] > 127)


class Log:
    def __init__(self, path):
        self.path, self.lock = path, threading.Lock()

    def __call__(self, event: str, **fields) -> None:
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")
            f.flush()


def serve_client(conn: socket.socket, args, log: Log) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if args.served and args.then == "reject":
        conn.close()
        log("rejected")
        return
    if args.mode == "stall-accept":
        log("stall")
        time.sleep(3600)
        return
    try:
        conn.recv(65536)  # the request; any path will do
        conn.sendall((f"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n"
                      "Cache-Control: no-cache\r\n\r\n").encode())
        sent = 0
        while args.frames is None or sent < args.frames:
            n = int((time.time() - args.epoch) * args.fps) + 1
            time.sleep(max(0.0, args.epoch + n / args.fps - time.time()))
            if args.stall_after is not None and sent >= args.stall_after:
                log("stall", after=sent)
                time.sleep(3600)
            jpeg = cv2.imencode(".jpg", make_frame(n), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            # Never the last frame of a connection: a bad frame right before the end looks like the end.
            last = args.frames is not None and sent == args.frames - 1
            corrupt = args.corrupt_every and sent >= 5 and not last and n % args.corrupt_every == 0
            if corrupt:
                jpeg = jpeg[: len(jpeg) // 2]
            conn.sendall((f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode()
                         + jpeg + b"\r\n")
            log("corrupt" if corrupt else "sent", n=n)
            sent += 1
    except OSError:
        pass  # the client went away
    finally:
        conn.close()
    log("closed")
    args.served = True
    if args.then == "exit":
        os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--epoch", type=float, default=None)
    parser.add_argument("--frames", type=int, default=None, help="frames per connection, then close")
    parser.add_argument("--mode", default="normal", choices=["normal", "stall-accept", "stall-after", "corrupt-every"])
    parser.add_argument("--n", type=int, default=None, help="N for stall-after and corrupt-every")
    parser.add_argument("--then", default="serve", choices=["serve", "reject", "exit"])
    args = parser.parse_args()
    args.epoch = time.time() if args.epoch is None else args.epoch
    args.stall_after = args.n if args.mode == "stall-after" else None
    args.corrupt_every = args.n if args.mode == "corrupt-every" else None
    args.served = False  # the first connection has closed
    log = Log(args.log)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(8)
    port = server.getsockname()[1]
    log("listening", port=port, pid=os.getpid())
    tmp = f"{args.port_file}.tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)  # the test waits for this file: the socket is listening by then
    while True:
        conn, _ = server.accept()
        log("accept")
        threading.Thread(target=serve_client, args=(conn, args, log), daemon=True).start()


if __name__ == "__main__":
    main()

"""``GET /v1/stream.mjpg``: the annotated live source as multipart/x-mixed-replace (what browsers and
VLC show as video). Needs ``--source``; at most ``MAX_VIEWERS`` at once (503 beyond); each stream ends
when the client goes away or the server stops, so SIGTERM is not held up by an open viewer."""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse, StreamingResponse

BOUNDARY = "edgecnnframe"
MAX_VIEWERS = 4
POLL_S = 0.01


async def _frames(output, stopping):
    output.viewers += 1
    seen = output.jpeg_version
    try:
        while not stopping():
            if output.jpeg_version == seen or output.jpeg is None:
                await asyncio.sleep(POLL_S)
                continue
            seen, jpeg = output.jpeg_version, output.jpeg
            yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                   + jpeg + b"\r\n")
    finally:
        output.viewers -= 1


async def stream(request):
    state = request.app.state.serve
    if state.source is None:
        return JSONResponse({"error": "no live source; start the server with --source"}, status_code=404)
    output = state.source.output
    if output.viewers >= MAX_VIEWERS:
        return JSONResponse({"error": f"{MAX_VIEWERS} viewers already; retry later"}, status_code=503,
                            headers={"Retry-After": "5"})
    return StreamingResponse(_frames(output, state.stopping), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                             headers={"Cache-Control": "no-store"})

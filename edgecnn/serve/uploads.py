"""Reading a classify request's images: a raw JPEG/PNG body or a multipart form, within limits.

The body is read in chunks and abandoned with 413 as soon as it passes ``max_bytes`` (a declared
Content-Length over the limit is refused before anything is read), and with 408 when the client
takes longer than ``timeout_s`` to send it. Multipart parts are parsed by Starlette's parser
(python-multipart); their file names are echoed back as labels only, never used as paths.
"""

from __future__ import annotations

import asyncio
import dataclasses

from starlette.formparsers import MultiPartException, MultiPartParser

from edgecnn.errors import RequestRejected

RAW_TYPES = ("image/jpeg", "image/png")


@dataclasses.dataclass
class Upload:
    name: str
    data: bytes


async def read_body(request, max_bytes: int, timeout_s: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestRejected(413, f"the body is {declared} bytes, over the limit of {max_bytes}; "
                                   "send smaller images (or start the server with a larger --max-body)")
    try:
        return await asyncio.wait_for(_read_chunks(request, max_bytes), timeout_s)
    except asyncio.TimeoutError:
        raise RequestRejected(408, f"the body took longer than {timeout_s:g} s to arrive") from None


async def _read_chunks(request, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestRejected(413, f"the body is over the limit of {max_bytes} bytes; send smaller images "
                                       "(or start the server with a larger --max-body)")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def uploads_of(request, body: bytes, max_images: int) -> list[Upload]:
    kind = media_type(request)
    if kind in RAW_TYPES:
        return [Upload("body", body)]
    if kind == "multipart/form-data":
        uploads = await _multipart(request, body, max_images)
        if not uploads:
            raise RequestRejected(400, "the multipart form has no file parts; send images as file fields")
        return uploads
    raise RequestRejected(415, f"Content-Type {kind or '(none)'} is not accepted; send image/jpeg, image/png "
                               "or multipart/form-data with image files")


async def _multipart(request, body: bytes, max_images: int) -> list[Upload]:
    async def stream():
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=max_images, max_fields=max_images)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise RequestRejected(400, f"cannot read the multipart form: {exc.message}") from None
    uploads = []
    try:
        for index, (_, value) in enumerate(form.multi_items()):
            if isinstance(value, str):
                continue
            uploads.append(Upload(_safe_name(value.filename, index), await value.read()))
    finally:
        await form.close()
    return uploads


def _safe_name(filename: str | None, index: int) -> str:
    """The client's file name, only as a label in the answer (printable, at most 100 characters)."""
    if not filename:
        return f"part{index}"
    return "".join(c for c in filename if c.isprintable())[:100] or f"part{index}"

"""The zip of associated files that the TFLite Metadata convention appends after the flatbuffer.

tflite-support and MediaPipe store files such as ``labels.txt`` as an uncompressed zip written
right after the model's flatbuffer; readers find it from the zip's end record. A flatbuffer
library re-serialises only the flatbuffer, so whoever rewrites a model must split the zip off
first and append it again (``split``/``join``). Sizes are checked before anything is unpacked.
"""

from __future__ import annotations

import io
import zipfile

from edgecnn.errors import ModelError

MAX_FILES = 64
MAX_FILE_BYTES = 64 * 1024 * 1024  # labels, vocabularies: far below this for any real classifier


def split(data: bytes, name="model") -> tuple[bytes, dict[str, bytes]]:
    """``(flatbuffer bytes, {file name: contents})``; no appended zip gives an empty dict."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return data, {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            _check_sizes(infos, name)
            start = min(info.header_offset for info in infos) if infos else len(data)
            files = {info.filename: archive.read(info) for info in infos}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise ModelError(f"{name} has a corrupt associated-files zip after its flatbuffer ({exc}); "
                         "re-export the model or re-copy the file") from None
    return data[:start], files


def join(flatbuffer: bytes, files: dict[str, bytes]) -> bytes:
    """The model with ``files`` appended as an uncompressed zip (as tflite-support writes it)."""
    if not files:
        return flatbuffer
    out = io.BytesIO()
    out.write(flatbuffer)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for file_name in sorted(files):
            info = zipfile.ZipInfo(file_name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: same labels, same bytes
            archive.writestr(info, files[file_name])
    return out.getvalue()


def _check_sizes(infos, name) -> None:
    if len(infos) > MAX_FILES:
        raise ModelError(f"{name} has {len(infos)} associated files appended, more than {MAX_FILES} "
                         "any real model carries; refusing to unpack it")
    for info in infos:
        if info.file_size > MAX_FILE_BYTES:
            raise ModelError(f"{name}'s associated file {info.filename!r} claims {info.file_size} bytes, more than "
                             f"{MAX_FILE_BYTES}; refusing to unpack it")

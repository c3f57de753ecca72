"""A TFLite external delegate library built with gcc for tests: it proves a delegate reached the interpreter.

It implements the external-delegate C API that libedgetpu and LiteRT's own external delegates export
(``tflite_plugin_create_delegate`` / ``tflite_plugin_destroy_delegate``, the pair ``load_delegate``
opens) and appends one line per call to the file named by ``EDGECNN_FAKE_DELEGATE_LOG``:

    create <key>=<value> ...     the plugin was asked for a delegate (with the options it was given)
    prepare                      the interpreter applied the delegate to its graph (ModifyGraphWithDelegate)
    destroy                      the delegate was freed

Its ``Prepare`` claims no nodes, so the model still runs on the CPU kernels and gives the same
answers; only a delegate that was really handed to the interpreter is ever asked to prepare.
``EDGECNN_FAKE_DELEGATE_MODE=refuse`` makes ``create`` report an error and return NULL, as
libedgetpu does when no Coral is plugged in.

No TFLite C headers are installed here (the tensorflow wheel ships none of lite/core/c), so the
struct is declared by hand. Its layout is TfLiteDelegate from tensorflow/lite/core/c/common.h
(TF 2.13+, the same in LiteRT 2.x): data_, then four function pointers (Prepare,
CopyFromBufferHandle, CopyToBufferHandle, FreeBufferHandle), int64_t flags, then
opaque_delegate_builder. Only data_, Prepare and flags are read for a delegate whose builder is NULL.
Claiming nodes is left out: it needs TfLiteContext and TfLiteRegistration (passed by value, and grown
over TFLite versions), whose hand-declared layouts could corrupt the stack instead of failing a test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int TfLiteStatus;              /* kTfLiteOk = 0, kTfLiteError = 1 */
struct TfLiteContext;

typedef struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(struct TfLiteContext* context, struct TfLiteDelegate* delegate);
  void* CopyFromBufferHandle;
  void* CopyToBufferHandle;
  void* FreeBufferHandle;
  int64_t flags;                        /* kTfLiteDelegateFlagsNone */
  void* opaque_delegate_builder;        /* NULL: the classic (non-opaque) delegate API */
} TfLiteDelegate;

static void record(const char* line) {
  const char* path = getenv("EDGECNN_FAKE_DELEGATE_LOG");
  if (!path) return;
  FILE* f = fopen(path, "a");
  if (!f) return;
  fprintf(f, "%s\n", line);
  fclose(f);
}

static TfLiteStatus prepare(struct TfLiteContext* context, TfLiteDelegate* delegate) {
  (void)context; (void)delegate;
  record("prepare");
  return 0;  /* claims no nodes: every op stays on the CPU kernels */
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, int count,
                                              void (*report_error)(const char*)) {
  char line[1024] = "create";
  for (int i = 0; i < count; i++) {
    size_t used = strlen(line);
    snprintf(line + used, sizeof line - used, " %s=%s", keys[i], values[i]);
  }
  record(line);
  const char* mode = getenv("EDGECNN_FAKE_DELEGATE_MODE");
  if (mode && strcmp(mode, "refuse") == 0) {
    if (report_error) report_error("fake delegate: no device found");
    return NULL;
  }
  TfLiteDelegate* delegate = calloc(1, sizeof(TfLiteDelegate));
  delegate->Prepare = prepare;
  return delegate;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) {
  if (!delegate) return;
  record("destroy");
  free(delegate);
}
"""


def build_fake_delegate(folder: Path, name: str = "libfake_delegate.so") -> Path:
    """Compile the library into ``folder``; skips the test when no C compiler is installed."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler (gcc) to build the test delegate library; apt-get install gcc")
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "fake_delegate.c"
    source.write_text(SOURCE)
    library = folder / name
    subprocess.run([gcc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(library), str(source)],
                   check=True, capture_output=True, text=True, timeout=60)
    return library


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []

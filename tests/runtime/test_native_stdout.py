"""native_stdout_to_stderr: what native code writes to fd 1 inside the block reaches stderr, not stdout."""

import subprocess
import sys

CODE = """
import ctypes, os, sys
from edgecnn.runtime.native_stdout import native_stdout_to_stderr
print("before", flush=False)
libc = ctypes.CDLL(None)
with native_stdout_to_stderr():
    os.write(1, b"native-fd-write\\n")
    libc.printf(b"native-printf-no-newline")
    with native_stdout_to_stderr():  # nested: still redirected, restored only by the outer block
        os.write(1, b"nested\\n")
    os.write(1, b"after-nested\\n")
print("after")
"""


def test_native_writes_inside_the_block_go_to_stderr():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["before", "after"]
    for text in ("native-fd-write", "native-printf-no-newline", "nested", "after-nested"):
        assert text in done.stderr

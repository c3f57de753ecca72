"""devices/setup-raspberry-pi.sh stops on 32-bit Raspberry Pi OS before pip fails there."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "devices" / "setup-raspberry-pi.sh"


def _fake_pi(tmp_path, machine, userland):
    """A PATH whose uname/dpkg report a Pi's platform and whose sudo records that it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"uname": f"echo {machine}", "dpkg": f"echo {userland}",
                       "sudo": f"echo sudo \"$@\" >> {tmp_path}/sudo.log; exit 1"}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin", HOME=str(tmp_path))
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("machine,userland", [("aarch64", "armhf"), ("armv7l", "armhf")])
def test_32_bit_userland_is_refused_before_anything_is_installed(tmp_path, machine, userland):
    done = _fake_pi(tmp_path, machine, userland)
    assert done.returncode == 1
    assert "64-bit Raspberry Pi OS" in done.stderr
    assert not (tmp_path / "sudo.log").exists()  # no apt-get, no pip: it stopped first


def test_64_bit_userland_gets_past_the_platform_check(tmp_path):
    done = _fake_pi(tmp_path, "aarch64", "arm64")
    assert "32-bit" not in done.stderr
    assert (tmp_path / "sudo.log").read_text().startswith("sudo apt-get update")  # reached step 2

"""Device profiles, `edgecnn devices`, `--device` defaults, and the Pi set-up files in devices/."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from tflite_models import write_model

from edgecnn.cli import cli
from edgecnn.runtime.profile.devices import (
    DeviceProfileError,
    detect_profile,
    get_profile,
    load_profiles,
    parse_profile,
)
from edgecnn.runtime.profile.sysinfo import usable_cores

REPO = Path(__file__).resolve().parents[3]
KNOWN = ["coral-dev-board", "coral-usb-on-pi", "raspberry-pi-4", "raspberry-pi-5", "x86-64-linux"]
MINIMAL = """
name: test-board
title: Test
architecture: aarch64
python: "3.11"
install: pip install "edgecnn[device]"
defaults: {threads: 2, delegate: cpu}
camera_backend: opencv
temperature_path: /sys/class/thermal/thermal_zone0/temp
throttling: none
"""


def test_every_target_has_a_complete_profile():
    profiles = load_profiles()
    assert list(profiles) == KNOWN
    for profile in profiles.values():
        # The device only ever installs the device extra, never the training half.
        assert 'pip install "edgecnn[device]"' == profile.install
        assert profile.delegate in ("cpu", "edgetpu") and profile.default_threads() >= 1
        assert profile.notes and profile.temperature_path.startswith("/sys/")
    assert profiles["coral-usb-on-pi"].delegate == "edgetpu"
    assert profiles["raspberry-pi-5"].default_threads() == 4
    assert profiles["x86-64-linux"].default_threads() == usable_cores()


def test_devices_folder_links_to_the_packaged_profiles():
    for name in KNOWN:
        linked = REPO / "devices" / f"{name}.yaml"
        assert linked.resolve() == (REPO / "edgecnn" / "device_profiles" / f"{name}.yaml").resolve()


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(DeviceProfileError) as info:
        get_profile("raspbery-pi-5")
    assert str(info.value) == ("unknown device 'raspbery-pi-5' (did you mean 'raspberry-pi-5'?); known devices: "
                               + ", ".join(KNOWN) + " (see 'edgecnn devices')")


@pytest.mark.parametrize("change,fragment", [
    (("threads: 2", "threads: 0"), "defaults.threads must be a positive whole number or 'auto', got 0"),
    (("delegate: cpu", "delegate: npu"), "defaults.delegate must be one of cpu, gpu, edgetpu, got 'npu'"),
    (("throttling: none", ""), "lacks throttling; add them"),
])
def test_malformed_profiles_are_refused(change, fragment):
    with pytest.raises(DeviceProfileError, match=fragment):
        parse_profile(MINIMAL.replace(*change), source="bad.yaml")
    assert parse_profile(MINIMAL).threads == 2


@pytest.mark.parametrize("board,arch,expected", [
    ("Raspberry Pi 5 Model B Rev 1.0", "aarch64", "raspberry-pi-5"),
    ("Raspberry Pi 4 Model B Rev 1.4", "aarch64", "raspberry-pi-4"),
    (None, "x86_64", "x86-64-linux"),
    (None, "aarch64", None),
])
def test_detect_profile(board, arch, expected):
    profile = detect_profile(board, arch)
    assert (profile.name if profile else None) == expected


def test_devices_command_lists_and_shows():
    runner = CliRunner()
    listing = runner.invoke(cli, ["devices"])
    assert listing.exit_code == 0, listing.output
    for name in KNOWN:
        assert name in listing.stdout
    shown = runner.invoke(cli, ["devices", "coral-usb-on-pi"])
    assert shown.exit_code == 0
    assert "defaults:      --threads 4 --delegate edgetpu" in shown.stdout and "libedgetpu1-std" in shown.stdout
    as_json = json.loads(runner.invoke(cli, ["devices", "--json"]).stdout)
    assert [d["name"] for d in as_json["devices"]] == KNOWN
    unknown = runner.invoke(cli, ["devices", "pi9"])
    assert unknown.exit_code == 2 and "Error: unknown device 'pi9'; known devices: coral-dev-board" in unknown.output


def test_device_option_applies_the_profiles_defaults(tmp_path):
    model = write_model(tmp_path / "m.tflite")
    result = CliRunner().invoke(cli, ["profile", str(model), "--device", "raspberry-pi-5", "--runs", "3",
                                      "--warmup", "0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["threads"] == 4 and report["delegate"] == "cpu"
    assert report["device"] == report["device_profile"] == "raspberry-pi-5"
    # An explicit option wins over the profile.
    result = CliRunner().invoke(cli, ["profile", str(model), "--device", "raspberry-pi-5", "--threads", "1",
                                      "--runs", "3", "--json"])
    assert json.loads(result.stdout)["threads"] == 1


def test_device_with_an_absent_delegate_fails_or_falls_back(tmp_path):
    model = write_model(tmp_path / "m.tflite")
    args = ["profile", str(model), "--device", "coral-usb-on-pi", "--runs", "3", "--warmup", "0"]
    failed = CliRunner().invoke(cli, args)
    assert failed.exit_code == 2
    assert "Error: Edge TPU delegate unavailable: libedgetpu.so.1 is not installed" in failed.output
    fell_back = CliRunner().invoke(cli, args + ["--fallback", "cpu", "--json"])
    assert fell_back.exit_code == 0, fell_back.output
    report = json.loads(fell_back.stdout)
    assert report["requested_delegate"] == "edgetpu" and report["delegate"] == "cpu"
    assert any("running on the CPU instead" in w for w in report["warnings"])


def test_setup_script_is_valid_bash_and_makes_a_venv_that_sees_picamera2():
    script = REPO / "devices" / "setup-raspberry-pi.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "python3 -m venv --system-site-packages" in text
    assert "python3-picamera2" in text and 'EDGECNN_SPEC="${EDGECNN_SPEC:-edgecnn[device]}"' in text
    assert "libedgetpu1-std" in text and "coral-edgetpu-stable main" in text


def test_systemd_unit_runs_headless_and_restarts_on_failure(tmp_path):
    unit = (REPO / "devices" / "edgecnn.service").read_text()
    assert "Restart=on-failure" in unit and "KillSignal=SIGTERM" in unit
    exec_line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert " run @MODEL@ " in exec_line and "--headless" in exec_line and "--json" in exec_line
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit was checked as text only, not by systemd")
    # With the placeholders filled in, systemd itself accepts the unit.
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    exe = tmp_path / ".venv" / "bin" / "edgecnn"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    filled = unit.replace("@USER@", "root").replace("@HOME@", str(tmp_path)).replace("@MODEL@", "/m.tflite")
    (tmp_path / "edgecnn.service").write_text(filled)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "edgecnn.service")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

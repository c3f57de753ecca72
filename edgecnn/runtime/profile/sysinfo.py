"""What machine a measurement was taken on: CPU, cores, OS, board, temperature, throttling.

A latency figure means little without the machine behind it, and on a Raspberry Pi a hot
board slows down on its own (the firmware lowers the clock from about 80 degC), so the
profiler records the thermal state before and after a run and flags a throttled one.
Everything here reads files under /proc and /sys or runs ``vcgencmd``; anything absent
(a laptop has no vcgencmd, a container may have no thermal zone) is reported as None.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
CPUINFO = Path("/proc/cpuinfo")
OS_RELEASE = Path("/etc/os-release")

# ``vcgencmd get_throttled`` bits (Raspberry Pi firmware). Bits 0-3 describe *now*,
# bits 16-19 say the same thing *has happened since boot* (sticky).
THROTTLE_BITS = {
    0: "under-voltage",
    1: "arm frequency capped",
    2: "throttled",
    3: "soft temperature limit",
}
STICKY_SHIFT = 16
NOW_MASK = 0xF
STICKY_MASK = 0xF << STICKY_SHIFT

# ARM "CPU part" numbers of /proc/cpuinfo, for boards whose cpuinfo has no "model name".
ARM_CPU_PARTS = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xd40": "Neoverse-V1",
    "0xd4f": "Neoverse-V2", "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710",
}


@dataclasses.dataclass
class ThermalState:
    """One reading: SoC temperature and the firmware's throttling word (None where unavailable)."""

    temperature_c: float | None = None
    throttled_raw: int | None = None  # vcgencmd get_throttled value

    @property
    def throttled_now(self) -> list[str]:
        """The throttling conditions active at the moment of the reading."""
        if self.throttled_raw is None:
            return []
        return [name for bit, name in THROTTLE_BITS.items() if self.throttled_raw & (1 << bit)]

    def to_dict(self) -> dict:
        return {
            "temperature_c": self.temperature_c,
            "throttled_raw": None if self.throttled_raw is None else hex(self.throttled_raw),
            "throttled_now": self.throttled_now,
        }


def read_thermal_state(temperature_path=THERMAL_ZONE) -> ThermalState:
    return ThermalState(temperature_c=read_temperature_c(temperature_path), throttled_raw=read_throttled())


def read_temperature_c(path=THERMAL_ZONE) -> float | None:
    """The temperature in degC from a sysfs file in millidegrees, or None if it cannot be read."""
    text = _read_text(Path(path))
    if text is None:
        return None
    try:
        return round(int(text.strip()) / 1000.0, 1)
    except ValueError:
        return None


def read_throttled() -> int | None:
    """``vcgencmd get_throttled`` as an int ('throttled=0x50005' -> 0x50005); None without vcgencmd."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_throttled(done.stdout) if done.returncode == 0 else None


def parse_throttled(text: str) -> int | None:
    value = text.strip().split("=", 1)[-1].strip()
    try:
        return int(value, 0)
    except ValueError:
        return None


def throttling_verdict(before: ThermalState, after: ThermalState) -> tuple[bool, list[str]]:
    """(throttled?, reasons) for a run between two readings.

    A run counts as throttled when a condition is active at either end, or when a sticky
    "has occurred" bit appeared during the run. Sticky bits already set before the run say
    nothing about it (they may be from hours ago), so they are not held against it.
    """
    reasons = []
    for label, state in (("before", before), ("after", after)):
        reasons += [f"{name} ({label})" for name in state.throttled_now]
    if before.throttled_raw is not None and after.throttled_raw is not None:
        appeared = (after.throttled_raw & ~before.throttled_raw) & STICKY_MASK
        reasons += [f"{THROTTLE_BITS[bit - STICKY_SHIFT]} occurred during the run"
                    for bit in range(STICKY_SHIFT, STICKY_SHIFT + 4) if appeared & (1 << bit)]
    return bool(reasons), reasons


def board_model() -> str | None:
    """The board's name from the device tree ('Raspberry Pi 5 Model B Rev 1.0'), None on PCs."""
    text = _read_text(DEVICE_TREE_MODEL)
    if text is None:
        return None
    return text.replace("\x00", "").strip() or None  # the device tree ends strings with NUL


def is_raspberry_pi(model: str | None = None) -> bool:
    model = board_model() if model is None else model
    return bool(model) and model.startswith("Raspberry Pi")


def cpu_model(cpuinfo: str | None = None) -> str:
    """A human-readable CPU name from /proc/cpuinfo, falling back to the machine architecture."""
    cpuinfo = _read_text(CPUINFO) if cpuinfo is None else cpuinfo
    fields = _cpuinfo_fields(cpuinfo or "")
    if fields.get("model name"):
        return fields["model name"]
    part = fields.get("CPU part", "").lower()
    if part in ARM_CPU_PARTS:
        return f"ARM {ARM_CPU_PARTS[part]}"
    return fields.get("Hardware") or platform.processor() or platform.machine()


def _cpuinfo_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def usable_cores() -> int:
    """Cores this process may run on (a container or taskset can allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def os_name() -> str:
    text = _read_text(OS_RELEASE) or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def system_info() -> dict:
    """The environment block of a profile report (cheap: file reads only, no subprocess)."""
    board = board_model()
    return {
        "board": board,
        "raspberry_pi": is_raspberry_pi(board),
        "cpu_model": cpu_model(),
        "architecture": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "os": os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "executable": sys.executable,
    }


def device_label(info: dict) -> str:
    """A short name for the machine: the board if it has one, else the CPU model and architecture."""
    if info.get("board"):
        return info["board"]
    return f"{info.get('cpu_model', '?')} ({info.get('architecture', '?')}, {info.get('usable_cores', '?')} cores)"


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process, so a peak can be measured per row.

    Linux >= 4.0 resets it when "5" is written to /proc/self/clear_refs. Returns False where
    that is not possible; the peak then covers the whole process so far.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int | None:
    """Peak resident memory of this process (VmHWM; ru_maxrss where /proc is absent)."""
    for line in (_read_text(Path("/proc/self/status")) or "").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None

"""Device profiles: what edgecnn knows about each target (threads, delegate, camera, thermals).

One YAML per target in ``edgecnn/device_profiles/`` (inside the package, so an installed
edgecnn finds them as well as a checkout). ``edgecnn profile --device NAME`` takes its
default threads and delegate from here; ``edgecnn devices`` lists them.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

import yaml

from edgecnn.errors import EdgecnnError, closest
from edgecnn.runtime.profile.sysinfo import usable_cores

PROFILE_PACKAGE = "edgecnn.device_profiles"
DELEGATES = ("cpu", "gpu", "edgetpu")
REQUIRED_FIELDS = ("name", "title", "architecture", "python", "install", "defaults", "camera_backend",
                   "temperature_path", "throttling")


class DeviceProfileError(EdgecnnError):
    """An unknown device name, or a profile file that does not hold what a profile needs."""


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    name: str
    title: str
    architecture: str
    python: str
    install: str
    threads: int | str  # a positive count, or "auto" (one per usable core)
    delegate: str
    camera_backend: str
    temperature_path: str
    throttling: str
    soc: str = ""
    os: str = ""
    board_match: str | None = None
    notes: tuple[str, ...] = ()

    def default_threads(self) -> int:
        return usable_cores() if self.threads == "auto" else int(self.threads)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["notes"] = list(self.notes)
        return data


def load_profiles() -> dict[str, DeviceProfile]:
    """Every shipped profile, by name, in name order."""
    profiles = {}
    for entry in sorted(resources.files(PROFILE_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            profile = parse_profile(entry.read_text(encoding="utf-8"), source=entry.name)
            profiles[profile.name] = profile
    return profiles


def get_profile(name: str) -> DeviceProfile:
    """The profile called ``name``, or an error that lists the known ones."""
    profiles = load_profiles()
    if name not in profiles:
        raise DeviceProfileError(f"unknown device {name!r}{closest(name, profiles)}; "
                                 f"known devices: {', '.join(profiles)} (see 'edgecnn devices')")
    return profiles[name]


def detect_profile(board: str | None, architecture: str) -> DeviceProfile | None:
    """The profile matching this machine's board name, or the generic x86-64 one on such a host.

    A Coral USB Accelerator cannot be told from the board, so a Pi with one is reported as a
    plain Pi; pass ``--device coral-usb-on-pi`` to use the accelerator's defaults.
    """
    profiles = load_profiles()
    for profile in profiles.values():
        if board and profile.board_match and board.startswith(profile.board_match):
            return profile
    if architecture in ("x86_64", "AMD64"):
        return profiles.get("x86-64-linux")
    return None


def parse_profile(text: str, source: str = "profile") -> DeviceProfile:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeviceProfileError(f"device profile {source} is not valid YAML ({exc.__class__.__name__}); fix the file") from None
    if not isinstance(raw, dict):
        raise DeviceProfileError(f"device profile {source} must be a YAML mapping; fix the file")
    missing = [field for field in REQUIRED_FIELDS if field not in raw]
    if missing:
        raise DeviceProfileError(f"device profile {source} lacks {', '.join(missing)}; add them")
    defaults = raw["defaults"] if isinstance(raw["defaults"], dict) else {}
    threads, delegate = defaults.get("threads"), defaults.get("delegate")
    if not (threads == "auto" or (isinstance(threads, int) and not isinstance(threads, bool) and threads > 0)):
        raise DeviceProfileError(f"device profile {source}: defaults.threads must be a positive whole number "
                                 f"or 'auto', got {threads!r}")
    if delegate not in DELEGATES:
        raise DeviceProfileError(f"device profile {source}: defaults.delegate must be one of "
                                 f"{', '.join(DELEGATES)}, got {delegate!r}")
    return DeviceProfile(
        name=str(raw["name"]), title=str(raw["title"]), architecture=str(raw["architecture"]),
        python=str(raw["python"]), install=str(raw["install"]), threads=threads, delegate=delegate,
        camera_backend=str(raw["camera_backend"]), temperature_path=str(raw["temperature_path"]),
        throttling=str(raw["throttling"]), soc=str(raw.get("soc") or ""), os=str(raw.get("os") or ""),
        board_match=raw.get("board_match"), notes=tuple(str(n) for n in raw.get("notes") or ()),
    )

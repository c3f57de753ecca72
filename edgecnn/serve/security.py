"""Who may talk to the server: loopback by default, a bearer token for anything wider.

- Binding to anything but a loopback address needs ``--token-file`` or an explicit ``--insecure``
  (which prints a warning): an open classifier on a LAN is an accident waiting to happen.
- The token is read from a file (never from the command line, where ``ps`` shows it), compared
  with ``hmac.compare_digest`` (constant time) and never logged or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import stat
from pathlib import Path

from edgecnn.errors import DataError, RecipeError

MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: treat as non-local
        return False


def read_token(path, *, warn=None) -> str:
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise DataError(f"the token in {path} must be one line of at least {MIN_TOKEN_CHARS} characters without "
                        "spaces; make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    mode = path.stat().st_mode
    if warn and os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        warn(f"{path} is readable by other users; chmod 600 it")
    return token


def check_bind(host: str, token: str | None, insecure: bool, *, warn) -> None:
    """Refuse a non-local bind without a token unless ``--insecure`` says so (with a warning)."""
    if is_loopback(host) or token is not None:
        return
    if not insecure:
        raise RecipeError(f"--host {host} accepts connections from other machines; give --token-file FILE "
                          "(clients send 'Authorization: Bearer <token>') or --insecure to serve without one")
    warn(f"serving on {host} without a token (--insecure): anyone who can reach this port can use the model")


def token_matches(header: str | None, token: str) -> bool:
    """True when an Authorization header carries ``Bearer <token>`` (constant-time compare)."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))

"""Where rhlab keeps user-level state (the prepared embedded model, caches)."""

from __future__ import annotations

import os
from pathlib import Path


def rhlab_home() -> Path:
    """`RHLAB_HOME`, else `$XDG_CACHE_HOME/rhlab`, else `~/.cache/rhlab`."""
    explicit = os.environ.get("RHLAB_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rhlab"

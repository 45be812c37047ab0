"""Where MoME keeps its per-user data: downloaded and installed models, downloaded samples.

One function so that the CLI, the Slicer modules and the tests agree on the location, and so that
``MOME_HOME`` can move everything at once (offline sites, shared drives, tests). It lives outside
``mome.hub`` and imports nothing but the standard library, because the sample list
(``resource_files``) needs it where the hub's dependencies may not be installed (Slicer's panel).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    """``$MOME_HOME``, else ``$XDG_CACHE_HOME/mome``, else ``~/.cache/mome``.

    Read on every call (not at import) so that a changed environment takes effect at once.
    """
    home = os.environ.get("MOME_HOME")
    if home:
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    if cache:
        return Path(cache).expanduser() / "mome"
    return Path.home() / ".cache" / "mome"

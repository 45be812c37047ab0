"""``state.json`` of the model store: which model is active, and which were active before.

Kept apart from the package folders so that switching models never touches a package. Written
atomically (temporary file + rename), so a crash leaves the old state or the new one, never half.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "state.json"
#: Older activations beyond this are forgotten: rollback is an undo, not an audit log.
HISTORY_LIMIT = 50

Ref = tuple[str, str]  # (name, version)


@dataclass
class StoreState:
    active: Ref | None = None
    history: list[Ref] = field(default_factory=list)  # earlier active models, most recent last

    @classmethod
    def read(cls, root: Path) -> "StoreState":
        """The state under ``root``; a missing file is an empty store, a corrupt one an error."""
        path = root / STATE_FILE
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            active = data.get("active")
            return cls(
                active=(active["name"], active["version"]) if active else None,
                history=[(h["name"], h["version"]) for h in data.get("history", [])],
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{path} is damaged ({exc}); delete it and activate a model again (`mome models activate NAME@VERSION`)"
            ) from exc

    def write(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        data = {
            "active": _ref_json(self.active) if self.active else None,
            "history": [_ref_json(ref) for ref in self.history[-HISTORY_LIMIT:]],
        }
        tmp = root / f".{STATE_FILE}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, root / STATE_FILE)
        finally:
            tmp.unlink(missing_ok=True)


def _ref_json(ref: Ref) -> dict[str, str]:
    return {"name": ref[0], "version": ref[1]}

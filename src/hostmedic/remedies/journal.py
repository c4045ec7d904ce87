"""The remedy journal: one JSON line per event, appended, flushed and fsynced before the
next step (write-ahead), so a crash between acting and recording leaves a *started*
entry that ``--list`` shows as interrupted and ``--undo`` can still reverse.

Events of one action share its id: ``started`` (with the before-state), then ``done`` or
``failed``; later ``undo-started`` then ``undone`` or ``undo-failed``. Appends hold an
exclusive ``flock`` so concurrent ``hostmedic fix`` runs never interleave lines. A line
that is not valid JSON (a torn write, tampering) is counted and skipped, never fatal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hostmedic.errors import UsageError

DEFAULT_STATE_DIR = "/var/lib/hostmedic"
JOURNAL = "journal.jsonl"

# Event → the state an entry is in after it.
STATES = {
    "started": "interrupted",  # no done/failed after it: the run ended mid-way
    "done": "done",
    "failed": "failed",
    "undo-started": "undo-interrupted",
    "undone": "undone",
    "undo-failed": "undo-failed",
}


@dataclass
class Entry:
    """One action as folded from its events."""

    id: str
    time: float
    action: str
    target: str
    reversible: bool
    before: dict[str, Any]
    state: str = "interrupted"
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The entry as the ``--json`` documents carry it."""
        return {
            "id": self.id,
            "time": self.time,
            "action": self.action,
            "target": self.target,
            "state": self.state,
            "reversible": self.reversible,
            "before": self.before,
            "result": self.result,
            "error": self.error,
            "events": [{"event": e.get("event"), "time": e.get("time")} for e in self.events],
        }


def new_id() -> str:
    """A short id an operator can type: date, time and four random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class Journal:
    """The journal file of one state directory."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, JOURNAL)
        self.skipped_lines = 0

    def _ensure_dir(self) -> None:
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                "error.cannot_write", path=self.state_dir, detail=exc.strerror or str(exc)
            ) from exc

    def append(self, event: str, entry_id: str, **fields: Any) -> None:
        """Write one event durably (fsync) before returning."""
        self._ensure_dir()
        record = {"id": entry_id, "event": event, "time": time.time(), **fields}
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise UsageError(
                "error.cannot_write", path=self.path, detail=exc.strerror or str(exc)
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _records(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                with contextlib.suppress(OSError):
                    fcntl.flock(f.fileno(), fcntl.LOCK_SH)
                for line in f:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        self.skipped_lines += 1
                        continue
                    if isinstance(record, dict) and isinstance(record.get("id"), str):
                        yield record
                    else:
                        self.skipped_lines += 1
        except FileNotFoundError:
            return
        except OSError as exc:
            raise UsageError(
                "error.cannot_read", path=self.path, detail=exc.strerror or str(exc)
            ) from exc

    def entries(self) -> list[Entry]:
        """Every action, oldest first, with its current state."""
        found: dict[str, Entry] = {}
        for r in self._records():
            event = str(r.get("event"))
            entry = found.get(r["id"])
            if entry is None:
                before = r.get("before")
                if event != "started":
                    self.skipped_lines += 1
                    continue
                entry = found[r["id"]] = Entry(
                    id=r["id"],
                    time=float(r.get("time") or 0),
                    action=str(r.get("action")),
                    target=str(r.get("target")),
                    reversible=bool(r.get("reversible")),
                    before=before if isinstance(before, dict) else {},
                )
            entry.events.append(r)
            entry.state = STATES.get(event, entry.state)
            if isinstance(r.get("result"), dict):
                entry.result = r["result"]
            if r.get("error"):
                entry.error = str(r["error"])
        return list(found.values())

    def get(self, entry_id: str) -> Entry:
        """The entry with this id (a UsageError when there is none)."""
        for entry in self.entries():
            if entry.id == entry_id:
                return entry
        raise UsageError("error.fix.no_entry", id=entry_id, path=self.path)

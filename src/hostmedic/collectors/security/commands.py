"""Shared parsing of the command lines startup items run: which program a line starts, and
which lines of a script or profile are active (not comments or blank)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

from hostmedic.facts.security import FileLine, StartupEntry

# Words that run the next word as the command
_WRAPPERS = frozenset(
    {"nohup", "exec", "sudo", "nice", "ionice", "setsid", "env", "command", "time", "chroot"}
)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/usr/bin/bash"})
MAX_LINES_PER_FILE = 2000


def command_program(command: str) -> str | None:
    """The absolute path of the program a command line starts, when it names one:
    ``nohup /tmp/.x/run >/dev/null &`` → ``/tmp/.x/run``; ``sh /etc/x.sh`` → ``/etc/x.sh``."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # unbalanced quotes: a rough split is still useful evidence
        words = command.split()
    while words and (("=" in words[0] and not words[0].startswith("/")) or words[0] in _WRAPPERS):
        words.pop(0)
    if len(words) >= 2 and words[0] in _SHELLS and not words[1].startswith("-"):
        words.pop(0)
    if words and words[0].startswith("/"):
        return words[0].rstrip(";&|")
    return None


def active_lines(text: str, path: str) -> Iterator[FileLine]:
    """Numbered lines that do something: no blanks, no comments, no shebang, at most
    MAX_LINES_PER_FILE of them."""
    count = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        count += 1
        if count > MAX_LINES_PER_FILE:
            return
        yield FileLine(path, number, stripped[:500])


def script_entries(kind: str, path: str, text: str, user: str | None) -> list[StartupEntry]:
    """A script the machine runs by itself: the script as the entry point (line 0), then
    its active lines, which are judged by their text only."""
    head = StartupEntry(kind, FileLine(path, 0, ""), user, path, path, entry_point=True)
    return [head] + [
        StartupEntry(kind, line, user, line.text, command_program(line.text))
        for line in active_lines(text, path)
    ]

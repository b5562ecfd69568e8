"""Writing a benchmark's section into benchmarks/RESULTS.md, leaving every other section untouched."""

from __future__ import annotations

import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


#: in a section, this line and everything after it (hand-written notes, history) survive a rewrite
NOTES = "<!-- notes: kept when a benchmark rewrites this section -->"


def write_section(section: str, text: str) -> None:
    """Replace the section headed ``section`` (up to the next ``## ``) with ``text``, or append it; the
    section's notes (from the :data:`NOTES` line on) are kept after the new text.

    The file is re-read right before writing, so sections written meanwhile by other benchmarks survive.
    """
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if section in current:
        start = current.index(section)
        nxt = current.find("\n## ", start + len(section))
        end = len(current) if nxt < 0 else nxt + 1
        old = current[start:end]
        if NOTES in old:
            text = text.rstrip("\n") + "\n\n" + old[old.index(NOTES):].rstrip("\n") + "\n"
        new = current[:start] + text.rstrip("\n") + "\n" + ("\n" + current[end:] if nxt >= 0 else "")
    else:
        new = current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    RESULTS.write_text(new)


def commit() -> str:
    """Short commit of the repository, marked when the working tree has changes (for a figure's record)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                                  cwd=RESULTS.parent).stdout.strip()
        except OSError:
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head} + working tree" if git("status", "--porcelain", "--untracked-files=no") else head

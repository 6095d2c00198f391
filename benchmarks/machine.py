"""Describe the machine and software a result was measured on.

A benchmark figure without its machine is not a figure: the JSON and
docs/benchmarks.md carry the core count, the CPU model, and the versions of
Python, websockets, uvloop and werkzeug, plus the git commit measured.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from typing import Any


def cpu_model() -> str:
    """Return the first ``model name`` from /proc/cpuinfo (Linux), else platform's."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(package: str) -> str:
    """Return an installed distribution's version, or ``"absent"``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def git_commit() -> str:
    """Return the short commit measured, marked ``+dirty`` if wsroute/ or plugins/ had edits.

    Other people may be changing the package while a run goes on; the mark
    says the figures belong to a working tree, not exactly to that commit.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "wsroute", "plugins"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip() or "unknown"
    return commit + ("+dirty" if dirty.stdout.strip() else "")


def describe() -> dict[str, Any]:
    """Return the machine/software description stored with every result."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "websockets": version("websockets"),
        "uvloop": version("uvloop"),
        "werkzeug": version("werkzeug"),
        "platform": platform.platform(),
        "peers": {
            name: version(name)
            for name in (
                "starlette", "fastapi", "uvicorn", "wsproto", "python-socketio", "channels", "daphne", "django",
                "aiohttp",
            )
        },
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }

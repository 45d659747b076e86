"""A watcher for the local Ray cluster a ``predict --engine ray`` driver starts: when the driver dies without
shutting Ray down (SIGKILL, out of memory), Ray's node agents (~170 MB) lived on for about a minute and its
workers kept running. The watcher learns the driver's process tree while the driver lives and, once the pipe from
the driver closes without a word, ends whatever of that tree is left.

Run as ``python ray_reaper.py PID`` (this file as a script: it imports nothing but the standard library, so it
watches within milliseconds) with a pipe from the driver on standard input; the driver writes a word on it when it shuts
Ray down itself, and the watcher then exits without touching anything; a pipe that closes without that word means
the driver died.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["descendants", "start_reaper", "stop_reaper"]


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (not ``pid`` itself)."""
    tree = _children()
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def start_reaper(driver: int) -> subprocess.Popen[bytes] | None:
    """Start the watcher for ``driver`` (this process); None where /proc is missing (not Linux). Close the
    returned process's stdin after a clean ``ray.shutdown()``; its exit status is then 0 without killing."""
    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen(  # this file as a script: no fcnedge import (seconds on a busy machine) before it watches
        [sys.executable, str(Path(__file__).resolve()), str(driver)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the driver's process group: a Ctrl-C there does not end it early
    )


def stop_reaper(reaper: subprocess.Popen[bytes]) -> None:
    """Tell the watcher the driver shut Ray down itself and wait for it to exit."""
    try:
        reaper.communicate(b"done", timeout=10)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()


def watch(driver: int, *, every: float = 0.5) -> int:
    """Learn ``driver``'s tree until standard input says "done" (return at once) or closes (the driver died: end
    what is left of its tree). Returns how many processes it signalled."""
    known: dict[int, str] = {}  # pid -> its start time: a pid the kernel reuses later is not ours
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], every)
        if ready:
            said = os.read(sys.stdin.fileno(), 4096)
            if said:  # the driver's word that it shut Ray down itself (a dying process closes the pipe first)
                return 0
            break  # the pipe closed without that word: the driver died
        for p in descendants(driver) - {os.getpid()} - set(known):
            started = _started(p)
            if started:  # '' : gone already
                known[p] = started
    ended: set[int] = set()
    for _ in range(3):  # a few passes: a process mid-exit or mid-fork when the first pass ran is met again
        time.sleep(every)  # let Ray's own fate-sharing go first
        for p, t in known.items():
            if _alive(p) and _started(p) == t:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
                    ended.add(p)
    return len(ended)


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


if __name__ == "__main__":
    watch(int(sys.argv[1]))

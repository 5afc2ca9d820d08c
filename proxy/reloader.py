"""Reloading policies and settings: on SIGHUP, and when their files change on disk.

Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink to a new directory, so the
files are watched by what they resolve to, not only their mtimes. Compiling runs in a worker thread
(requests keep flowing), one reload at a time; a failed one keeps the old set serving.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from .http.app import reload, reload_failed, reload_unchanged, shadow_reloaded
from .http.state import SERVICES, Loaded, ReloadStatus
from .yamldoc import ConfigError

Fingerprint = tuple[tuple[str, str, int, int, int], ...]


def fingerprint(policies: Path | None, settings: Path) -> Fingerprint:
    """Each watched file as it is now: the path, what it resolves to, inode, size and mtime.

    A missing file is a state too (empty resolution), so its return is noticed. The bundled policies
    (`policies` None) ship with the package and are not watched.
    """
    paths = [settings]
    if policies is not None:
        paths.append(policies)
        if policies.is_dir():
            paths.extend(sorted(policies.glob("*.yaml")))
    seen: list[tuple[str, str, int, int, int]] = []
    for path in paths:
        try:
            real = os.path.realpath(path)
            stat = os.stat(real)
        except OSError:
            seen.append((str(path), "", 0, 0, 0))
            continue
        seen.append((str(path), real, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(seen)


class Reloader:
    """`shadow`: compiles the candidate set (--shadow-policies), reloaded with the live one; a broken
    candidate keeps the old candidate (and is reported), never holding back the live set's reload."""

    def __init__(
        self, app: web.Application, compile_config: Callable[[], Loaded], policies: Path | None, settings: Path,
        *, shadow: Callable[[], Loaded | None] | None = None, shadow_files: tuple[Path | None, Path] | None = None,
    ) -> None:
        self._app = app
        self._compile = compile_config
        self._compile_shadow = shadow
        self._policies = policies
        self._settings = settings
        self._shadow_files = shadow_files if shadow is not None else None
        self._lock = asyncio.Lock()
        self._seen = self._fingerprint()
        self._tasks: set[asyncio.Task[bool]] = set()

    def spawn(self, trigger: str) -> None:
        """From a signal handler: reload in a task of its own (held here so it is not collected)."""
        task = asyncio.get_running_loop().create_task(self.reload(trigger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fingerprint(self) -> Fingerprint:
        seen = fingerprint(self._policies, self._settings)
        if self._shadow_files is not None:
            seen += fingerprint(*self._shadow_files)
        return seen

    async def reload(self, trigger: str) -> bool:
        """Compile the files off the event loop and swap them in; False (old set kept) if they fail."""
        async with self._lock:  # one at a time: an older compile never lands over a newer one
            # Taken before compiling: a file changed while it compiles differs next poll and is read again.
            seen = await asyncio.to_thread(self._fingerprint)
            try:
                loaded = await asyncio.to_thread(self._compile)
            except ConfigError as exc:
                problems = tuple(exc.problems)
            except OSError as exc:  # a file vanishing mid-swap, a directory made unreadable
                problems = (f"{exc.filename or ''}: {exc.strerror or type(exc).__name__}",)
            else:
                self._seen = seen
                current = self._app[SERVICES].live.current
                loaded = replace(loaded, shadow=await self._candidate(current.shadow, trigger))
                same = _versions(loaded) == _versions(current)
                if same and trigger == "watch":
                    reload_unchanged(self._app, trigger)  # touched, not changed: keep the caches
                else:
                    reload(self._app, loaded, trigger)
                return True
            self._seen = seen  # the broken files are not retried until they change again
            reload_failed(self._app, problems, trigger)
            return False

    async def watch(self, interval: float) -> None:
        """Poll the files every `interval` seconds; reload when what they resolve to changes."""
        while True:
            await asyncio.sleep(interval)
            now = await asyncio.to_thread(self._fingerprint)
            if now != self._seen:
                try:
                    await self.reload("watch")
                except Exception:  # a bug must not stop the watching: log it, keep the old set, poll on
                    self._app[SERVICES].log.exception("reload_crashed_keeping_old_config", trigger="watch")

    async def _candidate(self, old: Loaded | None, trigger: str) -> Loaded | None:
        """The candidate set compiled again, or the old one kept (and the failure reported)."""
        if self._compile_shadow is None:
            return old
        try:
            candidate = await asyncio.to_thread(self._compile_shadow)
        except ConfigError as exc:
            problems = tuple(exc.problems)
        except OSError as exc:
            problems = (f"{exc.filename or ''}: {exc.strerror or type(exc).__name__}",)
        else:
            shadow_reloaded(self._app, ReloadStatus(True, time.time(), trigger))
            return candidate
        shadow_reloaded(self._app, ReloadStatus(False, time.time(), trigger, problems))
        return old

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _versions(loaded: Loaded) -> tuple[str, str, str | None, str | None]:
    shadow = loaded.shadow
    return (loaded.policies.version, loaded.settings_version,
            shadow.policies.version if shadow else None, shadow.settings_version if shadow else None)

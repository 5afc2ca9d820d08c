"""Knowing what is loaded: a settings version beside the policy version, reloads that watch the files
the way Kubernetes updates a ConfigMap (a `..data` symlink swap), and a failed reload kept visible."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.conftest import ALL, RESTRICTED
from tests.support.harness import POLICIES, start_app
from tests.support.process import ProxyProcess, spawn_proxy
from tests.support.scripted import Script, make_scripted_app


class ConfigMapDir:
    """A directory laid out as the kubelet mounts a ConfigMap: `name -> ..data/name`, `..data -> ..<ts>`."""

    _stamp = itertools.count()

    def __init__(self, root: Path, files: dict[str, bytes]) -> None:
        self.root = root
        root.mkdir()
        self.update(files)
        for name in files:
            (root / name).symlink_to(Path("..data") / name)

    def update(self, files: dict[str, bytes]) -> None:
        """Write a new timestamped directory and swap `..data` to it in one rename, as the kubelet does."""
        old = os.readlink(self.root / "..data") if (self.root / "..data").is_symlink() else None
        fresh = self.root / f"..2026_12_04_{next(self._stamp)}"
        fresh.mkdir()
        for name, content in files.items():
            (fresh / name).write_bytes(content)
        (self.root / "..data_tmp").symlink_to(fresh.name)
        os.rename(self.root / "..data_tmp", self.root / "..data")
        if old is not None:
            shutil.rmtree(self.root / old)


def settings_bytes(users: dict[int, dict[str, Any]]) -> bytes:
    return yaml.safe_dump({"defaults": ALL, "users": {str(k): v for k, v in users.items()}}).encode()


async def admin_json(proxy: ProxyProcess, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{proxy.admin_url}{path}") as r:
        return r.status, await r.json()


async def metric(proxy: ProxyProcess, name: str) -> list[str]:
    async with aiohttp.ClientSession() as http, http.get(f"{proxy.admin_url}/metrics") as r:
        return [line for line in (await r.text()).splitlines() if line.startswith(name)]


async def wait_for(check: Any, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_a_configmap_swap_is_picked_up_a_broken_one_refused_and_a_settings_change_versioned(
    tmp_path: Path,
) -> None:
    script = Script(caller={"id": 2, "roles": []}, matters=[{"id": 500, "client": 900}])
    script.default_answer = (200, {"data": [{"id": 900, "name": "Seen"}, {"id": 950, "name": "Unseen"}],
                                   "meta": {"paging": {}, "records": 2}})
    backend = await start_app(make_scripted_app(script))
    config = ConfigMapDir(tmp_path / "settings", {"settings.yaml": settings_bytes({})})
    policies = ConfigMapDir(tmp_path / "policies", {f.name: f.read_bytes() for f in POLICIES.glob("*.yaml")})
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), config.root / "settings.yaml",
                              "--policies", str(policies.root), "--watch-interval", "0.1")

    async def names() -> list[str]:
        async with aiohttp.ClientSession() as http, http.get(
            f"{proxy.url}/api/v4/contacts.json?fields=id,name", headers={"Authorization": "Bearer token-2"}
        ) as r:
            assert r.status == 200
            return [c["name"] for c in (await r.json())["data"]]

    try:
        assert await names() == ["Seen", "Unseen"]
        _, first = await admin_json(proxy, "/readyz")
        assert first["last_reload"]["trigger"] == "start"

        # A settings-only change: no signal, the settings version moves, the policy version does not.
        config.update({"settings.yaml": settings_bytes({2: RESTRICTED})})

        async def settings_moved() -> bool:
            return bool((await admin_json(proxy, "/readyz"))[1]["settings_version"] != first["settings_version"])

        await wait_for(settings_moved)
        status, ready = await admin_json(proxy, "/readyz")
        assert status == 200 and ready["policy_version"] == first["policy_version"]
        assert ready["last_reload"] == {"successful": True, "at": ready["last_reload"]["at"], "trigger": "watch",
                                        "problems": []}
        [info] = await metric(proxy, "redaction_proxy_build_info")
        assert f'settings_version="{ready["settings_version"]}"' in info
        assert f'policy_version="{first["policy_version"]}"' in info
        assert await names() == ["Seen"]

        # A broken file swapped in: refused, the old set keeps serving, and it is visible everywhere.
        config.update({"settings.yaml": b"defaults: {contacts_visibility: sometimes}\n"})

        async def refused() -> bool:
            return await metric(proxy, "redaction_proxy_config_last_reload_successful") == [
                "redaction_proxy_config_last_reload_successful 0.0"]

        await wait_for(refused)
        status, ready_after = await admin_json(proxy, "/readyz")
        assert status == 200  # still serving the last good set, as Envoy and nginx do
        assert ready_after["last_reload"]["successful"] is False
        assert any("sometimes" in p for p in ready_after["last_reload"]["problems"])
        assert ready_after["settings_version"] == ready["settings_version"]
        _, described = await admin_json(proxy, "/policies")
        assert described["last_reload"]["successful"] is False
        assert 'redaction_proxy_config_reloads_total{outcome="failure"} 1.0' in await metric(
            proxy, "redaction_proxy_config_reloads_total")
        assert await names() == ["Seen"]

        # A good policy set swapped in is picked up too, and the gauge comes back.
        changed = {f.name: f.read_bytes() for f in POLICIES.glob("*.yaml")}
        changed["facts.yaml"] += b"\n# a comment moves the content hash\n"
        config.update({"settings.yaml": settings_bytes({2: RESTRICTED})})
        policies.update(changed)

        async def policies_moved() -> bool:
            _, now = await admin_json(proxy, "/readyz")
            return bool(now["policy_version"] != first["policy_version"] and now["last_reload"]["successful"])

        await wait_for(policies_moved)
        assert await metric(proxy, "redaction_proxy_config_last_reload_successful") == [
            "redaction_proxy_config_last_reload_successful 1.0"]
        assert await names() == ["Seen"]
    finally:
        proxy.stop()
        await backend.close()


async def test_sighup_still_reloads_with_watching_off(tmp_path: Path) -> None:
    backend = await start_app(make_scripted_app(Script(caller={"id": 2, "roles": []})))
    settings = tmp_path / "settings.yaml"
    settings.write_bytes(settings_bytes({}))
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings, "--watch-interval", "0")
    try:
        _, before = await admin_json(proxy, "/readyz")
        settings.write_bytes(settings_bytes({2: RESTRICTED}))
        await asyncio.sleep(0.3)
        assert (await admin_json(proxy, "/readyz"))[1]["settings_version"] == before["settings_version"]
        proxy.process.send_signal(signal.SIGHUP)

        async def moved() -> bool:
            _, now = await admin_json(proxy, "/readyz")
            return bool(now["settings_version"] != before["settings_version"])

        await wait_for(moved)
        _, now = await admin_json(proxy, "/readyz")
        assert now["last_reload"]["trigger"] == "signal"
    finally:
        proxy.stop()
        await backend.close()

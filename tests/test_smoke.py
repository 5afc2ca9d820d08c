from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.support.harness import start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app


async def test_activity_hours_and_rate_and_vendor(settings_file: Path, http: aiohttp.ClientSession) -> None:
    script = Script(caller={"id": 2, "roles": ["Attorney"]},
                    matters=[{"id": 500, "client": 900, "responsible_attorney": 7}])
    script.answers[("GET", "/api/v4/activities.json")] = (200, {
        "data": [
            {"id": 1, "type": "TimeEntry", "quantity": 3600.0, "price": 300.0, "total": 300.0,
             "user": {"id": 9}, "matter": {"id": 500}, "vendor": None},
            {"id": 2, "type": "ExpenseEntry", "quantity": 1.0, "price": 5.0, "total": 5.0,
             "user": {"id": 2}, "matter": {"id": 500}, "vendor": {"id": 901, "name": "Secret Vendor"}},
        ],
        "meta": {"paging": {}, "records": 2},
    })
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file)
    try:
        async with http.get(proxy.url / "api/v4/activities.json",
                            params={"fields": "id,quantity,price,total,vendor{name}"},
                            headers={"Authorization": "Bearer token-2"}) as r:
            body = await r.json()
            assert r.status == 200, body
        assert body["data"][0] == {"id": 1, "quantity": None, "quantity_redacted": True,
                                   "redacted": True, "vendor": None}
        assert body["data"][1] == {"id": 2, "quantity": 1.0, "price": 5.0, "total": 5.0,
                                   "vendor": {"name": "****", "redacted": True}}
        forwarded = script.forwarded[0].path_qs
        assert "type" in forwarded and "user" in forwarded
    finally:
        await proxy.close()
        await backend.close()

"""`redaction-proxy demo`: the demo backend and the proxy together, with requests to try.

Two users of the generated firm: Ada (user 1, Administrator, sees everything) and Rita (user 2,
restricted by every rule). The same request as each shows what the rules change.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aiohttp import web

from .config import build_config
from .serve import load, serve

TRY = """
The legacy backend (knows no visibility rules) is on http://{backend}
The proxy ({mode}) is on http://{proxy}   admin: http://{admin}/policies  /metrics

Same request, two users. Ada (token-1) sees everything; Rita (token-2) is restricted:
  curl -sg -H 'Authorization: Bearer token-1' 'http://{proxy}/api/v4/activities.json?fields=id,type,quantity_in_hours,price,total,user{{name}},vendor{{name}}&limit=5'
  curl -sg -H 'Authorization: Bearer token-2' 'http://{proxy}/api/v4/activities.json?fields=id,type,quantity_in_hours,price,total,user{{name}},vendor{{name}}&limit=5'

Contacts: Rita's list holds only contacts she may see (compare meta.records):
  curl -sg -H 'Authorization: Bearer token-1' 'http://{proxy}/api/v4/contacts.json?fields=id,name&limit=3'
  curl -sg -H 'Authorization: Bearer token-2' 'http://{proxy}/api/v4/contacts.json?fields=id,name&limit=3'

Nested contacts become stubs for Rita (senders, receivers):
  curl -sg -H 'Authorization: Bearer token-2' 'http://{proxy}/api/v4/communications.json?fields=id,senders,receivers&limit=3'

Personal Injury needs a permission Rita lacks (403), Ada has it:
  curl -sg -H 'Authorization: Bearer token-2' 'http://{proxy}/api/v4/damages.json'
  curl -sg -H 'Authorization: Bearer token-1' 'http://{proxy}/api/v4/damages.json'

The backend itself, for comparison (what the proxy protects):
  curl -sg -H 'Authorization: Bearer token-2' 'http://{backend}/api/v4/contacts.json?fields=id,name&limit=3'
"""


def demo_settings() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / "demo-settings.yaml", here.parent / "deploy" / "demo-settings.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("demo-settings.yaml not found")


def run_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args)) or 0


async def _demo(args: argparse.Namespace) -> int:
    from demo_backend import generate_firm  # lazy: the proxy package imports the demo backend only to run it
    from demo_backend import make_app as make_backend_app

    backend = web.AppRunner(make_backend_app(generate_firm(scale=1)), access_log=None)
    await backend.setup()
    host, _, port = args.backend_listen.rpartition(":")
    await web.TCPSite(backend, host, int(port)).start()
    config = build_config(argparse.Namespace(
        upstream=f"http://{args.backend_listen}", listen=args.listen, admin_listen=args.admin_listen,
        settings=str(demo_settings()), mode=args.mode,
    ), environ={})

    async def started(_: web.AppRunner) -> None:
        print(TRY.format(backend=args.backend_listen, proxy=args.listen, admin=args.admin_listen,
                         mode=args.mode), file=sys.stderr, flush=True)

    try:
        await serve(config, load(None, config.settings), started=started)
    finally:
        await backend.cleanup()
    return 0

"""`redaction-proxy demo` (what `make demo` runs) starts, and every request it prints works and shows
the difference between the two users."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.support.process import free_port


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_the_demo_prints_requests_that_show_the_rules() -> None:
    proxy, backend, admin = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "demo", "--listen", f"127.0.0.1:{proxy}",
         "--backend-listen", f"127.0.0.1:{backend}", "--admin-listen", f"127.0.0.1:{admin}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        printed = ""
        for _ in range(400):
            line = await asyncio.to_thread(process.stderr.readline)
            printed += line.decode()
            if "The backend itself" in printed and line.strip().startswith(b"curl"):
                break
        commands = [line.strip() for line in printed.splitlines() if line.strip().startswith("curl ")]
        assert len(commands) == 8, printed
        answers = []
        for command in commands:
            out = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, (command, out.stderr)
            answers.append(json.loads(out.stdout))
        ada_activities, rita_activities, ada_contacts, rita_contacts = answers[:4]
        assert not any(a.get("quantity_redacted") or a.get("redacted") for a in ada_activities["data"])
        assert all("price" not in a or a["user"]["name"] == "Rita Restricted" for a in rita_activities["data"])
        assert rita_contacts["meta"]["records"] < ada_contacts["meta"]["records"]
        stubs = [p for c in answers[4]["data"] for p in c["senders"] + c["receivers"] if p.get("redacted")]
        assert stubs, answers[4]
        assert answers[5]["error"]["type"] == "ForbiddenError" and "data" in answers[6]
        assert re.search(r'"records":\s*\d+', json.dumps(answers[7]))  # the backend, unfiltered
    finally:
        process.terminate()
        process.wait(20)
        assert process.stderr is not None
        process.stderr.close()
        assert process.returncode == 0

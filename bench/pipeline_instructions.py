"""Instructions per policed page, counted by callgrind: the body pipeline alone, in process.

Wall clock on a shared 2-core machine drifts by tens of percent; instruction counts do not. This runs
the proxy's body pipeline (the buffered index path of `proxy.http.respond`, and the streamed one)
over bench/run.py's page (~100 KB of activities with many fields) for the restricted user 2 and the
all-visible user 1 of deploy/demo-settings.yaml, and is meant to be run under callgrind twice with
different page counts: the difference, divided by the extra pages, is the cost of one page, start-up
and imports cancelled out.

    python bench/pipeline_instructions.py fetch DIR          # once: demo backend -> DIR/*.json
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/pipeline_instructions.py run DIR CASE PAGES
    python bench/pipeline_instructions.py measure DIR [CASE...]   # both runs, prints per page

CASE: restricted-buffered, restricted-streamed, visible-buffered, visible-streamed: the pure path
as the responders ran it before the compiled scanner; restricted-native-buffered and
restricted-native-streamed: the body contract as the proxy runs it now (proxy.body.index_whole and
IndexStream with the scanner of proxy/_scan.pyx). `run` works against any checkout on PYTHONPATH
(older ones without sealing too, for the pure cases), so a base commit can be measured on the same
bytes. Not run by the tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from peers.page import FIELDS, PAGE_BYTES  # bench/ is the script's own directory: first on the path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("restricted-buffered", "restricted-streamed", "visible-buffered", "visible-streamed",
         "restricted-native-buffered", "restricted-native-streamed")


def _get(port: int, target: str, user: int) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{target}",
                                     headers={"Authorization": f"Bearer token-{user}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body: bytes = response.read()
        return body


def fetch(out: Path) -> None:
    """Save the pages user 1 and user 2 get from the demo backend (scale 1, as bench/run.py's
    throughput rows), asked with the fields the proxy asks upstream, and user 2's matters."""
    from proxy.decide import make_plan
    from proxy.facts.settings import load_settings
    from proxy.policy.fields import parse_fields, render_fields
    from proxy.policy.load import load_policies

    out.mkdir(parents=True, exist_ok=True)
    port = 18000 + os.getpid() % 1000
    backend = subprocess.Popen([sys.executable, "-m", "proxy.demo_backend", "--listen", f"127.0.0.1:{port}"],
                               cwd=ROOT)
    try:
        for _ in range(300):
            try:
                _get(port, "/_demo/health", 1)
                break
            except OSError:
                time.sleep(0.2)
        quoted = urllib.parse.quote(FIELDS, safe=",")
        probe = _get(port, f"/api/v4/activities.json?limit=50&fields={quoted}", 2)
        limit = min(200, max(1, round(PAGE_BYTES / (len(probe) / len(orjson.loads(probe)["data"])))))
        routes = {r.template: r for r in load_policies(ROOT / "policies").routes}
        settings = load_settings(ROOT / "deploy" / "demo-settings.yaml")
        for user in (1, 2):
            plan = make_plan(routes["/activities"], settings.for_caller(user, ()), parse_fields(FIELDS))
            upstream = render_fields(plan.upstream_selection) if plan.upstream_selection is not None else FIELDS
            page = _get(port, f"/api/v4/activities.json?limit={limit}&fields={urllib.parse.quote(upstream, safe=',')}",
                        user)
            (out / f"page-{user}.json").write_bytes(page)
            print(f"user {user}: {limit} records, {len(page)} bytes")
        matters = _get(port, "/api/v4/matters.json?fields=id,responsible_attorney%7Bid%7D&limit=200", 2)
        (out / "matters-2.json").write_bytes(matters)
    finally:
        backend.terminate()
        backend.wait()


def run(where: Path, case: str, pages: int) -> int:
    """Push `pages` copies of the case's page through the pipeline; the bytes sent, summed."""
    one = pipeline(where, case)
    return sum(one() for _ in range(pages))


def pipeline(where: Path, case: str) -> Callable[[], int]:
    """One page through the case's pipeline; the bytes it sends."""
    import inspect

    import proxy
    from proxy.decide import make_plan
    from proxy.facts.settings import load_settings
    from proxy.facts.viewer import Viewer
    from proxy.jsonstream import Element, IndexSplitter
    from proxy.policy.fields import parse_fields
    from proxy.policy.load import load_policies
    from proxy.transform import transform_element, transform_record

    checkout = Path(proxy.__file__).resolve().parent.parent  # the policies of the code measured
    user = 2 if case.startswith("restricted") else 1
    body = (where / f"page-{user}.json").read_bytes()
    routes = {r.template: r for r in load_policies(checkout / "policies").routes}
    settings = load_settings(checkout / "deploy" / "demo-settings.yaml").for_caller(user, ())
    matters = orjson.loads((where / "matters-2.json").read_bytes())["data"]
    responsible = frozenset(m["id"] for m in matters if (m.get("responsible_attorney") or {}).get("id") == 2)
    viewer = Viewer(user, (), settings, frozenset() if user == 2 else None, responsible if user == 2 else None)
    plan = make_plan(routes["/activities"], settings, parse_fields(FIELDS), index=True)
    bound = plan.bind(viewer)
    extra: dict[str, Any] = {}
    if "seal" in inspect.signature(transform_record).parameters:
        from proxy.etag import Sealer
        extra["seal"] = Sealer.of(b"k" * 32, "caller", "v1").record_tag
    refuse_repeated_keys: Callable[[bytes, Any, str], None] | None
    try:
        from proxy.jsonkeys import refuse_repeated_keys
    except ImportError:  # the commit before the repeated-key check
        refuse_repeated_keys = None
    touches = getattr(plan, "touches", True)

    if "native" in case:
        from proxy import native
        from proxy.body import IndexStream, Judging, index_whole

        scanner = native.scanner(bound, apply=True, watched=False, seal=extra.get("seal"))
        assert scanner is not None, "the compiled scanner is not built (pip install -e .)"

        def compiled() -> int:
            judging = Judging(bound, True, lambda decisions: None, extra.get("seal"), native=scanner)
            if case.endswith("buffered"):
                return len(index_whole(body, judging).data)
            stream = IndexStream(judging, max_element=1 << 20)
            sent = sum(len(b",".join(stream.feed(body[i:i + 64 * 1024]))) for i in range(0, len(body), 64 * 1024))
            return sent + len(b",".join(stream.finish()))

        return compiled

    def one() -> int:
        sent = 0
        if case.endswith("buffered"):
            # respond.py _respond_index_buffered, without the (async) meta rewrite
            if not touches:
                from proxy.envelope import join_index, split_index
                records, meta = split_index(body)
                return len(join_index(records, meta))
            doc = orjson.loads(body)
            if refuse_repeated_keys is not None:
                refuse_repeated_keys(body, doc, "the backend's index body")
            kept = []
            for i, record in enumerate(doc["data"]):
                out, _ = transform_record(record, f"data[{i}]", bound, enforce=True, **extra)
                if out is not None:
                    kept.append(out)
            sent += len(orjson.dumps({"data": kept}))
        else:
            # respond.py _stream_index: the splitter, transform_element per record, one join per chunk
            splitter = IndexSplitter()
            index = 0
            for start in range(0, len(body), 64 * 1024):
                outs: list[bytes] = []
                for piece in splitter.feed(body[start:start + 64 * 1024]):
                    if isinstance(piece, Element):
                        raw, _ = transform_element(piece.raw, f"data[{index}]", bound, enforce=True, **extra)
                        index += 1
                        if raw is not None:
                            outs.append(raw)
                sent += len(b",".join(outs))
            splitter.finish()
        return sent

    return one


def _instructions(where: Path, case: str, pages: int, env: dict[str, str]) -> int:
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           sys.executable, __file__, "run", str(where), case, str(pages)],
                          env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, done.stderr
    return int(found.group(1))


def measure(where: Path, cases: list[str]) -> None:
    env = dict(os.environ)
    for case in cases:
        one, many = _instructions(where, case, 2, env), _instructions(where, case, 12, env)
        print(f"{case}: {(many - one) / 10 / 1e6:.2f} M instructions per page")


def main() -> None:
    command, where = sys.argv[1], Path(sys.argv[2])
    if command == "fetch":
        fetch(where)
    elif command == "run":
        print(run(where, sys.argv[3], int(sys.argv[4])))
    elif command == "measure":
        measure(where, sys.argv[3:] or list(CASES))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()

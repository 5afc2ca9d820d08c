"""The `redaction-proxy` command: parse argv and the environment, run one subcommand, and turn every
start-up failure into one line on stderr and exit 2 (no traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .config import (
    SERVE_OPTIONS,
    ConfigValueError,
    Option,
    add_options,
    build_config,
    host_port,
    resolve,
    unknown_variables,
)
from .policy.spec import SpecIndex
from .yamldoc import ConfigError

if TYPE_CHECKING:
    from .config import RunConfig
    from .http.state import Loaded

DESCRIPTION = """\
Enforce the API changelog's data-visibility rules (contacts, activity hours, billing rates, Personal
Injury) in front of a legacy Clio Manage v4 backend that cannot enforce them itself.

Every flag of every command can also be set by an environment variable: --some-flag is
REDACTION_PROXY_SOME_FLAG, and a flag on the command line wins over its variable. A REDACTION_PROXY_*
variable that no command reads is an error (a typo must not be silently ignored).

Exit status: 0 on success, 2 on any configuration or start-up problem (one line each on stderr)."""

SERVE_DESCRIPTION = """\
Run the proxy in front of --upstream. Policies and settings are checked before anything listens;
SIGHUP reloads them (keeping the old ones when the new ones are invalid), SIGTERM drains in-flight
requests within --shutdown-grace. The admin listener serves /healthz, /readyz, /metrics, /policies, the
rollout report (/report, /report.html; POST /report/reset) and /decisions/{request_id}. With --workers N
above 1, N processes share --listen and a supervisor serves the admin listener for all of them, forwards
the signals and restarts a worker that dies (the README's "Every core")."""

CHECK_OPTIONS = (
    Option("--policies", None, "policy directory (default: the bundled policies)"),
    Option("--settings", None, "settings file: who has which visibility setting (required)"),
    Option("--openapi", None, "the backend's OpenAPI 3 document, to report the places no policy covers "
           "(default: the bundled data of the public Clio v4 specs)"),
)
COVERAGE_OPTIONS = (
    Option("--openapi", None, "OpenAPI 3 document (default: the bundled data of both public Clio v4 specs)"),
    Option("--policies", None, "policy directory (default: the bundled policies)"),
)
DEMO_BACKEND_OPTIONS = (
    Option("--listen", "127.0.0.1:8081", "HOST:PORT the demo backend listens on"),
    Option("--scale", "1", "size of the generated firm (1 = a few hundred records of each kind)"),
    Option("--seed", "0", "random seed of the generated firm (same seed, same data)"),
)
DEMO_OPTIONS = (
    Option("--listen", "127.0.0.1:8080", "HOST:PORT for the proxy"),
    Option("--backend-listen", "127.0.0.1:8081", "HOST:PORT for the demo backend"),
    Option("--admin-listen", "127.0.0.1:9090", "HOST:PORT for the proxy's admin listener"),
    Option("--mode", "enforce", "enforce | dry-run"),
)
TEST_OPTIONS = (
    Option("--policies", None, "policy directory the cases run against (default: the bundled policies)"),
    Option("--settings", None, "settings file the cases start from; a case's `settings` update its caller's "
                               "user entry (default: everyone sees everything)"),
)
TEST_VERBOSE = Option("--verbose", "off", "on: list the cases that pass too (-v on the command line)")
TEST_DESCRIPTION = """\
Run policy case files (a request, the caller's facts, the backend's answer, the expected answer; see
the README's "Policy tests") through the real proxy, in-process on loopback, in front of a scripted
backend. Prints each failing case with what differs (a diff of the JSON bodies), a summary, and the
policy steps (file:line:column, rule, action) that no case made decide or block.

Exit status: 0 when every case passes, 1 when one fails, 2 when a case, the policies or the settings
are invalid (one line per problem on stderr; nothing runs)."""
REPORT_OPTIONS = (
    Option("--format", "table", "table (for a terminal) | json (the same JSON as the admin listener's /report)"),
)
REPORT_DESCRIPTION = """\
Summarise the JSON log lines of any number of replicas (files, or - for standard input) as the admin
listener's /report does for one: per route x rule x action, the objects redacted or dropped and the
requests refused (would be, in dry-run), the distinct users affected and example request ids; then the
requests that were undecidable or refused by the proxy. Lines that are not JSON are counted and skipped.
Exit status: 0, or 2 when a LOG cannot be read."""
KNOWN_VARIABLES = frozenset(
    o.env
    for options in (SERVE_OPTIONS, CHECK_OPTIONS, COVERAGE_OPTIONS, DEMO_BACKEND_OPTIONS, DEMO_OPTIONS, TEST_OPTIONS,
                    (TEST_VERBOSE,), REPORT_OPTIONS)
    for o in options
)


def version() -> str:
    try:
        return metadata.version("redaction-proxy")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and a hint), like every other start-up failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="redaction-proxy", description=DESCRIPTION, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the proxy in front of a backend", description=SERVE_DESCRIPTION,
                           formatter_class=raw)
    add_options(serve, SERVE_OPTIONS)
    check = sub.add_parser(
        "check", help="validate policies and settings without serving",
        description="Load and compile the policies and the settings as `serve` would, print every problem "
                    "(file:line:column) and exit 2 if there is one; print a summary and exit 0 if not.")
    add_options(check, CHECK_OPTIONS)
    backend = sub.add_parser(
        "demo-backend", help="run the bundled legacy backend with a generated firm",
        description="Serve a deterministic fake Clio Manage v4 backend that knows matter access only "
                    "(none of the visibility rules): what the proxy is for. Users 1 and 2 have tokens "
                    "token-1 and token-2.")
    add_options(backend, DEMO_BACKEND_OPTIONS)
    demo = sub.add_parser(
        "demo", help="run the demo backend and the proxy together, print requests to try",
        description="Start the demo backend and the proxy (with the bundled demo settings) and print "
                    "curl lines comparing an unrestricted and a restricted user.")
    add_options(demo, DEMO_OPTIONS)
    coverage = sub.add_parser(
        "coverage", help="where an OpenAPI document returns contacts or activities, and the step covering each",
        description="Walk an OpenAPI 3 document (default: the bundled data of both public Clio v4 specs) and "
                    "print every answer location holding a Contact, a TimeEntry activity or a rated activity, "
                    "with the policy step covering it, `refused`, `waived` (with its reason) or NOT COVERED. "
                    "Exit 1 when any location is not covered, 2 when the policies or the document cannot be read.")
    add_options(coverage, COVERAGE_OPTIONS)
    test = sub.add_parser("test", help="run policy case files against a policy set, like `opa test`",
                          description=TEST_DESCRIPTION, formatter_class=raw)
    test.add_argument("cases", nargs="+", metavar="CASES", help="case files, or directories of *.yaml case files")
    add_options(test, TEST_OPTIONS)
    test.add_argument("-v", TEST_VERBOSE.flag, dest=TEST_VERBOSE.dest, action="store_const", const="on",
                      default=None, help=f"list the cases that pass too [env {TEST_VERBOSE.env}=on]")
    report = sub.add_parser("report", help="the rollout report, offline, from the proxy's JSON logs",
                            description=REPORT_DESCRIPTION, formatter_class=raw)
    report.add_argument("logs", nargs="+", metavar="LOG", help="a JSON log file, or - for standard input")
    add_options(report, REPORT_OPTIONS)
    report.add_argument("--json", dest="format", action="store_const", const="json",
                        help="the same as --format json [env REDACTION_PROXY_FORMAT=json]")
    return parser


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    unknown = unknown_variables(environ, KNOWN_VARIABLES)
    if unknown:
        return _fail(unknown)
    if args.command == "check":
        return _check(args, environ)
    if args.command == "coverage":
        return _coverage(args, environ)
    if args.command == "serve":
        return _serve(args, environ, argv)
    if args.command == "test":
        return _test(args, environ)
    if args.command == "demo-backend":
        return _demo_backend(args, environ)
    if args.command == "report":
        return _report(args, environ)
    return _demo(args, environ)


def _fail(problems: list[str]) -> int:
    # One write: the workers of `--workers N` share stderr, and their lines must not interleave.
    sys.stderr.write("".join(f"{problem}\n" for problem in problems))
    sys.stderr.flush()
    return 2


def _cannot_start(exc: OSError) -> int:
    # A port in use, an address not on this host...: asyncio's message names the address.
    return _fail([f"redaction-proxy: cannot start: {' '.join((exc.strerror or str(exc)).split())}"])


def _specs(paths: list[str] | None) -> list[SpecIndex]:
    """The given OpenAPI documents, or the bundled spec data; ConfigError when one cannot be read."""
    from .policy.spec import bundled_specs, load_spec

    if not paths:
        return bundled_specs()
    problems, specs = [], []
    for path in paths:
        try:
            specs.append(load_spec(Path(path)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: cannot read the OpenAPI document: {exc}")
    if problems:
        raise ConfigError(problems)
    return specs


def _check(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from .policy.coverage import cover, gaps
    from .policy.load import bundled_policies, load_policies
    from .serve import load

    raw, names = resolve(CHECK_OPTIONS, args, environ)
    if not raw["settings"]:
        return _fail([f"{names['settings']} is required"])
    problems: list[str] = []
    try:
        specs = _specs([raw["openapi"]] if raw["openapi"] else None)
    except ConfigError as exc:
        specs, problems = [], exc.problems
    policies = Path(raw["policies"]) if raw["policies"] else None
    try:
        loaded = load(policies, Path(raw["settings"]), specs)
    except ConfigError as exc:
        problems += exc.problems
    try:
        # Every place the loaded set leaves uncovered, even when the set has other problems too.
        compiled = load_policies(policies or bundled_policies())
        problems += [f"{g.line()} (no policy step reads it; add one, or waive it with a reason)"
                     for spec in specs for g in gaps(cover(compiled, spec))]
    except ConfigError:
        pass  # already listed by load()
    if problems:
        unique = list(dict.fromkeys(problems))
        return _fail([*unique, f"{len(unique)} problem(s)"])
    print(f"ok: {len(loaded.policies.routes)} routes from {len(loaded.policies.files)} files, "
          f"policy version {loaded.policies.version}")
    return 0


def _coverage(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from .policy.coverage import Status, cover
    from .policy.load import bundled_policies, load_policies

    raw, _ = resolve(COVERAGE_OPTIONS, args, environ)
    try:
        specs = _specs([raw["openapi"]] if raw["openapi"] else None)
        policies = load_policies(Path(raw["policies"]) if raw["policies"] else bundled_policies())
    except ConfigError as exc:
        return _fail(exc.problems)
    uncovered = 0
    for spec in specs:
        findings = cover(policies, spec)
        print(f"# {spec.source}: {len(findings)} locations holding a contact or an activity")
        for finding in findings:
            print(finding.line())
        uncovered += sum(1 for f in findings if f.status is Status.NOT_COVERED)
    print(f"# {uncovered} location(s) NOT COVERED" if uncovered else "# every location is covered or waived")
    return 1 if uncovered else 0


def _serve(args: argparse.Namespace, environ: Mapping[str, str], argv: list[str]) -> int:
    from aiohttp import http_parser

    from .memory import keep_heap_slack, settle_heap
    from .serve import load_config, serve
    from .workers import WORKER_VARIABLE, supervise

    if http_parser.HttpRequestParser is http_parser.HttpRequestParserPy:
        # aiohttp's two parsers disagree on what a valid request is (lower-case methods, HTTP/3.0,
        # `Transfer-Encoding: chunked, chunked`...); the pure-Python one accepts what llhttp refuses.
        # The stricter one wins: without it the proxy does not start.
        return _fail(["aiohttp's C parser (llhttp) is not available (AIOHTTP_NO_EXTENSIONS set, or a build "
                      "without extensions); the proxy refuses to run on the more lenient pure-Python parser"])
    try:
        config = build_config(args, environ)
        loaded = load_config(config)
    except (ConfigValueError, ConfigError) as exc:
        return _fail(exc.problems)
    async def started(runner: object) -> None:
        settle_heap()  # once everything is built and listening (proxy/memory.py)

    try:
        seat = environ.get(WORKER_VARIABLE)
        if seat is not None:  # one of --workers N, started by the supervisor
            index, _, socket = seat.partition(":")
            keep_heap_slack()
            asyncio.run(_worker(config, loaded, int(index), socket, started))
        elif config.workers > 1:
            # Checked above, loaded again by each worker: the supervisor itself serves no request.
            return asyncio.run(supervise(config, argv, environ))
        else:
            keep_heap_slack()
            asyncio.run(serve(config, loaded, started=started))
    except OSError as exc:
        return _cannot_start(exc)
    return 0


async def _worker(config: RunConfig, loaded: Loaded, index: int, socket: str,
                  started: Callable[[Any], Awaitable[None]]) -> None:
    from .log import make_logger
    from .serve import serve
    from .workers import until_orphaned

    stop = asyncio.Event()
    orphaned = asyncio.create_task(until_orphaned(stop))
    try:
        # Every line says which worker wrote it.
        await serve(config, loaded, logger=make_logger(level=config.log_level).bind(worker=index, pid=os.getpid()),
                    stop=stop, admin_socket=socket, started=started)
    finally:
        orphaned.cancel()


def _test(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from .policytest.command import run_command

    raw, names = resolve((*TEST_OPTIONS, TEST_VERBOSE), args, environ)
    if raw["verbose"] not in ("on", "off"):
        return _fail([f"{names['verbose']}: {raw['verbose']!r} is not one of on, off"])
    return run_command([Path(p) for p in args.cases], Path(raw["policies"]) if raw["policies"] else None,
                       Path(raw["settings"]) if raw["settings"] else None, verbose=raw["verbose"] == "on")


def _demo_backend(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from demo_backend.cli import parse_listen, run

    raw, names = resolve(DEMO_BACKEND_OPTIONS, args, environ)
    problems = []
    scale = seed = 0
    try:
        parse_listen(str(raw["listen"]))
    except ValueError:
        problems.append(f"{names['listen']}: {raw['listen']!r} must be HOST:PORT")
    try:
        scale = int(str(raw["scale"]))
        if scale < 1:
            problems.append(f"{names['scale']}: must be 1 or more")
    except ValueError:
        problems.append(f"{names['scale']}: {raw['scale']!r} is not a whole number")
    try:
        seed = int(str(raw["seed"]))
    except ValueError:
        problems.append(f"{names['seed']}: {raw['seed']!r} is not a whole number")
    if problems:
        return _fail(problems)
    try:
        asyncio.run(run(str(raw["listen"]), scale, seed))
    except OSError as exc:
        return _cannot_start(exc)
    except KeyboardInterrupt:
        pass
    return 0


def _report(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from contextlib import nullcontext

    import orjson

    from .report import Report
    from .report_render import render_table

    raw, names = resolve(REPORT_OPTIONS, args, environ)
    if raw["format"] not in ("table", "json"):
        return _fail([f"{names['format']}: {raw['format']!r} is not one of table, json"])
    report = Report()
    for name in args.logs:
        try:
            stream = nullcontext(sys.stdin.buffer) if name == "-" else open(name, "rb")  # noqa: SIM115 (with below)
        except OSError as exc:
            return _fail([f"redaction-proxy report: cannot read {name}: {exc.strerror or exc}"])
        with stream as lines:
            for line in lines:  # one line at a time: a day of logs need not fit in memory
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    event = None
                if isinstance(event, dict):
                    report.add(event)
                else:
                    report.unreadable += 1
    snapshot = report.snapshot()
    if raw["format"] == "json":
        sys.stdout.write(orjson.dumps(snapshot, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_table(snapshot))
    return 0


def _demo(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from .demo import run_demo

    raw, names = resolve(DEMO_OPTIONS, args, environ)
    problems: list[str] = []
    for name in ("listen", "backend_listen", "admin_listen"):
        host_port(str(raw[name]), names[name], problems)
    if raw["mode"] not in ("enforce", "dry-run"):
        problems.append(f"{names['mode']}: {raw['mode']!r} is not one of enforce, dry-run")
    if problems:
        return _fail(problems)
    try:
        return run_demo(argparse.Namespace(**raw))
    except ConfigValueError as exc:
        return _fail(exc.problems)
    except OSError as exc:
        return _cannot_start(exc)


if __name__ == "__main__":
    sys.exit(main())

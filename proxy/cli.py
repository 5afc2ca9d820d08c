"""Command line: argv (+ environment) -> RunConfig -> serve / check / demo-backend / demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .config import ConfigValueError, add_serve_arguments, build_config
from .policy.spec import SpecIndex
from .yamldoc import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redaction-proxy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the proxy in front of a backend")
    add_serve_arguments(serve)
    check = sub.add_parser("check", help="validate policies and settings without serving (exit 2 on problems)")
    check.add_argument("--policies", default=None, help="policy directory (default: the bundled policies)")
    check.add_argument("--settings", required=True, help="settings file")
    check.add_argument("--openapi", default=None,
                       help="the backend's OpenAPI 3 document (default: the bundled Clio v4 spec data)")
    coverage = sub.add_parser("coverage", help="where an OpenAPI document returns contacts or activities, and "
                                               "the policy step covering each (exit 1 when any is not covered)")
    coverage.add_argument("--openapi", action="append", default=None,
                          help="OpenAPI 3 document (repeatable; default: the bundled Clio v4 spec data)")
    coverage.add_argument("--policies", default=None, help="policy directory (default: the bundled policies)")
    backend = sub.add_parser("demo-backend", help="run the bundled legacy backend with a generated firm")
    backend.add_argument("--listen", default="127.0.0.1:8081")
    backend.add_argument("--scale", type=int, default=1)
    demo = sub.add_parser("demo", help="run the demo backend and the proxy together, print requests to try")
    demo.add_argument("--listen", default="127.0.0.1:8080")
    demo.add_argument("--backend-listen", default="127.0.0.1:8081")
    demo.add_argument("--admin-listen", default="127.0.0.1:9090")
    demo.add_argument("--mode", default="enforce", choices=["enforce", "dry-run"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return _check(args)
    if args.command == "coverage":
        return _coverage(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "demo-backend":
        from .demo_backend import main as backend_main

        return backend_main(["--listen", args.listen, "--scale", str(args.scale)])
    from .demo import run_demo

    return run_demo(args)


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


def _check(args: argparse.Namespace) -> int:
    from .policy.coverage import cover, gaps
    from .policy.load import bundled_policies, load_policies
    from .serve import load

    problems: list[str] = []
    try:
        specs = _specs([args.openapi] if args.openapi else None)
    except ConfigError as exc:
        specs, problems = [], exc.problems
    policies = Path(args.policies) if args.policies else None
    try:
        loaded = load(policies, Path(args.settings), specs)
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
        for problem in dict.fromkeys(problems):
            print(problem, file=sys.stderr)
        print(f"{len(set(problems))} problem(s)", file=sys.stderr)
        return 2
    print(f"ok: {len(loaded.policies.routes)} routes from {len(loaded.policies.files)} files, "
          f"policy version {loaded.policies.version}")
    return 0


def _coverage(args: argparse.Namespace) -> int:
    from .policy.coverage import Status, cover
    from .policy.load import bundled_policies, load_policies

    try:
        specs = _specs(args.openapi)
        policies = load_policies(Path(args.policies) if args.policies else bundled_policies())
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    uncovered = 0
    for spec in specs:
        findings = cover(policies, spec)
        print(f"# {spec.source}: {len(findings)} locations holding a contact or an activity")
        for finding in findings:
            print(finding.line())
        uncovered += sum(1 for f in findings if f.status is Status.NOT_COVERED)
    print(f"# {uncovered} location(s) NOT COVERED" if uncovered else "# every location is covered or waived")
    return 1 if uncovered else 0


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import http_parser

    from .memory import keep_heap_slack
    from .serve import load, serve

    if http_parser.HttpRequestParser is http_parser.HttpRequestParserPy:
        # aiohttp's two parsers disagree on what a valid request is (lower-case methods, HTTP/3.0,
        # `Transfer-Encoding: chunked, chunked`...); the pure-Python one accepts what llhttp refuses.
        # The stricter one wins: without it the proxy does not start.
        print("aiohttp's C parser (llhttp) is not available (AIOHTTP_NO_EXTENSIONS set, or a build "
              "without extensions); the proxy refuses to run on the more lenient pure-Python parser",
              file=sys.stderr)
        return 2
    try:
        config = build_config(args)
        loaded = load(config.policies, config.settings)
    except (ConfigValueError, ConfigError) as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    keep_heap_slack()
    asyncio.run(serve(config, loaded))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: argv (+ environment) -> RunConfig -> serve / check / demo-backend / demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .config import ConfigValueError, add_serve_arguments, build_config
from .yamldoc import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redaction-proxy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the proxy in front of a backend")
    add_serve_arguments(serve)
    check = sub.add_parser("check", help="validate policies and settings without serving (exit 2 on problems)")
    check.add_argument("--policies", default=None, help="policy directory (default: the bundled policies)")
    check.add_argument("--settings", required=True, help="settings file")
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
    if args.command == "serve":
        return _serve(args)
    if args.command == "demo-backend":
        from .demo_backend import main as backend_main

        return backend_main(["--listen", args.listen, "--scale", str(args.scale)])
    from .demo import run_demo

    return run_demo(args)


def _check(args: argparse.Namespace) -> int:
    from .serve import load

    try:
        loaded = load(Path(args.policies) if args.policies else None, Path(args.settings))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s)", file=sys.stderr)
        return 2
    print(f"ok: {len(loaded.policies.routes)} routes from {len(loaded.policies.files)} files, "
          f"policy version {loaded.policies.version}")
    return 0


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

"""`redaction-proxy test CASES...`: run case files against a policy set and print pass/fail like
`opa test` (a diff on failure), then the policy steps no case exercised.

Exit 0 when every case passes, 1 when one fails, 2 when the input cannot be used (a case, the
policies or the settings invalid: one line per problem on stderr, nothing run).
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from ..facts.settings import Settings, load_settings
from ..policy.load import bundled_policies, load_policies
from ..policy.model import PolicySet
from ..yamldoc import ConfigError
from .case import Case, find_cases, load_case
from .runner import OPEN_SETTINGS, judge, policy_steps, run_case

RULE = "-" * 80


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    failures: tuple[str, ...]


def run_command(
    paths: list[Path], policies_dir: Path | None, settings_file: Path | None, *, verbose: bool = False,
    out: TextIO | None = None, err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    problems: list[str] = []
    cases: list[Case] = []
    try:
        for path in find_cases(paths):
            try:
                cases.append(load_case(path))
            except ConfigError as exc:
                problems.extend(exc.problems)
    except ConfigError as exc:
        problems.extend(exc.problems)
    policies: PolicySet | None = None
    base = OPEN_SETTINGS
    try:
        policies = load_policies(policies_dir or bundled_policies())
    except ConfigError as exc:
        problems.extend(exc.problems)
    if settings_file is not None:
        try:
            base = load_settings(settings_file)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems or policies is None:
        for problem in problems:
            print(problem, file=err)
        return 2
    exercised: set[str] = set()
    outcomes = asyncio.run(run_all(cases, policies, base, exercised))
    report(outcomes, policies, exercised, verbose=verbose, out=out)
    return 1 if any(o.failures for o in outcomes) else 0


async def run_all(cases: list[Case], policies: PolicySet, base: Settings, exercised: set[str]) -> list[Outcome]:
    """Each case in turn, each through a proxy and a backend of its own (no state shared but `exercised`)."""
    outcomes = []
    # A bound on each case (aiohttp's default is 5 minutes): past the proxy's own 60 s request timeout.
    timeout = aiohttp.ClientTimeout(total=90)
    async with aiohttp.ClientSession(auto_decompress=True, timeout=timeout) as http:
        for case in cases:
            try:
                answer = await run_case(case, policies, base, http, exercised=exercised)
            except (OSError, aiohttp.ClientError, TimeoutError) as exc:
                outcomes.append(Outcome(case, (f"could not run: {type(exc).__name__}: {exc}",)))
                continue
            outcomes.append(Outcome(case, tuple(judge(case, answer))))
    return outcomes


def report(outcomes: list[Outcome], policies: PolicySet, exercised: set[str], *, verbose: bool, out: TextIO) -> None:
    for outcome in outcomes:
        name = _shown(outcome.case.file)
        if not outcome.failures:
            if verbose:
                print(f"{name}: PASS", file=out)
            continue
        print(f"{name}: FAIL", file=out)
        if outcome.case.row:
            print(f"  row: {outcome.case.row}", file=out)
        for failure in outcome.failures:
            print("\n".join("  " + line for line in failure.splitlines()), file=out)
    failed = sum(1 for o in outcomes if o.failures)
    print(RULE, file=out)
    print(f"PASS: {len(outcomes) - failed}/{len(outcomes)}", file=out)
    if failed:
        print(f"FAIL: {failed}/{len(outcomes)}", file=out)
    steps = policy_steps(policies)
    missed = [(source, b) for source, b in steps.items() if source not in exercised]
    if not missed:
        print(f"every policy step ({len(steps)}) was exercised by a case", file=out)
        return
    print(f"NOT EXERCISED: {len(missed)} of {len(steps)} policy steps; no case made them decide or block:", file=out)
    for source, binding in sorted(missed, key=lambda item: _source_key(item[0])):
        print(f"  {_shown(source)}  {binding.rule.value}  {binding.action.value}  (seed: {binding.seed})", file=out)


def _shown(path: str) -> str:
    """A path relative to the working directory when it is below it: shorter lines, same meaning."""
    if not Path(path).is_absolute():
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _source_key(source: str) -> tuple[str, int, int]:
    file, _, rest = source.partition(":")
    line, _, column = rest.partition(":")
    return file, int(line) if line.isdigit() else 0, int(column) if column.isdigit() else 0

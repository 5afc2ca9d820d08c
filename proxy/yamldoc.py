"""YAML with positions: plain values plus the file:line:column of every key, for error reports.

Used by the policy and settings loaders, which report every problem at once (never the first only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """Configuration that cannot be used; `problems` lists every one found, each with its position."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            # A YAML alias reuses a node: report each problem once, in the order found.
            raise ConfigError(list(dict.fromkeys(self.items)))


@dataclass(frozen=True, slots=True)
class Doc:
    """A loaded YAML document: `value` is plain data; `where(path)` is the position of a key path."""

    file: str
    value: Any
    marks: dict[tuple[str | int, ...], tuple[int, int]]

    def where(self, *path: str | int) -> str:
        for n in range(len(path), -1, -1):
            mark = self.marks.get(tuple(path[:n]))
            if mark is not None:
                return f"{self.file}:{mark[0]}:{mark[1]}"
        return self.file


def load_yaml(path: Path, problems: Problems) -> Doc | None:
    """Load one YAML file; syntax errors and duplicate keys become problems (and None)."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(str(path), f"cannot read: {exc}")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problems.add(where, f"invalid YAML: {getattr(exc, 'problem', exc)}")
        return None
    marks: dict[tuple[str | int, ...], tuple[int, int]] = {}
    if node is None:
        return Doc(str(path), None, marks)
    value = _build(node, (), marks, str(path), problems)
    return Doc(str(path), value, marks)


def _build(
    node: yaml.Node,
    at: tuple[str | int, ...],
    marks: dict[tuple[str | int, ...], tuple[int, int]],
    file: str,
    problems: Problems,
) -> Any:
    marks.setdefault(at, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            where = f"{file}:{key_node.start_mark.line + 1}:{key_node.start_mark.column + 1}"
            if not isinstance(key, str) or key == "<<":
                problems.add(where, "keys must be plain strings (merge keys are not supported)")
                continue
            if key in out:
                problems.add(where, f"duplicate key {key!r}")
                continue
            marks[(*at, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _build(value_node, (*at, key), marks, file, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*at, i), marks, file, problems) for i, item in enumerate(node.value)]
    return yaml.SafeLoader(b"").construct_object(node, deep=True)

# The compiled scanner's interface (proxy/_scan.pyx), for mypy.
from collections.abc import Callable, Iterable, Mapping
from typing import Any

FALLBACK: object
KINDS: dict[str, int]

class Names:
    def __init__(self, names: Iterable[bytes], values: list[int] | None = None) -> None: ...

class Tables:
    def __init__(
        self,
        shape: tuple[Any, Mapping[bytes, tuple[int, Any, Any]]] | None,
        seal_at: Iterable[tuple[bytes, bool, bytes | None] | None],
        strip_top: Any,
        strip_nested: Mapping[bytes, Any],
    ) -> None: ...

class Scanner:
    def __init__(
        self,
        steps: Iterable[tuple[int, bytes | tuple[bytes, bool, bytes | None] | None, tuple[Any, ...]]],
        tables: Tables,
        seal: Callable[[str], str] | None,
    ) -> None: ...
    def run(self, raw: bytes) -> tuple[bytes | None, list[tuple[int, int | None, int]]] | object: ...
    def run_all(self, records: list[Any]) -> tuple[bytes, list[tuple[int, int, int | None, int]]] | object: ...
    def run_body(self, body: bytes) -> tuple[bytes, bytes | None, list[tuple[int, int, int | None, int]]] | object: ...

"""What an OpenAPI 3 document says the API returns: routes, their record schemas and those schemas' fields.

A pure walk (`index_openapi`) turns the document into a compact SpecIndex: `$ref`, `allOf`/`oneOf`/
`anyOf`, arrays, nested objects, `.json` and plain paths, path parameters of any name. The bundled
index files under `specs/` are this walk of the two public specs (regenerate: `python -m proxy.policy.spec`).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

SPECS = Path(__file__).resolve().parent / "specs"
BUNDLED = {"openapi.json": "clio-v4-2025-05.json", "openapi-2022-11.json": "clio-v4-2022-11.json"}
_METHODS = ("get", "post", "put", "patch", "delete")
_PARAM = re.compile(r"\{[^/{}]+\}\Z")
_CONTACT_TYPES = frozenset({"Person", "Company"})
# Fields the changelog names that the public specs lack: the seed is the authority on what is returned.
# Keyed by the record schema of `documents`, `folders` and `folders/list` (an Item is a document or folder).
SEED_FIELDS: dict[str, str] = {"Document": "access_grants", "Folder": "access_grants", "Item": "access_grants"}
_SEED_SCHEMA = "AccessGrant (seed 4.0.9; absent from the public spec)"


class Kind(StrEnum):
    CONTACT = "contact"          # a Contact record (or a Client): always a contact
    PARTICIPANT = "participant"  # an entry that may be a contact or something else (a user, a calendar)
    TIME_ENTRY = "time_entry"    # an Activity record, possibly of type TimeEntry (4.0.8)
    RATED = "rated"              # an Activity record with price/total (4.0.5)


@dataclass(frozen=True, slots=True)
class Schema:
    kinds: tuple[Kind, ...]
    fields: dict[str, tuple[str | None, bool]]  # name -> (schema of a nested object or None, is a list)


@dataclass(frozen=True, slots=True)
class Operation:
    method: str                # GET, POST...
    template: str              # "/clio_payments/links/{id}": relative to base, no `.json`
    shape: str                 # "index" or "show"
    record: str                # schema of each record in `data`
    request: str | None        # schema of the request body's `data`, if any


@dataclass(frozen=True, slots=True)
class SpecIndex:
    source: str
    base: str
    operations: tuple[Operation, ...]
    schemas: dict[str, Schema]

    def to_json(self) -> str:
        return json.dumps({
            "source": self.source,
            "base": self.base,
            "operations": [[o.method, o.template, o.shape, o.record, o.request] for o in self.operations],
            "schemas": {n: {"kinds": list(s.kinds), "fields": {k: [t, lst] for k, (t, lst) in s.fields.items()}}
                        for n, s in sorted(self.schemas.items())},
        }, indent=0, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpecIndex:
        ops = tuple(Operation(*o) for o in data["operations"])
        schemas = {n: Schema(tuple(Kind(k) for k in s["kinds"]),
                             {k: (v[0], bool(v[1])) for k, v in s["fields"].items()})
                   for n, s in data["schemas"].items()}
        return cls(str(data["source"]), str(data["base"]), ops, schemas)

    def fields_at(self, template_segments: tuple[str | None, ...]) -> list[tuple[str, str]]:
        """(method, record schema) of every operation on this route, answers and request bodies alike."""
        out: list[tuple[str, str]] = []
        for op in self.operations:
            if template_segments == template_key(op.template):
                out.append((op.method, op.record))
                if op.request is not None:
                    out.append((op.method, op.request))
        return out


def template_key(template: str) -> tuple[str | None, ...]:
    """A route template as segments, parameters of any name as None: how spec and policy routes meet."""
    return tuple(None if _PARAM.match(p) else p for p in template.strip("/").split("/"))


def load_spec(path: Path) -> SpecIndex:
    """An OpenAPI 3 document or a SpecIndex file written by this module."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "openapi" in data:
        return index_openapi(data, path.name)
    if isinstance(data, dict) and "operations" in data and "schemas" in data:
        return SpecIndex.from_json(data)
    raise ValueError(f"{path}: neither an OpenAPI 3 document nor a spec index")


def bundled_specs() -> list[SpecIndex]:
    return [SpecIndex.from_json(json.loads((SPECS / name).read_text(encoding="utf-8")))
            for name in BUNDLED.values()]


def index_openapi(doc: dict[str, Any], source: str) -> SpecIndex:
    walker = _Walker(doc.get("components", {}).get("schemas", {}))
    base = "/api/v4"
    for server in doc.get("servers", []):
        url = str(server.get("url", ""))
        match = re.match(r"[a-z]+://[^/]+(/.*)?\Z", url)
        if match:
            base = (match.group(1) or "/").rstrip("/") or "/"
            break
    ops: dict[tuple[str, str], Operation] = {}
    for raw_path, item in doc.get("paths", {}).items():
        template = _template(raw_path)
        for method in _METHODS:
            op = item.get(method) if isinstance(item, dict) else None
            if not isinstance(op, dict):
                continue
            label = f"{method.upper()} {template}"
            answer = _answer(walker, op, label)
            if answer is None:
                continue
            shape, record = answer
            request = _request(walker, op, label)
            ops.setdefault((method.upper(), template), Operation(method.upper(), template, shape, record, request))
    schemas = walker.done
    for name, field in SEED_FIELDS.items():
        if name in schemas:
            known = schemas[name]
            schemas[name] = Schema(known.kinds, {**known.fields, field: (_SEED_SCHEMA, True)})
            schemas[_SEED_SCHEMA] = Schema((Kind.PARTICIPANT,), {"id": (None, False), "type": (None, False)})
    return SpecIndex(source, base, tuple(ops[k] for k in sorted(ops)), schemas)


def _template(raw: str) -> str:
    path = raw.removesuffix(".json")
    parts = ["{id}" if _PARAM.match(p) else p for p in path.strip("/").split("/")]
    return "/" + "/".join(parts)


def _json_schema(content: Any) -> Any:
    if not isinstance(content, dict):
        return None
    for ctype, body in content.items():
        if ctype.split(";")[0].strip() == "application/json" and isinstance(body, dict):
            return body.get("schema")
    return None


def _answer(walker: _Walker, op: dict[str, Any], label: str) -> tuple[str, str] | None:
    for code, response in sorted(op.get("responses", {}).items()):
        if not str(code).startswith("2") or not isinstance(response, dict):
            continue
        data = walker.data_of(_json_schema(response.get("content")), f"{label} answer")
        if data is not None:
            return data
    return None


def _request(walker: _Walker, op: dict[str, Any], label: str) -> str | None:
    body = op.get("requestBody")
    if not isinstance(body, dict):
        return None
    data = walker.data_of(_json_schema(body.get("content")), f"{label} request")
    return data[1] if data is not None else None


class _Walker:
    """Resolves schemas by name into the compact table, each once (refs may be cyclic)."""

    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components
        self.done: dict[str, Schema] = {}

    def resolve(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 64:
            schema = self.components.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
            seen += 1
        return schema

    def properties(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        schema = self.resolve(schema)
        out: dict[str, Any] = {}
        if not isinstance(schema, dict) or depth > 32:
            return out
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key, []):
                out.update(self.properties(part, depth + 1))
        props = schema.get("properties")
        if isinstance(props, dict):
            out.update(props)
        return out

    def data_of(self, schema: Any, label: str) -> tuple[str, str] | None:
        """("index"|"show", record schema) of an answer `{"data": ...}`."""
        data = self.properties(schema).get("data")
        if data is None:
            return None
        resolved = self.resolve(data)
        if isinstance(resolved, dict) and resolved.get("type") == "array":
            return "index", self.name(resolved.get("items", {}), f"{label} data[]")
        return "show", self.name(data, f"{label} data")

    def name(self, schema: Any, inline_name: str) -> str:
        """The table name of an object schema, walking it into the table on first sight."""
        name = inline_name
        while isinstance(schema, dict) and "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = self.components.get(name, {})
        if name in self.done:
            return name
        self.done[name] = Schema((), {})  # placeholder: a cycle stops here
        props = self.properties(schema)
        fields: dict[str, tuple[str | None, bool]] = {}
        for key, raw in props.items():
            value, is_list = self.resolve(raw), False
            if isinstance(value, dict) and value.get("type") == "array":
                raw, value, is_list = value.get("items", {}), self.resolve(value.get("items", {})), True
            is_object = isinstance(value, dict) and (
                "properties" in value or any(k in value for k in ("allOf", "oneOf", "anyOf"))
                or value.get("type") == "object")
            fields[key] = (self.name(raw, f"{name}.{key}") if is_object else None, is_list)
        self.done[name] = Schema(_kinds(name, props), fields)
        return name


def _kinds(name: str, props: dict[str, Any]) -> tuple[Kind, ...]:
    """What a schema holds, from its name and its `type` enum.

    Contacts: schemas named Contact/Client (or *_Contact, *Contacts) and any whose `type` enum is
    Person/Company. Participants: a `type` enum mixing contact types with others (users), schemas named
    *Participant*/*Attendee*, and polymorphic objects that may be a `Contact`. A Note whose type is
    `Contact` is a note about a contact, not one. Activities: named Activity, or typed `TimeEntry`.
    """
    base = name.removesuffix("_base")
    type_prop = props.get("type")
    enum = set(type_prop.get("enum", [])) if isinstance(type_prop, dict) else set()
    kinds: list[Kind] = []
    if base in ("Contact", "Client") or base.endswith(("_Contact", "Contacts")) or (
            enum and enum <= _CONTACT_TYPES):
        kinds.append(Kind.CONTACT)
    elif (enum & _CONTACT_TYPES) or "Participant" in base or "Attendee" in base or (
            base.startswith("Polymorphic") and "Contact" in enum):
        kinds.append(Kind.PARTICIPANT)
    if base == "Activity" or "TimeEntry" in enum:
        kinds.append(Kind.TIME_ENTRY)
        if "price" in props or "total" in props:
            kinds.append(Kind.RATED)
    return tuple(kinds)


def main(argv: list[str] | None = None) -> int:
    """Regenerate the bundled index files from a folder holding the two public specs."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).resolve().parents[3] / "shared" / "clio"
    for spec_name, index_name in BUNDLED.items():
        index = index_openapi(json.loads((folder / spec_name).read_text(encoding="utf-8")), spec_name)
        (SPECS / index_name).write_text(index.to_json(), encoding="utf-8")
        print(f"{SPECS / index_name}: {len(index.operations)} operations, {len(index.schemas)} schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main())

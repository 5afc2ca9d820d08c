"""Where facts come from: the legacy backend, asked with the caller's own Authorization, cached.

who_am_i is cached by a digest of the Authorization value (never the value itself); the visible sets
are fetched only when a rule needs them, by crawling the index endpoints the facts policy names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ProxyError, UnauthorizedError, UnavailableError
from ..policy.canonical import encode_query
from ..policy.model import FactsQuery, PolicySet
from .cache import SingleFlightCache
from .settings import Settings
from .viewer import Viewer

MAX_PAGES = 5000
"""A crawl longer than this is treated as a backend fault, not followed forever."""


class JsonSource(Protocol):
    """The one seam to the backend the facts need: GET a target with an Authorization, get JSON."""

    async def get_json(self, target: str, authorization: str) -> tuple[int, Any]: ...

    def same_origin_target(self, url: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: int
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MatterFacts:
    ids: frozenset[int]
    responsible: frozenset[int]
    contacts: frozenset[int]   # clients and contact custom field values of those matters


def auth_digest(authorization: str) -> str:
    return hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).hexdigest()


class FactsService:
    def __init__(
        self,
        source: JsonSource,
        *,
        ttl: float,
        maxsize: int,
        on_crawl: Callable[[str], None] = lambda fact: None,
        on_lookup: Callable[[str, bool], None] = lambda cache, hit: None,
        on_crawl_started: Callable[[str], None] = lambda fact: None,
    ) -> None:
        self._source = source
        self._on_crawl = on_crawl  # each backend request (page)
        self._on_crawl_started = on_crawl_started  # each index crawl, however many pages

        def cache(name: str) -> dict[str, Any]:
            return {"maxsize": maxsize, "ttl": ttl, "on_lookup": lambda hit: on_lookup(name, hit)}

        self._callers: SingleFlightCache[Caller] = SingleFlightCache(**cache("who_am_i"))
        self._matters: SingleFlightCache[MatterFacts] = SingleFlightCache(**cache("matters"))
        self._contacts: SingleFlightCache[frozenset[int]] = SingleFlightCache(**cache("contacts"))
        self._counts: SingleFlightCache[int] = SingleFlightCache(**cache("count"))

    def invalidate(self) -> None:
        """Writes that change visibility (contacts, matters, relationships) and reloads call this."""
        self._matters.invalidate()
        self._contacts.invalidate()
        self._counts.invalidate()

    async def viewer(self, authorization: str, policies: PolicySet, settings: Settings) -> Viewer:
        digest = auth_digest(authorization)
        caller = await self._callers.get(digest, lambda: self._who_am_i(authorization, policies))
        user = settings.for_caller(caller.user_id, caller.roles)
        # The facts the caller's active rules need (the registry says which), and no others.
        needed = {fact for rule in settings.registry.rules if rule.active(user) for fact in rule.facts}
        contacts: frozenset[int] | None = None
        responsible: frozenset[int] | None = None
        if "responsible_matters" in needed:
            matters = await self._matter_facts(digest, authorization, policies)
            responsible = matters.responsible
        if "visible_contacts" in needed:
            contacts = await self._contacts.get(
                digest, lambda: self._visible_contacts(digest, authorization, caller, policies)
            )
        return Viewer(caller.user_id, caller.roles, user, contacts, responsible)

    async def caller(self, authorization: str, policies: PolicySet) -> Caller:
        """Who is calling (who_am_i, cached), and nothing more: the sentinel's question."""
        return await self._callers.get(auth_digest(authorization), lambda: self._who_am_i(authorization, policies))

    async def count(self, authorization: str, target: str, visible: frozenset[int]) -> int:
        """How many records of a contacts index (all pages, the client's filters) the caller may see."""
        key = (auth_digest(authorization), target)

        async def crawl() -> int:
            ids = await self._crawl_ids(target, authorization, "count")
            return len(ids & visible)

        return await self._counts.get(key, crawl)

    async def _who_am_i(self, authorization: str, policies: PolicySet) -> Caller:
        _, body = await self._get(self._target(policies, "who_am_i", None), authorization, "who_am_i")
        data = body.get("data") if isinstance(body, dict) else None
        user_id = data.get("id") if isinstance(data, dict) else None
        roles = data.get("roles", []) if isinstance(data, dict) else None
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            raise UnavailableError("who_am_i did not name the caller")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise UnavailableError("who_am_i gave malformed roles")
        return Caller(user_id, tuple(roles))

    async def _matter_facts(self, digest: str, authorization: str, policies: PolicySet) -> MatterFacts:
        async def crawl() -> MatterFacts:
            ids: set[int] = set()
            responsible: set[int] = set()
            contacts: set[int] = set()
            caller = await self._callers.get(digest, lambda: self._who_am_i(authorization, policies))
            for matter in await self._crawl(self._target(policies, "matters", None), authorization, "matters"):
                ids.add(_id(matter))
                attorney = matter.get("responsible_attorney")
                if attorney is not None and _id(attorney) == caller.user_id:
                    responsible.add(_id(matter))
                if matter.get("client") is not None:
                    contacts.add(_id(matter["client"]))
                values = matter.get("custom_field_values") or []
                if not isinstance(values, list):
                    raise UnavailableError("the matters index has an unexpected shape")
                for value in values:
                    if isinstance(value, dict) and value.get("field_type") == "contact" and value.get("contact"):
                        contacts.add(_id(value["contact"]))
            return MatterFacts(frozenset(ids), frozenset(responsible), frozenset(contacts))

        return await self._matters.get(digest, crawl)

    async def _visible_contacts(
        self, digest: str, authorization: str, caller: Caller, policies: PolicySet
    ) -> frozenset[int]:
        matters = await self._matter_facts(digest, authorization, policies)
        visible = set(matters.contacts)
        for rel in await self._crawl(self._target(policies, "relationships", None), authorization, "relationships"):
            matter = rel.get("matter")
            if rel.get("contact") is not None and matter is not None and _id(matter) in matters.ids:
                visible.add(_id(rel["contact"]))
        created = self._target(policies, "created_contacts", caller.user_id)
        visible |= await self._crawl_ids(created, authorization, "created_contacts")
        return frozenset(visible)

    async def _crawl_ids(self, target: str, authorization: str, fact: str) -> set[int]:
        return {_id(record) for record in await self._crawl(target, authorization, fact)}

    async def _crawl(self, target: str, authorization: str, fact: str) -> list[Any]:
        """Every record of an index, following meta.paging.next to the end."""
        self._on_crawl_started(fact)
        records: list[Any] = []
        seen: set[str] = set()
        next_target: str | None = target
        while next_target is not None:
            if next_target in seen or len(seen) >= MAX_PAGES:
                raise UnavailableError(f"the {fact} crawl does not end")
            seen.add(next_target)
            _, body = await self._get(next_target, authorization, fact)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise UnavailableError(f"the {fact} index has an unexpected shape")
            records.extend(data)
            meta = body.get("meta") or {}
            paging = (meta.get("paging") or {}) if isinstance(meta, dict) else None
            if not isinstance(paging, dict) or not all(isinstance(r, dict) for r in data):
                raise UnavailableError(f"the {fact} index has an unexpected shape")
            link = paging.get("next") if isinstance(paging, dict) else None
            if link is None:
                break
            next_target = self._source.same_origin_target(link) if isinstance(link, str) else None
            if next_target is None:
                raise UnavailableError(f"the {fact} index links outside the backend")
        return records

    async def _get(self, target: str, authorization: str, fact: str) -> tuple[int, Any]:
        self._on_crawl(fact)
        try:
            status, body = await self._source.get_json(target, authorization)
        except ProxyError as exc:
            raise UnavailableError(f"facts unavailable: {fact}") from exc
        if status == 401:
            raise UnauthorizedError("the backend does not accept these credentials")
        if status != 200:
            raise UnavailableError(f"facts unavailable: {fact} answered {status}")
        return status, body

    @staticmethod
    def _target(policies: PolicySet, fact: str, caller_id: int | None) -> str:
        query: FactsQuery = policies.facts[fact]
        params = tuple((k, v.replace("{caller_id}", str(caller_id))) for k, v in query.query)
        path = "/" + "/".join((*policies.base, *query.path.split("/"))) + ".json"
        return f"{path}?{encode_query(params)}" if params else path


def _id(obj: Any) -> int:
    value = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnavailableError("a facts record lacks an integer id")
    return value



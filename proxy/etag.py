"""The proxy's entity tags: a keyed MAC of the backend's etag, per caller and policy version, so a tag
can be verified against the record as it is now while revealing nothing about the backend's etag
(a digest of the unredacted record: an oracle for hidden values). Pure: parsing, sealing, verifying.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

PREFIX = "rp."
_MAC_HEX = 32  # a 128-bit keyed BLAKE2b: a forgery is a guess in 2**128
_BODY_HEX = 16
_ENTITY_TAG = re.compile(r'[ \t]*(\*|(?:W/)?"([\x21\x23-\x7e]*)")[ \t]*\Z')
_PROXY_OPAQUE = re.compile(rf"rp\.([0-9a-f]{{{_MAC_HEX}}})(?:\.[0-9a-f]{{{_BODY_HEX}}})?\Z")


_TAGS: dict[tuple[bytes, bytes, str], str] = {}
_TAGS_KEPT = 65536  # about 10 MB at most; cleared whole when full (a process-wide memo, not a secret)


@dataclass(frozen=True, slots=True)
class Sealer:
    """Seals and verifies tags for one caller under one policy version, with the replicas' shared key."""

    key: bytes    # at most 64 bytes: BLAKE2b's key (a longer one is hashed down, as HMAC would)
    scope: bytes  # caller digest | policy version: a tag given to one caller verifies for no other

    @staticmethod
    def of(key: bytes, caller_digest: str, policy_version: str) -> Sealer:
        if len(key) > hashlib.blake2b.MAX_KEY_SIZE:
            key = hashlib.blake2b(key).digest()
        return Sealer(key, f"{caller_digest}|{policy_version}|".encode())

    def mac(self, backend_etag: str) -> str:
        """BLAKE2b in its keyed mode (a PRF, RFC 7693) of scope + the backend's tag, 128 bits: one
        C call per tag, where HMAC-SHA256 costs two hashes and their set-up, for every record of a
        restricted page."""
        # A weak or strong spelling of the same backend tag seals alike: the header may be weak while
        # the record's `etag` member (which the prefetch reads) is strong.
        message = self.scope + backend_etag.strip().removeprefix("W/").encode("utf-8", "surrogateescape")
        return hashlib.blake2b(message, key=self.key, digest_size=_MAC_HEX // 2).hexdigest()

    def record_tag(self, backend_etag: str) -> str:
        """The `etag` member of a record a decision changed: quoted, like the API's. Remembered
        (bounded): the same records are sealed page after page, and a MAC is the costliest step of a
        restricted record after parsing it."""
        memo = (self.key, self.scope, backend_etag)
        tag = _TAGS.get(memo)
        if tag is None:
            if len(_TAGS) >= _TAGS_KEPT:
                _TAGS.clear()
            tag = _TAGS[memo] = f'"{PREFIX}{self.mac(backend_etag)}"'
        return tag

    def header_tag(self, backend_etag: str | None, body: bytes) -> str:
        """The ETag header of a buffered answer. The body digest keeps If-None-Match per
        representation (`fields`, redactions); without a backend etag it is all there is, and is
        still per caller and policy version."""
        digest = hashlib.sha256(body)
        if backend_etag is None:
            digest.update(self.scope)
            return f'W/"{digest.hexdigest()[:32]}"'
        return f'W/"{PREFIX}{self.mac(backend_etag)}.{digest.hexdigest()[:_BODY_HEX]}"'

    def verifies(self, tag_mac: str, backend_etag: str) -> bool:
        return hmac.compare_digest(tag_mac, self.mac(backend_etag))


@dataclass(frozen=True, slots=True)
class IfMatch:
    """A parsed If-Match: `*`, or the entity tags as sent (`W/"x"` or `"x"`) and their opaque parts."""

    star: bool
    tags: tuple[tuple[str, str], ...]  # (as sent, opaque)

    @property
    def proxy_tags(self) -> tuple[str, ...]:
        """The opaque parts that claim to be ours (`rp.`), well formed or not."""
        return tuple(opaque for _, opaque in self.tags if opaque.startswith(PREFIX))

    @property
    def foreign(self) -> tuple[str, ...]:
        return tuple(sent for sent, opaque in self.tags if not opaque.startswith(PREFIX))


def parse_if_match(header: str) -> IfMatch:
    """RFC 9110 13.1.1: `*` or a list of entity tags. Raises ValueError on anything else."""
    tags: list[tuple[str, str]] = []
    star = False
    for part in header.split(","):
        if not part.strip():
            continue  # the list syntax allows empty elements
        found = _ENTITY_TAG.match(part)
        if found is None:
            raise ValueError("If-Match is not a list of entity tags")
        if found.group(1) == "*":
            star = True
        else:
            tags.append((found.group(1), found.group(2)))
    if (star and tags) or (not star and not tags):
        raise ValueError("If-Match is `*` alone or a list of entity tags")
    return IfMatch(star, tuple(tags))


def forwarded_if_match(parsed: IfMatch, sealer: Sealer, current: str | None) -> str | None:
    """The If-Match to send the backend for a request whose If-Match holds a proxy tag, given the
    record's current backend etag (None: the record has none). The backend's own etag when one of
    our tags verifies (the backend still does the atomic check: a write racing ours gets its 412);
    else the tags that are not ours, for the backend to compare; None when nothing can match."""
    if current is not None:
        for opaque in parsed.proxy_tags:
            ours = _PROXY_OPAQUE.match(opaque)
            if ours is not None and sealer.verifies(ours.group(1), current):
                return current
    foreign = parsed.foreign
    return ", ".join(foreign) if foreign else None

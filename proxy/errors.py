"""The proxy's exception tree and the API's error body.

    ProxyError                     every error the proxy answers itself; carries status + wire type
    ├── BadRequestError   400      the request cannot be classified exactly (spelling, query, body)
    ├── UnauthorizedError 401      the backend does not accept the caller
    ├── ForbiddenError    403      a rule forbids the request (permission gate, hidden hours edit)
    ├── NotFoundError     404      hidden object, or an unknown route inside a policed family
    ├── MethodNotAllowedError 405
    ├── RequestTimeoutError 408    the client was too slow sending its request
    ├── PreconditionFailedError 412  If-Match with a proxy ETag the record no longer has
    ├── PayloadTooLargeError 413
    ├── UnsupportedMediaError 415
    ├── UnprocessableError 422     a write names an object the caller may not see
    ├── ClientGoneError   499      the client left (counted and logged, never an internal error)
    ├── BadGatewayError   502      the backend's answer cannot be examined; a policy failed
    │   └── UndecidableError 502   the answer lacks what a decision needs, or has an unexpected shape
    ├── UnavailableError  503      the facts a decision needs cannot be had
    └── GatewayTimeoutError 504

Messages name rules and routes, never hidden data: they are sent to the client and logged.
"""

from __future__ import annotations

import orjson


class ProxyError(Exception):
    status: int = 500
    wire_type: str = "InternalServerError"

    def __init__(self, message: str, *, rule: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.wire_type, self.message)


class BadRequestError(ProxyError):
    status, wire_type = 400, "BadRequest"


class UnauthorizedError(ProxyError):
    status, wire_type = 401, "Unauthorized"


class ForbiddenError(ProxyError):
    status, wire_type = 403, "ForbiddenError"


class NotFoundError(ProxyError):
    status, wire_type = 404, "NotFound"


class MethodNotAllowedError(ProxyError):
    status, wire_type = 405, "MethodNotAllowed"


class RequestTimeoutError(ProxyError):
    status, wire_type = 408, "RequestTimeout"


class PreconditionFailedError(ProxyError):
    status, wire_type = 412, "PreconditionFailed"


class PayloadTooLargeError(ProxyError):
    status, wire_type = 413, "PayloadTooLarge"


class UnsupportedMediaError(ProxyError):
    status, wire_type = 415, "UnsupportedMediaType"


class UnprocessableError(ProxyError):
    status, wire_type = 422, "UnprocessableEntity"


class ClientGoneError(ProxyError):
    """The client went away before its request was read or answered: nothing to answer, not a fault."""

    status, wire_type = 499, "ClientClosedRequest"


class BadGatewayError(ProxyError):
    status, wire_type = 502, "BadGateway"


class UnavailableError(ProxyError):
    status, wire_type = 503, "ServiceUnavailable"


class GatewayTimeoutError(ProxyError):
    status, wire_type = 504, "GatewayTimeout"


BLOCK_ERRORS: dict[int, type[ProxyError]] = {
    403: ForbiddenError,
    404: NotFoundError,
    422: UnprocessableError,
}
"""The statuses a policy may choose for a blocked request (the seed uses these three)."""


def error_body(wire_type: str, message: str) -> bytes:
    """The API's error shape: {"error": {"type": ..., "message": ...}}."""
    return orjson.dumps({"error": {"type": wire_type, "message": message}})


class UndecidableError(BadGatewayError):
    """The backend's answer lacks what a decision needs, or has an unexpected shape: never guessed."""

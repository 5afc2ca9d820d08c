"""The API's error body `{"error": {"type", "message"}}` and JSON responses of the demo backend."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

JSON_TYPE = "application/json"


class ApiError(Exception):
    """An error the backend answers in the API's own shape."""

    def __init__(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}

    def response(self) -> web.Response:
        response = error_response(self.status, self.error_type, self.message)
        response.headers.update(self.headers)
        return response


def error_body(error_type: str, message: str) -> bytes:
    return orjson.dumps({"error": {"type": error_type, "message": message}})


def error_response(status: int, error_type: str, message: str) -> web.Response:
    return web.Response(status=status, body=error_body(error_type, message), content_type=JSON_TYPE,
                        charset="utf-8")


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type=JSON_TYPE, charset="utf-8")


def not_found(message: str = "The requested resource could not be found") -> ApiError:
    return ApiError(404, "NotFound", message)


def argument_error(message: str) -> ApiError:
    return ApiError(400, "ArgumentError", message)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "UnprocessableEntity", message)

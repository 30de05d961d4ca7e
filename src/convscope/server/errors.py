"""One JSON error shape for every failure, and the HTTP status each kind of failure gets.

    {"error": {"status": 404, "code": "not_found", "message": "no saved prediction 12", "details": [...]}}

``details`` appears only for request validation errors (one entry per bad field). Bad input never produces a
500 or a traceback; an unexpected bug produces a 500 with a generic message (security.py answers it, so that it
carries the security headers), and the traceback goes to the log.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ConvscopeError, DataError, ImageTooLargeError, UnreadableImageError

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              408: "request_timeout", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
              422: "invalid_input", 500: "internal_error", 503: "unavailable", 507: "insufficient_storage"}


class ApiError(Exception):
    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status or self.status


class NotFound(ApiError):
    status = 404


class StoreFull(ApiError):
    """The saved images have reached the store's size cap (CONVSCOPE_MAX_STORED_IMAGE_BYTES)."""

    status = 507


class Conflict(ApiError):
    status = 409


def error_response(status: int, message: str, details: list | None = None, headers: dict | None = None):
    body = {"status": status, "code": HTTP_CODES.get(status, "error"), "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def engine_error_status(error: ConvscopeError) -> int:
    if isinstance(error, ImageTooLargeError):
        return 413
    if isinstance(error, UnreadableImageError):
        return 415
    if isinstance(error, DataError):  # the dataset is missing or could not be downloaded: not the user's fault
        return 503
    return 422


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError):
        return error_response(error.status, error.message)

    @app.exception_handler(ConvscopeError)
    async def _engine_error(request: Request, error: ConvscopeError):
        return error_response(engine_error_status(error), str(error))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError):
        details = [{"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]} for e in error.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        return error_response(422, f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        message = error.detail if isinstance(error.detail, str) else HTTP_CODES.get(error.status_code, "error")
        if error.status_code == 404 and message == "Not Found":  # no route matched
            message = f"nothing here: {request.method} {request.url.path}"
        return error_response(error.status_code, message, headers=getattr(error, "headers", None))


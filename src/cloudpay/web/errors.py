"""Every failure leaves the API in the one error shape; bad input is never a 500."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloudpay.db.unit_of_work import TransactionRetriesExhausted
from cloudpay.kernel.errors import STATUS_BY_TYPE, CloudPayError

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    # FastAPI's own 400: JSON it could not decode (digits beyond int limits, nesting too deep).
    400: ("invalid_request_error", "body_not_json", "request body could not be parsed as JSON"),
    404: ("not_found_error", "route_not_found", "no such route"),
    405: ("invalid_request_error", "method_not_allowed", "method not allowed on this route"),
    413: ("invalid_request_error", "body_too_large", "request body too large"),
}


# Where FastAPI found a parameter; the caller knows it by its name alone.
_SOURCES = ("body", "query", "path", "header", "cookie")


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    request: Request, status: int, error_type: str, code: str, message: str, param: str | None
) -> JSONResponse:
    body = {
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "request_id": request_id_of(request),
        }
    }
    return JSONResponse(body, status_code=status)


async def _on_cloudpay_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CloudPayError)
    return JSONResponse(error.to_dict(request_id_of(request)), status_code=error.http_status)


def _describe_validation(errors: list[dict[str, Any]]) -> tuple[str, str, str | None]:
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    location = [str(part) for part in (loc[1:] if loc[:1] and loc[0] in _SOURCES else loc)]
    param = ".".join(location) or None
    if first.get("type") == "json_invalid":
        return "body_not_json", "request body is not valid JSON", None
    if tuple(first.get("loc", ())) == ("body",):
        # The body as a whole: absent, or JSON that is not an object (an array, a string…).
        if first.get("type") == "missing":
            return "body_missing", "a JSON object request body is required", None
        return "body_invalid", "request body must be a JSON object", None
    if first.get("type") == "missing":
        return "parameter_missing", f"missing required parameter {param}", param
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return "parameter_invalid", message, param


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    code, message, param = _describe_validation(list(error.errors()))
    status = STATUS_BY_TYPE["invalid_request_error"]
    return error_response(request, status, "invalid_request_error", code, message, param)


async def _on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    error_type, code, message = _HTTP_CODES.get(
        error.status_code, ("invalid_request_error", "http_error", str(error.detail))
    )
    return error_response(request, error.status_code, error_type, code, message, None)


async def _on_database_busy(request: Request, error: Exception) -> JSONResponse:
    log.warning("database.busy", error=str(error))
    return error_response(
        request, 503, "api_error", "database_busy", "the database is busy; retry shortly", None
    )


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    # A programmer error: log it loudly with the request id, tell the caller nothing internal.
    log.exception("request.failed", request_id=request_id_of(request))
    return error_response(request, 500, "api_error", "internal_error", "internal error", None)


async def _on_statement_error(request: Request, error: Exception) -> JSONResponse:
    """A value the database driver refuses to send (PostgreSQL text cannot hold NUL) is the
    caller's bad input; the transaction it was in has rolled back, so nothing was written."""
    assert isinstance(error, StatementError)
    if "NUL (0x00)" in str(error.orig):
        return error_response(
            request, 400, "invalid_request_error", "parameter_invalid",
            "text may not contain NUL (0x00) characters", None,
        )  # fmt: skip
    return await _on_unexpected(request, error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CloudPayError, _on_cloudpay_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(TransactionRetriesExhausted, _on_database_busy)
    app.add_exception_handler(StatementError, _on_statement_error)
    app.add_exception_handler(Exception, _on_unexpected)

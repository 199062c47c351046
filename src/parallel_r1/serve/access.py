"""Who may see what: the API key that guards /v1 and, when a key is set, the API docs.

Without a key the server is open (loopback by default) and FastAPI's /docs, /redoc and
/openapi.json are served as usual; with a key they answer 401 without it, like /v1.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Depends, FastAPI
from fastapi import Request as HTTPRequest
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from parallel_r1.serve.intake import RequestError


def key_check(api_key: str | None) -> Any:
    """A FastAPI dependency raising RequestError(401) unless the request sends `api_key`
    (`Authorization: Bearer <key>`); does nothing when `api_key` is None."""

    async def check_key(request: HTTPRequest) -> None:
        if api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), api_key.encode()):
            raise RequestError(401, "invalid or missing API key (send Authorization: Bearer "
                               "<key>)", "authentication_error", code="invalid_api_key")

    return check_key


def docs_settings(api_key: str | None) -> dict[str, Any]:
    """FastAPI(...) arguments: the default docs routes, or none when a key is set."""
    if api_key is None:
        return {}
    return {"docs_url": None, "redoc_url": None, "openapi_url": None}


def add_guarded_docs(app: FastAPI, api_key: str | None) -> None:
    """With a key: /openapi.json, /docs and /redoc, each requiring the key."""
    if api_key is None:
        return
    guard = [Depends(key_check(api_key))]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    @app.get("/redoc", include_in_schema=False, dependencies=guard)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=app.title)

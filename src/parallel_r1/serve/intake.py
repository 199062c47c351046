"""Taking a request in without letting it stall the server: bounded bodies, JSON parsed and
validated off the event loop, prompts too long for the context refused before any tokenizing.

`BodyLimit` is an ASGI middleware: a body over the bound is answered 413 (OpenAI's error shape)
without parsing it. `parse_body` checks the content type and validates the JSON in a worker
thread. `min_tokens` is a lower bound on a text's token count from its length alone (no token
decodes to more characters than the vocabulary's longest entry), so a prompt that cannot fit the
context is refused in microseconds, whatever its size.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from parallel_r1.serve.payloads import error_body

DEFAULT_MAX_BODY_MB = 8.0


class RequestError(Exception):
    """A request refused before it reaches the engine: answered as OpenAI's error JSON."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.body = status, error_body(message, kind, param, code)


class BodyLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413, before any parsing.

    The body is read (and counted) here and handed on whole, so the app never sees more than
    the bound. A body over the bound is drained (not kept) up to 4x the bound before the 413,
    so that a client still sending reads the answer instead of a reset connection; one
    announced larger than that by Content-Length is refused at once. A body not complete
    within `timeout` seconds (a client trickling bytes) is answered 408 and the connection
    closed.
    """

    def __init__(self, app: Any, max_bytes: int, timeout: float | None = None):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode() or None
        if declared is not None and declared.isdigit() and int(declared) > 4 * self.max_bytes:
            return await self._refuse(send, int(declared))
        try:
            read = await asyncio.wait_for(self._read(receive), self.timeout)
        except asyncio.TimeoutError:
            return await self._answer(send, 408, error_body(
                f"the request body did not arrive within {self.timeout:g} s (serve "
                "--body-timeout)", code="request_timeout"))
        if read is None or isinstance(read, int):  # gone, or the size of a body over the bound
            return None if read is None else await self._refuse(send, read)
        body, replayed = read, False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls: disconnect detection

        return await self.app(scope, replay, send)

    async def _read(self, receive: Any) -> bytes | int | None:
        """The whole body; its size once over the bound; None if the client left."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            size += len(message.get("body", b""))
            if size <= self.max_bytes:
                chunks.append(message.get("body", b""))
            elif size > 4 * self.max_bytes or not message.get("more_body"):
                return size
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _refuse(self, send: Any, size: int) -> None:
        await self._answer(send, 413, error_body(
            f"request body of {size / 1e6:.1f} MB is over this server's limit of "
            f"{self.max_bytes / 1e6:.1f} MB (serve --max-body-mb)", code="request_too_large"))

    async def _answer(self, send: Any, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": data})


def describe_errors(exc: ValidationError) -> tuple[str, str | None]:
    """(message, param) for a pydantic error: each problem as "field: what is wrong"."""
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return f"request body is not valid JSON: {err.get('msg', '')}", None
        where = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    first = exc.errors()[0].get("loc", ()) if exc.errors() else ()
    param = ".".join(map(str, first)) or None
    if param is None and problems:  # a whole-body check names its field first: "name=..."
        named = re.match(r"(\w+)=", problems[0])
        param = named.group(1) if named else None
    return "invalid request: " + "; ".join(problems), param


def check_content_type(content_type: str | None) -> None:
    """Raises RequestError(415) unless the body is declared JSON."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise RequestError(415, f"send the body as JSON with 'Content-Type: application/json' "
                           f"(got {content_type or 'no content type'!r})",
                           code="unsupported_media_type")


def validate(model: type[BaseModel], raw: bytes) -> BaseModel:
    """`model` from JSON bytes (run in a worker thread: big bodies take a while).

    Raises:
        RequestError: 400 naming the field, or saying the JSON does not parse.
    """
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        message, param = describe_errors(exc)
        raise RequestError(400, message, param=param) from None


def max_token_chars(tokenizer: Any) -> int:
    """The most characters one token can decode to (its longest vocabulary entry: byte-level
    and SentencePiece entries have at least as many characters as their text)."""
    vocab = tokenizer.get_vocab()
    return max([len(entry) for entry in vocab] + [1])


def min_tokens(num_chars: int, longest: int) -> int:
    """A lower bound on the tokens of any text of `num_chars` characters."""
    return -(-num_chars // max(longest, 1))

"""The OpenAI-compatible HTTP API over the engine: completions, chat, models, health.

`create_app` wires one engine (driven by one `EngineWorker` thread) to FastAPI routes. Bodies are
bounded and validated off the event loop by `intake` and `schemas` (a bad one is a 400 naming the
field, in OpenAI's error shape like every other error), a prompt that cannot fit the context is
refused before the chat template and tokenizer run (they run in a worker thread too), an optional
API key guards `/v1` (401), settings the engine rejects are a 400 with the engine's message, and a
streaming client that disconnects has its engine rows freed. On shutdown, in-flight requests get
`shutdown_grace` seconds; then streams end with an error event and `[DONE]`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi import Request as HTTPRequest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from parallel_r1.engine.types import ParallelParams, Request, SamplingParams
from parallel_r1.errors import EngineError
from parallel_r1.format.tags import TagIds
from parallel_r1.serve.access import add_guarded_docs, docs_settings, key_check
from parallel_r1.serve.choice import ChoiceSpec, ChoiceState
from parallel_r1.serve.generation import ClientGone, Generation, ShuttingDown
from parallel_r1.serve.intake import (
    DEFAULT_MAX_BODY_MB,
    BodyLimit,
    RequestError,
    check_content_type,
    max_token_chars,
    min_tokens,
    validate,
)
from parallel_r1.serve.logprobs import prompt_logprobs
from parallel_r1.serve.payloads import chat_choice, completion_choice, error_body, usage
from parallel_r1.serve.schemas import ChatRequest, CompletionRequest
from parallel_r1.serve.scoring import score
from parallel_r1.serve.streaming import stream_chat, stream_completion
from parallel_r1.serve.tokenization import tokenization_router
from parallel_r1.serve.worker import EngineWorker

APIError = RequestError  # an error answered as OpenAI's error JSON with `status`
DEFAULT_SHUTDOWN_GRACE_S = 30.0
DEFAULT_MAX_SAMPLES = 256  # prompts x n of one request
DEFAULT_STREAM_BUFFER = 64  # unread events per choice before a stream is stopped


@dataclass
class ServerState:
    """Everything the routes share."""

    worker: EngineWorker
    tokenizer: Any
    model_name: str
    parallel: ParallelParams
    default_max_tokens: int
    max_context: int
    api_key: str | None
    tags: TagIds | None
    created: int
    longest_token: int = 1  # characters of the longest vocabulary entry
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE_S
    max_samples: int = DEFAULT_MAX_SAMPLES
    stream_buffer: int = DEFAULT_STREAM_BUFFER
    prep: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        1, thread_name_prefix="prep"))  # chat template + tokenizer, off the event loop
    draining: bool = False
    stop_streams: asyncio.Event | None = None  # set once the shutdown grace has passed
    model: Any = None  # the engine's model, for scoring (echo, alternatives, prompt log-probs)

    def begin_shutdown(self) -> None:
        """Refuse new requests; end the ones in flight after `shutdown_grace` seconds."""
        self.draining = True
        if self.stop_streams is not None:
            asyncio.get_running_loop().call_later(self.shutdown_grace, self.stop_streams.set)

    async def prepare(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` on the prep thread (the tokenizer is used from one thread only)."""
        return await asyncio.get_running_loop().run_in_executor(self.prep, fn, *args)


def create_app(engine: Any, tokenizer: Any, model_name: str, *, api_key: str | None = None,
               parallel: ParallelParams | None = None, default_max_tokens: int = 256,
               max_body_mb: float = DEFAULT_MAX_BODY_MB,
               shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE_S,
               max_samples: int = DEFAULT_MAX_SAMPLES, stream_buffer: int = DEFAULT_STREAM_BUFFER,
               body_timeout: float | None = None) -> FastAPI:
    """Build the FastAPI app serving `engine` under `model_name`.

    Args:
        engine: a TorchEngine (add_request / step / abort / has_unfinished).
        tokenizer: its tokenizer (prompts, chat template, incremental decoding).
        api_key: when set, /v1 routes need `Authorization: Bearer <api_key>`.
        parallel: the server's parallel settings; a request may override them (`parallel`).
        default_max_tokens: used when a request gives no max_tokens (capped by the context).
        max_body_mb: request bodies over this many MB are refused (413) unread.
        shutdown_grace: seconds in-flight requests get once shutdown starts
            (`app.state.server.begin_shutdown()`, called by `serve`).
        max_samples: most prompts x n one request may ask for (more: 400 naming `n`).
        stream_buffer: unread events per choice after which a stream's generation is stopped.
        body_timeout: seconds a client gets to send its whole body (408 after; None: no limit).

    Returns:
        The app; its lifespan starts and stops the engine thread.
    """
    try:
        tags = TagIds.from_tokenizer(tokenizer)
    except EngineError:
        tags = None
    state = ServerState(EngineWorker(engine), tokenizer, model_name, parallel or ParallelParams(),
                        default_max_tokens, int(getattr(engine, "max_context", 1 << 30)),
                        api_key, tags, int(time.time()), max_token_chars(tokenizer),
                        shutdown_grace, max_samples, stream_buffer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.stop_streams = asyncio.Event()
        state.worker.start()
        yield
        state.worker.stop()
        state.prep.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="parallel-r1", lifespan=lifespan, **docs_settings(api_key))
    app.state.server = state
    app.add_middleware(BodyLimit, max_bytes=int(max_body_mb * 1e6), timeout=body_timeout)
    _add_error_handlers(app)
    add_guarded_docs(app, api_key)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and load: requests in flight and engine rows (0 when idle); no names or
        paths, as it answers without the key."""
        return {"status": "ok", **state.worker.snapshot()}

    state.model = getattr(engine, "model", None)
    app.include_router(_v1_router(state), prefix="/v1")
    app.include_router(tokenization_router(
        state, lambda request, model: _parse(state, request, model)))
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_: HTTPRequest, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: HTTPRequest, exc: HTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        message = {404: f"no such route: {where} (see /v1/models, /v1/completions, "
                        "/v1/chat/completions, /tokenize, /detokenize, /health)",
                   405: f"method not allowed: {where}"}.get(exc.status_code, str(exc.detail))
        return JSONResponse(error_body(message, code={404: "not_found", 405: "method_not_allowed"
                                                      }.get(exc.status_code)),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(EngineError)
    async def engine_error(_: HTTPRequest, exc: EngineError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(_: HTTPRequest, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}: {exc}",
                                       "server_error"), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: HTTPRequest, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        first = exc.errors()[0].get("loc", ()) if exc.errors() else ()
        param = ".".join(str(p) for p in first if p != "body") or None
        return JSONResponse(error_body("invalid request: " + "; ".join(problems), param=param),
                            status_code=400)


def _v1_router(state: ServerState) -> APIRouter:
    router = APIRouter(dependencies=[Depends(key_check(state.api_key))])

    def card() -> dict[str, Any]:
        return {"id": state.model_name, "object": "model", "created": state.created,
                "owned_by": "parallel-r1"}

    @router.get("/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [card()]}

    @router.get("/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        if model_id != state.model_name:
            raise APIError(404, f"model '{model_id}' is not served here; this server serves "
                           f"'{state.model_name}'", param="model", code="model_not_found")
        return card()

    @router.post("/completions")
    async def completions(request: HTTPRequest) -> Any:
        body = await _parse(state, request, CompletionRequest)
        _check_samples(state, len(body.prompts()), body.n)
        _check_length(state, [len(p) for p in body.prompts() if isinstance(p, str)])
        prompts = await state.prepare(
            lambda: [_encode_prompt(state, p, body.add_special_tokens) for p in body.prompts()])
        return await _respond(state, body, prompts, request, chat=False)

    @router.post("/chat/completions")
    async def chat(request: HTTPRequest) -> Any:
        from parallel_r1.models.load import apply_template

        body = await _parse(state, request, ChatRequest)
        _check_samples(state, 1, body.n)
        messages = body.chat_messages()
        _check_length(state, [sum(len(m["content"]) for m in messages)])
        prompt = await state.prepare(lambda: apply_template(state.tokenizer, messages, chat=True))
        return await _respond(state, body, [prompt], request, chat=True)

    return router


async def _parse(state: ServerState, request: HTTPRequest, model: type) -> Any:
    """The validated body (JSON parsed in a worker thread), or a 415/400/503 RequestError."""
    if state.draining:
        raise APIError(503, "the server is shutting down; retry on another replica",
                       "server_error", code="server_shutting_down")
    check_content_type(request.headers.get("content-type"))
    raw = await request.body()
    return await asyncio.get_running_loop().run_in_executor(None, validate, model, raw)


def _check_samples(state: ServerState, num_prompts: int, n: int) -> None:
    """Refuse a request for more samples (prompts x n) than the server takes at once."""
    if num_prompts * n > state.max_samples:
        raise APIError(400, f"{num_prompts} prompt(s) x n={n} = {num_prompts * n} samples is "
                       f"over this server's limit of {state.max_samples} per request (serve "
                       "--max-samples); send fewer prompts or a lower n", param="n",
                       code="too_many_samples")


def _check_length(state: ServerState, num_chars: list[int]) -> None:
    """Refuse a prompt that cannot fit the context, from its length alone (no tokenizing)."""
    longest = max(num_chars, default=0)
    floor = min_tokens(longest, state.longest_token)
    if floor >= state.max_context:
        raise APIError(400, f"the prompt has {longest} characters, so at least {floor} tokens: "
                       f"more than the model's context of {state.max_context} tokens",
                       param="messages", code="context_length_exceeded")


def _encode_prompt(state: ServerState, prompt: str | list[int], special: bool = True
                   ) -> list[int]:
    if isinstance(prompt, str):
        return list(state.tokenizer.encode(prompt, add_special_tokens=special))
    vocab = len(state.tokenizer)
    bad = [t for t in prompt if not 0 <= t < vocab]
    if bad:
        raise APIError(400, f"prompt token ids {bad[:5]} are outside the vocabulary [0, {vocab})",
                       param="prompt")
    return list(prompt)


async def _respond(state: ServerState, body: Any, prompts: list[list[int]],
                   request: HTTPRequest, *, chat: bool) -> Any:
    if body.model != state.model_name:
        raise APIError(404, f"model '{body.model}' is not served here; this server serves "
                       f"'{state.model_name}' (see /v1/models)", param="model",
                       code="model_not_found")
    limit = body.token_limit if chat else body.max_tokens
    if limit is None:  # as much as fits, up to the server default
        limit = max(1, min(state.default_max_tokens, state.max_context - max(map(len, prompts))))
    params = body.sampling_params(max(limit, 1), state.parallel)
    specs = [_spec(state, p, body, params) for p in prompts]
    gen = Generation(state.worker, _engine_requests(prompts, params), specs,
                     state.stream_buffer * len(prompts) * params.n if body.stream else None)
    if limit == 0:  # echo only: score the prompts, generate nothing
        _check_scored_length(state, prompts)
        gen.choices = [ChoiceState.empty(spec) for spec in specs for _ in range(params.n)]
    else:
        await gen.start()  # EngineError -> 400 before any byte is sent
    meta = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "created": int(time.time()), "model": state.model_name}
    num_prompt = sum(map(len, prompts))
    headers = {"X-Parallel-R1-Ignored": ", ".join(body.ignored())} if body.ignored() else {}

    async def prepare(index: int, last: bool) -> None:
        # A chunk's alternatives need the tokens scored so far (one forward per chunk); an
        # echoed prompt's scores are taken once.
        choice = gen.choices[index]
        if last or body.num_top or choice.scores is None:
            await _score(state, body, [choice], params)

    if body.stream:
        stream = stream_chat if chat else stream_completion
        gen.stop = state.stop_streams
        return StreamingResponse(stream(gen, body, meta, num_prompt, request, prepare),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", **headers})
    if limit:
        await _run(state, gen, request)
    await _score(state, body, gen.choices, params)
    mode, want_lp = params.parallel.mode, body.wants_logprobs
    if chat:
        choices = [chat_choice(c, i, mode, logprobs=want_lp, num_top=body.num_top)
                   for i, c in enumerate(gen.choices)]
    else:
        choices = [completion_choice(c, i, mode, logprobs=want_lp, num_top=body.num_top,
                                     echo=body.echo, num_prompt_top=body.prompt_logprobs,
                                     token_ids=body.return_token_ids,
                                     ids_as_tokens=body.return_tokens_as_token_ids)
                   for i, c in enumerate(gen.choices)]
    reply = {**meta, "object": "chat.completion" if chat else "text_completion",
             "choices": choices, "usage": usage(gen.choices, num_prompt)}
    if chat and body.prompt_logprobs is not None:  # vLLM puts them beside the choices
        reply["prompt_logprobs"] = prompt_logprobs(gen.choices[0], body.prompt_logprobs)
    return JSONResponse(reply, headers=headers)


async def _run(state: ServerState, gen: Generation, request: HTTPRequest) -> None:
    """Run a non-streaming generation to its end; its failures as API errors."""
    try:
        await gen.run(request.is_disconnected, state.stop_streams)
    except ClientGone:
        raise APIError(499, "client disconnected") from None
    except ShuttingDown as exc:
        raise APIError(503, str(exc), "server_error", code="server_shutting_down") from None
    except RuntimeError as exc:
        raise APIError(500, str(exc), "server_error") from None


async def _score(state: ServerState, body: Any, choices: list[ChoiceState],
                 params: SamplingParams) -> None:
    """Put on each choice the scores its response shows (echoed prompt, alternatives, prompt
    log-probs), from one forward per distinct sequence on the engine thread."""
    echo = isinstance(body, CompletionRequest) and body.echo and body.wants_logprobs
    num_top, prompt_top = body.num_top, body.prompt_logprobs
    if not (echo or num_top or prompt_top is not None):
        return
    if state.model is None:
        raise APIError(400, "this engine cannot score tokens: prompt log-probs and alternatives "
                       "need the built-in engine", param="logprobs")
    layout = params.parallel.mode if num_top else "causal"
    jobs = [(c, c.spec.prompt_ids + (c.ids if num_top else [])) for c in choices]

    def run() -> None:
        done: dict[tuple[int, ...], Any] = {}
        for choice, ids in jobs:
            key = tuple(ids)
            if key not in done:
                done[key] = score(state.model, ids, len(choice.spec.prompt_ids),
                                  tags=state.tags, layout=layout,
                                  temperature=params.temperature,
                                  num_top=max(num_top, prompt_top or 0))
            choice.scores = done[key]

    await state.worker.call(run, asyncio.get_running_loop())


def _check_scored_length(state: ServerState, prompts: list[list[int]]) -> None:
    longest = max(map(len, prompts))
    if longest > state.max_context:
        raise APIError(400, f"the prompt has {longest} tokens, more than the model's context of "
                       f"{state.max_context} tokens", param="prompt",
                       code="context_length_exceeded")


def _engine_requests(prompts: list[list[int]], params: SamplingParams) -> list[Request]:
    """One engine request per prompt. With a seed, sample j of every prompt uses seed + j, so a
    prompt samples as it would alone in a request (as in vLLM), wherever it sits in the batch."""
    base = uuid.uuid4().hex
    return [Request(f"{base}-{i}", prompt, params) for i, prompt in enumerate(prompts)]


def _spec(state: ServerState, prompt: list[int], body: Any, params: SamplingParams) -> ChoiceSpec:
    return ChoiceSpec(state.tokenizer, prompt, tuple(body.stop), state.tags,
                      params.parallel.mode, incremental=body.stream)

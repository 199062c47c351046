"""vLLM's tokenizer routes: POST /tokenize, POST /detokenize, GET /tokenizer_info.

Request and response shapes are vLLM's (`vllm/entrypoints/serve/tokenize/protocol.py`), so
clients written for a vLLM server (lm-evaluation-harness's `tokenizer_backend="remote"`) work
unchanged. The routes sit at the root as in vLLM, behind the same API key as /v1; the tokenizer
runs on the server's prep thread.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi import Request as HTTPRequest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from parallel_r1.serve.access import key_check
from parallel_r1.serve.intake import RequestError
from parallel_r1.serve.schemas import Message


class TokenizeText(BaseModel):
    """A text to tokenize (vLLM's TokenizeCompletionRequest)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = None
    prompt: str
    add_special_tokens: bool = True
    return_token_strs: bool = False


class TokenizeChat(BaseModel):
    """Messages to render with the chat template and tokenize (vLLM's TokenizeChatRequest)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    add_special_tokens: bool = False
    return_token_strs: bool = False

    @model_validator(mode="after")
    def _check(self):
        if not self.add_generation_prompt or self.continue_final_message:
            raise ValueError("add_generation_prompt=true (and continue_final_message=false) is "
                             "the only chat rendering this server does, as for generation")
        return self


class Detokenize(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = None
    tokens: list[int]


def tokenization_router(state: Any, parse: Any) -> APIRouter:
    """The three routes over `state` (the app's ServerState); `parse(request, model)` validates
    a body as the /v1 routes do (400 naming the field)."""
    router = APIRouter(dependencies=[Depends(key_check(state.api_key))])
    tok = state.tokenizer

    def check_model(name: str | None) -> None:
        if name is not None and name != state.model_name:
            raise RequestError(404, f"model '{name}' is not served here; this server serves "
                               f"'{state.model_name}'", param="model", code="model_not_found")

    @router.post("/tokenize")
    async def tokenize(request: HTTPRequest) -> dict[str, Any]:
        """{count, max_model_len, tokens, token_strs} of a prompt or of chat messages."""
        raw = await request.body()
        chat = b'"messages"' in raw  # vLLM tells the two bodies apart the same way: by fields
        body = await parse(request, TokenizeChat if chat else TokenizeText)
        check_model(body.model)
        ids = await state.prepare(lambda: _encode(tok, body))
        return {"count": len(ids), "max_model_len": state.max_context, "tokens": ids,
                "token_strs": tok.convert_ids_to_tokens(ids) if body.return_token_strs else None}

    @router.post("/detokenize")
    async def detokenize(request: HTTPRequest) -> dict[str, str]:
        """{prompt}: the text of token ids (special tokens kept)."""
        body = await parse(request, Detokenize)
        check_model(body.model)
        bad = [t for t in body.tokens if not 0 <= t < len(tok)]
        if bad:
            raise RequestError(400, f"tokens {bad[:5]} are outside the vocabulary "
                               f"[0, {len(tok)})", param="tokens")
        return {"prompt": await state.prepare(
            lambda: tok.decode(body.tokens, skip_special_tokens=False))}

    @router.get("/tokenizer_info")
    async def tokenizer_info() -> dict[str, Any]:
        """The tokenizer's settings (its init arguments without file paths), class, special
        tokens and chat template."""
        return tokenizer_settings(tok)

    return router


def _encode(tok: Any, body: TokenizeText | TokenizeChat) -> list[int]:
    if isinstance(body, TokenizeText):
        return list(tok.encode(body.prompt, add_special_tokens=body.add_special_tokens))
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in body.messages]
    if not tok.chat_template:
        raise RequestError(400, "the tokenizer has no chat template; send `prompt` instead",
                           param="messages")
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(tok.encode(text, add_special_tokens=body.add_special_tokens))


def tokenizer_settings(tok: Any) -> dict[str, Any]:
    """vLLM's /tokenizer_info: init arguments (paths and file names left out), the class name,
    the special tokens as text and the chat template."""
    config = {k: _plain(v) for k, v in (getattr(tok, "init_kwargs", None) or {}).items()
              if not (k.endswith("_file") or k.endswith("_path") or k == "name_or_path")}
    for name in ("eos_token", "bos_token", "pad_token", "unk_token"):
        config[name] = getattr(tok, name, None)
    config["tokenizer_class"] = type(tok).__name__
    if getattr(tok, "chat_template", None):
        config["chat_template"] = tok.chat_template
    return config


def _plain(value: Any) -> Any:
    """`value` as JSON data (an AddedToken is its text)."""
    if hasattr(value, "content"):
        return value.content
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)

"""Request bodies of the OpenAI-compatible API, validated by pydantic, and their engine settings.

Types are strict (`"max_tokens": "3"` and `"stream": "yes"` are refused, not coerced) and unknown
fields are rejected (a typo should not be ignored silently). Every other field of OpenAI's API
that we do not implement is accepted at its neutral value only (`logit_bias: {}`, `tools: []`,
`response_format: {"type": "text"}`, ...), as clients such as LangChain send them; any other
value is a 400 saying what to send instead. vLLM's sampling extras are accepted as vLLM takes
them: honoured where the engine does so exactly (`min_p`, `ignore_eos`, `prompt_logprobs`, a
seed of -1 = no seed, top_k -1 = off), else answered with their names in the
`X-Parallel-R1-Ignored` header (`IGNORED`). A null sent for an optional field means its default,
as in vLLM's protocol (`NULL_IS_DEFAULT`); NaN and infinities are refused, naming the field.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from parallel_r1.engine.types import ParallelParams, SamplingParams

MAX_N = 64  # samples per request; a bound so one request cannot take every slot
MAX_STOP = 32  # stop strings (vLLM: 4 by default, VLLM_MAX_STOP_STRINGS; older vLLM: no bound)
MAX_LOGPROBS = 20  # alternatives per token (`logprobs`, `top_logprobs`, `prompt_logprobs`),
# as vLLM's default --max-logprobs; prompts per request are bounded by serve --max-samples
INT64 = 2**63

# vLLM extras accepted but not honoured, with the values this server's behaviour equals: a
# request setting another value is answered, and the field named in X-Parallel-R1-Ignored.
IGNORED: dict[str, tuple[Any, ...]] = {
    "repetition_penalty": (1.0,),
    # penalties would change the sampling distribution, and with it the reported log-probs that
    # the trainer must reproduce; OpenAI clients send them at 0, which is what we do
    "presence_penalty": (0.0,),
    "frequency_penalty": (0.0,),
    "min_tokens": (0,),
    "skip_special_tokens": (False,),  # the text keeps the tags (special tokens) as written
    "spaces_between_special_tokens": (True,),
    "include_stop_str_in_output": (False,),
}


# Neutral values of the OpenAI fields this server does not implement (None = left out).
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "logit_bias": (None, {}),
    "service_tier": (None, "auto", "default"),
    "store": (None, False),
    "response_format": (None, {"type": "text"}),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "parallel_tool_calls": (None, True, False),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "reasoning_effort": (None,),
    "verbosity": (None, "medium"),
    "web_search_options": (None,),
    "prompt_cache_retention": (None, "in_memory"),
    "tool_calls": (None, []),
    "refusal": (None,),
}


# Fields that vLLM's protocol types `X | None` with a non-null default: null means the default.
NULL_IS_DEFAULT = frozenset({
    "temperature", "top_p", "top_k", "n", "min_p", "repetition_penalty", "presence_penalty",
    "frequency_penalty", "stream", "echo", "logprobs", "top_logprobs", "stop_token_ids"})


def json_text(value: Any) -> str:
    """`value` as JSON text, for messages."""
    import json

    return json.dumps(value)


def check_neutral(body: BaseModel) -> BaseModel:
    """`body` unchanged when every NEUTRAL field it sets has a neutral value.

    Raises:
        ValueError: the first field set to something else, with what to send instead.
    """
    for name in sorted(body.model_fields_set & NEUTRAL.keys()):
        value = getattr(body, name)
        if not any(type(value) is type(ok) and value == ok for ok in NEUTRAL[name]):
            shown = " or ".join(json_text(v) for v in NEUTRAL[name])
            raise ValueError(f"{name}={json_text(value)} is not supported by this server; "
                             f"leave it out or send {shown}")
    return body


class ParallelOverride(BaseModel):
    """Per-request change of the server's parallel settings (send as extra body `parallel`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    mode: Literal["causal", "structured", "threads"] | None = None
    num_paths: int | None = Field(default=None, ge=0, description="0 lets the model decide")
    max_paths: int | None = Field(default=None, ge=2)
    max_path_tokens: int | None = Field(default=None, ge=2)
    max_blocks: int | None = Field(default=None, ge=0)

    def apply(self, base: ParallelParams) -> ParallelParams:
        """`base` with the fields given here replaced (num_paths 0 -> None: the model decides)."""
        changes = self.model_dump(exclude_none=True)
        if changes.get("num_paths") == 0:
            changes["num_paths"] = None
        return replace(base, **changes)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    include_usage: bool = False


class _Sampling(BaseModel):
    """Fields shared by both endpoints."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    model: str
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=-1, description="extension: 0 or -1 (vLLM) disables it")
    n: int = Field(default=1, ge=1, le=MAX_N)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = Field(default=None, validate_default=True)
    seed: int | None = Field(default=None, ge=-INT64, lt=INT64,
                             description="-1: no seed, as in vLLM")
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0, description="accepted, "
                                    "not applied (named in X-Parallel-R1-Ignored unless 0)")
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0, description="accepted, "
                                     "not applied (named in X-Parallel-R1-Ignored unless 0)")
    user: str | None = None
    parallel: ParallelOverride | None = None
    stop_token_ids: list[int] | None = Field(default=None, description="extension (vLLM): also "
                                             "stop after any of these token ids (returned)")
    # vLLM's sampling extras (see the module docstring and IGNORED)
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    ignore_eos: bool = False
    prompt_logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    repetition_penalty: float = Field(default=1.0, gt=0.0)
    min_tokens: int = Field(default=0, ge=0)
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    # OpenAI fields without an effect here: hints we may ignore, and features at their neutral
    # value (see NEUTRAL); annotated Any because only those values pass `_check_neutral`.
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    logit_bias: Any = None
    service_tier: Any = None
    store: Any = None

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: v for k, v in data.items() if v is not None or k not in NULL_IS_DEFAULT}

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings, got {len(stops)}")
        if any(not s for s in stops):
            raise ValueError("stop strings must not be empty")
        return stops

    @model_validator(mode="after")
    def _check_neutral(self):
        return check_neutral(self)

    @model_validator(mode="after")
    def _check_unsupported(self):
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream=true")
        if self.prompt_logprobs is not None and self.stream:
            raise ValueError("prompt_logprobs are not available with stream=true (as in vLLM)")
        return self

    def ignored(self) -> list[str]:
        """vLLM extras this request sets to something the server does not do (IGNORED)."""
        return sorted(name for name in self.model_fields_set & IGNORED.keys()
                      if getattr(self, name) not in IGNORED[name])

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def sampling_params(self, max_tokens: int, base: ParallelParams) -> SamplingParams:
        """Engine settings for this body.

        Raises:
            EngineError: settings the engine rejects (e.g. temperature 0 with top_p < 1).
        """
        parallel = self.parallel.apply(base) if self.parallel is not None else base
        greedy = self.temperature == 0  # vLLM: greedy ignores top_p, top_k and min_p
        return SamplingParams(temperature=self.temperature, top_p=1.0 if greedy else self.top_p,
                              top_k=0 if greedy else max(self.top_k, 0),
                              min_p=0.0 if greedy else self.min_p, max_tokens=max_tokens,
                              n=self.n, seed=None if self.seed == -1 else self.seed,
                              parallel=parallel, ignore_eos=self.ignore_eos,
                              stop_token_ids=tuple(self.stop_token_ids or ()))


class CompletionRequest(_Sampling):
    """POST /v1/completions: one prompt (text or token ids) or a list of them."""

    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(default=None, ge=0, description="0 only with echo: score the "
                                   "prompt, generate nothing")
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS, description="log-probs of "
                                 "each token and of its `logprobs` likeliest alternatives")
    echo: bool = Field(default=False, description="the prompt comes first in the text (and "
                       "its tokens in `logprobs`)")
    add_special_tokens: bool = Field(default=True, description="extension (vLLM): special "
                                     "tokens (e.g. BOS) are added to text prompts")
    best_of: int | None = None
    suffix: str | None = None
    return_token_ids: bool = Field(default=False, description="extension (vLLM): each choice "
                                   "carries `token_ids` and `prompt_token_ids`")
    return_tokens_as_token_ids: bool = Field(default=False, description="extension (vLLM): "
                                             "log-prob tokens as 'token_id:N', every token")

    @model_validator(mode="after")
    def _check_completion(self):
        if self.max_tokens == 0 and not self.echo:
            raise ValueError("max_tokens=0 needs echo=true (score the prompt only)")
        if self.max_tokens == 0 and self.stream:
            raise ValueError("max_tokens=0 (score the prompt only) is not streamed; send "
                             "stream=false")
        if self.best_of is not None and self.best_of != self.n:
            raise ValueError("best_of is not supported; leave it unset or equal to n")
        if self.suffix:
            raise ValueError("suffix (insertion) is not supported")
        if self.stream and (self.return_token_ids or self.return_tokens_as_token_ids):
            raise ValueError("return_token_ids and return_tokens_as_token_ids are supported "
                             "without streaming")
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt must not be an empty list")
        return self

    @property
    def num_top(self) -> int:
        """Alternatives wanted per token (the `logprobs` count)."""
        return self.logprobs or 0

    @property
    def wants_logprobs(self) -> bool:
        return self.logprobs is not None

    def prompts(self) -> list[str | list[int]]:
        """The prompts as a list: each one text or token ids."""
        p = self.prompt
        if isinstance(p, str) or (p and isinstance(p[0], int)):
            return [p]
        return list(p)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None
    tool_calls: Any = None
    refusal: Any = None
    function_call: Any = None
    audio: Any = None

    @model_validator(mode="after")
    def _check_neutral(self):
        return check_neutral(self)

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatRequest(_Sampling):
    """POST /v1/chat/completions."""

    messages: list[Message] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: Any = None
    tools: Any = None
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    functions: Any = None
    function_call: Any = None
    modalities: Any = None
    audio: Any = None
    prediction: Any = None
    reasoning_effort: Any = None
    verbosity: Any = None
    web_search_options: Any = None
    prompt_cache_retention: Any = None

    @model_validator(mode="after")
    def _check_chat(self):
        if self.top_logprobs and not self.logprobs:
            raise ValueError(f"top_logprobs={self.top_logprobs} needs logprobs=true")
        if self.max_tokens is not None and self.max_completion_tokens is not None \
                and self.max_tokens != self.max_completion_tokens:
            raise ValueError("max_tokens and max_completion_tokens disagree; send one of them")
        return self

    @property
    def num_top(self) -> int:
        """Alternatives wanted per token (`top_logprobs`)."""
        return (self.top_logprobs or 0) if self.logprobs else 0

    @property
    def wants_logprobs(self) -> bool:
        return self.logprobs

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def chat_messages(self) -> list[dict[str, str]]:
        """Messages as {"role", "content"} dicts for the chat template (developer -> system)."""
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in self.messages]

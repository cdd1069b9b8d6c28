"""`openai/<model>`: any OpenAI-compatible chat-completions API, on the official `openai` client.

Works unchanged against OpenAI, vLLM, Ollama, LM Studio, llama.cpp and Azure/OpenRouter-style
endpoints (`--base-url` or $OPENAI_BASE_URL). Images travel as base64 JPEG data URLs, encoded once
per run. Retries, back-off and the adaptive concurrency limit live here (the runner only awaits);
a sample that still fails is returned with its error, never turned into a guess.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import random
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from harness.errors import ConfigError, FatalBackendError
from harness.models.admission import valid_logprob
from harness.models.base import ChatMessage, GenerateRequest, GenerateResponse, ImagePart, ModelOptions, TextPart
from harness.models.http_limits import UnreadableResponse, cap_responses
from harness.models.images import ImageDecodeError, ImageEncoder
from harness.models.resilience import RETRYABLE_STATUS, AdaptiveLimiter, PastDeadline, RetryPolicy, quota_exhausted_for, retry_after_seconds
from harness.models.secrets import register_secret, register_url_credentials, scrub
from harness.schema import Usage

OPENAI_HOST = "api.openai.com"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
CONNECT_TRIES_BEFORE_GIVING_UP = 3  # nothing ever answered: a wrong --base-url, not a hiccup
TOP_LOGPROBS = 20
NON_FINITE_NOTE = ("the server returned non-finite log-probabilities or values that are no log-probability (NaN, ±Infinity, a number above 0, true, text, an object) "
                   "for some tokens; they were left out, as if not in the top list")

def redact_url(url: str) -> str:
    """A base URL fit for spec.json and logs: user:password@ and query strings removed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def checked_base_url(url: str) -> str:
    """The base URL, or one line saying what is wrong with it. Credentials in it (user:key@host)
    are refused rather than sent (the client would fail every request as a malformed reply) and
    never echoed: the message shows the URL without them."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as error:
        raise ConfigError(f"the API base URL (--base-url, --judge-base-url or $OPENAI_BASE_URL) is not a URL ({error}); give one like http://localhost:8000/v1") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"the API base URL {redact_url(url)} (--base-url, --judge-base-url or $OPENAI_BASE_URL): credentials in the URL (user:key@) are not supported; "
                          f"give the URL without them and put the key in {DEFAULT_KEY_ENV} (or the variable --api-key-env names)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the API base URL {redact_url(url)} (--base-url, --judge-base-url or $OPENAI_BASE_URL): not an http(s) URL with a host; give one like http://localhost:8000/v1")
    return url


def letter_logprobs(top_logprobs: list[tuple[str, float]], letters: list[str]) -> dict[str, float]:
    """Log-probability of each option letter at the first answer token.

    Tokenisers spell a letter several ways ("B", " B", "(B"); their probabilities are summed
    (log-sum-exp). Letters absent from the top-k are left out, not given a made-up floor.
    """
    mass: dict[str, list[float]] = {}
    for token, logprob in top_logprobs:
        if not isinstance(token, str) or not valid_logprob(logprob):
            continue  # a broken server's NaN, true or 5.0 says nothing about the letter (NON_FINITE_NOTE)
        key = token.strip().strip("(*[").strip()
        if key in letters:
            mass.setdefault(key, []).append(logprob)
    result = {}
    for letter, values in mass.items():
        peak = max(values)
        # several spellings of a letter can sum past probability 1 on a careless server: 0 at most
        result[letter] = min(0.0, peak + math.log(sum(math.exp(v - peak) for v in values)))
    return result


class OpenAIChatModel:
    default_concurrency = 32
    cacheable = True

    def __init__(self, name: str, *, seed: int, options: ModelOptions) -> None:
        try:
            import openai  # optional dependency, imported only when this backend is used
        except ImportError:
            raise ConfigError("openai/ models need the openai extra: pip install -e '.[openai]'") from None

        self.name = name
        self.model_id = name.split("/", 1)[1]
        self._openai = openai
        base_url = checked_base_url(options.base_url or os.environ.get("OPENAI_BASE_URL") or f"https://{OPENAI_HOST}/v1")
        self._official = urlsplit(base_url).hostname == OPENAI_HOST
        api_key = os.environ.get(options.api_key_env, "")
        # A dry run needs no key (checked by ready()). A key variable named on purpose must be set;
        # local servers without keys use the default name.
        self._missing_key = not api_key and (self._official or options.api_key_env != DEFAULT_KEY_ENV)
        if not api_key:
            api_key = "EMPTY"  # vLLM, Ollama and llama.cpp servers accept any key
        self._secret = api_key
        register_secret(api_key)  # never written anywhere, whatever a server echoes (admission.py)
        register_url_credentials(base_url)
        self.options = options
        self.cache_identity = f"{name}@{redact_url(base_url)}"
        self._base_url = base_url
        self._client = None  # created inside the running event loop, on the first request
        self._http = importlib.import_module(_http_library(openai))
        self._policy = RetryPolicy(max_attempts=options.max_attempts, max_sample_seconds=options.max_sample_seconds)
        self._limiter: AdaptiveLimiter | None = None
        self._images = ImageEncoder()
        self._rng = random.Random(seed)
        self._warned_no_logprobs = False
        self._answered_once = False

    def ready(self) -> None:
        """Refuse to start a run that cannot authenticate (before any run folder exists)."""
        if self._missing_key:
            raise ConfigError(f"no API key: the environment variable {self.options.api_key_env} is not set (set it, or name another with --api-key-env)")

    # -- request building ---------------------------------------------------------------------

    def _content(self, message: ChatMessage) -> list[dict]:
        parts = []
        for part in message.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                image_url = {"url": self._images.data_url(part)}
                detail = part.detail or self.options.image_detail
                if detail != "omit":
                    image_url["detail"] = detail
                parts.append({"type": "image_url", "image_url": image_url})
        return parts

    def request_body(self, request: GenerateRequest) -> dict:
        """The exact JSON body this backend posts for a request (--dump-requests writes it)."""
        return self._arguments(request)

    def _arguments(self, request: GenerateRequest) -> dict:
        decoding = request.decoding
        arguments: dict = {
            "model": self.model_id,
            "messages": [{"role": m.role, "content": self._content(m)} for m in request.messages],
        }
        if decoding.sampling == "explicit":
            arguments.update(temperature=decoding.temperature, top_p=decoding.top_p)
        field = decoding.max_tokens_field
        if field == "auto":
            # OpenAI's newer models only take max_completion_tokens; compatible servers know max_tokens.
            field = "max_completion_tokens" if self._official else "max_tokens"
        if field != "none":
            arguments[field] = decoding.max_new_tokens
        if decoding.sampled:
            arguments["seed"] = request.sample_seed
        # A protocol's chat-template switches and processor settings (Qwen's add_vision_id, min/max
        # pixels), under the request fields vLLM and SGLang read; only official protocols set them.
        if request.chat_template_kwargs:
            arguments["chat_template_kwargs"] = request.chat_template_kwargs
        if request.processor_kwargs:
            arguments["mm_processor_kwargs"] = request.processor_kwargs
        if request.choice_scoring == "logprobs":
            arguments.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        arguments.update(request.api_fields)
        return arguments

    # -- calling -----------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """Error texts can echo the key (some servers do); it must never reach a run folder, nor
        the one-line error that stops a run."""
        return scrub(text)

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if self._missing_key:
            raise FatalBackendError(f"no API key in ${self.options.api_key_env}")
        if self._limiter is None:  # created inside the running event loop
            connections = self.options.max_connections or self.default_concurrency
            self._limiter = AdaptiveLimiter(connections)
            self._client = self._openai.AsyncOpenAI(
                api_key=self._secret,
                base_url=self._base_url,
                max_retries=0,  # retries are ours: they must feed the limiter and the error counts
                timeout=self.options.request_timeout_s,
                http_client=_http_client(self._openai, self._http, connections),
            )
        try:
            arguments = self._arguments(request)
        except ImageDecodeError as error:
            return GenerateResponse(error=f"ImageDecodeError: {error}")
        started = time.monotonic()
        deadline = started + self._policy.max_sample_seconds  # all attempts of this question together
        attempt = 0
        refusals = 0
        while True:
            attempt += 1
            if time.monotonic() >= deadline:
                elapsed = time.monotonic() - started
                return GenerateResponse(error=f"QuestionDeadline: no answer within {self._policy.max_sample_seconds:g} s over {attempt - 1} attempts", attempts=attempt - 1, latency_s=elapsed)
            wait, failure = await self._attempt(arguments, request, attempt, started, deadline)
            if isinstance(failure, GenerateResponse):
                if failure.error is None and refused(failure.text, request.retry_keywords):
                    # The official scripts ask again when a reply holds a refusal word, then give up.
                    refusals += 1
                    if refusals < request.retry_tries:
                        continue
                    return failure.model_copy(update={"error": f"RefusalRetriesExhausted: all {refusals} replies held one of {request.retry_keywords}", "attempts": attempt})
                return failure
            elapsed = time.monotonic() - started
            if attempt >= self._policy.max_attempts or elapsed + wait > self._policy.max_sample_seconds:
                return GenerateResponse(error=f"{failure} (gave up after {attempt} attempts, {elapsed:.1f} s)", attempts=attempt, latency_s=elapsed)
            await _sleep(wait)

    async def _attempt(self, arguments: dict, request: GenerateRequest, attempt: int, started: float, deadline: float) -> tuple[float, GenerateResponse | str]:
        """One try: (0, response) on success or a final error; (wait, reason) when worth retrying."""
        openai, limiter = self._openai, self._limiter
        assert limiter is not None
        try:
            sent_at = await limiter.acquire(deadline)
        except PastDeadline as past:  # the run is paused (a server's rate limit) past this question's deadline
            return 0.0, self._past_deadline(past.asked_s, attempt, started)
        # --request-timeout is a deadline for the whole exchange (connect, headers and every byte of
        # the body), not the client's wait between two bytes: a server trickling its body must not
        # hold a question longer. Nor may an attempt outlive the question's own deadline.
        budget = max(0.0, min(self.options.request_timeout_s, deadline - time.monotonic()))
        try:
            # The client's generic post: the same auth, errors and connection pool as
            # chat.completions.create, without its per-request walk over every message
            # (about 4 ms of CPU per multi-image request, more than everything else together).
            raw = await asyncio.wait_for(self._client.post("/chat/completions", cast_to=self._http.Response, body=arguments), timeout=budget)
            completion = json.loads(raw.content)
        except UnreadableResponse as error:  # a bomb, a coding not asked for: the same request would bring the same again
            return 0.0, GenerateResponse(error=f"{type(error).__name__}: {error}", attempts=attempt, latency_s=time.monotonic() - started)
        except TimeoutError:
            if not self._answered_once and attempt >= CONNECT_TRIES_BEFORE_GIVING_UP:
                raise FatalBackendError(f"nothing answered at {redact_url(self._base_url)} within {budget:.1f} s, {attempt} times; start the server or fix --base-url, then continue with --resume") from None
            return self._policy.backoff(attempt, self._rng), f"RequestDeadline: no complete response within {budget:.1f} s (connect, headers and body)"
        except openai.RateLimitError as error:
            wait = retry_after_seconds(error.response.headers)
            limiter.on_rate_limited(wait, sent_at)
            if wait is not None and time.monotonic() + wait > deadline:
                return 0.0, self._past_deadline(wait, attempt, started, self._describe(error))
            return (wait if wait is not None else self._policy.backoff(attempt, self._rng)), self._describe(error)
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as error:
            raise FatalBackendError(f"{self.cache_identity}: {self._describe(error)}; fix the key, model or --base-url, then continue with --resume") from None
        except openai.APIStatusError as error:
            if error.status_code not in RETRYABLE_STATUS:
                return 0.0, GenerateResponse(error=self._describe(error), attempts=attempt, latency_s=time.monotonic() - started)
            wait = retry_after_seconds(error.response.headers)
            if wait is not None and time.monotonic() + wait > deadline:
                return 0.0, self._past_deadline(wait, attempt, started, self._describe(error))
            return (wait if wait is not None else self._policy.backoff(attempt, self._rng)), self._describe(error)
        except (openai.APITimeoutError, openai.APIConnectionError) as error:
            # (A refused connection can surface as a timeout through the aiohttp transport.)
            if not self._answered_once and attempt >= CONNECT_TRIES_BEFORE_GIVING_UP:
                raise FatalBackendError(f"nothing answers at {redact_url(self._base_url)} ({self._describe(error)}); start the server or fix --base-url, then continue with --resume") from None
            return self._policy.backoff(attempt, self._rng), self._describe(error)
        except (ValueError, RecursionError, openai.APIResponseValidationError) as error:  # truncated or malformed JSON, nested past the parser, a 5,000-digit number
            return self._policy.backoff(attempt, self._rng), f"MalformedResponse: {self._scrub(str(error))[:200]}"
        finally:
            await limiter.release()
        limiter.on_success()
        self._answered_once = True
        provider_error = self._provider_error(completion)
        if provider_error:  # often an upstream's passing overload: retried like a 5xx, its message kept
            return self._policy.backoff(attempt, self._rng), provider_error
        quota_wait = quota_exhausted_for(raw.headers)
        if quota_wait:
            limiter.on_rate_limited(quota_wait, sent_at)
        return 0.0, self._response(completion, request, attempt, time.monotonic() - started)

    def _past_deadline(self, asked_s: float | None, attempt: int, started: float, detail: str = "") -> GenerateResponse:
        """The question fails now: waiting as the server asks would pass its deadline."""
        why = "no request slot came free" if asked_s is None else f"the server asked to wait {asked_s:,.0f} s"
        error = f"QuestionDeadline: {why}, past this question's deadline ({self._policy.max_sample_seconds:g} s in all, --question-timeout)"
        return GenerateResponse(error=error + (f"; {detail}" if detail else ""), attempts=attempt, latency_s=time.monotonic() - started)

    def _provider_error(self, completion) -> str | None:
        """Some providers (proxies, routers) answer 200 with an error object and no choices."""
        if not isinstance(completion, dict) or not completion.get("error") or completion.get("choices"):
            return None
        error = completion["error"]
        message = error.get("message") if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        return f"ProviderError{f' {code}' if code else ''}: {self._scrub(str(message))[:300]}"

    def _describe(self, error: Exception) -> str:
        status = getattr(error, "status_code", None)
        detail = self._scrub(str(error))[:300]
        return f"{type(error).__name__}" + (f" {status}" if status else "") + f": {detail}"

    def _response(self, completion: dict, request: GenerateRequest, attempt: int, latency: float) -> GenerateResponse:
        choices = completion.get("choices") if isinstance(completion, dict) else None
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
            return GenerateResponse(error="MalformedResponse: no choices in the response", attempts=attempt, latency_s=latency)
        choice = choices[0]
        text = _message_text(choice["message"].get("content"))
        if text is None:
            return GenerateResponse(error=f"MalformedResponse: the message content is a {type(choice['message'].get('content')).__name__}, not text", attempts=attempt, latency_s=latency)
        usage = completion.get("usage") if isinstance(completion.get("usage"), dict) else {}
        response = GenerateResponse(
            text=text,
            usage=Usage(prompt_tokens=_count(usage.get("prompt_tokens")), completion_tokens=_count(usage.get("completion_tokens"))),
            attempts=attempt,
            latency_s=latency,
        )
        if request.choice_scoring == "logprobs":
            logprobs = choice.get("logprobs")
            content = logprobs.get("content") if isinstance(logprobs, dict) else None
            if content and isinstance(content, list) and isinstance(content[0], dict):
                listed = content[0].get("top_logprobs")
                top = [(item.get("token"), item.get("logprob")) for item in (listed if isinstance(listed, list) else []) if isinstance(item, dict)]
                response.option_logprobs = letter_logprobs(top, request.option_letters or []) or None
                if any(not valid_logprob(value) for _, value in top) or (listed is not None and not isinstance(listed, list)):
                    response.notes.append(NON_FINITE_NOTE)
            else:
                note = f"{self.cache_identity} returned no logprobs: answers are parsed from text instead"
                response.notes.append(note)
                if not self._warned_no_logprobs:
                    self._warned_no_logprobs = True
                    print(f"iadbench: warning: {note}", file=sys.stderr)
        return response

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            # a later event loop (generation runs two) makes its own client and limiter
            self._client, self._limiter = None, None


def _message_text(content) -> str | None:
    """A message's text: a string, or the text parts of a list of content parts; None otherwise."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text", ""), str))
    return None


def _count(value) -> int:
    """A token count as a server may write it (an int, a float, a string, nothing)."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def refused(text: str, keywords: list[str]) -> bool:
    lower = text.lower()
    return any(keyword in lower for keyword in keywords)


def _http_library(openai_module) -> str:
    """The HTTP library this openai version is built on: httpx (1.x) or httpx2 (3.x)."""
    return openai_module.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]


def _http_client(openai_module, http, connections: int):
    """The SDK's aiohttp transport when installed (openai[aiohttp]: ~20% less CPU a request than
    its default), else its httpx client; either way with a pool as large as the concurrency."""
    limits = http.Limits(max_connections=connections, max_keepalive_connections=connections)
    try:
        client = openai_module.DefaultAioHttpClient(limits=limits)
    except (AttributeError, ImportError, RuntimeError):
        client = openai_module.DefaultAsyncHttpxClient(limits=limits)
    return cap_responses(client, http)  # a gzip bomb costs one request, not the machine's memory


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(max(0.0, seconds))


def create_openai(name: str, *, seed: int, options: ModelOptions) -> OpenAIChatModel:
    return OpenAIChatModel(name, seed=seed, options=options)

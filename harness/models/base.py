"""The one backend protocol and its request/response records. Which backend a model name
names is the registry's (harness/models/registry.py): the backends import this module, and only
the registry imports them, so no backend and the protocol import each other."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.models.image_loading import DEFAULT_LOADING, LoadingName
from harness.schema import DecodingSpec, Usage, finite_or_none, finite_scores


class TextPart(BaseModel):
    model_config = ConfigDict(frozen=True)
    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    """An image on disk. `role` says what it is (query, template, …); backends load and resize it."""

    model_config = ConfigDict(frozen=True)
    type: Literal["image"] = "image"
    path: str
    role: str = "query"
    max_side: int | None = None
    # How the image reaches the model (harness/protocols/): cap (max_side), cv2-fit (OpenCV fit to
    # `fit`, re-encoded JPEG), qwen-native (multiples of `factor`, as qwen-vl-utils hands it on) or
    # file (the file's own bytes to an API, Pillow's RGB of it to a local model: RobustMAD's scripts).
    prep: Literal["cap", "cv2-fit", "qwen-native", "file"] = "cap"
    # How the file is opened before that (harness/models/image_loading.py): the protocol's recipe,
    # e.g. cv2-imread for MMAD's OpenCV scripts, pil-convert-rgb for RobustMAD's Qwen scripts.
    loading: LoadingName = DEFAULT_LOADING
    fit: int | None = None
    factor: int | None = Field(None, description="qwen-native: the patch factor (None: 28, Qwen2/2.5-VL; Qwen3-VL's scripts use 32)")
    mime: str | None = Field(None, description="data-URL MIME label; None: image/jpeg (or image/png for qwen-native)")
    detail: str | None = Field(None, description="API detail for this image; None: the run's --image-detail; omit: none sent")

    def key(self) -> tuple:
        """What decides the pixels a model receives (not the role)."""
        return (self.path, self.loading, self.prep, self.max_side, self.fit, self.factor)


ContentPart = TextPart | ImagePart


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"] = "user"
    content: list[ContentPart]


ChoiceScoring = Literal["generate", "logprobs"]


class GenerateRequest(BaseModel):
    """What a backend is asked. Only the fields above the bookkeeping line reach a model."""

    messages: list[ChatMessage]
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    option_letters: list[str] | None = None
    choice_scoring: ChoiceScoring = "generate"
    # Protocol facts for local models: chat-template switches (Qwen's add_vision_id) and the
    # processor's image settings (min/max pixels); empty for the harmonised protocol.
    chat_template_kwargs: dict[str, bool] = Field(default_factory=dict)
    processor_kwargs: dict = Field(default_factory=dict)
    # Fields an API protocol sends beside the messages (RobustMAD's GPT-5 nano script: verbosity,
    # reasoning_effort); local models have no such switches and ignore them.
    api_fields: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # A reply containing one of these (lower-cased) is asked again, up to retry_tries calls in all.
    retry_keywords: list[str] = Field(default_factory=list)
    retry_tries: int = 1
    # Bookkeeping for baselines and logs, never sent to a model and not part of the request digest:
    sample_id: str = ""
    sample_seed: int = 0
    subtask: str | None = Field(None, description="the question's subtask, for non-LLM experts that answer only some")
    options: dict[str, str] | None = Field(None, description="option texts, for strategies that parse answers (self-consistency)")
    chain_of_thought: bool = Field(False, description="messages are [context turn, empty assistant turn, question turn]")
    # For detectors in the GPT-4V-AD task: the undivided image, normal references, region masks.
    source_image: str | None = None
    normal_images: list[str] = Field(default_factory=list)
    regions_file: str | None = None
    reference_answer: str | None = Field(None, description="the right letter; only the oracle baseline reads it")
    box_frame: tuple[float, float] | None = Field(None, description="bbox: the (width, height) coordinates are written in, for experts that answer with boxes")
    failure: str | None = Field(None, description="the task could not prepare this request (an unreadable image): recorded as the sample's error, nothing is sent")
    shared_call: bool = Field(False, description="several questions share this exact call (an official two-call protocol): ask it once")


# Replies are kept up to this many characters: the first and last halves, with the cut said
# between them. Answers sit at a reply's start or end; a 100 MB reply must not be stored (in the
# run folder, the cache, the report) at full size, and every reader sees the same text.
MAX_REPLY_CHARS = 100_000


def cut_reply(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    """A reply as iadbench keeps it: whole up to `limit` characters, else its two ends around a note."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… iadbench cut {len(text) - 2 * half:,} of {len(text):,} characters here …]\n{text[-half:]}"


class GenerateResponse(BaseModel):
    text: str = ""
    option_logprobs: dict[str, float] | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    error: str | None = None
    declined: bool = Field(False, description="the model chose not to answer this kind of question")
    attempts: int = 1
    cached: bool = False
    anomaly_score: float | None = Field(None, description="a detector's continuous image score, when it has one")
    reasoning: str | None = Field(None, description="what a strategy kept besides the answer: a CoT description, SC votes")
    consistency: float | None = Field(None, description="self-consistency: share of samples that agreed with the answer")
    notes: list[str] = Field(default_factory=list, description="one-time remarks for the run spec, e.g. 'no logprobs'")

    @field_validator("option_logprobs")
    @classmethod
    def _finite_logprobs(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return finite_scores(value)

    @field_validator("anomaly_score", "consistency")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        return finite_or_none(value)


class ModelOptions(BaseModel):
    """Backend settings from the command line. Recorded in spec.json, so never a secret: the API
    key is read from the environment variable named here."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    image_detail: Literal["low", "high", "auto"] = "low"
    request_timeout_s: float = 60.0
    max_attempts: int = 8
    max_sample_seconds: float = 600.0
    max_connections: int | None = Field(None, description="requests in flight at most; the backend adapts below it")
    # Local Hugging Face models (hf/<model>):
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: str = Field("auto", description="cuda:N, cpu, mps; auto: this process's GPU, else the CPU")
    device_map: str | None = Field(None, description="accelerate's device map, e.g. auto: one model across several GPUs")
    attn_implementation: str | None = Field(None, description="passed to from_pretrained: eager, sdpa, flash_attention_2")
    batch_size: int | Literal["auto"] = Field("auto", description="questions per forward pass; auto starts high and halves on out-of-memory")
    trust_remote_code: bool = False
    allow_pickle_weights: bool = Field(False, description="load .bin (pickle) weights; safetensors only otherwise")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit) of an hf/ model")
    # Managed engines (vllm/, sglang/, transformers-serve/):
    engine_args: str | None = Field(None, description="passed to the engine's server as written, e.g. --tensor-parallel-size 4")
    engine_startup_timeout_s: float = Field(1800.0, description="seconds to wait for the engine to answer its health check")
    # A person answering in the browser (human/<name>):
    port: int | None = Field(None, ge=1, le=65535, description="the answer page's port on 127.0.0.1; None: a free one")


@runtime_checkable
class Model(Protocol):
    name: str
    # How many requests the runner should keep in flight for this backend by default.
    default_concurrency: int
    # Whether answers are worth keeping in the response cache, and under which identity
    # (model and endpoint: the same model name on two servers is two models).
    cacheable: bool
    cache_identity: str

    async def generate(self, request: GenerateRequest) -> GenerateResponse: ...

    async def aclose(self) -> None: ...

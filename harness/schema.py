"""The records that flow through iadbench: image → question → sample result → summary.

Every stage reads and writes these pydantic models, so a run folder, a question set and a
report all speak the same vocabulary.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Subtask(StrEnum):
    """The seven subtasks MMAD reports, in its column order."""

    ANOMALY_DETECTION = "Anomaly Detection"
    DEFECT_CLASSIFICATION = "Defect Classification"
    DEFECT_LOCALIZATION = "Defect Localization"
    DEFECT_DESCRIPTION = "Defect Description"
    DEFECT_ANALYSIS = "Defect Analysis"
    OBJECT_CLASSIFICATION = "Object Classification"
    OBJECT_ANALYSIS = "Object Analysis"


SUBTASKS: tuple[Subtask, ...] = tuple(Subtask)
# A task kind's name (harness/tasks/kinds.py: mcq, gpt4vad, bbox, or one registered by a user).
TaskName = str

# MMAD's files use nine `type` strings; two of them are reported under Object Analysis.
MMAD_TYPE_TO_SUBTASK: dict[str, Subtask] = {s.value: s for s in Subtask} | {
    "Object Structure": Subtask.OBJECT_ANALYSIS,
    "Object Details": Subtask.OBJECT_ANALYSIS,
}

OPTION_LETTERS: tuple[str, ...] = ("A", "B", "C", "D", "E")

Label = Literal["normal", "anomaly"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def finite_or_none(value: float | None) -> float | None:
    """A score as a run folder keeps it: NaN and infinities (a broken backend's) become None, so
    every line written can be read back by the same schema."""
    return value if value is None or math.isfinite(value) else None


def finite_scores(scores: dict | None) -> dict | None:
    """Per-option or per-region scores without their non-finite entries (None when none is left)."""
    if scores is None:
        return None
    kept = {key: value for key, value in scores.items() if math.isfinite(value)}
    return kept or None


class ImageRecord(_Record):
    """One query image and what is known about it. Paths are relative to the data root."""

    id: str = Field(description="the image path relative to the data root; MMAD's key")
    dataset: str
    category: str
    image_path: str
    mask_paths: tuple[str, ...] = ()
    label: Label
    defect_type: str | None = None
    random_templates: tuple[str, ...] = ()
    similar_templates: tuple[str, ...] = ()


class Question(_Record):
    """One multiple-choice question about one image."""

    id: str = Field(description="'<image id>#<index in the conversation>'")
    image_id: str
    index: int
    subtask: Subtask
    mmad_type: str = Field(description="the type string as written in the source file")
    text: str
    options: dict[str, str]
    answer: str


# A token count any file may hold: far past a whole benchmark's, yet a cost at any price stays
# finite. A larger one (a server's 10**400, a hand-edited line) is read as this bound.
MAX_TOKEN_COUNT = 10**15


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @field_validator("prompt_tokens", "completion_tokens", mode="before")
    @classmethod
    def _bounded(cls, value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return MAX_TOKEN_COUNT if value > 0 else 0
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(max(0, min(value, MAX_TOKEN_COUNT)))
        return value


ParseStatus = Literal["ok", "unparsable", "ambiguous", "invalid", "error", "declined"]


class SampleResult(BaseModel):
    """One line of samples.jsonl: everything needed to score and inspect one question."""

    model_config = ConfigDict(extra="forbid")

    question_id: str
    ordinal: int = Field(description="the question's position in its question set: the order of every table and export")
    image_id: str
    dataset: str
    category: str
    label: Label
    subtask: Subtask
    mmad_type: str
    question: str
    options: dict[str, str]
    answer: str
    model: str
    request_digest: str
    reply: str = ""
    parsed: str | None = None
    parse_status: ParseStatus
    parse_reason: str | None = None
    correct: bool
    option_logprobs: dict[str, float] | None = None
    anomaly_score: float | None = Field(None, description="P(anomalous) for a detection question, from option log-probabilities")
    latency_s: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    attempts: int = 1
    cached: bool = False
    reasoning: str | None = None
    consistency: float | None = None
    settings_digest: str | None = Field(None, description="the run's identity (model, protocol, question set, how asked; harness/run/runlog.py) when the answer was written: a run folder whose spec.json no longer matches is refused")
    # Official MMAD protocols (--suite mmad-official): what the family's official script would have
    # recorded as its answer (a letter, the raw reply, '' for a failed call), or None with the
    # reason when it would have recorded nothing (a skipped image, a crash on a letterless reply).
    protocol: str | None = None
    official_answer: str | None = None
    official_reason: str | None = None
    option_order: list[str] | None = Field(None, description="shuffling protocols: the file's letters in the order shown")

    _finite_logprobs = field_validator("option_logprobs")(finite_scores)
    _finite_scores = field_validator("anomaly_score", "consistency")(finite_or_none)

    @field_validator("latency_s")
    @classmethod
    def _finite_latency(cls, value: float) -> float:
        return value if math.isfinite(value) else 0.0


class DecodingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    # "model-default": send no temperature/top_p (the API's default, or the checkpoint's generation
    # config), as MMAD's official scripts did for GPT-4o, Gemini and Qwen.
    sampling: Literal["explicit", "model-default"] = "explicit"
    # Which field carries the token limit to an API ("none": no limit sent, as Gemini's script).
    max_tokens_field: Literal["auto", "max_tokens", "max_completion_tokens", "none"] = "auto"

    @property
    def sampled(self) -> bool:
        return self.sampling == "explicit" and self.temperature > 0


ScoringMode = Literal["strict", "mmad-compat"]
TemplateKind = Literal["random", "similar"]


class RunSpec(BaseModel):
    """The resolved configuration of a run: what spec.json records. Never holds a secret."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    created_at: str
    suite: str
    task: TaskName = "mcq"
    regions: str = Field("slic", description="gpt4vad region division: slic, grid:K, sam[:MODEL], masks:DIR or official:DIR[:METHOD]")
    gpt4vad_prompt: Literal["zero-shot", "zero-shot-no-class", "iadbench-one-shot", "one-shot"] = "zero-shot"
    metric_definitions: Literal["exact", "ader", "ader-adeval"] = Field("exact", description="gpt4vad: MVTec's exact AD metrics, or ADer's evaluator (its mAD)")
    box_format: str | None = Field(None, description="bbox: how boxes are asked for and read (harness/tasks/bbox/box_formats.toml)")
    perturb: list[str] = Field(default_factory=list, description="image degradations KIND:SEVERITY applied to query images (harness/asking/perturb.py)")
    perturb_templates: bool = Field(False, description="apply the degradations to template images too")
    judge: str | None = Field(None, description="open answers: the model that scores each answer (provider/model)")
    judge_base_url: str | None = Field(None, description="the judge's API base URL (credentials and query removed), when it is not the default")
    judge_api_key_env: str | None = Field(None, description="the environment variable holding the judge's API key (the key is never recorded)")
    data: str
    data_root: str | None = None
    data_digest: str | None = Field(None, description="sha256 of the question file")
    model: str
    shots: int = 1
    templates: TemplateKind = "random"
    image_max_side: int | None = None
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    scoring: ScoringMode = "strict"
    choice_scoring: Literal["generate", "logprobs"] = "generate"
    protocol: str = Field("harmonised", description="how questions are put to the model (harness/protocols/)")
    protocol_differences: list[str] = Field(default_factory=list, description="what cannot be identical to the official script")
    data_release: str | None = Field(None, description="the known release the question file's sha256 matches, if any")
    errata: list[str] = Field(default_factory=list, description="errata files whose records were excluded")
    strategies: list[str] = Field(default_factory=list, description="enhancement strategies, in order (rag, rag=topk:K, agent=SOURCE:STYLE)")
    knowledge: str | None = Field(None, description="domain knowledge file for rag (default: domain_knowledge.json beside the questions)")
    model_options: dict = Field(default_factory=dict, description="backend settings (base URL redacted, key env name only)")
    seed: int = 0
    limit: int | None = None
    limit_sampling: Literal["first", "stratified", "stratified-v2"] = Field("first", description="--limit: the first N, or N drawn per dataset, category and subtask (harness/data/subset.py; -v2 for runs since 2026-12-07)")
    limit_of: int | None = Field(None, description="--limit: how many questions (or images) there were to draw from")
    skip_bad: bool = False
    max_connections: int = 32
    cache: bool = True
    max_cost_usd: float | None = None
    notes: list[str] = Field(default_factory=list, description="what the run learned about its backend, e.g. 'no logprobs'")
    versions: dict[str, str] = Field(default_factory=dict)
    git_revision: str | None = None


class SkippedRecord(BaseModel):
    record: str
    reason: str


class RunSummary(BaseModel):
    """summary.json: the scores of a finished run."""

    run_id: str
    model: str
    suite: str
    scoring: ScoringMode
    task: TaskName = "mcq"
    protocol: str = "harmonised"
    data: str = Field("", description="the data the run used (the suite's, or --data)")
    n_questions: int
    n_samples: int
    status_counts: dict[str, int]
    strict: dict = Field(default_factory=dict)
    mmad_compat: dict = Field(default_factory=dict)
    ad_metrics: dict = Field(default_factory=dict, description="gpt4vad: image and pixel metrics per category and mean")
    box_metrics: dict = Field(default_factory=dict, description="bbox: mIoU, ACC@IoU, box precision/recall and detection per category and overall")
    metrics: dict = Field(default_factory=dict, description="a task kind's own figures (one registered outside iadbench)")
    circular: dict = Field(default_factory=dict, description="--strategy circular: accuracy when right in every rotation of the options")
    skipped_records: list[SkippedRecord] = Field(default_factory=list)
    wall_time_s: float | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = Field(None, description="paid (non-cached) tokens at the price table's rates; None if unpriced")
    cached_samples: int = 0
    retries: int = 0
    error_counts: dict[str, int] = Field(default_factory=dict, description="failed samples by error kind")
    stopped_reason: str | None = None
    image_metrics: dict = Field(default_factory=dict, description="image AUROC/AP/F1-max from detection anomaly scores, or why there are none")


class ImageSample(BaseModel):
    """What every one-image-a-line sample holds (GPT-4V-AD regions, defect boxes, a plugin kind's)."""

    model_config = ConfigDict(extra="forbid")

    question_id: str = Field(description="the image's path relative to its dataset root, or its id in the question set")
    ordinal: int
    dataset: str
    category: str
    label: Label
    model: str
    request_digest: str
    reply: str = ""
    parse_status: ParseStatus
    parse_reason: str | None = None
    latency_s: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    attempts: int = 1
    cached: bool = False
    settings_digest: str | None = Field(None, description="the run's identity (model, protocol, question set, how asked; harness/run/runlog.py) when the answer was written: a run folder whose spec.json no longer matches is refused")


class RegionSample(ImageSample):
    """One line of samples.jsonl in a GPT-4V-AD run: one image, its regions and their scores."""

    regions: int
    image_score: float | None = Field(None, description="the stated image anomaly score")
    map_max: float | None = None
    region_scores: dict[int, float] = Field(default_factory=dict)
    overlay_path: str = Field(description="the divided image the model saw, relative to the run folder")
    map_path: str | None = Field(None, description="the predicted map (16-bit PNG, 0..65535 = 0..1), relative to the run folder")

    _finite_scores = field_validator("image_score", "map_max")(finite_or_none)

    @field_validator("region_scores")
    @classmethod
    def _finite_regions(cls, value: dict[int, float]) -> dict[int, float]:
        return finite_scores(value) or {}


class BoxSample(ImageSample):
    """One line of samples.jsonl in a box localisation run (`--task bbox`): one image, its boxes."""

    boxes: list[tuple[float, float, float, float]] = Field(default_factory=list, description="predicted boxes, original-image pixels (x1, y1, x2, y2)")
    truth: list[tuple[float, float, float, float]] = Field(default_factory=list, description="true boxes from the mask (harness/metrics/boxes.py)")
    image_iou: float | None = Field(None, description="matched IoU sum over max(#predicted, #true); None for images without true boxes")
    overlay_path: str | None = Field(None, description="the image with true (green) and predicted (red) boxes, relative to the run folder")

    _finite_iou = field_validator("image_iou")(finite_or_none)

    @field_validator("boxes")
    @classmethod
    def _finite_boxes(cls, value: list) -> list:
        return [box for box in value if all(math.isfinite(c) for c in box)]

"""`hf/<hub id>` or `hf//abs/path`: any transformers image-text-to-text model on local hardware.

The runner keeps many questions in flight; this backend gathers them into batches and runs one
batch at a time in a worker thread (torch releases the GIL), so the event loop keeps preparing the
next. Questions about the same images are scheduled together, so a batch holds prompts of equal
length (no padding work) and the image decode cache is hit.

Results do not depend on the batch size: prompts are left-padded with an attention mask, greedy
decoding is the default, and sampled decoding (self-consistency) runs each sample alone under its
own seed. A failure costs only its own sample: an undecodable image, a prompt longer than the
context, out of memory at batch size 1. Out of memory at a larger batch halves the batch and retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, FatalBackendError
from harness.models.base import GenerateRequest, GenerateResponse, ImagePart, ModelOptions
from harness.models.hf_batching import _Pending, _request_images, _sampled, _scores_letters, group_by_images, hf_messages, processor_arguments  # noqa: F401
from harness.models.hf_hub import check_hub_reachable
from harness.models.images import ImageDecodeError, model_image
from harness.schema import Usage

AUTO_BATCH_START = {"cuda": 32, "cpu": 8}
IMAGE_CACHE_SIZE = 256


class ContextLengthError(Exception):
    pass


@dataclass
class _Prepared:
    request: GenerateRequest
    text: str
    images: list


def model_source(name: str) -> str:
    """`hf/Qwen/Qwen2-VL-2B-Instruct` → the hub id; `hf//abs/path` → the local folder /abs/path."""
    source = name.split("/", 1)[1]
    if not source:
        raise ConfigError(f"model {name!r} needs a hub id or a folder after hf/, like hf/Qwen/Qwen2-VL-2B-Instruct or hf//path/to/folder")
    return source


def local_fingerprint(folder: Path) -> str:
    """What identifies a local checkpoint in the response cache: its config and its weight files
    (name, size, modification time), so rebuilt weights never answer from an old cache entry."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name == "config.json":
            digest.update(path.read_bytes())
        elif path.suffix in {".safetensors", ".bin", ".pt"}:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class HFModel:
    cacheable = True
    # Loaded weights outlive one run (event loop): an ablation's arms share one copy.
    reusable_across_runs = True

    def __init__(self, name: str, *, seed: int, options: ModelOptions) -> None:
        self.name = name
        self.source = model_source(name)
        self.options = options
        local = Path(self.source)
        self._local = local if local.is_absolute() or local.exists() else None
        fingerprint = local_fingerprint(local) if self._local and local.is_dir() else (options.revision or "main")
        self.cache_identity = f"{name}@{fingerprint}|{options.dtype}"
        fixed = options.batch_size if isinstance(options.batch_size, int) else None
        # Enough questions in flight that the next batch is ready when one finishes.
        self.default_concurrency = 4 * fixed if fixed else 128
        self._batch_cap = fixed
        self._auto_batch = fixed is None
        self._pending: list[_Pending] = []
        self._batcher: asyncio.Task | None = None
        self._load_lock = threading.Lock()
        self._images: OrderedDict[tuple[str, int | None], object] = OrderedDict()
        self._loaded = False
        self._config_samples = False
        self.notes: list[str] = []

    # -- loading --------------------------------------------------------------------------------

    def ready(self) -> None:
        """Cheap checks before a run folder exists: the libraries import, a local folder is a model."""
        try:
            import transformers  # noqa: F401
        except ImportError:
            raise ConfigError("hf/ models need transformers and torch: pip install torch==<your version> && pip install -e '.[hf]'") from None
        if self._local is None:
            check_hub_reachable(self.source, self.options.revision)
        if self._local is not None:
            if not (self._local / "config.json").is_file():
                raise ConfigError(f"{self._local}: not a model folder (no config.json); pass hf//ABSOLUTE/PATH to a saved transformers model")
            weights = list(self._local.glob("*.safetensors"))
            if not weights and not self.options.allow_pickle_weights:
                raise ConfigError(f"{self._local}: no .safetensors weights; pickle weights (.bin) can run code when loaded, pass --allow-pickle-weights only if you trust them")

    def _load(self) -> None:
        with self._load_lock:
            if self._loaded:
                return
            self.ready()
            import torch
            import transformers

            options = self.options
            self._torch = torch
            processor, tokenizer = self._load_processor()
            dtype = "auto" if options.dtype == "auto" else getattr(torch, options.dtype)
            arguments = dict(dtype=dtype, trust_remote_code=options.trust_remote_code, revision=options.revision, use_safetensors=None if options.allow_pickle_weights else True)
            if options.attn_implementation:
                arguments["attn_implementation"] = options.attn_implementation
            if options.device_map:
                arguments["device_map"] = options.device_map
            try:
                model = transformers.AutoModelForImageTextToText.from_pretrained(self.source, **arguments)
            except (OSError, ValueError) as error:
                raise ConfigError(f"cannot load {self.source}: {error}") from None
            if not options.device_map:
                model = model.to(self._device(torch))
            model.eval()
            self.model, self.processor, self.tokenizer = model, processor, tokenizer
            self.device = model.device
            self.context_length = getattr(model.config.get_text_config(), "max_position_embeddings", None)
            self._keeps_last_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
            if self._auto_batch:
                self._batch_cap = AUTO_BATCH_START["cuda" if self.device.type == "cuda" else "cpu"]
            self._letter_ids: dict[str, list[int]] = {}
            generation = model.generation_config
            self._config_samples = bool(generation.do_sample) and generation.top_k != 1
            self._loaded = True

    def _load_processor(self):
        """The processor and its tokenizer, loaded once (weights are not needed for them)."""
        if getattr(self, "_processor_pair", None) is None:
            self.ready()
            from harness.models.hf_processors import load_processor

            processor, fallback = load_processor(self.source, trust_remote_code=self.options.trust_remote_code, revision=self.options.revision)
            if fallback:
                self.notes.append("processor built with an image-only video stand-in (torchvision is not installed)")
            tokenizer = getattr(processor, "tokenizer", processor)
            tokenizer.padding_side = "left"  # the answer position is the last one for every row
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._processor_pair = (processor, tokenizer)
        return self._processor_pair

    def render_request(self, request: GenerateRequest) -> dict:
        """What one request hands the model, without loading weights (--dump-requests): the prompt
        after the chat template, the images exactly as given to the processor, the processor's
        inputs and the prompt's token count."""
        processor, tokenizer = self._load_processor()
        if not self._loaded:
            self.processor, self.tokenizer, self.device = processor, tokenizer, "cpu"
        prepared = self._prepare(request)
        if isinstance(prepared, GenerateResponse):
            raise ConfigError(prepared.error or "cannot prepare the request")
        inputs = self._encode([prepared])
        return {"text": prepared.text, "images": prepared.images, "inputs": inputs, "prompt_tokens": int(inputs["input_ids"].shape[1])}

    def _device(self, torch) -> str:
        if self.options.device != "auto":
            return self.options.device
        if torch.cuda.is_available():
            # One GPU per data-parallel process (more processes than GPUs share them round-robin).
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
        return "cpu"

    # -- scheduling -------------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        loop = asyncio.get_running_loop()
        pending = _Pending(request, loop.create_future(), tuple(part.path for part in _request_images(request)))
        self._pending.append(pending)
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._run_batches())
        return await pending.future

    async def _run_batches(self) -> None:
        batch: list[_Pending] = []
        try:
            while self._pending:
                await asyncio.sleep(0)  # let every worker that is ready hand in its question first
                if not self._loaded:
                    try:
                        await asyncio.to_thread(self._load)
                    except Exception as error:
                        # A model that cannot load answers nothing: stop the run once, with the reason,
                        # instead of retrying the load (and the hub) for every batch.
                        self._fail_pending([], error if isinstance(error, FatalBackendError) else FatalBackendError(f"{self.name}: {error}"))
                        return
                batch = group_by_images(self._pending, self._batch_cap or 1, self._config_samples)
                chosen = {id(item) for item in batch}
                self._pending = [item for item in self._pending if id(item) not in chosen]
                try:
                    responses = await asyncio.to_thread(self._answer, [item.request for item in batch])
                except Exception as error:  # a bug in a batch must cost its samples, not hang the run
                    responses = [GenerateResponse(error=f"{type(error).__name__}: {error}") for _ in batch]
                for item, response in zip(batch, responses):
                    if not item.future.done():
                        item.future.set_result(response.model_copy(update={"notes": list(self.notes)}) if self.notes else response)
                batch = []
        except BaseException as error:
            # Whatever stops the batcher (a bug in the scheduling itself, a cancellation) fails the
            # requests it holds, each recorded as its sample's error: no request waits forever.
            self._fail_pending(batch, RuntimeError(f"the hf/ batcher stopped: {type(error).__name__}: {error}"))
            if not isinstance(error, Exception):
                raise

    def _fail_pending(self, batch: list[_Pending], error: Exception) -> None:
        for item in [*batch, *self._pending]:
            if not item.future.done():
                item.future.set_exception(error)
        self._pending.clear()

    async def aclose(self) -> None:
        # A model can serve several event loops in turn (a data-parallel rank answers its shard,
        # then merges): only this loop's batcher is waited for.
        batcher, self._batcher = self._batcher, None
        if batcher is not None and batcher.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(batcher, return_exceptions=True)

    # -- inference (worker thread) ---------------------------------------------------------------

    def _image(self, part: ImagePart):
        key = part.key()
        image = self._images.get(key)
        if image is None:
            image = model_image(part)
            self._images[key] = image
            if len(self._images) > IMAGE_CACHE_SIZE:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(key)
        return image

    def _prepare(self, request: GenerateRequest) -> _Prepared | GenerateResponse:
        try:
            images = [self._image(part) for part in _request_images(request)]
        except ImageDecodeError as error:
            return GenerateResponse(error=f"ImageDecodeError: {error}")
        text = self.processor.apply_chat_template(hf_messages(request.messages), add_generation_prompt=True, tokenize=False, **request.chat_template_kwargs)
        return _Prepared(request, text, images)

    def _answer(self, requests: list[GenerateRequest]) -> list[GenerateResponse]:
        """Responses for one batch, in order. Failures are isolated to the samples that cause them."""
        started = time.perf_counter()
        prepared = [self._prepare(r) for r in requests]
        ready = [p for p in prepared if isinstance(p, _Prepared)]
        answers = self._answer_prepared(ready) if ready else []
        by_position = iter(answers)
        responses = [p if isinstance(p, GenerateResponse) else next(by_position) for p in prepared]
        elapsed = (time.perf_counter() - started) / max(1, len(requests))
        return [r if r.latency_s else r.model_copy(update={"latency_s": elapsed}) for r in responses]

    def _answer_prepared(self, batch: list[_Prepared]) -> list[GenerateResponse]:
        torch = self._torch
        try:
            inputs = self._encode(batch)
            lengths = inputs["attention_mask"].sum(dim=1).tolist()
            too_long = [n for n in lengths if self.context_length and n > self.context_length]
            if too_long:
                return self._split(batch, lambda single: self._too_long(single))
            with torch.inference_mode():
                if _scores_letters(batch[0].request):
                    return self._score_letters(batch, inputs, lengths)
                return self._decode(batch, inputs, lengths)
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(batch) == 1:
                return [GenerateResponse(error="OutOfMemoryError: out of memory at batch size 1; try --dtype bfloat16, --device-map auto or a smaller --image-max-side")]
            self._batch_cap = max(1, len(batch) // 2)  # remembered: later batches start at the size that fit
            half = len(batch) // 2
            return self._answer_prepared(batch[:half]) + self._answer_prepared(batch[half:])
        except Exception as error:
            if len(batch) > 1:  # find the one sample at fault; the others are answered
                return self._split(batch, lambda single: self._answer_prepared(single))
            return [GenerateResponse(error=f"{type(error).__name__}: {error}")]

    def _split(self, batch: list[_Prepared], answer_one) -> list[GenerateResponse]:
        responses = []
        for item in batch:
            responses.extend(answer_one([item]))
        return responses

    def _too_long(self, single: list[_Prepared]) -> list[GenerateResponse]:
        length = int(self._encode(single)["attention_mask"].sum())
        if self.context_length and length > self.context_length:
            return [GenerateResponse(error=f"ContextLengthError: the prompt has {length} tokens, more than the model's context of {self.context_length}; lower --image-max-side or --shots")]
        return self._answer_prepared(single)

    def _encode(self, batch: list[_Prepared]):
        has_images = any(item.images for item in batch)
        arguments = dict(text=[item.text for item in batch], padding=True, return_tensors="pt")
        bos = self.tokenizer.bos_token
        if bos and all(item.text.startswith(bos) for item in batch):
            arguments["add_special_tokens"] = False  # the chat template wrote BOS already (as transformers does)
        if has_images:
            arguments["images"] = [item.images for item in batch]
            arguments.update(processor_arguments(batch[0].request))  # one kind per batch
        return self.processor(**arguments).to(self.device)

    def _letter_token_ids(self, letter: str) -> list[int]:
        """The single tokens that spell a letter at the answer position ("A", and " A" where the
        tokenizer has it as one token); their probabilities are summed."""
        if letter not in self._letter_ids:
            ids = []
            for spelling in (letter, " " + letter):
                encoded = self.tokenizer.encode(spelling, add_special_tokens=False)
                if len(encoded) == 1 and encoded[0] not in ids:
                    ids.append(encoded[0])
            if not ids:
                ids = self.tokenizer.encode(letter, add_special_tokens=False)[:1]
            self._letter_ids[letter] = ids
        return self._letter_ids[letter]

    def _score_letters(self, batch: list[_Prepared], inputs, lengths: list[int]) -> list[GenerateResponse]:
        """One forward pass: log-probabilities of the option letters at the answer position."""
        torch = self._torch
        extra = {"logits_to_keep": 1} if self._keeps_last_logits else {}
        logits = self.model(**inputs, **extra).logits[:, -1, :].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        responses = []
        for row, (item, length) in enumerate(zip(batch, lengths)):
            letters = item.request.option_letters or []
            raw = {letter: float(torch.logsumexp(logprobs[row, self._letter_token_ids(letter)], dim=0)) for letter in letters}
            scores = {letter: value for letter, value in raw.items() if math.isfinite(value)}
            if not scores:  # NaN logits (a broken checkpoint, an fp16 overflow): no answer, said once
                responses.append(GenerateResponse(error="NonFiniteLogits: the model's log-probabilities for every option letter are NaN or infinite", usage=Usage(prompt_tokens=int(length))))
                continue
            best = _sample_letter(scores, item.request) if _sampled(item.request) else max(scores, key=scores.__getitem__)
            responses.append(GenerateResponse(text=best, option_logprobs=scores, usage=Usage(prompt_tokens=int(length), completion_tokens=1)))
        return responses

    def _decode(self, batch: list[_Prepared], inputs, lengths: list[int]) -> list[GenerateResponse]:
        torch = self._torch
        request = batch[0].request
        settings = dict(max_new_tokens=request.decoding.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if request.decoding.sampling == "model-default":
            # The checkpoint's own generation config decides (as MMAD's Qwen script left it); a
            # sampling config runs one request at a time (group_by_images), under its seed.
            torch.manual_seed(request.sample_seed)
        elif _sampled(request):  # only ever one request: its seed alone decides its sample
            torch.manual_seed(request.sample_seed)
            settings.update(do_sample=True, temperature=request.decoding.temperature, top_p=request.decoding.top_p, top_k=None)
        else:
            settings.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        output = self.model.generate(**inputs, **settings)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        stop_ids = set(_as_list(self.model.generation_config.eos_token_id)) | {self.tokenizer.pad_token_id}
        responses = []
        for row, length in zip(new_tokens.tolist(), lengths):
            produced = next((i + 1 for i, token in enumerate(row) if token in stop_ids), len(row))
            text = self.tokenizer.decode(row[:produced], skip_special_tokens=True).strip()
            responses.append(GenerateResponse(text=text, usage=Usage(prompt_tokens=int(length), completion_tokens=produced)))
        return responses




def _sample_letter(scores: dict[str, float], request: GenerateRequest) -> str:
    """At temperature T, a letter drawn from the option letters' distribution (softmax of their
    log-probabilities over T), seeded by the request: self-consistency under logprob scoring."""
    import numpy as np

    letters = list(scores)
    logits = np.array([scores[letter] for letter in letters]) / request.decoding.temperature
    weights = np.exp(logits - logits.max())
    return letters[int(np.random.default_rng(request.sample_seed).choice(len(letters), p=weights / weights.sum()))]


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def create_hf(name: str, *, seed: int, options: ModelOptions) -> HFModel:
    return HFModel(name, seed=seed, options=options)

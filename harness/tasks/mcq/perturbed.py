"""A task whose query images (and, with --perturb-templates, template images) are degraded
(harness/asking/perturb.py): the wrapped task builds its request, then each named image is swapped for its
degraded copy. Everything else (ids, scoring, samples) is the wrapped task's."""

from __future__ import annotations

from pathlib import Path

from harness.models.base import GenerateRequest, ImagePart
from harness.asking.perturb import perturbed_path


class PerturbedTask:
    blocking = True  # degrading an image costs tens of milliseconds: prepared in a worker thread

    def __init__(self, task, perturbations: list[str], *, templates: bool, seed: int, cache: Path) -> None:
        self.task, self.perturbations, self.templates, self.seed, self.cache = task, perturbations, templates, seed, cache
        self.sample_type = task.sample_type
        self._copies: dict[str, str] = {}  # image → its degraded copy: read and hashed once, not per question

    @property
    def ids(self) -> list[str]:
        return self.task.ids

    def _swap(self, path: str) -> str:
        if path not in self._copies:
            self._copies[path] = str(perturbed_path(Path(path), self.perturbations, self.seed, self.cache))
        return self._copies[path]

    def build_request(self, ordinal: int) -> GenerateRequest:
        request = self.task.build_request(ordinal)
        if request.failure:
            return request
        roles = ("query", "template") if self.templates else ("query",)
        try:
            messages = [
                message.model_copy(update={"content": [
                    part.model_copy(update={"path": self._swap(part.path)}) if isinstance(part, ImagePart) and part.role in roles else part
                    for part in message.content
                ]})
                for message in request.messages
            ]
            updates: dict = {"messages": messages}
            if request.source_image:
                updates["source_image"] = self._swap(request.source_image)
            if self.templates and request.normal_images:
                updates["normal_images"] = [self._swap(p) for p in request.normal_images]
        except OSError as error:  # an unreadable image costs its sample, not the run
            return GenerateRequest(messages=[], sample_id=request.sample_id, failure=f"UnreadableImage: {error}")
        return request.model_copy(update=updates)

    def score(self, ordinal: int, model: str, digest: str, response):
        return self.task.score(ordinal, model, digest, response)

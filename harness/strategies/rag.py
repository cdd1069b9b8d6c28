"""Domain-knowledge retrieval in MMAD's format: {dataset: {category: {defect_or_good: text}}}."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

# MMAD's queries start with DS-MVTec; its knowledge file calls that dataset MVTec.
DATASET_ALIASES = {"DS-MVTec": "MVTec"}


class KnowledgeBase:
    def __init__(self, path: Path) -> None:
        from harness.adsets.knowledge import read_knowledge

        self.data = read_knowledge(path)
        self.path = path

    def entries(self, dataset: str, category: str) -> list[str]:
        by_dataset = self.data.get(dataset) or self.data.get(DATASET_ALIASES.get(dataset, ""), {})
        return [text for text in (by_dataset.get(category) or {}).values() if isinstance(text, str)]

    def text_for(self, dataset: str, category: str, query: str, top_k: int | None) -> str:
        """All of the category's entries joined by newlines (MMAD), or the top_k most similar."""
        entries = self.entries(dataset, category)
        if top_k is None or len(entries) <= top_k:
            return "\n".join(entries)
        ranked = _rank(tuple(entries), query)
        return "\n".join(entries[i] for i in sorted(ranked[:top_k]))


@lru_cache(maxsize=4096)
def _rank(entries: tuple[str, ...], query: str) -> list[int]:
    """Entry indices by TF-IDF cosine similarity to the query, most similar first (ties: file order)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english")
    matrix = vectorizer.fit_transform(list(entries) + [query])
    scores = (matrix[:-1] @ matrix[-1].T).toarray().ravel()
    return [int(i) for i in np.argsort(-scores, kind="stable")]

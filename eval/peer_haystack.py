"""Haystack 2.x's standard hybrid retrieval over a dataset, for eval/peers.py (runs in the peer's own venv).

Reads a job JSON (documents folder, questions, model folder, k), builds the pipeline the Haystack
documentation shows (DocumentSplitter by words -> SentenceTransformersDocumentEmbedder ->
InMemoryDocumentStore; at query time SentenceTransformersTextEmbedder + InMemoryEmbeddingRetriever
and InMemoryBM25Retriever joined by reciprocal rank fusion) and writes, per question, the retrieved
passages as (file, start, end) character spans and the time the query took.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from haystack import Document, Pipeline
from haystack.components.embedders import SentenceTransformersDocumentEmbedder, SentenceTransformersTextEmbedder
from haystack.components.joiners import DocumentJoiner
from haystack.components.preprocessors import DocumentSplitter
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    started = time.perf_counter()
    docs = [
        Document(content=p.read_text(encoding="utf-8"), meta={"file": p.name})
        for p in sorted(Path(job["documents"]).iterdir())
    ]
    splitter = DocumentSplitter(split_by="word", split_length=job["words"], split_overlap=job["overlap"])
    chunks = splitter.run(documents=docs)["documents"]
    embedder = SentenceTransformersDocumentEmbedder(model=job["model"], device=None, progress_bar=False)
    embedder.warm_up()
    store = InMemoryDocumentStore()
    store.write_documents(embedder.run(documents=chunks)["documents"])
    build_s = time.perf_counter() - started

    pipe = Pipeline()
    pipe.add_component("text_embedder", SentenceTransformersTextEmbedder(model=job["model"], progress_bar=False))
    pipe.add_component("dense", InMemoryEmbeddingRetriever(document_store=store, top_k=job["candidates"]))
    pipe.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=job["candidates"]))
    pipe.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=job["k"]))
    pipe.connect("text_embedder.embedding", "dense.query_embedding")
    pipe.connect("dense", "joiner")
    pipe.connect("bm25", "joiner")
    pipe.warm_up()

    def run(question: str) -> list:
        out = pipe.run({"text_embedder": {"text": question}, "bm25": {"query": question}})
        return out["joiner"]["documents"]

    for q in job["questions"][:10]:
        run(q["question"])
    results = []
    for q in job["questions"]:
        t = time.perf_counter()
        found = run(q["question"])
        ms = (time.perf_counter() - t) * 1000
        spans = []
        for d in found:
            start = d.meta.get("split_idx_start", 0)
            spans.append([d.meta["file"], start, start + len(d.content)])
        results.append({"id": q["id"], "ms": ms, "spans": spans})
    Path(sys.argv[2]).write_text(json.dumps({"build_s": build_s, "chunks": len(chunks), "results": results}))


if __name__ == "__main__":
    main()

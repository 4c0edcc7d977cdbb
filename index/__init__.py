"""The RAG knowledge base: curated text → chunks → embeddings → Qdrant, with lineage and ACLs.

Modules, each importable without torch or qdrant (they load inside the classes that use them):

* ``index.config``: ``KnowledgeBaseConfig``, the ``kb:`` section of ``pipeline.yaml``.
* ``index.chunk``: Chinese-aware sentence splitting and token-bounded chunks with overlap.
* ``index.points``: deterministic point ids (UUIDv5), chunk/payload hashes, the payload layout.
* ``index.embed``: ``SentenceTransformerEmbedder`` (CUDA fp16 when present, CPU fallback).
* ``index.stores``: the ``edge`` (Qdrant Edge shard) and ``qdrant`` (qdrant-client) backends.
* ``index.loader``: ``KnowledgeBaseLoader``: incremental loads from the lake or micro-batches.
* ``index.access`` and ``index.search``: principals' tags as filters on every query.
"""

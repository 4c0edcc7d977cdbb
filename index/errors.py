"""The knowledge base's error family."""

from __future__ import annotations

from pipelines.errors import LakeError


class VectorStoreError(LakeError):
    """The vector store cannot be used: unreachable, locked by another process, or corrupt.

    A ``LakeError`` (exit code 5) because the knowledge base is a published product of the
    lake; ``transient`` says whether a retry can help (a server that is down, a shard that
    another process holds) or not (a corrupt shard).
    """

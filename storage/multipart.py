"""A multipart upload sent part by part as its bytes arrive, then completed or aborted."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from storage.client import Storage

# S3's floor for every part but the last.
MIN_PART_SIZE = 5 * 1024 * 1024


class MultipartWrite:
    """One unfinished multipart upload; parts may be sent concurrently, in any order.

    Nothing is visible under ``key`` until ``complete``; ``abort`` (idempotent, never raising)
    drops the parts, and an upload neither completed nor aborted is left to `recordings gc`.
    """

    def __init__(self, storage: Storage, client: Any, key: str, upload_id: str) -> None:
        self._storage = storage
        self._client = client
        self.key = key
        self.upload_id = upload_id
        self._etags: dict[int, str] = {}
        self.completed = False
        self.aborted = False

    async def upload_part(self, number: int, body: bytes) -> None:
        """Send part ``number`` (from 1); every part but the last has at least MIN_PART_SIZE."""
        async with self._storage.connection(self.key):
            answer = await self._client.upload_part(
                Bucket=self._storage.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=body,
            )
        self._etags[number] = answer["ETag"]

    async def complete(self) -> None:
        """Make the object of every part sent, in part order, visible under ``key``."""
        parts = [{"PartNumber": n, "ETag": self._etags[n]} for n in sorted(self._etags)]
        async with self._storage.connection(self.key):
            await self._client.complete_multipart_upload(
                Bucket=self._storage.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )
        self.completed = True

    async def abort(self) -> None:
        """Drop the upload and its parts, unless completed; shielded, and failures are left to
        `recordings gc` (which finds unfinished uploads through the S3 API)."""
        if self.completed or self.aborted:
            return
        self.aborted = True
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await self._storage.abort_upload(self.key, self.upload_id)

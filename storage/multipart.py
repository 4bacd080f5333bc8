"""A multipart upload sent part by part as its bytes arrive, then completed or aborted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import aiohttp
import anyio

from storage.errors import StorageUnavailable

# S3's floor for every part but the last.
MIN_PART_SIZE = 5 * 1024 * 1024
# A part's body is written in slices of this size (views, not copies).
_SLICE = 1024 * 1024
# A presigned part URL is used at once; this only bounds a stalled one.
_URL_SECONDS = 900


class Bucket(Protocol):
    """What a write uses of ``storage.client.Storage``: its bucket, its pooled connections'
    slots, and the abort of an upload."""

    @property
    def bucket(self) -> str: ...
    def connection(self, key: str | None = None) -> AbstractAsyncContextManager[None]: ...
    async def abort_upload(self, key: str, upload_id: str) -> None: ...


class MultipartWrite:
    """One unfinished multipart upload; parts may be sent concurrently, in any order.

    Nothing is visible under ``key`` until ``complete``; ``abort`` (idempotent, never raising)
    drops the parts, and an upload neither completed nor aborted is left to `recordings gc`.
    """

    def __init__(
        self,
        storage: Bucket,
        client: Any,
        http: aiohttp.ClientSession | None,
        key: str,
        upload_id: str,
    ) -> None:
        self._storage = storage
        self._client = client
        self._http = http
        self.key = key
        self.upload_id = upload_id
        self._etags: dict[int, str] = {}
        self.completed = False
        self.aborted = False

    async def upload_part(self, number: int, body: bytes | bytearray | memoryview) -> None:
        """Send part ``number`` (from 1); every part but the last has at least MIN_PART_SIZE.
        ``body`` must not change until this returns."""
        async with self._storage.connection(self.key):
            if self._http is None:
                answer = await self._client.upload_part(
                    Bucket=self._storage.bucket,
                    Key=self.key,
                    UploadId=self.upload_id,
                    PartNumber=number,
                    Body=bytes(body),
                )
                etag = str(answer["ETag"])
            else:
                etag = await self._put_part(self._http, number, memoryview(body))
        self._etags[number] = etag

    async def _put_part(self, http: aiohttp.ClientSession, number: int, body: memoryview) -> str:
        """The part as one plain PUT of its bytes to a presigned URL: no copy of the body, and
        no hashing of it for the signature (the URL's payload is unsigned, as any presigned
        upload's is)."""
        url: str = await self._client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self._storage.bucket,
                "Key": self.key,
                "UploadId": self.upload_id,
                "PartNumber": number,
            },
            ExpiresIn=_URL_SECONDS,
        )

        async def slices() -> AsyncIterator[memoryview]:
            for start in range(0, len(body), _SLICE):
                yield body[start : start + _SLICE]

        headers = {"Content-Length": str(len(body))}
        async with http.put(url, data=slices(), headers=headers) as answer:
            if answer.status != 200:
                text = (await answer.content.read(4096)).decode(errors="replace")
                lost = "NoSuchUpload" in text
                raise StorageUnavailable(
                    "storage lost the upload (NoSuchUpload)"
                    if lost
                    else f"storage answered {answer.status} to part {number}"
                )
            return str(answer.headers.get("ETag", ""))

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

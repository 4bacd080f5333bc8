"""The S3 client: streaming ranged reads, multipart streaming writes, deletes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from storage.direct import DirectStream, open_direct
from storage.errors import ObjectNotFound, StorageUnavailable
from storage.multipart import MultipartWrite

PART_SIZE = 8 * 1024 * 1024
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_LOST_CODES = {"NoSuchUpload"}


@dataclass(frozen=True)
class StorageConfig:
    bucket: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = "us-east-1"
    key_prefix: str = ""
    max_connections: int = 128
    timeout: float = 30.0
    pool_timeout: float = 2.0
    presign_endpoint_url: str | None = None


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class ObjectHead:
    """What a HEAD of an object tells: its size, date, storage ETag and user metadata."""

    size: int
    last_modified: datetime
    etag: str
    metadata: dict[str, str]


@contextlib.contextmanager
def _translate(key: str | None = None) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _LOST_CODES:
            # A multipart upload storage no longer has (aborted by a cleanup, expired by a
            # lifecycle rule): the write did not happen, and trying again is the remedy.
            raise StorageUnavailable(f"storage lost the upload ({code})") from exc
        if code in _MISSING_CODES or (status == 404 and key is not None):
            raise ObjectNotFound(key or "") from exc
        if status >= 500 or status == 0:
            raise StorageUnavailable(f"storage answered {status} {code}") from exc
        raise
    except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise StorageUnavailable(str(exc) or type(exc).__name__) from exc


def _once(release: Callable[[], None]) -> Callable[[], None]:
    done = False

    def release_once() -> None:
        nonlocal done
        if not done:
            done = True
            release()

    return release_once


class ObjectStream:
    """An open GET of one object (or one byte range of it); always close it."""

    def __init__(self, body: Any, content_length: int, release: Callable[[], None]) -> None:
        self._body = body
        self.content_length = content_length
        self._release = release

    async def iter_chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``chunk_size``; raises if the transfer is cut short."""
        # aiobotocore reads 1 KiB at a time by default, which caps a stream near 100 MB/s.
        received = 0
        with _translate():
            async for chunk in self._body.iter_chunks(chunk_size):
                received += len(chunk)
                yield chunk
        if received != self.content_length:
            raise StorageUnavailable(f"object cut short: {received} of {self.content_length}")

    async def aclose(self) -> None:
        """Give the connection back (or drop it, when the body was not read to the end)."""
        self._body.close()
        self._release()


class Storage:
    """One bucket of an S3 server, through one long-lived aiobotocore client."""

    def __init__(
        self,
        client: Any,
        config: StorageConfig,
        presigner: Any | None = None,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        self._client = client
        self._presigner = presigner or client
        # Plain HTTP for the bodies of streamed parts (``storage.multipart``), sent to presigned
        # URLs: botocore's request path costs a fifth more time per part than the bytes alone.
        self._http = http
        self.config = config
        self.bucket = config.bucket
        # One slot per pooled connection: waiting for one is bounded, so a pool held by slow
        # readers answers "unavailable" at once instead of queueing every request behind them.
        self._slots = asyncio.Semaphore(config.max_connections)

    async def _take_slot(self) -> None:
        try:
            async with asyncio.timeout(self.config.pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise StorageUnavailable(
                f"all {self.config.max_connections} storage connections are busy"
            ) from None

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        await self._take_slot()
        try:
            yield
        finally:
            self._slots.release()

    def key(self, name: str) -> str:
        """The object key of ``name`` under the configured prefix."""
        return f"{self.config.key_prefix}{name}"

    async def ensure_bucket(self) -> bool:
        """Create the bucket when it is missing; True when it was created."""
        async with self._slot():
            with _translate():
                try:
                    await self._client.head_bucket(Bucket=self.bucket)
                    return False
                except ClientError as exc:
                    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                    if status != 404:
                        raise
                try:
                    await self._client.create_bucket(Bucket=self.bucket)
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
                    return False
                return True

    async def ping(self) -> None:
        """Raise unless the bucket answers."""
        async with self._slot():
            with _translate():
                await self._client.head_bucket(Bucket=self.bucket)

    async def open_object(
        self, key: str, first: int | None = None, last: int | None = None
    ) -> ObjectStream:
        """Start a GET of the whole object, or of bytes ``first..last`` inclusive."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if first is not None:
            kwargs["Range"] = f"bytes={first}-{'' if last is None else last}"
        await self._take_slot()
        try:
            with _translate(key):
                response = await self._client.get_object(**kwargs)
        except BaseException:
            self._slots.release()
            raise
        return ObjectStream(
            response["Body"], int(response["ContentLength"]), _once(self._slots.release)
        )

    async def open_stream(
        self, key: str, first: int | None = None, last: int | None = None, *, chunk_size: int
    ) -> ObjectStream | DirectStream:
        """Start a GET of the whole object, or of bytes ``first..last``, to stream it on in
        chunks of ``chunk_size``: read off the socket into the chunks themselves
        (storage.direct), on a connection of its own, under the same pool of slots.

        A range of one chunk or less (a player seeking) gains nothing from that and would pay
        a new connection (a TLS handshake, remotely): it takes a pooled one of the S3 client.
        """
        if first is not None and last is not None and last - first < chunk_size:
            return await self.open_object(key, first, last)
        # Presigning is local (a signature), and the URL is used at once.
        url = await self.presign_internal_get(key, 300)
        await self._take_slot()
        try:
            return await open_direct(
                url,
                first=first,
                last=last,
                chunk=chunk_size,
                timeout=self.config.timeout,
                key=key,
                release=_once(self._slots.release),
            )
        except BaseException:
            self._slots.release()
            raise

    async def iter_object(self, key: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; its connection is given back however the reading ends."""
        stream = await self.open_object(key)
        try:
            async for chunk in stream.iter_chunks(chunk_size):
                yield chunk
        finally:
            # Shielded: a cancelled reader (ffmpeg killed, say) must still close the stream.
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def upload_file(
        self, key: str, path: Path, content_type: str, metadata: dict[str, str] | None = None
    ) -> None:
        """Store a file, in parts when large, never holding more than one part in memory;
        ``metadata`` is kept as the object's user metadata (``head_object`` reads it)."""
        with path.open("rb") as source:
            await self.upload_fileobj(key, source, path.stat().st_size, content_type, metadata)

    async def upload_fileobj(
        self,
        key: str,
        source: BinaryIO,
        size: int,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store ``size`` bytes of an open file from its start, as ``upload_file`` does."""
        await anyio.to_thread.run_sync(source.seek, 0)
        extra = {"Metadata": metadata} if metadata else {}
        async with self._slot():
            with _translate():
                if size <= PART_SIZE:
                    await self._client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=await anyio.to_thread.run_sync(source.read),
                        ContentType=content_type,
                        **extra,
                    )
                    return
                upload = await self._client.create_multipart_upload(
                    Bucket=self.bucket, Key=key, ContentType=content_type, **extra
                )
                upload_id = upload["UploadId"]
                try:
                    parts = []
                    number = 1
                    while chunk := await anyio.to_thread.run_sync(source.read, PART_SIZE):
                        part = await self._client.upload_part(
                            Bucket=self.bucket,
                            Key=key,
                            UploadId=upload_id,
                            PartNumber=number,
                            Body=chunk,
                        )
                        parts.append({"PartNumber": number, "ETag": part["ETag"]})
                        number += 1
                    await self._client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
                except BaseException:
                    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                        await self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=key, UploadId=upload_id
                        )
                    raise

    @contextlib.asynccontextmanager
    async def connection(self, key: str | None = None) -> AsyncIterator[None]:
        """One pooled connection's slot for a call of this module's family (``storage.multipart``),
        with its errors translated as every call's are."""
        async with self._slot():
            with _translate(key):
                yield

    async def start_upload(
        self, key: str, content_type: str, metadata: dict[str, str] | None = None
    ) -> MultipartWrite:
        """Begin a multipart upload to ``key``, its parts sent as they come (``MultipartWrite``);
        the caller completes or aborts it."""
        extra = {"Metadata": metadata} if metadata else {}
        async with self.connection():
            upload = await self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, **extra
            )
        return MultipartWrite(self, self._client, self._http, key, upload["UploadId"])

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store a small object."""
        async with self._slot():
            with _translate():
                await self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
                )

    async def delete_objects(self, keys: list[str]) -> None:
        """Remove objects; a missing one is not an error."""
        async with self._slot():
            with _translate():
                for start in range(0, len(keys), 1000):
                    batch = keys[start : start + 1000]
                    if len(batch) == 1:
                        await self._client.delete_object(Bucket=self.bucket, Key=batch[0])
                        continue
                    response = await self._client.delete_objects(
                        Bucket=self.bucket,
                        Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                    )
                    errors = response.get("Errors") or []
                    if errors:
                        raise StorageUnavailable(f"could not delete {len(errors)} objects")

    async def object_exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        async with self._slot():
            with _translate(key):
                try:
                    await self._client.head_object(Bucket=self.bucket, Key=key)
                except ClientError as exc:
                    if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                        return False
                    raise
        return True

    async def head_object(self, key: str) -> ObjectHead | None:
        """An object's size, date, ETag and metadata; None when nothing is stored there."""
        async with self._slot():
            with _translate(key):
                try:
                    head = await self._client.head_object(Bucket=self.bucket, Key=key)
                except ClientError as exc:
                    if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                        return None
                    raise
        return ObjectHead(
            size=int(head["ContentLength"]),
            last_modified=head["LastModified"],
            etag=str(head.get("ETag", "")),
            metadata=dict(head.get("Metadata") or {}),
        )

    async def list_objects(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        """Every object under the configured prefix plus ``prefix``."""
        paginator = self._client.get_paginator("list_objects_v2")
        async with self._slot():
            with _translate():
                async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(prefix)):
                    for item in page.get("Contents", []):
                        yield StoredObject(item["Key"], int(item["Size"]), item["LastModified"])

    async def list_unfinished_uploads(
        self, prefix: str = ""
    ) -> AsyncIterator[tuple[str, str, datetime]]:
        """Multipart uploads under the configured prefix plus ``prefix`` never completed nor
        aborted: (key, id, started)."""
        paginator = self._client.get_paginator("list_multipart_uploads")
        async with self._slot():
            with _translate():
                async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(prefix)):
                    for upload in page.get("Uploads", []):
                        yield upload["Key"], upload["UploadId"], upload["Initiated"]

    async def abort_upload(self, key: str, upload_id: str) -> None:
        """Drop an unfinished multipart upload and its parts."""
        async with self._slot():
            with _translate():
                try:
                    await self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                        raise

    async def presign_get(
        self,
        key: str,
        expires: int,
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str:
        """A short-lived URL that lets a client GET the object from storage directly."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if content_type:
            params["ResponseContentType"] = content_type
        if content_disposition:
            params["ResponseContentDisposition"] = content_disposition
        url: str = await self._presigner.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires
        )
        return url

    async def presign_internal_get(self, key: str, expires: int) -> str:
        """A short-lived URL of the object at the endpoint the service itself uses (for a proxy
        beside the service, such as nginx in accel mode), not the one clients reach."""
        url: str = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
        )
        return url


def _client_config(config: StorageConfig) -> AioConfig:
    return AioConfig(
        connect_timeout=min(5.0, config.timeout),
        read_timeout=config.timeout,
        # Two attempts in all: a stalled server then holds a request for about 2 x timeout.
        retries={"total_max_attempts": 2, "mode": "standard"},
        max_pool_connections=config.max_connections,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        # S3-compatible servers differ in their support of the newer default checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


@contextlib.asynccontextmanager
async def open_storage(config: StorageConfig) -> AsyncIterator[Storage]:
    """One client for the life of the process (and one more for presigning, if it differs)."""
    session = get_session()
    common: dict[str, Any] = {
        "region_name": config.region,
        "aws_access_key_id": config.access_key_id,
        "aws_secret_access_key": config.secret_access_key,
        "config": _client_config(config),
    }
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            session.create_client("s3", endpoint_url=config.endpoint_url, **common)
        )
        presigner = None
        if config.presign_endpoint_url and config.presign_endpoint_url != config.endpoint_url:
            presigner = await stack.enter_async_context(
                session.create_client("s3", endpoint_url=config.presign_endpoint_url, **common)
            )
        http = await stack.enter_async_context(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=config.max_connections),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=min(5.0, config.timeout), sock_read=config.timeout
                ),
                # Storage's answers are read as they are; nothing is decompressed or followed.
                auto_decompress=False,
            )
        )
        yield Storage(client, config, presigner, http)

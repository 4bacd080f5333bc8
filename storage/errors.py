"""What the storage layer raises."""

from __future__ import annotations


class StorageError(Exception):
    """Base of the storage layer's errors."""


class StorageUnavailable(StorageError):
    """The S3 server could not be reached, failed, or broke off a transfer."""


class ObjectNotFound(StorageError):
    """No object under that key."""

"""`recordings migrate`: schema, job queue tables and bucket; safe from many replicas at once."""

from __future__ import annotations

from db.migrations import apply_migrations
from service.mp3.queue import install_queue
from service.services import storage_config
from service.settings import Settings
from storage.client import open_storage


async def migrate_all(settings: Settings) -> list[str]:
    """Apply the database migrations and create the bucket; what was done, one line each."""
    # The migration lock is a session's, held across the migrations' transactions.
    applied = await apply_migrations(settings.session_database_url)
    queue_created = await install_queue(settings.session_database_url)
    async with open_storage(storage_config(settings)) as storage:
        created = await storage.ensure_bucket()
    done = [f"migration {m.version:04d}_{m.name}" for m in applied]
    if queue_created:
        done.append("job queue tables")
    if created:
        done.append(f"bucket {settings.s3_bucket}")
    return done

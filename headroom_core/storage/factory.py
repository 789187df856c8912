"""Pick the storage backend from settings: Redis when `--redis-url` is set, else diskcache."""

from __future__ import annotations

from ..settings import Settings
from .base import Storage


def open_storage(settings: Settings, name: str, size_limit: int = 1 << 30) -> Storage:
    """The store for one feature (`name`: "ccr", "cache", "budget", "ratelimit", "toin", ...).

    On disk each feature gets its own directory under the data dir, so one feature filling its
    size limit never evicts another's state. On Redis the name becomes part of the key prefix,
    which keeps the same separation on a shared server. `size_limit` applies to disk only
    (Redis memory is the server's `maxmemory` policy).
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"storage name must be a plain directory name, got {name!r}")
    if settings.redis_url:
        # Imported here: redis is an optional extra.
        from .redis_store import RedisStorage

        return RedisStorage(settings.redis_url, prefix=f"headroom:{name}:")
    from .disk import DiskStorage

    return DiskStorage(settings.data_path / name, size_limit=size_limit)

"""Storage on Redis: shared state for several headroom instances behind a load balancer.

The two read-modify-write updates are Lua scripts, so they are atomic across every client of
the server. Every failure (refused connection, a server that stops answering, a script error)
surfaces as `StorageError` within about two socket timeouts: one reconnect is tried (a pooled
connection may be stale after a Redis restart), never the client library's default ten.

What callers do with that error is theirs to decide; the spend guard's choice is: response
cache fails open (a miss), rate limiter fails open (the provider still enforces its own limits),
budget fails closed (money). See `headroom_core.spend`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .base import Storage, StorageError
from .disk import bucket_idle_ttl

T = TypeVar("T")

# KEYS[1] counter; ARGV[1] amount, ARGV[2] ttl in ms (0: none). The TTL is set only when this
# call creates the key, so charging a period counter never extends its life.
_INCR_FLOAT = """
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if existed == 0 and ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return value
"""

# KEYS[1] bucket hash {l: level, t: last refill time}; ARGV capacity, refill/s, cost, now,
# idle ttl ms (0: none). The same rule as storage.disk.bucket_step. Floats leave Lua as
# strings: Redis would truncate a Lua number reply to an integer.
_TOKEN_BUCKET = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local saved = redis.call('HMGET', KEYS[1], 'l', 't')
local level, last = cap, now
if saved[1] and saved[2] then
  level = tonumber(saved[1])
  last = tonumber(saved[2])
end
local dt = now - last
if dt < 0 then dt = 0 end
level = math.min(cap, level + dt * rate)
if now > last then last = now end
local allowed, wait = 0, '0'
if cost <= level or cost < 0 then
  level = math.min(cap, level - cost)
  allowed = 1
elseif rate > 0 then
  wait = string.format('%.17g', (cost - level) / rate)
else
  wait = 'inf'
end
redis.call('HSET', KEYS[1], 'l', string.format('%.17g', level), 't', string.format('%.17g', last))
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
return {allowed, wait}
"""

_SEP = "\x1f"


class RedisStorage(Storage):
    """A `Storage` on one Redis server; keys are `<prefix><ns>\\x1f<key>`."""

    def __init__(self, url: str, *, socket_timeout: float = 0.5, prefix: str = "headroom:") -> None:
        self.prefix = prefix
        try:
            self._r = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry_on_timeout=False,
                # One retry, on connection errors only: enough to replace a stale pooled
                # connection, not enough to turn an outage into a hang.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
            self._incr = self._r.register_script(_INCR_FLOAT)
            self._bucket = self._r.register_script(_TOKEN_BUCKET)
        except (redis.RedisError, ValueError) as e:
            raise StorageError(f"bad Redis URL: {e}") from None

    def _k(self, ns: str, key: str) -> str:
        return self.prefix + ns + _SEP + key

    def _run(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (redis.RedisError, OSError) as e:
            # The message never carries the URL: it may hold a password.
            raise StorageError(f"redis {what} failed: {type(e).__name__}: {e}") from None

    def ping(self) -> None:
        """Raise StorageError unless the server answers (for start-up checks and /health)."""
        self._run("ping", self._r.ping)

    def get(self, ns: str, key: str) -> bytes | None:
        return self._run("get", lambda: self._r.get(self._k(ns, key)))

    def set(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:  # already expired, as in the other backends
            self.delete(ns, key)
            return
        px = _ms(ttl)
        self._run("set", lambda: self._r.set(self._k(ns, key), bytes(value), px=px or None))

    def delete(self, ns: str, key: str) -> None:
        self._run("delete", lambda: self._r.delete(self._k(ns, key)))

    def incr_float(self, ns: str, key: str, amount: float, ttl: float | None = None) -> float:
        args: list[Any] = [repr(float(amount)), _ms(ttl)]
        raw = self._run("incr_float", lambda: self._incr(keys=[self._k(ns, key)], args=args))
        return float(raw)

    def token_bucket(self, ns: str, key: str, capacity: float, refill_per_s: float,
                     cost: float, now: float) -> tuple[bool, float]:
        args = [repr(float(capacity)), repr(float(refill_per_s)), repr(float(cost)),
                repr(float(now)), _ms(bucket_idle_ttl(capacity, refill_per_s))]
        allowed, wait = self._run("token_bucket",
                                  lambda: self._bucket(keys=[self._k(ns, key)], args=args))
        return bool(allowed), float(wait)

    def close(self) -> None:
        try:
            self._r.close()
        except (redis.RedisError, OSError):
            pass


def _ms(ttl: float | None) -> int:
    """Milliseconds for PEXPIRE (0: no expiry); a positive TTL never rounds down to none."""
    if ttl is None or ttl <= 0 or math.isinf(ttl):
        return 0
    return max(1, int(ttl * 1000))

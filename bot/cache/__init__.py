"""The Redis cache: one pooled client, key builders, the gateway, get-or-set and single-flight."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

from bot.cache.gateway import CacheCounters, Gateway, RedisHealth
from bot.cache.keys import CacheTTLs, Family, Key, Keys
from bot.cache.store import Cache

if TYPE_CHECKING:  # bot.config reads the family names from here
    from bot.config import Config

__all__ = [
    "Cache",
    "CacheCounters",
    "CacheTTLs",
    "Family",
    "Gateway",
    "Key",
    "Keys",
    "RedisHealth",
    "create_cache",
    "create_redis",
    "keys_for",
]

# Redis is an optimisation: a slow one costs an update at most one short timeout, after which
# the gateway's cool-down treats it as down. A timed-out command is not retried; a pooled
# connection that a restarted Redis closed fails at once and is retried once on a new one,
# so a Redis that is back is not taken for down again by every stale connection. Waiting
# for a free pooled connection is local contention, not Redis failing, so it has no limit.
SOCKET_TIMEOUT = 0.25


def create_redis(config: Config) -> Redis:
    """One pooled client; hiredis parses the replies when it is installed (redis[hiredis])."""
    pool = BlockingConnectionPool.from_url(
        config.redis_url,
        max_connections=config.redis_max_connections,
        timeout=None,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(ConnectionError,)),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)


def create_cache(config: Config) -> Cache:
    redis = create_redis(config) if config.cache_enabled else None
    return Cache(redis, prefix=config.redis_key_prefix, bypass=config.cache_bypass)


def keys_for(config: Config) -> Keys:
    return Keys(
        CacheTTLs(
            default=config.redis_cache_ttl_default,
            user=config.redis_cache_ttl_user,
            stats=config.redis_cache_ttl_stats,
            openai=config.redis_cache_ttl_openai,
        )
    )

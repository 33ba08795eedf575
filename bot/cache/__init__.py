"""The Redis cache: one pooled client, key builders, and the get-or-set helper."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.cache.keys import CacheTTLs, Family, Key, Keys
from bot.cache.store import Cache, CacheCounters
from bot.config import Config

__all__ = [
    "Cache",
    "CacheCounters",
    "CacheTTLs",
    "Family",
    "Key",
    "Keys",
    "create_cache",
    "keys_for",
]

# Redis is an optimisation: a slow one must cost an update milliseconds, not seconds.
SOCKET_TIMEOUT = 0.5
POOL_WAIT = 0.5


def create_redis(config: Config) -> Redis:
    pool = BlockingConnectionPool.from_url(
        config.redis_url,
        max_connections=config.redis_max_connections,
        timeout=POOL_WAIT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), retries=1),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)


def create_cache(config: Config) -> Cache:
    redis = create_redis(config) if config.cache_enabled else None
    return Cache(redis, prefix=config.redis_key_prefix)


def keys_for(config: Config) -> Keys:
    return Keys(
        CacheTTLs(
            default=config.redis_cache_ttl_default,
            user=config.redis_cache_ttl_user,
            stats=config.redis_cache_ttl_stats,
            openai=config.redis_cache_ttl_openai,
        )
    )

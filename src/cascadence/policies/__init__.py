"""Resilience policies, written once and shared by both front ends.

YAML stage fields, the cascade plugins (`RetryPlugin`, `CachePlugin`, ...), the flow decorators
(`@retry`, `@timeout`, `@fallback`, `@circuit_breaker`) and `@note(...)` only construct these
objects; `cascadence.runtime.invoke` applies them.
"""

from cascadence.policies.cache import (
    MISS,
    NO_KEY,
    CacheStore,
    LRUCacheStore,
    ResultCache,
    cache_key,
)
from cascadence.policies.circuit_breaker import (
    BreakerSnapshot,
    BreakerState,
    BreakerStateStore,
    CircuitBreaker,
    InMemoryBreakerStore,
    breaker_step,
)
from cascadence.policies.fallback import NO_DEFAULT, Fallback, fallback_from
from cascadence.policies.retry import Backoff, RetryPolicy, retry_policy_from
from cascadence.policies.stack import StepPolicy

__all__ = [
    "Backoff",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerStateStore",
    "CacheStore",
    "CircuitBreaker",
    "Fallback",
    "InMemoryBreakerStore",
    "LRUCacheStore",
    "MISS",
    "NO_DEFAULT",
    "NO_KEY",
    "ResultCache",
    "RetryPolicy",
    "StepPolicy",
    "breaker_step",
    "cache_key",
    "fallback_from",
    "retry_policy_from",
]

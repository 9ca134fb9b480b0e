"""The config front end: cascades described in YAML or JSON."""

from cascadence.cascade.config import (
    STAGE_COSTS,
    CascadeConfig,
    CircuitBreakerConfig,
    Condition,
    ConditionSpec,
    RoutingAction,
    RoutingRule,
    StageConfig,
)

__all__ = [
    "CascadeConfig",
    "CircuitBreakerConfig",
    "Condition",
    "ConditionSpec",
    "RoutingAction",
    "RoutingRule",
    "STAGE_COSTS",
    "StageConfig",
]

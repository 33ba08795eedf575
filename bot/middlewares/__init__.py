"""Outer middlewares around every update: in-flight tracking, DB session, learner context."""

from bot.middlewares.db import DbSessionMiddleware
from bot.middlewares.inflight import InFlight, InFlightMiddleware
from bot.middlewares.learner import LearnerContextMiddleware
from bot.middlewares.lease import UpdateLease

__all__ = [
    "DbSessionMiddleware",
    "InFlight",
    "InFlightMiddleware",
    "LearnerContextMiddleware",
    "UpdateLease",
]

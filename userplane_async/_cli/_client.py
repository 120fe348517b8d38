"""The API client a command runs with, configured from the shared options."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .. import AsyncUserplane, ConfigurationError, RateLimit


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """``AsyncUserplane`` keyword arguments for the options given; the SDK's defaults else."""
    options: dict[str, Any] = {}
    if args.budget is not None:
        options["budget"] = args.budget
    if args.concurrency is not None:
        options["concurrency"] = args.concurrency
    budget = {"per_minute": args.per_minute, "per_day": args.per_day}
    if any(limit is not None for limit in budget.values()):
        options["rate_limit"] = RateLimit(**{k: v for k, v in budget.items() if v is not None})
    return options


def open_client(args: argparse.Namespace) -> AsyncUserplane:
    """A client for ``--api-key``/``--base-url``, or ``$USERPLANE_API_KEY``/``$USERPLANE_BASE_URL``."""
    if not (args.api_key or os.environ.get("USERPLANE_API_KEY")):
        # The SDK's own message names its argument; a shell user needs the option.
        raise ConfigurationError("no API key: set USERPLANE_API_KEY or pass --api-key")
    return AsyncUserplane(args.api_key, base_url=args.base_url, **client_options(args))

"""Outbound HTTP: the one guarded client every fetch goes through (see `client`)."""

from app.fetching.client import FetchError, FetchPolicy, FetchResponse, fetch, policy_from_config

__all__ = ["FetchError", "FetchPolicy", "FetchResponse", "fetch", "policy_from_config"]

"""The one error type orchestration raises for bad input, shaped like sim.params.ParamError."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A setting outside sim's params (policy, seed, store, ray ...) that cannot be used."""

    def __init__(self, key: str, value: Any, reason: str):
        self.key, self.value, self.reason = key, value, reason
        super().__init__(f"{key}={value!r}: {reason}")

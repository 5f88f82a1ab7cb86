"""The layer's typed failures. Each carries `result`: what the CLI's `--json` envelope shows
(the refused units and rules, the inhibitors, what ran and what was rolled back)."""

from __future__ import annotations

from typing import Any

from nixlayer.errors import GuardRefusedError, NixlayerError


class SwitchRefusedError(GuardRefusedError):
    """Refused before anything was activated (a protected unit, a switch inhibitor)."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


class PreSwitchCheckError(SwitchRefusedError):
    """switch-to-configuration's own pre-switch checks refused: nothing was activated."""


class ActivationError(NixlayerError):
    """Activation failed (and was rolled back where it could be)."""

    exit_code = 1

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


class IncompleteSwitchError(ActivationError):
    """Switched, but not cleanly (units failed, or a reboot is needed); nothing rolled back."""

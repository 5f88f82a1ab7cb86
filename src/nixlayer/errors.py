"""Typed errors. Library code raises these; only the CLI turns them into exit codes."""

from __future__ import annotations


class NixlayerError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1


class InputError(NixlayerError):
    """Bad input from the user: a spec field, a flag, a path. Nothing was written."""

    exit_code = 2

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class LibraryError(InputError):
    """The chosen library (or its template) does not have the shape nixlayer needs."""


class NixError(NixlayerError):
    """A `nix` command failed. `command` is the pasteable shell line."""

    exit_code = 1

    def __init__(self, command: str, returncode: int, stderr: str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip() or f"exit status {returncode}"
        super().__init__(f"nix failed ({returncode}): {command}\n{detail}")

    def first_error(self) -> str:
        """Nix's own first `error:` line (else its last line): enough for one-line messages."""
        lines = self.stderr.strip().splitlines()
        errors = [ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")]
        if errors:
            return errors[0]
        return lines[-1] if lines else f"exit status {self.returncode}"


class NixNotFoundError(NixlayerError):
    """No usable `nix` binary."""

    exit_code = 1


class GuardRefusedError(NixlayerError):
    """A safety guard refused the operation."""

    exit_code = 3

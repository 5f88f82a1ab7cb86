"""The one `--json` envelope: every command, success and failure, prints exactly one of these.

`result` is the command's own data (null when it failed before producing any); `error` says
what went wrong in the same words as the one-line human message, with the field for bad input
and Nix's command and stderr for a failed `nix` call.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ErrorKind = Literal["input", "nix", "guard", "failure", "interrupted"]


class NixFailure(BaseModel):
    model_config = ConfigDict(frozen=True)
    command: str = Field(description="the failed nix command, pasteable into a shell")
    returncode: int
    stderr: str = Field(description="Nix's own error output, whole")


class EnvelopeError(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: ErrorKind
    message: str = Field(description="the one-line message the human output prints")
    field: str | None = Field(default=None, description="the input field or flag at fault")
    nix: NixFailure | None = None


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: Literal[1] = 1
    command: str = Field(description="the subcommand, e.g. 'build' or 'runner-store seed'")
    ok: bool
    exit_code: int = Field(description="0 ok, 1 failure, 2 bad input, 3 refused, 130 interrupted")
    result: Any = Field(default=None, description="the command's data; its shape is per command")
    error: EnvelopeError | None = None
    warnings: list[str] = Field(default_factory=list)


def envelope_schema() -> dict[str, Any]:
    return Envelope.model_json_schema()

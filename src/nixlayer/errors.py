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
        """Nix's own first error, in one line: enough for one-line messages.

        Nix 2.8 prints `error: MESSAGE`. Newer Nix prints a bare `error:`, then
        `… while calling …` trace frames, then the cause on an indented
        `error: MESSAGE` line; the cause is what a user needs.
        """
        errors = [text for level, text in nix_messages(self.stderr) if level == "error"]
        if errors:
            return _one_line(errors[0])
        lines = self.stderr.strip().splitlines()
        return lines[-1].strip() if lines else f"exit status {self.returncode}"


def nix_messages(stderr: str) -> list[tuple[str, str]]:
    """Nix's `error:` and `warning:` messages in `stderr`, each whole: a message runs
    from its `error:`/`warning:` line over the indented lines, `• …` input lines and
    `(use '--show-trace' …)` hints that follow it. Other lines (build output) end it."""
    out: list[tuple[str, list[str]]] = []
    open_message = False
    for line in stderr.splitlines():
        level = next((lv for lv in ("error", "warning") if line.startswith(f"{lv}:")), None)
        if level is not None:
            out.append((level, [line.removeprefix(f"{level}:").strip()]))
            open_message = True
        elif open_message and _continues(line):
            out[-1][1].append(line.rstrip())
        else:
            open_message = False  # build output, "this derivation will be built:", ...
    return [(level, "\n".join(lines).rstrip("\n")) for level, lines in out]


def _continues(line: str) -> bool:
    return not line or line[0] in " \t•" or line.startswith("(use '--show-trace'")


def _one_line(message: str) -> str:
    head, _, rest = message.partition("\n")
    lines = [ln.strip() for ln in rest.splitlines() if ln.strip()]
    if head.strip():
        # Nix 2.34: "Cannot build '…'." then "Reason: builder failed with exit code 3."
        reason = next((ln for ln in lines[:1] if ln.startswith("Reason:")), None)
        return f"{head.strip()} {reason}" if reason else head.strip()
    # A bare `error:` and a trace: the innermost `error:` is the cause.
    causes = [ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")]
    if causes and causes[-1]:
        return causes[-1]
    return next((ln for ln in lines if not ln.startswith(("…", "at ", "("))), "(no message)")


class NixOutputError(NixlayerError):
    """Nix printed output nixlayer cannot read: a shape no known Nix version prints."""

    exit_code = 1

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        self.detail = detail
        super().__init__(f"unexpected output from {what}: {detail}")


class NixNotFoundError(NixlayerError):
    """No usable `nix` binary."""

    exit_code = 1


class GuardRefusedError(NixlayerError):
    """A safety guard refused the operation."""

    exit_code = 3


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: the running `nix` children were ended first. A KeyboardInterrupt,
    so `except NixlayerError` (a fleet isolating one VM's failure) does not swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum  # 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP
        super().__init__(f"interrupted by signal {signum}")

"""A failed builder, named the same way whichever Nix printed it (texts as 2.8 and 2.34 print
them, the 2.34 one with the colour codes internal-json carries stripped)."""

from __future__ import annotations

import json

from nixlayer.closure.failure import failed_drv
from nixlayer.nix.buildfail import builder_line, failed_builder, log_hint
from nixlayer.nix.progress import BuildProgress

DRV = "/nix/store/g57n5k2z9w0ajb8dm1rw37s6yz9j0m1d-fail.drv"
OLD = (
    f"error: builder for '{DRV}' failed with exit code 3;\n"
    "       last 10 log lines:\n       > ltp step 12\n"
    f"       For full logs, run 'nix log {DRV}'.\n"
)
NEW = (
    f"error: Cannot build '{DRV}'.\n       Reason: builder failed with exit code 3.\n"
    "       Output paths:\n         /nix/store/fpwx73wyf3yia5y0x9lc1wfnr598632m-fail\n"
    f"       Last 12 log lines:\n       > ltp step 12\n       For full logs, run:\n"
    f"         nix log {DRV}\n"
)
DEPENDENCY = "error: Cannot build '/nix/store/a-top.drv'.\n       Reason: 1 dependency failed.\n"


def test_both_wordings_name_the_builder_and_the_hint() -> None:
    for text in (OLD, NEW):
        assert failed_builder(text) == (DRV, 3)
        assert log_hint(text) == f"nix log {DRV}"
        assert failed_drv(text) == DRV
    assert builder_line(DRV, 3) == f"builder for '{DRV}' failed with exit code 3"


def test_a_dependency_failure_is_not_a_failed_builder() -> None:
    assert failed_builder(DEPENDENCY) is None and log_hint(DEPENDENCY) is None


def test_the_log_tail_is_put_back_under_either_wording() -> None:
    """internal-json leaves the tail out of the error message on 2.8 and 2.34 alike."""
    for msg in (
        f"builder for '{DRV}' failed with exit code 3",
        NEW.split("\n       Last", maxsplit=1)[0],
    ):
        state = BuildProgress()
        start = '{"action":"start","id":7,"type":105,"fields":["' + DRV + '","",1,1]}'
        state.feed("@nix " + start)
        for i in range(1, 13):
            line = {"action": "result", "id": 7, "type": 101, "fields": [f"ltp step {i}"]}
            state.feed("@nix " + json.dumps(line))
        state.feed("@nix " + json.dumps({"action": "msg", "level": 0, "msg": msg}))
        error = state.errors()[0]
        assert "> ltp step 12" in error and "> ltp step 2\n" not in error
        assert f"nix log {DRV}" in error

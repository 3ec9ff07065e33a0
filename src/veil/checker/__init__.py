"""The checker: IR (`ir.PolicySet`) in, checked program (`model.Program`) and diagnostics out.

    result = check(policies)
    result.program       # None when any error
    result.diagnostics   # sorted, at most 50 errors

`PASSES` is the ordered table of passes (see `pipeline.py`); diagnostic codes are in `codes.py`
and documented in docs/errors.md.
"""

from __future__ import annotations

from veil.checker.pipeline import MAX_ERRORS, PASSES, CheckResult, check

__all__ = ["MAX_ERRORS", "PASSES", "CheckResult", "check"]

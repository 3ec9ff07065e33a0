"""Diagnostic codes of the checker. Stable: never renumber, only add (docs/errors.md has one
section per code).

E01xx names, E02xx types and masks, E03xx conflicts, E04xx projects and approvals; W-codes are
warnings in the same ranges.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------- names
UNKNOWN_TABLE = "E0101"
UNKNOWN_COLUMN = "E0102"
AMBIGUOUS_COLUMN = "E0103"
UNKNOWN_PURPOSE = "E0104"
UNKNOWN_GROUP = "E0105"
UNKNOWN_USER = "E0106"
UNKNOWN_PROJECT = "E0107"
DUPLICATE = "E0108"
MISSING_PARENT_PURPOSE = "E0109"

UNUSED_TAG = "W0101"
UNKNOWN_ATTRIBUTE = "W0102"
TAG_NAMED_BY_NO_POLICY = "W0103"

# ---------------------------------------------------------------------------- types and masks
UNKNOWN_TYPE = "E0201"
BAD_TYPE_PARAMS = "E0202"
UNKNOWN_METHOD = "E0203"
BAD_METHOD_ARGS = "E0204"
METHOD_TYPE_MISMATCH = "E0205"
NON_PORTABLE_REGEX = "E0206"
UNREACHABLE_ARM = "E0207"
USER_SET_AS_VALUE = "E0208"
INCOMPARABLE = "E0209"
UNKNOWN_INTERVAL_UNIT = "E0210"
WRONG_EXPR_TYPE = "E0211"

IMPLICIT_OTHERWISE = "W0201"
FALLBACK_TO_NULL = "W0202"
HASH_SHORTENED = "W0203"
NULL_COMPARISON = "W0204"

# ---------------------------------------------------------------------------- conflicts
MASK_CONFLICT = "E0301"

# ---------------------------------------------------------------------------- approvals
PURPOSE_NOT_IN_PROJECT = "E0401"
NOT_AN_APPROVER = "E0402"
APPROVER_IS_MEMBER = "E0403"

STALE_APPROVAL = "W0401"
NO_APPROVERS = "W0402"

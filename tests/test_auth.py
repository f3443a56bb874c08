import hashlib
import inspect

import pytest

from gridcore import auth
from gridcore.auth import (
    Principal,
    Role,
    bearer_to_token,
    hash_token,
    issue_token,
    require_role,
    verify_token,
)
from gridcore.errors import AuthenticationError, PermissionDeniedError


def test_issued_tokens_are_random_prefixed_and_stored_hashed():
    tokens = {issue_token(role="admin", name="root")[0] for _ in range(50)}
    assert len(tokens) == 50
    token, record = issue_token(role="chief", name="李街巷长", subject="chief-7")
    assert token.startswith("gc_") and len(token) == 3 + 43  # 32 bytes base64url
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(record)
    assert record.role is Role.CHIEF and record.subject == "chief-7"
    assert record.to_principal() == Principal("李街巷长", Role.CHIEF, "chief-7")


def test_subject_defaults_to_name():
    _, record = issue_token(role="department", name="JD")
    assert record.subject == "JD"


def test_verify_token():
    token, record = issue_token(role="supervisor", name="王")
    assert verify_token(token, record.token_hash)
    assert not verify_token(token[:-1] + ("a" if token[-1] != "a" else "b"), record.token_hash)
    assert not verify_token("", record.token_hash)


def test_verification_is_constant_time_comparison():
    assert "compare_digest" in inspect.getsource(auth.verify_token)


@pytest.mark.parametrize(("role", "name"), [("mayor", "x"), ("admin", ""), ("admin", "  ")])
def test_issue_token_refuses_bad_role_or_name(role, name):
    with pytest.raises(ValueError, match="role|name"):
        issue_token(role=role, name=name)


def test_unknown_role_lists_valid_ones():
    valid = "supervisor, dispatcher, department, chief, volunteer, street, admin"
    with pytest.raises(ValueError, match=valid):
        issue_token(role="mayor", name="x")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   "])
def test_bearer_header_problems(header):
    with pytest.raises(AuthenticationError):
        bearer_to_token(header)


def test_bearer_header_ok():
    assert bearer_to_token("Bearer gc_xyz") == "gc_xyz"
    assert bearer_to_token("bearer  gc_xyz ") == "gc_xyz"
    assert hash_token("gc_xyz") == hashlib.sha256(b"gc_xyz").hexdigest()


def test_require_role():
    p = Principal("w", Role.CHIEF, "c1")
    require_role(p, Role.CHIEF, Role.ADMIN)
    with pytest.raises(PermissionDeniedError, match="chief"):
        require_role(p, Role.DISPATCHER)

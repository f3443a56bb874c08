"""Bearer tokens: an admin creates them (the CLI does the same without HTTP)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import PrincipalDep, StoreDep
from api.schemas import TokenCreate, TokenPublic
from gridcore import app
from gridcore.access import Permission, authorize

router = APIRouter(prefix="/v1", tags=["tokens 令牌"])


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenPublic,
             summary="Create a bearer token (admin)")
def create_token(body: TokenCreate, store: StoreDep, principal: PrincipalDep) -> TokenPublic:
    """Create a token for a role; it is shown once and stored only as its hash."""
    authorize(principal, Permission.MANAGE_TOKENS)
    token = app.issue_token(store, role=body.role, name=body.name, subject=body.subject)
    me = store.principal_for_token(token)
    return TokenPublic(token=token, role=me.role, name=me.name, subject=me.subject)

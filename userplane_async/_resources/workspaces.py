"""``client.workspaces``: list, get, invite URL."""

from __future__ import annotations

from .._convert import structure
from .._models import InviteURL, Workspace
from .._pagination import AsyncPaginator
from ._base import Namespace, workspace_path


class Workspaces(Namespace):
    """The workspaces the key's user belongs to."""

    def list(
        self, *, include_membership: bool = False, per_page: int = 20
    ) -> AsyncPaginator[Workspace]:
        """Every workspace of the user; ``include_membership`` adds the user's role in each."""
        return self._paginate(
            ["public", "workspaces"],
            "workspaces",
            Workspace,
            per_page=per_page,
            max_per_page=20,
            params={"include_workspace_membership": include_membership or None},
        )

    async def get(self, workspace_id: str) -> Workspace:
        data = await self._get(workspace_path(workspace_id))
        return structure(data.get("workspace"), Workspace, path="$.data.workspace")

    async def invite_url(self, workspace_id: str) -> InviteURL:
        data = await self._get(workspace_path(workspace_id, "invite-url"))
        return structure(data, InviteURL, path="$.data")

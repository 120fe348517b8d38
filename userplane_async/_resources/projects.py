"""``client.projects``: list and get."""

from __future__ import annotations

from .._convert import structure
from .._models import Project
from .._pagination import AsyncPaginator
from ._base import Namespace, QueryValue, workspace_path


class Projects(Namespace):
    """Projects of a workspace (they carry the retention recordings inherit)."""

    def list(
        self, /, workspace_id: str, *, per_page: int = 10, **params: QueryValue
    ) -> AsyncPaginator[Project]:
        return self._paginate(
            workspace_path(workspace_id, "projects"),
            "projects",
            Project,
            per_page=per_page,
            max_per_page=10,
            params=params,
        )

    async def get(self, workspace_id: str, project_id: str) -> Project:
        data = await self._get(workspace_path(workspace_id, "projects", ("project_id", project_id)))
        return structure(data.get("project"), Project, path="$.data.project")

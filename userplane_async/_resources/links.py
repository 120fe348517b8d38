"""``client.links``: recording links (list, create, get, update, soft delete)."""

from __future__ import annotations

from typing import Any

from .._convert import structure
from .._models import DeletedLink, Link
from .._pagination import AsyncPaginator
from ._base import Namespace, QueryValue, workspace_path


def _body(**fields: Any) -> dict[str, Any]:
    """A JSON body with only the fields the caller gave (``None`` means "leave as is")."""
    return {name: value for name, value in fields.items() if value is not None}


class Links(Namespace):
    """Recording links of a workspace."""

    def list(
        self, /, workspace_id: str, *, per_page: int = 20, **params: QueryValue
    ) -> AsyncPaginator[Link]:
        return self._paginate(
            workspace_path(workspace_id, "links"),
            "links",
            Link,
            per_page=per_page,
            max_per_page=20,
            params=params,
        )

    async def get(self, workspace_id: str, link_id: str) -> Link:
        data = await self._get(workspace_path(workspace_id, "links", ("link_id", link_id)))
        return structure(data.get("link"), Link, path="$.data.link")

    async def create(
        self,
        workspace_id: str,
        *,
        domain_id: str,
        project_id: str | None = None,
        link_reference: str | None = None,
        link_reusable: bool | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Link:
        """Create a link on a verified domain; never retried once it may have reached the API."""
        body = _body(
            domainId=domain_id,
            projectId=project_id,
            linkReference=link_reference,
            linkReusable=link_reusable,
            meta=meta,
        )
        data = await self._http.request("POST", workspace_path(workspace_id, "links"), body=body)
        return structure(data.get("link"), Link, path="$.data.link")

    async def update(
        self,
        workspace_id: str,
        link_id: str,
        *,
        link_title: str | None = None,
        link_reusable: bool | None = None,
        link_provider_type: str | None = None,
        link_provider_id: str | None = None,
        link_provider_ref: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Link:
        """Change the given fields of a link; the others stay as they are."""
        body = _body(
            linkTitle=link_title,
            linkReusable=link_reusable,
            linkProviderType=link_provider_type,
            linkProviderId=link_provider_id,
            linkProviderRef=link_provider_ref,
            meta=meta,
        )
        path = workspace_path(workspace_id, "links", ("link_id", link_id))
        data = await self._http.request("PUT", path, body=body)
        return structure(data.get("link"), Link, path="$.data.link")

    async def delete(self, workspace_id: str, link_id: str) -> DeletedLink:
        """Soft-delete a link; later calls for it raise :class:`GoneError`."""
        path = workspace_path(workspace_id, "links", ("link_id", link_id))
        data = await self._http.request("DELETE", path)
        return structure(data, DeletedLink, path="$.data")

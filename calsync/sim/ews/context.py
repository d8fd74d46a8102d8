"""What an EWS operation handler gets: the simulator, the caller and the impersonated mailbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from calsync.sim.ews.xml import T, EwsError

if TYPE_CHECKING:
    from lxml import etree

    from calsync.sim.core import SimCore
    from calsync.sim.directory import Tenant
    from calsync.sim.mailstore import Mailbox


@dataclass
class Ctx:
    core: SimCore
    tenant: Tenant
    mailbox: Mailbox
    headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)

    def folder(self, parent: etree._Element | None) -> str:
        """Resolve a FolderId / DistinguishedFolderId below `parent` to 'calendar' or 'root'."""
        if parent is None:
            raise EwsError("ErrorInvalidIdEmpty", "The folder id is missing.")
        for child in parent:
            if child.tag == T + "DistinguishedFolderId":
                name = child.get("Id", "")
                if name == "calendar":
                    return "calendar"
                if name in ("root", "msgfolderroot"):
                    return "root"
                raise EwsError(
                    "ErrorFolderNotFound", "The specified folder could not be found in the store."
                )
            if child.tag == T + "FolderId":
                fid = child.get("Id", "")
                if fid == self.mailbox.calendar_id:
                    return "calendar"
                if fid == self.mailbox.root_id:
                    return "root"
                raise EwsError(
                    "ErrorFolderNotFound", "The specified folder could not be found in the store."
                )
        raise EwsError("ErrorInvalidIdEmpty", "The folder id is missing.")

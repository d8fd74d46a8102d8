"""What an EWS operation handler gets: the simulator, the caller and the impersonated mailbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from calsync.sim.ews.xml import EwsError, T

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
        """Resolve the FolderId / DistinguishedFolderId below `parent` to 'calendar' or 'root'."""
        if parent is not None:
            for child in parent.iterchildren("*"):
                if child.tag in (T + "DistinguishedFolderId", T + "FolderId"):
                    return self.folder_ref(child)
        raise EwsError("ErrorInvalidIdEmpty", "The folder id is missing.")

    def folder_ref(self, ref: etree._Element) -> str:
        if ref.tag == T + "DistinguishedFolderId":
            name = ref.get("Id", "")
            if name == "calendar":
                return "calendar"
            if name in ("root", "msgfolderroot"):
                return "root"
        elif ref.tag == T + "FolderId":
            fid = ref.get("Id", "")
            if fid == self.mailbox.calendar_id:
                return "calendar"
            if fid == self.mailbox.root_id:
                return "root"
        raise EwsError(
            "ErrorFolderNotFound", "The specified folder could not be found in the store."
        )

"""Microsoft Graph v1.0 calendar endpoints of the simulator, over the same mailstore as EWS.

The same items are visible through both APIs with different ids (Graph ids are derived from the
EWS ItemIds, as REST ids are in Microsoft 365, but never equal to them).
"""

from __future__ import annotations

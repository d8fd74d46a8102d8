"""Fidelity of the simulator's Graph endpoints, with plain httpx (no calsync code)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from graph_client import CALSYNC_PROP, Graph, graph_token

from calsync.sim import SimHandle

NOW = dt.datetime.now(dt.UTC)
WINDOW = {"startDateTime": (NOW - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
          "endDateTime": (NOW + dt.timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
NEW = {"subject": "Graph made", "body": {"contentType": "text", "content": "hi"},
       "start": {"dateTime": "2027-02-01T10:00:00", "timeZone": "W. Europe Standard Time"},
       "end": {"dateTime": "2027-02-01T11:00:00", "timeZone": "Europe/Berlin"},
       "singleValueExtendedProperties": [{"id": CALSYNC_PROP, "value": "cid-42"}]}  # fmt: skip


def delta_url(g: Graph, user: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in WINDOW.items())
    return g.url(user, f"/calendarView/delta?{query}")


def test_events_are_the_ews_items_with_other_ids(sim: SimHandle, contoso: dict[str, Any]) -> None:
    user = contoso["mailboxes"][0]
    g = Graph(sim, contoso)
    admin = {e["uid"]: e for e in sim.admin.events(user) if e["series_item_id"] is None}
    listed, url = [], g.url(user, "/calendar/events?$top=4&$select=subject,iCalUId,type")
    while url:
        body = g.follow(url).json()
        assert len(body["value"]) <= 4
        listed += body["value"]
        url = body.get("@odata.nextLink")
    assert {e["iCalUId"] for e in listed} == set(admin)
    for event in listed:
        assert set(event) <= {"id", "@odata.etag", "subject", "iCalUId", "type"}
        item = admin[event["iCalUId"]]
        assert event["id"] != item["item_id"]
        assert event["@odata.etag"] == f'W/"{item["change_key"]}"'
        assert event["type"] == ("seriesMaster" if item["recurrence"] else "singleInstance")
    g.close()


def test_create_patch_with_if_match_and_delete(sim: SimHandle, contoso: dict[str, Any]) -> None:
    user = contoso["mailboxes"][1]
    g = Graph(sim, contoso)
    created = g.send("POST", user, "/calendar/events", NEW)
    assert created.status_code == 201, created.text
    event = created.json()
    found = g.get(user, "/events", **{
        "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{CALSYNC_PROP}' and "
                   "ep/value eq 'cid-42')"})  # fmt: skip
    assert [e["id"] for e in found.json()["value"]] == [event["id"]]
    item = next(e for e in sim.admin.events(user) if e["subject"] == "Graph made")
    assert item["start"] == "2027-02-01T10:00:00+01:00"
    assert item["extended_properties"] == {"calsync-id": "cid-42"}
    ok = g.send("PATCH", user, f"/events/{event['id']}", {"subject": "v2"},
                **{"If-Match": event["@odata.etag"]})  # fmt: skip
    assert ok.status_code == 200
    assert ok.json()["changeKey"] != event["changeKey"]
    again = g.send("PATCH", user, f"/events/{event['id']}", {"subject": "v3"},
                   **{"If-Match": event["@odata.etag"]})  # fmt: skip
    assert again.status_code == 412
    assert again.json()["error"]["code"] == "ErrorIrresolvableConflict"
    gone = g.send("DELETE", user, f"/events/{event['id']}")
    assert gone.status_code == 204
    assert g.get(user, f"/events/{event['id']}").status_code == 404
    g.close()


def test_delta_pages_tokens_changes_and_410(sim: SimHandle, contoso: dict[str, Any]) -> None:
    user = contoso["mailboxes"][2]
    g = Graph(sim, contoso)
    entries, delta = g.delta_round(delta_url(g, user), Prefer="odata.maxpagesize=5")
    view = g.get(user, "/calendarView", **WINDOW, **{"$top": 1000}).json()["value"]
    assert sorted(e["id"] for e in entries) == sorted(e["id"] for e in view)
    occurrences = [e for e in entries if e["type"] == "occurrence"]
    assert all(set(e) <= {"@odata.type", "@odata.etag", "id", "seriesMasterId", "type", "start",
                          "end"} for e in occurrences)  # fmt: skip
    assert not [e for e in entries if e["type"] == "seriesMaster"]
    assert g.delta_round(delta)[0] == []  # nothing changed
    single = next(e for e in entries if e["type"] == "singleInstance")
    sim.admin.patch_event(user, next(i["item_id"] for i in sim.admin.events(user)
                                     if i["uid"] == single["iCalUId"]), subject="moved")  # fmt: skip
    changed, delta = g.delta_round(delta)
    assert [(e["id"], e["subject"]) for e in changed] == [(single["id"], "moved")]
    g.send("DELETE", user, f"/events/{single['id']}")
    removed, delta = g.delta_round(delta)
    assert removed == [{"@odata.type": "#microsoft.graph.event", "id": single["id"],
                        "@removed": {"reason": "deleted"}}]  # fmt: skip
    sim.admin.set_faults(invalidate_sync_state=[user])
    gone = g.follow(delta)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "SyncStateNotFound"
    g.close()


def test_series_master_by_id_has_exceptions_and_cancellations(
    sim: SimHandle, contoso: dict[str, Any]
) -> None:
    user = contoso["mailboxes"][3]
    g = Graph(sim, contoso)
    item = sim.admin.create_event(user, subject="Daily", start="2027-03-01T09:00:00+01:00",
                                  end="2027-03-01T09:30:00+01:00", timezone="Europe/Berlin",
                                  recurrence="RRULE:FREQ=DAILY;COUNT=5",
                                  deleted_occurrences=["2027-03-02T08:00:00Z"])  # fmt: skip
    master = next(e for e in g.get(user, "/events", **{"$top": 100}).json()["value"]
                  if e["subject"] == "Daily")  # fmt: skip
    window = {"startDateTime": "2027-02-28T00:00:00Z", "endDateTime": "2027-03-10T00:00:00Z"}
    instances = g.get(user, f"/events/{master['id']}/instances", **window).json()["value"]
    assert len(instances) == 4
    third = instances[1]
    assert third["originalStart"] == "2027-03-03T08:00:00Z"
    assert g.send("PATCH", user, f"/events/{third['id']}", {"subject": "Moved"}).status_code == 200
    full = g.get(user, f"/events/{master['id']}", **{
        "$select": "subject,recurrence,cancelledOccurrences",
        "$expand": "exceptionOccurrences"}).json()  # fmt: skip
    assert full["recurrence"]["pattern"]["type"] == "daily"
    assert full["recurrence"]["range"] == {"type": "numbered", "startDate": "2027-03-01",
        "endDate": "0001-01-01", "recurrenceTimeZone": "W. Europe Standard Time",
        "numberOfOccurrences": 5}  # fmt: skip
    assert full["cancelledOccurrences"] == [f"OID.{master['id']}.2027-03-02"]
    assert [x["subject"] for x in full["exceptionOccurrences"]] == ["Moved"]
    ews = sim.admin.events(user)
    assert any(e["series_item_id"] == item["item_id"] and e["subject"] == "Moved" for e in ews)
    g.close()


def test_batch_faults_and_tokens(sim: SimHandle, contoso: dict[str, Any]) -> None:
    users = contoso["mailboxes"]
    g = Graph(sim, contoso)
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{users[0]}/events?$top=1"}
                for n in range(21)]  # fmt: skip
    too_many = g.http.post(f"{g.base}/$batch", json={"requests": requests})
    assert too_many.status_code == 400
    sim.admin.reset_stats()
    batch = g.http.post(f"{g.base}/$batch", json={"requests": requests[:20]})
    assert [r["status"] for r in batch.json()["responses"]] == [200] * 20
    stats = sim.admin.stats()["requests"]
    assert stats["GRAPH POST /$batch"] == 1
    assert stats["GRAPH GET /users/{id}/events"] == 20
    sim.admin.set_faults(deny_mailboxes=[users[0]], server_busy_rate=1.0,
                         scope={"mailboxes": [users[1]]}, server_busy_backoff_ms=3000)  # fmt: skip
    denied = g.get(users[0], "/events")
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "ErrorAccessDenied")
    busy = g.get(users[1], "/events")
    assert (busy.status_code, busy.headers["Retry-After"]) == (429, "3")
    assert g.get("nobody@contoso.example", "/events").status_code == 404
    sim.admin.clear_faults()
    outlook = Graph(sim, contoso, token=graph_token(sim, contoso,
                                                     "https://outlook.office365.com/.default"))  # fmt: skip
    assert outlook.get(users[0], "/events").status_code == 401
    stranger = Graph(sim, sim.info["tenants"][1])  # another tenant's app
    assert stranger.get(users[0], "/events").json()["error"]["code"] == "ErrorInvalidUser"
    stranger.close()
    g.close()
    outlook.close()


def test_delta_first_round_skips_no_item_when_one_is_deleted_mid_round(
    sim: SimHandle, contoso: dict[str, Any]
) -> None:
    """Graph's skipToken holds the round's position: a deletion between two pages of the first
    round never makes the next page skip an unchanged item (the simulator once paged by a count,
    and calsync then never imported the item that slid over the page boundary)."""
    user = contoso["mailboxes"][4]
    g = Graph(sim, contoso)
    ids = []
    for day in range(1, 5):  # in a window of their own, far from the generated events
        body = {**NEW, "subject": f"day {day}", "singleValueExtendedProperties": [],
                "start": {"dateTime": f"2031-01-0{day}T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": f"2031-01-0{day}T11:00:00", "timeZone": "UTC"}}  # fmt: skip
        created = g.send("POST", user, "/calendar/events", body)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    url = g.url(user, "/calendarView/delta?startDateTime=2031-01-01T00:00:00Z"
                      "&endDateTime=2031-01-10T00:00:00Z")  # fmt: skip
    first = g.follow(url, Prefer="odata.maxpagesize=2").json()
    assert [e["id"] for e in first["value"]] == ids[:2]
    assert g.send("DELETE", user, f"/events/{ids[0]}").status_code == 204
    rest, delta = g.delta_round(first["@odata.nextLink"], Prefer="odata.maxpagesize=2")
    assert [e["id"] for e in rest] == ids[2:]
    removed, _ = g.delta_round(delta)  # the deletion comes with the next round
    assert [e["id"] for e in removed if "@removed" in e] == ids[:1]
    for item_id in ids[1:]:
        assert g.send("DELETE", user, f"/events/{item_id}").status_code == 204
    g.close()

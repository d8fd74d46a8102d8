"""Typed shapes of the Graph resources calsync reads and writes (subset of v1.0 ``event``)."""

from __future__ import annotations

from typing import TypedDict


class DateTimeTimeZone(TypedDict):
    dateTime: str
    timeZone: str


class EmailAddress(TypedDict, total=False):
    address: str
    name: str


class Recipient(TypedDict, total=False):
    emailAddress: EmailAddress


class ResponseStatus(TypedDict, total=False):
    response: str
    time: str


class GraphAttendee(TypedDict, total=False):
    type: str  # required | optional | resource
    status: ResponseStatus
    emailAddress: EmailAddress


class RecurrencePattern(TypedDict, total=False):
    type: str  # daily | weekly | absoluteMonthly | relativeMonthly | absoluteYearly | ...
    interval: int
    month: int
    dayOfMonth: int
    daysOfWeek: list[str]
    firstDayOfWeek: str
    index: str  # first | second | third | fourth | last


class RecurrenceRange(TypedDict, total=False):
    type: str  # endDate | noEnd | numbered
    startDate: str
    endDate: str
    recurrenceTimeZone: str
    numberOfOccurrences: int


class PatternedRecurrence(TypedDict):
    pattern: RecurrencePattern
    range: RecurrenceRange


class ItemBody(TypedDict):
    contentType: str  # text | html
    content: str


class Location(TypedDict, total=False):
    displayName: str


class ExtendedProperty(TypedDict):
    id: str
    value: str


class GraphEvent(TypedDict, total=False):
    id: str
    changeKey: str
    iCalUId: str
    type: str  # singleInstance | occurrence | exception | seriesMaster
    seriesMasterId: str | None
    originalStart: str | None
    originalStartTimeZone: str
    originalEndTimeZone: str
    subject: str
    body: ItemBody
    start: DateTimeTimeZone
    end: DateTimeTimeZone
    isAllDay: bool
    showAs: str
    sensitivity: str
    categories: list[str]
    location: Location
    organizer: Recipient
    attendees: list[GraphAttendee]
    isOrganizer: bool
    isReminderOn: bool
    reminderMinutesBeforeStart: int
    isCancelled: bool
    lastModifiedDateTime: str
    recurrence: PatternedRecurrence | None
    cancelledOccurrences: list[str]
    exceptionOccurrences: list[GraphEvent]
    singleValueExtendedProperties: list[ExtendedProperty]

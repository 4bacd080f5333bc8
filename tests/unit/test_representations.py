"""The 2008 bodies: XML 1.0 that a strict parser reads whatever the text held, and list envelopes
whose numbers and URIs say where the page sits."""

from __future__ import annotations

import email.utils
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.recordings import Recording
from service.faces.v2008.representations import (
    CSV_HEADER,
    PageUris,
    list_csv,
    list_json,
    list_xml,
    recording_json,
    recording_xml,
)
from service.http.representations import rest_exception_xml, rfc2822, xml_attr, xml_text
from service.recordings.paging import NumberedPage, PageWindow
from tests.support.rows import recording_row

ACCOUNT = "AC" + "0" * 32
BASE = f"/2008-08-01/Accounts/{ACCOUNT}/Recordings"
HOSTILE = 'bad\x00\x01\x02\x08\x0b\x0c\x1b\x1f <tag a="1"> & ]]> \ufffe\uffff\ud800 end'
CLEAN = 'bad <tag a="1"> & ]]>  end'
FIELDS = ["Sid", "AccountSid", "CallSid", "Duration", "DateCreated", "DateUpdated"]


def rows(count: int) -> list[Recording]:
    start = datetime(2010, 1, 1, tzinfo=UTC)
    return [
        recording_row(ACCOUNT, date_created=start + timedelta(minutes=i), duration=i)
        for i in range(count)
    ]


def test_xml_text_and_attributes_drop_what_xml_forbids() -> None:
    assert xml_text(HOSTILE) == 'bad &lt;tag a="1"&gt; &amp; ]]&gt;  end'
    assert ET.fromstring(f"<m>{xml_text(HOSTILE)}</m>").text == CLEAN
    assert ET.fromstring(f"<m v={xml_attr(HOSTILE)}/>").attrib["v"] == CLEAN
    # Tabs, newlines and the rest of Unicode are XML characters, kept as they are.
    kept = "a\tb\nc é ☎"
    assert ET.fromstring(f"<m>{xml_text(kept)}</m>").text == kept


def test_rest_exception_with_a_hostile_message_is_well_formed() -> None:
    root = ET.fromstring(rest_exception_xml(422, HOSTILE))
    assert root.tag == "TwilioResponse"
    assert root.findtext("./RestException/Status") == "422"
    assert root.findtext("./RestException/Message") == CLEAN


def test_a_recording_with_hostile_text_renders_well_formed_xml() -> None:
    recording = recording_row(ACCOUNT, call_sid=HOSTILE)
    root = ET.fromstring(recording_xml(recording))
    (element,) = root
    assert [child.tag for child in element] == FIELDS
    assert element.findtext("CallSid") == CLEAN
    assert json.loads(recording_json(recording))["call_sid"] == HOSTILE  # JSON escapes it all


def test_the_instance_representations() -> None:
    moment = datetime(2008, 4, 1, 0, 7, 15, 999_999, tzinfo=timezone(timedelta(hours=-5)))
    recording = recording_row(ACCOUNT, duration=3, date_created=moment, date_updated=moment)
    element = ET.fromstring(recording_xml(recording)).find("Recording")
    assert element is not None
    assert element.findtext("Sid") == recording.sid
    assert element.findtext("Duration") == "3"
    assert element.findtext("DateCreated") == "Tue, 01 Apr 2008 05:07:15 +0000"
    body = json.loads(recording_json(recording))
    assert body["duration"] == "3"  # a string, as the later API has it
    assert body["date_created"] == body["date_updated"] == "Tue, 01 Apr 2008 05:07:15 +0000"
    assert body["uri"] == f"{BASE}/{recording.sid}.json"
    assert body["api_version"] == "2008-08-01"
    assert rfc2822(moment) == "Tue, 01 Apr 2008 05:07:15 +0000"


def envelope(page: int, size: int, total: int, items: list[Recording]) -> tuple[ET.Element, dict]:
    window = PageWindow(page, size, total)
    uri = f"{BASE}?num={size}&page={page}"
    uris = PageUris(
        uri=uri,
        first=f"{BASE}?num={size}&page=0",
        previous=f"{BASE}?num={size}&page={window.previous_page}"
        if window.previous_page is not None
        else None,
        next=f"{BASE}?num={size}&page={window.next_page}" if window.next_page is not None else None,
        last=f"{BASE}?num={size}&page={window.last_page}" if window.last_page is not None else None,
    )
    numbered = NumberedPage(items, window)
    return ET.fromstring(list_xml(numbered, uris)), json.loads(list_json(numbered, uris))


def test_the_envelope_of_an_empty_list() -> None:
    xml, body = envelope(0, 50, 0, [])
    recordings = xml.find("Recordings")
    assert recordings is not None
    assert {
        k: recordings.attrib[k] for k in ("page", "numpages", "pagesize", "total", "start", "end")
    } == {
        "page": "0",
        "numpages": "0",
        "pagesize": "50",
        "total": "0",
        "start": "0",
        "end": "0",
    }
    assert recordings.attrib["previouspageuri"] == recordings.attrib["nextpageuri"] == ""
    assert recordings.attrib["lastpageuri"] == ""
    assert recordings.attrib["firstpageuri"] == f"{BASE}?num=50&page=0"
    assert list(recordings) == []
    assert (body["page"], body["num_pages"], body["page_size"], body["total"]) == (0, 0, 50, 0)
    assert (body["start"], body["end"]) == (0, 0)
    assert body["previous_page_uri"] is body["next_page_uri"] is body["last_page_uri"] is None
    assert body["recordings"] == []


def test_the_envelope_of_a_middle_page() -> None:
    items = rows(10)
    xml, body = envelope(1, 10, 23, items)
    recordings = xml.find("Recordings")
    assert recordings is not None
    attrs = recordings.attrib
    assert (attrs["page"], attrs["numpages"], attrs["pagesize"], attrs["total"]) == (
        "1",
        "3",
        "10",
        "23",
    )
    assert (attrs["start"], attrs["end"]) == ("10", "19")
    assert attrs["uri"] == f"{BASE}?num=10&page=1"
    assert attrs["previouspageuri"] == f"{BASE}?num=10&page=0"
    assert attrs["nextpageuri"] == attrs["lastpageuri"] == f"{BASE}?num=10&page=2"
    assert [e.findtext("Sid") for e in recordings] == [r.sid for r in items]
    assert all([child.tag for child in e] == FIELDS for e in recordings)
    assert (body["page"], body["num_pages"], body["page_size"], body["total"]) == (1, 3, 10, 23)
    assert (body["start"], body["end"]) == (10, 19)
    assert body["first_page_uri"] == f"{BASE}?num=10&page=0"
    assert [r["sid"] for r in body["recordings"]] == [r.sid for r in items]


def test_the_envelope_of_the_last_page() -> None:
    _, body = envelope(2, 10, 23, rows(3))
    assert (body["start"], body["end"], body["next_page_uri"]) == (20, 22, None)
    assert body["last_page_uri"] == body["uri"]


@pytest.mark.parametrize("count", [0, 3])
def test_csv(count: int) -> None:
    items = rows(count)
    lines = list_csv(NumberedPage(items, PageWindow(0, 50, count))).decode().split("\r\n")
    assert lines[0] == ",".join(CSV_HEADER)
    assert lines[-1] == ""
    assert [line.split(",")[0] for line in lines[1:-1]] == [r.sid for r in items]


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-11)), timezone(timedelta(hours=13, minutes=45))]
        ),
    )
)
def test_rfc2822_is_what_the_email_package_writes_in_utc(moment: datetime) -> None:
    expected = email.utils.format_datetime(moment.astimezone(UTC).replace(microsecond=0))
    assert rfc2822(moment) == expected

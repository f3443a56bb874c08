"""gridcore.open311 on plain data: the XML, the filters, the case -> request mapping."""

import dataclasses
import datetime as dt
import xml.etree.ElementTree as ET

import pytest
from shapely.geometry import Point

from gridcore import open311 as o311
from gridcore.cases import Action, CaseState, apply_action, event_classes, report_case
from gridcore.disputes import Department, PartyRole, TaskParty
from gridcore.errors import InvalidCodeError, InvalidValueError, NotFoundError

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # 07:30 on 1 April in Beijing


@pytest.fixture(scope="module")
def classes():
    return event_classes()


def _case(**kw):
    c = report_case(event_class="0506", lon=116.3755, lat=39.91105, description="乱停放",
                    reporter="王", at=T0, cell_code="110102001019032", street_code="110102001")
    return dataclasses.replace(c, id=7, **kw)


def test_xml_escapes_text_and_names_nested_lists():
    rows = [{"a": "<b>&\"x\"", "flag": False, "none": None, "agencies": [
        {"code": "1", "name": "甲"}, {"code": "2", "name": "乙"}], "bad": "a\x01b"}]
    raw = o311.records_to_xml(rows, "service_requests")
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    top = ET.fromstring(raw)
    (req,) = top.findall("request")
    assert req.findtext("a") == '<b>&"x"' and req.findtext("flag") == "false"
    assert req.find("none").text is None
    assert [a.findtext("name") for a in req.find("agencies").findall("agency")] == ["甲", "乙"]
    assert req.findtext("bad") == "a\ufffdb"  # XML 1.0 cannot carry \x01


def test_a_time_without_offset_and_a_date_are_the_citys():
    q = o311.parse_query({"start_date": "2026-04-01", "end_date": "2026-04-01T12:00:00"},
                         event_classes(), now=T0)
    assert q.start == dt.datetime(2026, 3, 31, 16, tzinfo=UTC)  # Beijing midnight
    assert q.end == dt.datetime(2026, 4, 1, 4, tzinfo=UTC)
    whole_day = o311.parse_query({"end_date": "2026-04-01"}, event_classes(), now=T0)
    assert whole_day.end == dt.datetime(2026, 4, 1, 16, tzinfo=UTC)  # the day counts whole
    assert whole_day.start is None


def test_the_default_range_is_90_days_unless_ids_or_dates_are_given(classes):
    assert o311.parse_query({}, classes, now=T0).start == T0 - dt.timedelta(days=90)
    assert o311.parse_query({"service_request_id": "3"}, classes, now=T0).start is None
    assert o311.parse_query({"updated_after": "2026-01-01"}, classes, now=T0).start is None


def test_status_maps_onto_the_loops_states(classes):
    open_ = o311.parse_query({"status": "open"}, classes, now=T0).states
    closed = o311.parse_query({"status": "closed"}, classes, now=T0).states
    assert set(open_) == {CaseState.REPORTED, CaseState.FILED, CaseState.DISPATCHED,
                          CaseState.HANDLED}
    assert set(closed) == {CaseState.CLOSED, CaseState.REJECTED}
    both = o311.parse_query({"status": "closed,open"}, classes, now=T0).states
    assert set(both) == set(CaseState)


def test_unknown_codes_are_bad_input_but_a_missing_definition_is_not_found(classes):
    with pytest.raises(InvalidCodeError, match="9999"):
        o311.parse_query({"service_code": "0506,9999"}, classes, now=T0)
    with pytest.raises(NotFoundError, match="9999"):
        o311.service_definition("9999", classes)
    with pytest.raises(InvalidValueError, match="page_size"):
        o311.parse_query({"page_size": "501"}, classes, now=T0)


def test_a_rejected_report_is_closed_and_says_why():
    case = apply_action(_case(), Action.REJECT, actor="中心", role="dispatcher",
                        at=T0 + dt.timedelta(hours=1), note="重复上报")
    rec = o311.case_to_request(case, service_name="非机动车乱停放", now=T0)
    assert rec["status"] == "closed" and rec["case_state"] == "rejected"
    assert rec["status_notes"] == "不予立案 (rejected): 重复上报"
    assert rec["requested_datetime"] == "2026-04-01T07:30:00+08:00"
    assert rec["updated_datetime"] == "2026-04-01T08:30:00+08:00"
    assert rec["agency_responsible"] == o311.COMMAND_CENTRE
    assert rec["service_request_id"] == "7" and rec["grid_code"] == "110102001019032"


def test_agencies_list_the_department_then_every_side_once():
    @dataclasses.dataclass
    class Task:  # the fields of a JointTask that matter here
        event_class: str
        footprint: object
        parties: list
        departments: list

    case = dataclasses.replace(_case(), department="CGZF")
    here = Point(case.lon, case.lat).buffer(0.001)
    far = Point(case.lon + 0.1, case.lat).buffer(0.001)
    sides = [TaskParty("110102", "西城区", 0.5, PartyRole.RECEIVING),
             TaskParty("110106", "丰台区", 0.5, PartyRole.WHISTLED)]
    called = [Department("CGZF", "城管执法局", "110102", T0)]
    tasks = [Task("0506", here, sides, called), Task("0506", far, sides[:1], []),
             Task("0101", here, [TaskParty("110101", "东城区", 1.0, PartyRole.WHISTLED)], [])]
    got = o311.case_agencies(case, tasks, {"CGZF": "城管执法局"})
    assert got == [{"code": "CGZF", "name": "城管执法局"}, {"code": "110102", "name": "西城区"},
                   {"code": "110106", "name": "丰台区"}]

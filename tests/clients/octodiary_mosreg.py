"""Drives the published «Моя школа» client OctoDiary (PyPI `octodiary`), unchanged, against
our «Моя школа» emulator on loopback. Started by tests/mosreg_clients.rs, which passes the
emulator's URL, a parent's token and what the synthetic world holds (a JSON file):

    python3 octodiary_mosreg.py <base_url> <expected.json>   (token in OCTODIARY_TOKEN)

Only the library's base URLs are pointed at the emulator (its three hosts share one
listener); every request, header and parser is the library's own. Exits non-zero with the
failed check on stderr.
"""

import json
import os
import sys
from datetime import date

from octodiary.apis import SyncMobileAPI, SyncWebAPI
from octodiary.urls import BaseURLs, Systems


def check(what, got, want):
    if got != want:
        print(f"octodiary: {what}: got {got!r}, want {want!r}", file=sys.stderr)
        sys.exit(1)


def main():
    base, expected_path = sys.argv[1].rstrip("/"), sys.argv[2]
    token = os.environ["OCTODIARY_TOKEN"]
    want = json.load(open(expected_path, encoding="utf-8"))
    # The client joins "<base>" + "/path": the three hosts of «Моя школа» -> the emulator.
    BaseURLs.MYSCHOOL.SCHOOL = base
    BaseURLs.MYSCHOOL.SCHOOL_API = base
    BaseURLs.MYSCHOOL.DNEVNIK = base

    mobile = SyncMobileAPI(system=Systems.MYSCHOOL, token=token)
    web = SyncWebAPI(system=Systems.MYSCHOOL, token=token)

    profiles = mobile.get_users_profile_info()
    check("profile_info types", [p.type for p in profiles], ["parent"])
    profile_id = profiles[0].id
    check("profile id", profile_id, want["profile_id"])

    family = mobile.get_family_profile(profile_id=profile_id)
    check("family profile type", family.profile.type, "parent")
    check("children", sorted(c.id for c in family.children), sorted(c["id"] for c in want["children"]))
    web_family = web.get_family_web_profile(profile_id=profile_id, profile_type="parent")
    check("web family children", sorted(c.id for c in web_family.children), sorted(c["id"] for c in want["children"]))

    years = web.get_academic_years()
    check("current academic year", [y.id for y in years if y.current_year], [want["year_id"]])

    begin, end = date.fromisoformat(want["from"]), date.fromisoformat(want["to"])
    for expected in want["children"]:
        child = next(c for c in family.children if c.id == expected["id"])
        check("contingent_guid", child.contingent_guid, expected["guid"])
        check("class_unit_id", child.class_unit_id, expected["class_unit_id"])

        events = mobile.get_events(person_id=child.contingent_guid, mes_role="parent", begin_date=begin, end_date=end)
        check("events total_count", events.total_count, len(events.response))
        check("lesson ids", sorted(e.id for e in events.response), sorted(expected["lessons"]))
        event_marks = {m.id: m.value for e in events.response for m in (e.marks or [])}
        check("event marks", event_marks, {int(k): v for k, v in expected["marks"].items()})
        web_events = web.get_events(person_id=child.contingent_guid, mes_role="parent", begin_date=begin, end_date=end)
        check("web events", len(web_events.response), len(events.response))
        absent = sorted(e.id for e in events.response if e.absence_reason_id is not None)
        check("absences", absent, sorted(expected["absences"]))

        marks = mobile.get_marks(student_id=child.id, profile_id=profile_id, from_date=begin, to_date=end)
        check("family marks", {m.id: m.value for m in marks.payload}, {int(k): v for k, v in expected["marks"].items()})

        subject_marks = mobile.get_subjects_marks(profile_id=profile_id, student_id=child.id)
        check("subject_marks answers", subject_marks.payload is not None, True)

        members = mobile.get_class_members(class_unit_id=child.class_unit_id)
        check("class members", sorted(m.id for m in members), sorted(expected["class_members"]))

    fresh = mobile.refresh_token()
    check("refreshed token is a JWT", len(fresh.split(".")), 3)
    check("the refreshed token works", [p.type for p in mobile.get_users_profile_info()], ["parent"])
    print("octodiary: all checks passed")


if __name__ == "__main__":
    main()

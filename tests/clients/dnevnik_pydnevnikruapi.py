"""Drives the published Dnevnik.ru client `pydnevnikruapi` (PyPI, unchanged) against our
emulator and prints what it read, as JSON, for tests/dnevnik_clients.rs to check against
the synthetic world.

Usage: python3 dnevnik_pydnevnikruapi.py '<json: base, token, calls[]>'

The client keeps its base URL in the instance attribute `host` ("https://api.dnevnik.ru/v2/");
pointing it at the emulator is the only change (the client's code is not touched). Each call
is [name, method, args...]; dates are "yyyy-mm-dd" and are passed as `datetime.datetime`,
as the client's signatures take them (it writes them into paths and queries with str()).
"""

import datetime
import json
import sys

from pydnevnikruapi.dnevnik import dnevnik


def arg(value):
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return datetime.datetime.strptime(value, "%Y-%m-%d")
    return value


def main():
    plan = json.loads(sys.argv[1])
    api = dnevnik.DiaryAPI(token=plan["token"])
    api.host = plan["base"]
    out = {}
    for name, method, *args in plan["calls"]:
        try:
            out[name] = {"ok": getattr(api, method)(*[arg(a) for a in args])}
        except Exception as e:  # the test reports which call failed and why
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

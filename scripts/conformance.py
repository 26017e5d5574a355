"""Run the scim2-tester conformance suite against a running SCIM server.

Usage: python scripts/conformance.py BASE_URL TOKEN

Prints every check that did not pass and a closing 'N passed, N failed' line;
exits non-zero when any check failed (ERROR or CRITICAL) or was skipped.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server
from scim2_tester.utils import Status

FAILED = {Status.ERROR, Status.CRITICAL}


def main() -> int:
    base_url, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    client = SyncSCIMClient(http)
    results = check_server(client)
    passed = failed = skipped = 0
    for result in results:
        where = f"[{result.resource_type}] " if result.resource_type else ""
        if result.status in FAILED:
            failed += 1
            print(f"FAIL {where}{result.title}: {result.reason}")
        elif result.status == Status.SKIPPED:
            skipped += 1
            print(f"SKIP {where}{result.title}: {result.reason}")
        else:
            passed += 1
            if result.status == Status.DEVIATION:
                print(f"DEVIATION {where}{result.title}: {result.reason}")
    print(f"conformance: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main())

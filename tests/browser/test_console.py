"""The admin console in a real Chromium (issue 16).

The scenario of the issue, in order: sign in; declare a custom attribute through the dry
run; create users and a group over SCIM as Entra ID sends them; find a user; read its
entitlement explanation and its end-to-end mapping to a target (a second Muster); provision
on demand, dry run then for real; see the change arrive at the second Muster; offboard the
user and see it in the audit view; sign out and be refused. Then every page through
axe-core (no serious or critical violation, a screenshot of each), and a CSRF attempt from a
page of another origin, refused with nothing changed.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from conftest import Server, screenshot, sign_in

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CONTOSO = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

CONTOSO_SCHEMA = """{"id": "urn:ietf:params:scim:schemas:extension:contoso:2.0:User",
 "name": "Contoso", "attributes": [{"name": "region", "type": "string"}]}"""

RULES = """
[catalog]
divisions = ["Customer Support"]
licenses = ["CX 1"]
roles = [{ name = "Agent", license = "CX 1" }, { name = "Supervisor", license = "CX 1" }]

[[rules]]
id = "tier1-agents"
priority = 10
when = 'groups[display eq "Group_CC_Agents_Tier1"]'
grants = [{ role = "Agent", division = "Customer Support" }]

[[rules]]
id = "supervisors"
priority = 20
when = 'title eq "Supervisor"'
grants = [{ role = "Supervisor", division = "Customer Support" }]
"""

AGENTS = [
    ("ana.lima@contoso.com", "Ana", "Lima", "Agent", "EMEA", "1001"),
    ("ben.okafor@contoso.com", "Ben", "Okafor", "Agent", "AMER", "1002"),
    ("chloe.martin@contoso.com", "Chloe", "Martin", "Supervisor", "EMEA", "1003"),
]
USER = AGENTS[0][0]  # followed through the scenario, then offboarded
SHOWN = AGENTS[1][0]  # active, in the group and delivered: its pages are the screenshots

# Pages checked by axe-core and shot for the README, by name: (path, what shows it is there).
PAGES = {
    "dashboard": ("/admin", "h1"),
    "users": ("/admin/users?q=contoso", "#users"),
    "user": ("/admin/users/{user_id}", "#entitlements"),
    "mapping": ("/admin/mapping?target=downstream&user={user}", "#mapping-table"),
    "schemas": ("/admin/schemas", "#attributes"),
    "rules": ("/admin/rules", "#rules-form"),
    "targets": ("/admin/targets", "#targets"),
    "target": ("/admin/targets/downstream", "#target-status"),
    "audit": ("/admin/audit", "#audit-filter-form"),
    "clients": ("/admin/clients", "h1"),
    "tenants": ("/admin/tenants", "h1"),
}


def entra_user(user_name: str, given: str, family: str, title: str, region: str,
               employee: str) -> dict:
    """A user as Entra ID's provisioning service POSTs it."""
    return {
        "schemas": [CORE, ENTERPRISE, CONTOSO],
        "externalId": f"{given.lower()}-{employee}",
        "userName": user_name,
        "active": True,
        "displayName": f"{given} {family}",
        "title": title,
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
        "addresses": [{"type": "work", "country": "PT", "primary": False}],
        ENTERPRISE: {"employeeNumber": employee, "department": "Customer Support"},
        CONTOSO: {"region": region},
    }


@pytest.fixture(scope="module")
def admin_token(console_server: Server) -> str:
    return console_server.token("console-admin", "admin")


@pytest.fixture(scope="module")
def entra_token(console_server: Server) -> str:
    return console_server.token("entra", "scim.read", "scim.write")


@pytest.fixture(scope="module")
def downstream_token(downstream: Server) -> str:
    return downstream.token("from-muster", "scim.read", "scim.write")


def find_downstream(downstream: Server, token: str, user_name: str) -> list[dict]:
    query = urllib.parse.quote(f'userName eq "{user_name}"')
    status, body = downstream.call("GET", f"/scim/v2/Users?filter={query}", token)
    assert status == 200, body
    return body["Resources"]


def test_scenario(page: Page, console_server: Server, downstream: Server, admin_token: str,
                  entra_token: str, downstream_token: str) -> None:
    server = console_server

    # Sign in.
    sign_in(page, server, admin_token)
    expect(page.locator("[data-test=actor]")).to_have_text("console-admin")

    # Declare a custom attribute: dry run first, then apply from its report.
    page.goto(server.url + "/admin/schemas")
    page.fill("#schema-document", CONTOSO_SCHEMA)
    page.fill("#schema-searchable", "region")
    page.click("#schema-dry-run")
    expect(page.locator("#schema-report")).to_be_visible()
    expect(page.locator("#schema-report [data-test=report-urn]")).to_have_text(CONTOSO)
    assert page.locator("#schema-report").get_attribute("data-applied") == "false"
    status, _ = server.call("GET", f"/admin/v1/schemas/{CONTOSO}", admin_token)
    assert status == 404, "the dry run declared the schema"
    page.click("#schema-apply")
    expect(page.locator("#custom-schemas")).to_contain_text(CONTOSO)
    expect(page.locator(f'tr[data-test="schema-{CONTOSO}"] [data-test=searchable]')
           ).to_contain_text("region")

    # The second Muster as a SCIM target (the admin API, as the README documents), paused
    # from the targets page so that only provisioning on demand reaches it.
    document = {
        "name": "downstream",
        "kind": "scim",
        "baseUrl": downstream.url + "/scim/v2",
        "auth": {"type": "bearer", "token": downstream_token},
        "mappings": [
            {"target": "userName", "expression": "userName"},
            {"target": "externalId", "expression": "externalId"},
            {"target": "displayName",
             "expression": 'Join(" ", [name.givenName], [name.familyName])'},
            {"target": "title", "expression": "title"},
            {"target": "active", "expression": "active"},
        ],
    }
    status, body = server.call("PUT", "/admin/v1/targets/downstream", admin_token, document,
                               content_type="application/json")
    assert status in (200, 201), body
    page.goto(server.url + "/admin/targets")
    page.click('tr[data-test="target-downstream"] a')
    expect(page.locator("#target-status")).to_be_visible()
    page.fill("#pause-reason", "provisioning on demand only, for the browser test")
    page.click("#pause")
    expect(page.locator("#resume")).to_be_visible()

    # Users and a group over SCIM, as Entra ID sends them.
    ids = {}
    for agent in AGENTS:
        status, body = server.call("POST", "/scim/v2/Users", entra_token, entra_user(*agent))
        assert status == 201, body
        ids[agent[0]] = body["id"]
    status, group = server.call("POST", "/scim/v2/Groups", entra_token, {
        "schemas": [GROUP], "externalId": "tier1", "displayName": "Group_CC_Agents_Tier1",
        "members": []})
    assert status == 201, group
    for user_name in (AGENTS[0][0], AGENTS[1][0]):
        status, body = server.call("PATCH", f"/scim/v2/Groups/{group['id']}", entra_token, {
            "schemas": [PATCH],
            "Operations": [{"op": "Add", "path": "members",
                            "value": [{"value": ids[user_name]}]}]})
        assert status in (200, 204), body

    # A rule set (it names the group, so it comes after it): dry run, then applied.
    page.goto(server.url + "/admin/rules")
    page.fill("#rules-text", RULES)
    page.click("#rules-dry-run")
    expect(page.locator("#rules-report")).to_be_visible()
    page.click("#rules-apply")
    expect(page.locator("#rules-history")).to_contain_text("1")

    # Find the user.
    page.goto(server.url + "/admin/users")
    page.fill("#user-search", "Ana Lima")
    page.click("#user-search-submit")
    rows = page.locator("[data-test=user-row]")
    expect(rows).to_have_count(1)
    rows.locator("[data-test=user-link]").click()
    expect(page.locator("[data-test=user-id]")).to_have_text(ids[USER])
    region = page.locator(f'[data-test=attributes][data-schema="{CONTOSO}"]'
                          ' [data-test=attribute][data-attribute="region"]')
    expect(region).to_contain_text("EMEA")
    expect(region.locator("[data-test=set-by]")).to_have_text("entra")

    # Its entitlement explanation: the rule that matched, with the value, and the one that
    # did not, with why.
    held = page.locator("#entitlements-held [data-test=entitlement]",
                        has_text="role 'Agent' in 'Customer Support'")
    expect(held).to_have_count(1)
    expect(held).to_contain_text("tier1-agents")
    expect(held).to_contain_text("groups.display = Group_CC_Agents_Tier1")
    supervisors = page.locator('[data-test=rule-trace][data-rule="supervisors"]')
    expect(supervisors).to_contain_text("no")
    expect(supervisors).to_contain_text('fails: title eq "Supervisor" saw Agent')

    # Its end-to-end mapping to the target.
    page.click('#user-targets [data-target="downstream"] summary')
    page.click('#user-targets [data-target="downstream"] >> text=End-to-end mapping')
    expect(page.locator("#mapping-table")).to_be_visible()
    display = page.locator('tr[data-test="mapping-displayName"]')
    expect(display.locator("[data-test=value-now]")).to_contain_text("Ana Lima")
    expect(display).to_contain_text("Join(")
    expect(page.locator("[data-test=in-scope]")).to_have_text("yes")
    assert find_downstream(downstream, downstream_token, USER) == [], "paused, yet delivered"

    # Provision on demand: the dry run lists the writes and sends none; then for real.
    page.goto(server.url + f"/admin/users/{ids[USER]}")
    page.click("[data-test=provision-dry-run-downstream]")
    expect(page.locator("[data-test=provision-outcome]")).to_be_visible()
    expect(page.locator("[data-test=dry-run-request]").first).to_contain_text("Ana Lima")
    assert find_downstream(downstream, downstream_token, USER) == [], "the dry run wrote"
    page.click("#provision")
    expect(page.locator("[data-test=provision-outcome]")).to_be_visible()
    expect(page.locator(".notice.error")).to_have_count(0)

    # The change arrived at the second Muster.
    arrived = find_downstream(downstream, downstream_token, USER)
    assert len(arrived) == 1, arrived
    assert arrived[0]["displayName"] == "Ana Lima"
    assert arrived[0]["title"] == "Agent"
    assert find_downstream(downstream, downstream_token, AGENTS[1][0]) == []

    # The user page shows what was delivered and the target's answer.
    page.goto(server.url + f"/admin/users/{ids[USER]}")
    expect(page.locator('[data-target="downstream"] [data-test=delivered]')
           ).not_to_have_text("never")

    # Offboard, and see it in the audit view.
    page.fill("#offboard-reason", "left the company (browser test)")
    page.check("#offboard-confirm")
    page.click("#offboard")
    expect(page.locator("[data-test=offboarded]")).to_be_visible()
    # Offboarding delivers to every target at once, paused or not.
    expect(page.locator("#offboard-targets")).to_contain_text("downstream")
    deadline = time.monotonic() + 10
    while find_downstream(downstream, downstream_token, USER)[0]["active"] is not False:
        assert time.monotonic() < deadline, "the deactivation did not reach the target"
        time.sleep(0.2)
    page.goto(server.url + f"/admin/audit?user={ids[USER]}")
    operations = page.locator("[data-test=audit-row] [data-test=audit-operation]")
    expect(operations.first).to_be_visible()
    expect(page.locator("[data-test=audit-row]", has_text="console-admin")).not_to_have_count(0)
    expect(page.locator("[data-test=audit-row]", has_text="active")).not_to_have_count(0)
    status, body = server.call("GET", f"/scim/v2/Users/{ids[USER]}", entra_token)
    assert status == 200 and body["active"] is False, body

    # A reconcile dry run of the paused target, with live progress, lists the users it
    # would create; then resume it (confirming) and the queued users arrive.
    page.goto(server.url + "/admin/targets/downstream")
    page.click("#reconcile-dry-run")
    expect(page.locator('#reconcile-run[data-state="finished"]')).to_be_visible(timeout=30_000)
    expect(page.locator("#reconcile-run")).to_contain_text(AGENTS[1][0])
    screenshot(page, "reconcile")
    assert run_axe(page) == []
    assert find_downstream(downstream, downstream_token, AGENTS[1][0]) == []
    page.goto(server.url + "/admin/targets/downstream")
    page.check("#resume-confirm")
    page.click("#resume")
    expect(page.locator("#pause")).to_be_visible()
    deadline = time.monotonic() + 15
    while not find_downstream(downstream, downstream_token, AGENTS[1][0]):
        assert time.monotonic() < deadline, "the queue was not delivered after resuming"
        time.sleep(0.2)

    # Sign out, and be refused.
    page.click("#sign-out")
    expect(page.locator("#token")).to_be_visible()
    response = page.goto(server.url + "/admin/users")
    assert "/admin/sign-in" in page.url, page.url
    assert response is not None
    expect(page.locator("#token")).to_be_visible()
    # The old session cannot post a form either.
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', redirect: 'manual',
             headers: {'Content-Type': 'application/x-www-form-urlencoded'},
             body: 'reason=again'})).status""",
        server.url + f"/admin/users/{ids[USER]}/offboard",
    )
    assert status in (0, 303, 401, 403), status


def run_axe(page: Page) -> list[dict]:
    """The serious and critical violations axe-core finds on the page."""
    results = Axe().run(page)
    return [
        {"id": violation["id"], "impact": violation["impact"],
         "nodes": [node["target"] for node in violation["nodes"]][:5],
         "help": violation["help"]}
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [1280, 375])
def test_every_page_passes_axe(browser: Browser, console_server: Server, admin_token: str,
                               entra_token: str, width: int) -> None:
    """Each page at desktop and phone width: no serious or critical axe-core violation.

    Runs after the scenario (pages hold data); saves the desktop screenshots.
    """
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, console_server, admin_token)
    query = urllib.parse.quote(f'userName eq "{SHOWN}"')
    status, body = console_server.call("GET", f"/scim/v2/Users?filter={query}", entra_token)
    assert status == 200 and body["totalResults"] == 1, body
    user_id = body["Resources"][0]["id"]
    found = {}
    try:
        for name, (path, ready) in PAGES.items():
            page.goto(console_server.url
                      + path.format(user=urllib.parse.quote(SHOWN), user_id=user_id))
            page.wait_for_selector(ready)
            page.wait_for_load_state("networkidle")
            if width == 1280:
                screenshot(page, name)
            else:
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 0:
                    found[name] = [{"id": "horizontal-overflow", "px": overflow}]
            violations = run_axe(page)
            if violations:
                found.setdefault(name, []).extend(violations)
    finally:
        context.close()
    assert not found, json.dumps(found, indent=1)


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Serves a page that auto-submits a form to the console (another origin)."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = f"""<!doctype html><html lang="en"><title>Win a prize</title><body>
<form id="attack" method="post" action="{self.target}">
<input name="reason" value="offboarded by another site">
<input name="confirm" value="yes"></form>
<script>document.getElementById('attack').submit()</script></body></html>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def attacker() -> Iterator[tuple[str, type[_Attacker]]]:
    handler = type("Attacker", (_Attacker,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", handler
    httpd.shutdown()
    httpd.server_close()


def test_csrf_from_another_origin_is_refused(page: Page, console_server: Server,
                                             admin_token: str, entra_token: str,
                                             attacker: tuple[str, type[_Attacker]]) -> None:
    server = console_server
    status, victim = server.call("POST", "/scim/v2/Users", entra_token, {
        "schemas": [CORE], "userName": "victim@contoso.com", "active": True})
    assert status == 201, victim
    sign_in(page, server, admin_token)
    url, handler = attacker
    handler.target = server.url + f"/admin/users/{victim['id']}/offboard"
    with page.expect_response(handler.target) as posted:
        page.goto(url)
    # 127.0.0.1 on another port is the same site but another origin: the SameSite=Strict
    # cookie goes along, so the CSRF check itself (token, Origin, Sec-Fetch-Site) refuses.
    assert posted.value.request.method == "POST"
    assert posted.value.request.header_value("origin") == url.rstrip("/")
    assert posted.value.status == 403, posted.value.status
    page.wait_for_load_state("load")
    assert page.url.startswith(server.url), page.url
    expect(page.locator("[data-test=offboarded]")).to_have_count(0)
    status, body = server.call("GET", f"/scim/v2/Users/{victim['id']}", entra_token)
    assert status == 200 and body["active"] is True, body
    # Still signed in: the session was not spent by the attempt.
    page.goto(server.url + "/admin")
    expect(page.locator("#sign-out")).to_be_visible()

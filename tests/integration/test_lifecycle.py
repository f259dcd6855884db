"""The incident lifecycle, end to end: through the real CLI and through raw
HTTP, against docs/api.md and docs/cli.md."""

import datetime
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ID_RE, KlaxonTestCase, id_seq, ids_in, main, parse_time,  # noqa: E402
                     rfc3339, today_ymd, utcnow)

INCIDENT_KEYS = {
    "id", "title", "summary", "severity", "status", "types", "labels", "roles",
    "impact", "root_cause", "resolution", "started_at", "detected_at",
    "declared_at", "acknowledged_at", "mitigated_at", "resolved_at",
    "created_by", "updated_at", "version",
}
TIME_KEYS = ("started_at", "detected_at", "declared_at", "acknowledged_at",
             "mitigated_at", "resolved_at", "updated_at")


def list_json_ids(text):
    """IDs from `klaxon --json incident list`: either the API's object or a
    bare array of incidents."""
    js = json.loads(text)
    if isinstance(js, dict):
        js = js["incidents"]
    return [i["id"] for i in js]


class CliLifecycle(KlaxonTestCase):
    fresh_daemon_per_test = True

    def kinds(self, iid):
        return [e["kind"] for e in self.d.timeline(iid) if e["kind"] != "acknowledged"]

    def step(self, iid, *args, token, expect_bump=True):
        """Runs a changing CLI command; checks the one-line confirmation
        naming the incident and that the version went up by exactly one."""
        before = self.d.get(iid)["version"]
        rc, out, err = self.d.cli(*args, token=token, check=0)
        lines = [l for l in out.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "expected a one-line confirmation for %s: %r" % (args, out))
        self.assertIn(iid, lines[0], "confirmation should name the incident: %r" % out)
        after = self.d.get(iid)
        if expect_bump:
            self.assertEqual(after["version"], before + 1, "version after %s" % (args,))
        else:
            self.assertGreater(after["version"], before - 1, "version after %s" % (args,))
        return after, lines[0]

    def test_full_lifecycle(self):
        d = self.d
        alice = d.create_token("responder", "alice")
        started = rfc3339(utcnow() - datetime.timedelta(hours=2))

        # -- declare -------------------------------------------------------
        rc, out, err = d.cli("incident", "declare", "--severity", "P2",
                             "--title", "Duplicate comments sent",
                             "--type", "ENGAGE", "--label", "client=acme",
                             "--label", "platform=instagram",
                             "--summary", "Dedupe check failed after the 14:05 deploy",
                             "--started-at", started, token=alice, check=0)
        iid = out.splitlines()[0].strip()
        self.assertRegex(iid, ID_RE, "declare's first line must be the ID: %r" % out)
        self.assertEqual(id_seq(iid), (today_ymd(), 1))
        inc = d.get(iid)
        self.assertEqual(inc["title"], "Duplicate comments sent")
        self.assertEqual(inc["severity"], "P2")
        self.assertEqual(inc["status"], "investigating")
        self.assertEqual(inc["types"], ["ENGAGE"])
        self.assertEqual(inc["labels"], {"client": "acme", "platform": "instagram"})
        self.assertEqual(inc["summary"], "Dedupe check failed after the 14:05 deploy")
        self.assertEqual(inc["started_at"], started)
        self.assertEqual(inc["created_by"], "alice")
        self.assertEqual(inc["version"], 1)
        self.assertIsNone(inc["acknowledged_at"])
        self.assertIsNone(inc["mitigated_at"])
        self.assertIsNone(inc["resolved_at"])
        self.assertRecent(inc["declared_at"])

        # two more incidents for the list filters
        rc, out, _ = d.cli("incident", "declare", "--severity", "P3", "--title", "Queue backlog",
                           "--type", "QUEUE", "--label", "client=globex", token=alice, check=0)
        other = out.splitlines()[0].strip()
        rc, out, _ = d.cli("incident", "declare", "--severity", "P3", "--title", "Slow logins",
                           "--label", "client=acme", token=alice, check=0)
        third = out.splitlines()[0].strip()
        self.assertEqual([id_seq(x)[1] for x in (iid, other, third)], [1, 2, 3])
        d.cli("incident", "status", third, "identified", token=alice, check=0)

        # -- list with filters ---------------------------------------------
        def listed(*flags):
            rc, out, err = d.cli("incident", "list", *flags, token=alice, check=0)
            return set(ids_in(out))

        self.assertEqual(listed(), {iid, other, third})
        self.assertEqual(listed("--status", "investigating"), {iid, other})
        self.assertEqual(listed("--status", "identified"), {third})
        self.assertEqual(listed("--status", "resolved"), set())
        self.assertEqual(listed("--severity", "P3"), {other, third})
        self.assertEqual(listed("--severity", "P2"), {iid})
        self.assertEqual(listed("--label", "client=acme"), {iid, third})
        self.assertEqual(listed("--label", "client=acme", "--label", "platform=instagram"), {iid})
        self.assertEqual(listed("--label", "client=nobody"), set())
        self.assertEqual(listed("--severity", "P3", "--label", "client=acme"), {third})
        self.assertEqual(listed("--since", "1h"), {iid, other, third})
        self.assertEqual(listed("--open"), {iid, other, third})
        rc, out, _ = d.cli("incident", "list", "--limit", "1", token=alice, check=0)
        self.assertEqual(ids_in(out), [third], "newest first, limit 1: %r" % out)
        rc, out, _ = d.cli("--json", "incident", "list", token=alice, check=0)
        self.assertEqual(list_json_ids(out), [third, other, iid], "newest first")
        rc, out, _ = d.cli("incident", "list", "--json", "--label", "client=globex", token=alice, check=0)
        self.assertEqual(list_json_ids(out), [other])

        # -- show ----------------------------------------------------------
        rc, out, _ = d.cli("incident", "show", iid, token=alice, check=0)
        for s in (iid, "Duplicate comments sent", "P2", "investigating", "client=acme"):
            self.assertIn(s, out, "show output lacks %r:\n%s" % (s, out))
        rc, out, _ = d.cli("incident", "show", iid, "--json", token=alice, check=0)
        js = json.loads(out)
        self.assertEqual(js["id"], iid)
        self.assertEqual(js["title"], "Duplicate comments sent")

        # -- assign commander --------------------------------------------------
        inc, line = self.step(iid, "incident", "assign", iid, "--role", "commander",
                              "--to", "alice", token=alice)
        self.assertIn({"role": "commander", "person": "alice"}, inc["roles"])
        self.assertRecent(inc["acknowledged_at"], msg="acknowledged_at after commander assigned")

        # -- note --------------------------------------------------------------
        inc, _ = self.step(iid, "incident", "note", iid, "rolled back to v41",
                           token=alice, expect_bump=False)

        # -- status identified -----------------------------------------------
        inc, line = self.step(iid, "incident", "status", iid, "identified",
                              "--note", "bad deploy 14:05", token=alice)
        self.assertEqual(inc["status"], "identified")
        self.assertIn("identified", line)
        self.assertIsNone(inc["mitigated_at"])

        # -- severity P1 -------------------------------------------------------
        inc, line = self.step(iid, "incident", "severity", iid, "P1",
                              "--note", "second client affected", token=alice)
        self.assertEqual(inc["severity"], "P1")
        self.assertIn("P1", line)

        # -- impact ------------------------------------------------------------
        inc, _ = self.step(iid, "incident", "impact", iid, "--users", "15", "--accounts", "1",
                           "--actions", "15", "--revenue", "EUR 300",
                           "--description", "15 duplicate comments on @brand", token=alice)
        self.assertEqual(inc["impact"]["users"], 15)
        self.assertEqual(inc["impact"]["accounts"], 1)
        self.assertEqual(inc["impact"]["actions"], 15)
        self.assertEqual(inc["impact"]["revenue"], "EUR 300")
        self.assertEqual(inc["impact"]["description"], "15 duplicate comments on @brand")

        # -- status monitoring -----------------------------------------------
        inc, _ = self.step(iid, "incident", "status", iid, "monitoring", token=alice)
        self.assertEqual(inc["status"], "monitoring")
        self.assertRecent(inc["mitigated_at"], msg="mitigated_at after monitoring")
        mitigated = inc["mitigated_at"]

        # -- action items ------------------------------------------------------
        inc, _ = self.step(iid, "incident", "action-item", "add", iid, "--title", "Fix dedupe query",
                           "--kind", "prevent", "--owner", "dev", "--due", "2026-12-01",
                           token=alice, expect_bump=False)
        inc, _ = self.step(iid, "incident", "action-item", "add", iid,
                           "--title", "Delete duplicate comments", "--kind", "mitigate",
                           token=alice, expect_bump=False)
        rc, out, _ = d.cli("incident", "action-item", "list", iid, token=alice, check=0)
        self.assertIn("Fix dedupe query", out)
        self.assertIn("Delete duplicate comments", out)
        rc, out, _ = d.cli("incident", "action-item", "list", iid, "--json", token=alice, check=0)
        js = json.loads(out)
        items = js["action_items"] if isinstance(js, dict) else js
        self.assertEqual([(i["number"], i["title"], i["kind"], i["status"]) for i in items],
                         [(1, "Fix dedupe query", "prevent", "open"),
                          (2, "Delete duplicate comments", "mitigate", "open")])
        self.assertEqual(items[0]["owner"], "dev")
        self.assertEqual(items[0]["due"], "2026-12-01")
        inc, _ = self.step(iid, "incident", "action-item", "done", iid, "1",
                           token=alice, expect_bump=False)
        items = d.get(iid)["action_items"]
        self.assertEqual([i["status"] for i in items], ["done", "open"])
        self.assertRecent(items[0]["done_at"])
        self.assertIsNone(items[1]["done_at"])

        # -- resolve -----------------------------------------------------------
        inc, _ = self.step(iid, "incident", "resolve", iid,
                           "--resolution", "fixed dedupe query, deleted duplicates",
                           "--root-cause", "dedupe cache skipped after deploy", token=alice)
        self.assertEqual(inc["status"], "resolved")
        self.assertRecent(inc["resolved_at"], msg="resolved_at")
        self.assertEqual(inc["resolution"], "fixed dedupe query, deleted duplicates")
        self.assertEqual(inc["root_cause"], "dedupe cache skipped after deploy")
        self.assertEqual(inc["mitigated_at"], mitigated, "mitigated_at is set once")

        rc, out, _ = d.cli("incident", "list", "--open", token=alice, check=0)
        self.assertEqual(set(ids_in(out)), {other, third})
        rc, out, _ = d.cli("incident", "list", "--status", "resolved", token=alice, check=0)
        self.assertEqual(set(ids_in(out)), {iid})

        # -- reopen ------------------------------------------------------------
        inc, _ = self.step(iid, "incident", "reopen", iid, "--note", "duplicates again", token=alice)
        self.assertEqual(inc["status"], "investigating")
        self.assertIsNone(inc["resolved_at"], "reopen clears resolved_at")

        # -- resolve again -----------------------------------------------------
        inc, _ = self.step(iid, "incident", "resolve", iid, "--resolution", "purged the cache",
                           token=alice)
        self.assertEqual(inc["status"], "resolved")
        self.assertRecent(inc["resolved_at"])

        # -- timeline ----------------------------------------------------------
        tl = d.timeline(iid)
        self.assertEqual(self.kinds(iid), [
            "declared", "role", "note", "status", "severity", "impact", "status",
            "action_item", "action_item", "action_item", "resolved", "reopened", "resolved",
        ], json.dumps(tl, indent=1))
        for e in tl:
            self.assertEqual(e["author"], "alice", "author is the token name: %r" % e)
            self.assertTimestamp(e["at"])
            self.assertIsInstance(e["id"], int)
            self.assertIsInstance(e["text"], str)
        ats = [parse_time(e["at"]) for e in tl]
        self.assertEqual(ats, sorted(ats), "oldest first")
        by_kind = {}
        for e in tl:
            by_kind.setdefault(e["kind"], []).append(e["text"])
        self.assertIn("rolled back to v41", by_kind["note"][0])
        self.assertIn("identified", by_kind["status"][0])
        self.assertIn("bad deploy 14:05", by_kind["status"][0])
        self.assertIn("monitoring", by_kind["status"][1])
        self.assertIn("P1", by_kind["severity"][0])
        self.assertIn("second client affected", by_kind["severity"][0])
        self.assertIn("alice", by_kind["role"][0])
        self.assertIn("duplicates again", by_kind["reopened"][0])

        rc, out, _ = d.cli("incident", "timeline", iid, token=alice, check=0)
        for s in ("rolled back to v41", "bad deploy 14:05", "duplicates again"):
            self.assertIn(s, out)
        rc, out, _ = d.cli("incident", "show", iid, token=alice, check=0)
        for s in ("rolled back to v41", "Fix dedupe query", "alice", "resolved"):
            self.assertIn(s, out, "show prints roles, timeline, action items")

    def test_json_flag_anywhere_and_declare_json(self):
        d = self.d
        rc, out, _ = d.cli("--json", "incident", "declare", "--severity", "P2",
                           "--title", "json output", check=0)
        js = json.loads(out)
        self.assertRegex(js["id"], ID_RE)
        iid = js["id"]
        rc, out, _ = d.cli("incident", "declare", "--title", "json last", "--severity", "P3",
                           "--json", check=0)
        js2 = json.loads(out)
        self.assertEqual(id_seq(js2["id"])[1], id_seq(iid)[1] + 1)
        for argv in (("--json", "incident", "status", iid, "identified"),
                     ("incident", "--json", "severity", iid, "P1"),
                     ("incident", "note", iid, "a note", "--json"),
                     ("incident", "timeline", iid, "--json"),
                     ("--json", "severity", "list"),
                     ("--json", "type", "list")):
            rc, out, err = d.cli(*argv, check=0)
            try:
                json.loads(out)
            except ValueError:
                self.fail("%s: --json output is not JSON: %r" % (argv, out))
        inc = d.get(iid)
        self.assertEqual((inc["status"], inc["severity"]), ("identified", "P1"))

    def test_ack_and_edit(self):
        d = self.d
        iid = d.declare(labels={"platform": "instagram", "lane": "browser"})["id"]
        rc, out, _ = d.cli("incident", "ack", iid, check=0)
        self.assertEqual(len(out.strip().splitlines()), 1, out)
        self.assertIn(iid, out)
        inc = d.get(iid)
        self.assertRecent(inc["acknowledged_at"])
        self.assertEqual(inc["version"], 2)
        rc, out, _ = d.cli("incident", "edit", iid, "--title", "Renamed", "--summary", "More detail",
                           "--root-cause", "A bad deploy", "--type", "DEPLOY", "--type", "ENGAGE",
                           "--label", "account=@brand", "--unlabel", "lane", check=0)
        self.assertEqual(len(out.strip().splitlines()), 1, out)
        inc = d.get(iid)
        self.assertEqual((inc["title"], inc["summary"], inc["root_cause"]),
                         ("Renamed", "More detail", "A bad deploy"))
        self.assertEqual(sorted(inc["types"]), ["DEPLOY", "ENGAGE"])
        self.assertEqual(inc["labels"], {"platform": "instagram", "account": "@brand"})
        self.assertEqual(inc["version"], 3, "one edit is one change")

    def test_tokens_through_cli(self):
        d = self.d
        rc, out, _ = d.cli("token", "create", "--role", "responder", "--name", "carol",
                           "--label", "client=acme", check=0)
        lines = out.splitlines()
        secret = lines[0].strip()
        self.assertRegex(secret, r"^kx_\S+$", "the secret first, on its own line: %r" % out)
        rest = "\n".join(lines[1:])
        self.assertRegex(rest, r"tok_\S+")
        self.assertIn("responder", rest)
        self.assertIn("client=acme", rest)
        tok_id = re.search(r"tok_[A-Za-z0-9_-]+", rest).group(0)
        rc, out, _ = d.cli("token", "list", check=0)
        self.assertIn("carol", out)
        self.assertIn(tok_id, out)
        self.assertNotIn(secret, out)
        rc, out, _ = d.cli("incident", "declare", "--severity", "P2", "--title", "by carol",
                           token=secret, check=0)
        iid = out.splitlines()[0].strip()
        self.assertEqual(d.get(iid)["created_by"], "carol")
        self.assertEqual(d.get(iid)["labels"], {"client": "acme"})
        d.cli("token", "revoke", tok_id, check=0)
        rc, out, err = d.cli("incident", "list", token=secret)
        self.assertOneLineError(rc, out, err, 1, "revoked token")

    def test_flags_from_environment_and_command_line(self):
        d = self.d
        # --url and --token on the command line override the environment
        rc, out, err = d.cli("--url", d.url, "--token", d.admin_token,
                             "incident", "declare", "--severity", "P2", "--title", "via flags",
                             token=None, url="http://127.0.0.1:1", check=0)
        self.assertRegex(out.splitlines()[0].strip(), ID_RE)
        rc, out, err = d.cli("incident", "list", "--url", d.url, token=None, check=None)
        self.assertEqual(rc, 1, "no token: the daemon answers 401: %r %r" % (out, err))

    def test_help_everywhere(self):
        for argv in (("--help",), ("-h",), ("incident", "--help"),
                     ("incident", "declare", "--help"), ("token", "--help")):
            rc, out, err = self.d.cli(*argv)
            self.assertEqual(rc, 0, "%s: %r %r" % (argv, out, err))
            self.assertTrue((out + err).strip(), "%s prints help" % (argv,))
        rc, out, err = self.d.cli("incident", "declare", "--help")
        self.assertIn("--severity", out + err)


class HttpLifecycle(KlaxonTestCase):
    fresh_daemon_per_test = True

    def assertIncidentShape(self, inc):
        self.assertIsInstance(inc, dict, inc)
        missing = INCIDENT_KEYS - set(inc)
        self.assertFalse(missing, "incident lacks %s: %r" % (sorted(missing), inc))
        self.assertRegex(inc["id"], ID_RE)
        for k in TIME_KEYS:
            if inc[k] is not None:
                self.assertTimestamp(inc[k], k)
        self.assertIsInstance(inc["version"], int)
        self.assertIsInstance(inc["labels"], dict)
        self.assertIsInstance(inc["types"], list)
        self.assertIsInstance(inc["roles"], list)

    def test_declare_and_change_over_http(self):
        d = self.d
        bob = d.create_token("responder", "bob")
        self.assertRegex(bob["token"], r"^kx_")
        self.assertRegex(bob["id"], r"^tok_")
        body = {"title": "Duplicate comments sent", "severity": "P2",
                "summary": "Dedupe check failed", "types": ["ENGAGE"],
                "labels": {"client": "acme", "platform": "instagram"},
                "started_at": "2026-01-15T15:00:00+01:00",
                "detected_at": "2026-01-15T14:30:00Z"}
        st, hdrs, inc = d.http("POST", "/v1/incidents", body, token=bob)
        self.assertEqual(st, 201, inc)
        self.assertIn("application/json", hdrs.get("Content-Type", ""))
        self.assertIncidentShape(inc)
        iid = inc["id"]
        self.assertEqual(id_seq(iid), (today_ymd(), 1))
        loc = hdrs.get("Location")
        self.assertIsNotNone(loc, "201 needs a Location header")
        self.assertTrue(loc.endswith("/v1/incidents/" + iid), loc)
        self.assertEqual(inc["started_at"], "2026-01-15T14:00:00Z", "offset converted to UTC")
        self.assertEqual(inc["detected_at"], "2026-01-15T14:30:00Z")
        self.assertRecent(inc["declared_at"])
        self.assertRecent(inc["updated_at"])
        self.assertEqual(inc["created_by"], "bob")
        self.assertEqual(inc["version"], 1)
        self.assertEqual(inc["status"], "investigating")
        self.assertEqual(inc["roles"], [])
        self.assertIsNone(inc["root_cause"])
        self.assertIsNone(inc["resolution"])
        for k in ("acknowledged_at", "mitigated_at", "resolved_at"):
            self.assertIsNone(inc[k], k)

        # GET includes timeline and action items
        full = d.get(iid)
        self.assertIncidentShape(full)
        self.assertEqual([e["kind"] for e in full["timeline"]], ["declared"])
        self.assertEqual(full["timeline"][0]["author"], "bob")
        self.assertEqual(full["action_items"], [])
        for k in INCIDENT_KEYS:
            self.assertEqual(full[k], inc[k], "GET agrees with the 201 body on %s" % k)

        # defaults: detected_at now when not given, summary optional
        st, _, inc2 = d.http("POST", "/v1/incidents", {"title": "t2", "severity": "P4"}, token=bob)
        self.assertEqual(st, 201, inc2)
        self.assertEqual(id_seq(inc2["id"]), (today_ymd(), 2))
        self.assertRecent(inc2["detected_at"])
        self.assertEqual(inc2["labels"], {})
        self.assertEqual(inc2["types"], [])

        version = 1

        def change(method, sub, payload, expect=200):
            nonlocal version
            st, _, js = d.http(method, "/v1/incidents/%s%s" % (iid, sub), payload, token=bob)
            self.assertEqual(st, expect, "%s %s %r -> %s %r" % (method, sub, payload, st, js))
            got = d.get(iid)
            self.assertEqual(got["version"], version + 1, "version after %s %r" % (sub, payload))
            version = got["version"]
            if sub in ("", "/status", "/severity", "/roles", "/acknowledge", "/impact",
                       "/resolve", "/reopen"):
                self.assertIncidentShape(js)
                self.assertEqual(js["version"], version, "the response is the new incident")
            return js

        js = change("POST", "/status", {"status": "identified", "note": "bad deploy 14:05"})
        self.assertEqual(js["status"], "identified")
        js = change("POST", "/acknowledge", {})
        self.assertRecent(js["acknowledged_at"])
        js = change("POST", "/severity", {"severity": "P1", "note": "second client"})
        self.assertEqual(js["severity"], "P1")
        js = change("POST", "/roles", {"role": "commander", "person": "alice"})
        self.assertEqual(js["roles"], [{"role": "commander", "person": "alice"}])
        js = change("POST", "/roles", {"role": "commander", "person": "bob"})
        self.assertEqual(js["roles"], [{"role": "commander", "person": "bob"}], "assigning replaces")
        change("POST", "/roles", {"role": "sme", "person": "carol"})
        js = change("POST", "/roles", {"role": "sme", "person": "dave"})
        self.assertCountEqual([r for r in js["roles"] if r["role"] == "sme"],
                              [{"role": "sme", "person": "carol"}, {"role": "sme", "person": "dave"}])
        js = change("POST", "/roles", {"role": "sme", "person": "carol", "remove": True})
        self.assertCountEqual(js["roles"], [{"role": "commander", "person": "bob"},
                                            {"role": "sme", "person": "dave"}])
        js = change("POST", "/impact", {"users": 15, "accounts": 1})
        self.assertEqual((js["impact"]["users"], js["impact"]["accounts"]), (15, 1))
        js = change("POST", "/impact", {"revenue": "EUR 300", "users": 20})
        self.assertEqual((js["impact"]["users"], js["impact"]["accounts"], js["impact"]["revenue"]),
                         (20, 1, "EUR 300"), "fields not given are kept")
        js = change("PATCH", "", {"title": "Duplicate comments on @brand",
                                  "labels": {"platform": None, "account": "@brand"}})
        self.assertEqual(js["title"], "Duplicate comments on @brand")
        self.assertEqual(js["labels"], {"client": "acme", "account": "@brand"})

        # a note at a given time
        st, _, entry = d.http("POST", "/v1/incidents/%s/timeline" % iid,
                              {"text": "rolled back to v41", "at": "2026-01-15T14:40:00Z"},
                              token=bob)
        self.assertEqual(st, 201, entry)
        self.assertEqual(entry["kind"], "note")
        self.assertEqual(entry["author"], "bob")
        self.assertEqual(entry["at"], "2026-01-15T14:40:00Z")
        self.assertIn("rolled back to v41", entry["text"])
        version = d.get(iid)["version"]

        # action items
        st, hdrs, item = d.http("POST", "/v1/incidents/%s/action-items" % iid,
                                {"title": "Fix dedupe query", "kind": "prevent",
                                 "owner": "dev", "due": "2026-12-01"}, token=bob)
        self.assertEqual(st, 201, item)
        self.assertEqual(item["number"], 1)
        self.assertEqual((item["title"], item["kind"], item["owner"], item["due"], item["status"]),
                         ("Fix dedupe query", "prevent", "dev", "2026-12-01", "open"))
        self.assertRecent(item["created_at"])
        self.assertIsNone(item["done_at"])
        st, _, item2 = d.http("POST", "/v1/incidents/%s/action-items" % iid,
                              {"title": "Add an alert", "kind": "detect"}, token=bob)
        self.assertEqual(st, 201, item2)
        self.assertEqual(item2["number"], 2)
        self.assertIsNone(item2["owner"])
        self.assertIsNone(item2["due"])
        st, _, js = d.http("GET", "/v1/incidents/%s/action-items" % iid, token=bob)
        self.assertEqual(st, 200, js)
        self.assertEqual([i["number"] for i in js["action_items"]], [1, 2])
        st, _, done = d.http("POST", "/v1/incidents/%s/action-items/1/done" % iid, {}, token=bob)
        self.assertEqual(st, 200, done)
        self.assertEqual((done["number"], done["status"]), (1, "done"))
        self.assertRecent(done["done_at"])
        st, _, js = d.http("GET", "/v1/incidents/%s/action-items" % iid, token=bob)
        self.assertEqual([i["status"] for i in js["action_items"]], ["done", "open"])
        version = d.get(iid)["version"]

        # resolve needs a resolution
        before = d.get(iid)
        self.assertError(d.http("POST", "/v1/incidents/%s/resolve" % iid, {"root_cause": "x"},
                                token=bob), 400, "invalid", "resolve without resolution")
        self.assertEqual(d.get(iid), before, "a failed resolve changes nothing")
        js = change("POST", "/resolve", {"resolution": "fixed", "root_cause": "cache"})
        self.assertEqual(js["status"], "resolved")
        self.assertRecent(js["resolved_at"])
        self.assertRecent(js["mitigated_at"], msg="mitigated_at set when resolving skips monitoring")
        self.assertEqual((js["resolution"], js["root_cause"]), ("fixed", "cache"))
        js = change("POST", "/reopen", {"note": "back again"})
        self.assertEqual(js["status"], "investigating")
        self.assertIsNone(js["resolved_at"])

        # the timeline has one entry per change, authored by bob
        # (oldest first: the note dated 2026-01-15 comes before the declaration)
        tl = d.timeline(iid, token=bob)
        kinds = [e["kind"] for e in tl]
        self.assertEqual(kinds, [
            "note", "declared", "status", "acknowledged", "severity", "role", "role", "role",
            "role", "role", "impact", "impact", "edit", "action_item", "action_item",
            "action_item", "resolved", "reopened"], json.dumps(tl, indent=1))
        ats = [parse_time(e["at"]) for e in tl]
        self.assertEqual(ats, sorted(ats), "oldest first")
        self.assertTrue(all(e["author"] == "bob" for e in tl), tl)
        for e in tl:
            self.assertTimestamp(e["at"])

    def test_patch_entries(self):
        """api.md: a PATCH is one change (version + 1) and one timeline entry
        of kind `edit` naming every edited field."""
        d = self.d
        iid = d.declare(labels={"platform": "x"})["id"]
        st, _, js = d.http("PATCH", "/v1/incidents/" + iid,
                           {"title": "new title", "summary": "new summary",
                            "root_cause": "a cause", "types": ["DEPLOY"],
                            "labels": {"platform": None, "account": "@brand"}})
        self.assertEqual(st, 200, js)
        self.assertEqual((js["title"], js["summary"], js["root_cause"], js["types"], js["labels"]),
                         ("new title", "new summary", "a cause", ["DEPLOY"], {"account": "@brand"}))
        self.assertEqual(js["version"], 2)
        edits = [e for e in d.timeline(iid) if e["kind"] == "edit"]
        self.assertEqual(len(edits), 1, "one entry per PATCH: %s" % json.dumps(edits, indent=1))
        text = edits[0]["text"]
        for word in ("title", "summary", "root", "type", "platform", "account"):
            self.assertIn(word, text, "the edit entry names every edited field: %r" % text)

    def test_status_transitions_set_timestamps_once(self):
        d = self.d
        inc = d.declare()
        iid = inc["id"]
        p = "/v1/incidents/%s/status" % iid
        self.assertStatus(d.http("POST", p, {"status": "monitoring"}), 200)
        m1 = d.get(iid)["mitigated_at"]
        self.assertRecent(m1)
        self.assertStatus(d.http("POST", p, {"status": "identified"}), 200)
        self.assertStatus(d.http("POST", p, {"status": "investigating"}), 200)
        self.assertStatus(d.http("POST", p, {"status": "monitoring"}), 200)
        self.assertEqual(d.get(iid)["mitigated_at"], m1, "mitigated_at only when first reached")
        st, _, js = d.http("POST", "/v1/incidents/%s/roles" % iid,
                           {"role": "commander", "person": "x"})
        a1 = js["acknowledged_at"]
        self.assertRecent(a1)
        d.http("POST", "/v1/incidents/%s/roles" % iid, {"role": "commander", "person": "y"})
        d.http("POST", "/v1/incidents/%s/acknowledge" % iid, {})
        self.assertEqual(d.get(iid)["acknowledged_at"], a1, "acknowledged_at is set once")

    def test_ids_are_sequential_for_today(self):
        d = self.d
        ids = [d.declare(title="seq %d" % i)["id"] for i in range(3)]
        rc, out, _ = d.cli("incident", "declare", "--severity", "P3", "--title", "from cli", check=0)
        ids.append(out.splitlines()[0].strip())
        self.assertEqual([id_seq(x) for x in ids], [(today_ymd(), n) for n in (1, 2, 3, 4)])
        self.assertEqual(ids[0], "INC-%s-001" % today_ymd())
        self.assertEqual(d.list_ids(), list(reversed(ids)), "newest first")
        self.assertEqual(d.list_ids("?limit=2"), list(reversed(ids))[:2])

    def test_since_excludes_older_incidents(self):
        d = self.d
        old = d.declare(title="older")["id"]
        t_old = parse_time(d.get(old)["declared_at"])
        # bounded wait on the clock (not synchronisation): the filter is
        # about age, so the first incident has to age a few seconds
        deadline = time.monotonic() + 10
        while (utcnow() - t_old).total_seconds() < 5.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        new = d.declare(title="newer")["id"]
        self.assertEqual(d.list_ids("?since=3s"), [new])
        self.assertEqual(d.list_ids("?since=1h"), [new, old])
        rc, out, _ = d.cli("incident", "list", "--since", "3s", check=0)
        self.assertEqual(ids_in(out), [new])

    def test_stale_version_is_refused_and_changes_nothing(self):
        d = self.d
        iid = d.declare(labels={"client": "acme"})["id"]
        self.assertStatus(d.http("POST", "/v1/incidents/%s/severity" % iid,
                                 {"severity": "P1", "version": 1}), 200)
        before = d.get(iid)
        self.assertEqual(before["version"], 2)
        stale = [
            ("POST", "/severity", {"severity": "P3", "version": 1}),
            ("POST", "/status", {"status": "identified", "version": 1}),
            ("POST", "/roles", {"role": "commander", "person": "eve", "version": 1}),
            ("POST", "/impact", {"users": 3, "version": 1}),
            ("POST", "/resolve", {"resolution": "x", "version": 1}),
            ("POST", "/acknowledge", {"version": 1}),
            ("PATCH", "", {"title": "changed", "version": 1}),
            ("PATCH", "", {"labels": {"client": "other"}, "version": 3}),
        ]
        for method, sub, payload in stale:
            self.assertError(d.http(method, "/v1/incidents/%s%s" % (iid, sub), payload),
                             409, "conflict", "%s %s %r" % (method, sub, payload))
            self.assertEqual(d.get(iid), before, "stale %s %r changed the incident" % (sub, payload))
        # the current version is accepted and grows by one
        st, _, js = d.http("PATCH", "/v1/incidents/" + iid, {"title": "changed", "version": 2})
        self.assertEqual(st, 200, js)
        self.assertEqual(js["version"], 3)
        self.assertEqual(js["title"], "changed")

    def test_severities_and_types(self):
        d = self.d
        st, _, js = d.http("GET", "/v1/severities")
        self.assertEqual(st, 200, js)
        sev = js["severities"]
        names = [s["name"] for s in sev]
        for n in ("P1", "P2", "P3"):
            self.assertIn(n, names)
        self.assertEqual([s["rank"] for s in sev], sorted(s["rank"] for s in sev))
        for s in sev:
            for k in ("name", "rank", "description", "response_time", "update_every",
                      "pages", "postmortem"):
                self.assertIn(k, s, s)
            self.assertIsInstance(s["pages"], bool)
            self.assertIn(s["postmortem"], ("required", "optional", "none"))
        st, _, js = d.http("GET", "/v1/types")
        self.assertEqual(st, 200, js)
        tnames = [t["name"] for t in js["types"]]
        for n in ("SAFETY", "PUBLISH", "ENGAGE", "AUTH", "RATE", "BROWSER", "QUEUE",
                  "TOOLGATE", "PROVIDER", "COST", "DATA", "OBS", "OUTAGE", "PERFORMANCE",
                  "SECURITY", "DEPLOY"):
            self.assertIn(n, tnames)
        rc, out, _ = d.cli("severity", "list", check=0)
        self.assertIn("P1", out)
        rc, out, _ = d.cli("type", "list", check=0)
        self.assertIn("ENGAGE", out)


if __name__ == "__main__":
    main()

"""The audit log (issue 5, "Audit log"): automation appends events (one,
a batch, NDJSON), a bad batch stores nothing and says which line, the
seeds' queries (recent, by account, export in three formats, duplicates,
recipients) through the API and the CLI, label scopes keep tenants apart,
Klaxon's own human actions are in the log under the token's name, and the
hash chain catches an event changed or removed behind the daemon's back.

Every test of the shared daemon gives its events an actor of its own, so
that the tests can share one log.
"""

import concurrent.futures
import csv
import datetime
import hashlib
import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BACKEND, Daemon, KlaxonTestCase, main, rfc3339, utcnow  # noqa: E402

NDJSON = {"Content-Type": "application/x-ndjson"}
FIELDS = ["actor", "client", "account", "platform", "lane", "action", "target",
          "content_hash", "outcome", "trace_id", "artifact_url", "idempotency_key"]


def uniq(prefix="bot"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events)


class AuditTestCase(KlaxonTestCase):

    def append(self, body, token=None, headers=None, raw=None, status=201, daemon=None):
        d = daemon or self.d
        kw = {"headers": headers}
        if token is not None:
            kw["token"] = token
        if raw is not None:
            resp = d.http("POST", "/v1/audit/events", raw=raw, **kw)
        else:
            resp = d.http("POST", "/v1/audit/events", body, **kw)
        return self.assertStatus(resp, status, "append")

    def events(self, query="", token=None, daemon=None):
        d = daemon or self.d
        kw = {} if token is None else {"token": token}
        st, _, js = d.http("GET", "/v1/audit/events" + query, **kw)
        self.assertEqual(st, 200, js)
        return js["events"]

    def verify(self, daemon=None):
        st, _, js = (daemon or self.d).http("GET", "/v1/audit/verify")
        self.assertEqual(st, 200, js)
        return js


class AuditAppend(AuditTestCase):

    def test_single_event_with_every_field(self):
        actor = uniq()
        ev = {"at": "2026-11-25T14:02:03.250Z", "actor": actor, "client": "acme",
              "account": "@brand", "platform": "instagram", "lane": "browser",
              "action": "comment", "target": "https://instagram.com/p/Cx1",
              "content_hash": "sha256:9f86d081", "outcome": "success",
              "trace_id": "4bf92f3577b34da6", "artifact_url": "https://artifacts.example/17.png",
              "idempotency_key": "run17-post1", "labels": {"campaign": "spring"}}
        js = self.append(ev)
        self.assertEqual(js["appended"], 1)
        self.assertEqual(js["first_seq"], js["last_seq"])
        got = self.events("?actor=" + actor)
        self.assertEqual(len(got), 1)
        e = got[0]
        for k, v in ev.items():
            self.assertEqual(e[k], v, k)
        self.assertEqual(e["seq"], js["first_seq"])
        self.assertRegex(e["hash"], "^[0-9a-f]{64}$")
        self.assertRegex(e["prev_hash"], "^[0-9a-f]{64}$")

    def test_defaults(self):
        actor = uniq()
        js = self.append({"actor": actor, "action": "like"})
        e = self.events("?actor=" + actor)[0]
        self.assertRecent(e["at"])
        for k in FIELDS:
            if k not in ("actor", "action"):
                self.assertIsNone(e[k], k)
        self.assertEqual(e["labels"], {})
        self.assertEqual(e["seq"], js["first_seq"])

    def test_batch_is_consecutive_and_chained(self):
        actor = uniq()
        batch = [{"actor": actor, "action": "dm", "target": "@u%d" % i} for i in range(5)]
        js = self.append({"events": batch})
        self.assertEqual(js["appended"], 5)
        self.assertEqual(js["last_seq"] - js["first_seq"], 4)
        got = self.events("?order=asc&actor=" + actor)
        self.assertEqual([e["seq"] for e in got], list(range(js["first_seq"], js["last_seq"] + 1)))
        self.assertEqual([e["target"] for e in got], ["@u%d" % i for i in range(5)])
        for a, b in zip(got, got[1:]):
            self.assertEqual(b["prev_hash"], a["hash"])

    def test_ndjson(self):
        actor = uniq()
        body = ndjson([{"actor": actor, "action": "dm", "target": "@a"}]) + "\r\n\n" + \
            json.dumps({"actor": actor, "action": "dm", "target": "@b"}) + "\r\n"
        js = self.append(None, raw=body, headers=NDJSON)
        self.assertEqual(js["appended"], 2)
        self.assertEqual([e["target"] for e in self.events("?order=asc&actor=" + actor)],
                         ["@a", "@b"])
        # the media type may carry parameters and be written in any case
        js = self.append(None, raw=ndjson([{"actor": actor, "action": "like"}]),
                         headers={"Content-Type": "Application/X-NDJSON; charset=utf-8"})
        self.assertEqual(js["appended"], 1)

    def test_bad_line_stores_nothing_and_is_named(self):
        actor = uniq()
        good = {"actor": actor, "action": "dm", "target": "@ok"}
        cases = [
            ([good, good, {"actor": actor}], "line 3", "'action' is required"),
            ([good, {"actor": actor, "action": "dm", "at": "yesterday"}, good], "line 2",
             "cannot parse 'at'"),
            ([good, {"actor": actor, "action": 5}], "line 2", "'action' must be a string"),
            ([good, {"actor": actor, "action": "dm", "colour": "red"}], "line 2",
             "unknown field 'colour'"),
        ]
        for events, where, what in cases:
            err = self.assertError(self.d.http("POST", "/v1/audit/events", raw=ndjson(events),
                                               headers=NDJSON), 400, "invalid")
            self.assertTrue(err["message"].startswith(where + ": "), err)
            self.assertIn(what, err["message"])
        err = self.assertError(self.d.http("POST", "/v1/audit/events",
                                           raw=ndjson([good]) + '{"actor": "x",\n',
                                           headers=NDJSON), 400, "invalid_json")
        self.assertTrue(err["message"].startswith("line 2: invalid JSON"), err)
        err = self.assertError(self.d.http("POST", "/v1/audit/events",
                                           raw=ndjson([good]) + "[1]\n", headers=NDJSON),
                               400, "invalid_json")
        self.assertIn("line 2: not a JSON object", err["message"])
        # the same in a JSON batch: the 1-based position
        err = self.assertError(self.d.http("POST", "/v1/audit/events",
                                           {"events": [good, good, good, {"action": "dm"}]}),
                               400, "invalid")
        self.assertEqual(err["message"], "event 4: 'actor' is required")
        self.assertEqual(self.events("?actor=" + actor), [], "nothing was stored")

    def test_wrong_types_and_unknown_fields(self):
        bad = [
            ({"actor": 1, "action": "dm"}, "'actor' must be a string"),
            ({"actor": "a", "action": "dm", "labels": ["x"]}, "'labels' must be an object"),
            ({"actor": "a", "action": "dm", "labels": {"k": 1}}, "label 'k' must have a string"),
            ({"actor": "a", "action": "dm", "labels": {"client": "acme"}},
             "label 'client' must be given as the field 'client'"),
            ({"actor": "a", "action": "dm", "seq": 9}, "unknown field 'seq'"),
            ({"actor": "a", "action": "dm", "hash": "00"}, "unknown field 'hash'"),
            ({"actor": "", "action": "dm"}, "'actor' is empty"),
            ({"actor": "a", "action": "dm", "target": "x" * 1025}, "'target' is longer than 1024"),
            ({"actor": "a", "action": "dm", "outcome": "bad\u0007"}, "control characters"),
            ({"actor": "a", "action": "dm", "at": "2999-01-01T00:00:00Z"}, "in the future"),
            ({"actor": "a", "action": "dm", "at": "1999-01-01T00:00:00Z"}, "before 2000-01-01"),
            ({"events": "x"}, "'events' must be a non-empty array"),
            ({"events": []}, "'events' must be a non-empty array"),
            ({"events": [{"actor": "a", "action": "dm"}], "actor": "a"}, "unknown field 'actor'"),
            ({"events": [{"actor": "a", "action": "dm"}, 7]}, "event 2: an event must be a JSON object"),
        ]
        for body, msg in bad:
            err = self.assertError(self.d.http("POST", "/v1/audit/events", body), 400, "invalid",
                                   json.dumps(body)[:80])
            self.assertIn(msg, err["message"])
        self.assertError(self.d.http("POST", "/v1/audit/events", raw="[]"), 400, "invalid_json")
        self.assertError(self.d.http("POST", "/v1/audit/events", raw="{"), 400, "invalid_json")
        err = self.assertError(self.d.http("POST", "/v1/audit/events", raw="\n \n",
                                           headers=NDJSON), 400, "invalid")
        self.assertIn("no events", err["message"])

    def test_roles(self):
        viewer = self.d.create_token("viewer", uniq("viewer"))
        resp = self.d.create_token("responder", uniq("resp"))
        self.assertError(self.d.http("POST", "/v1/audit/events", {"actor": "a", "action": "b"},
                                     token=viewer), 403, "forbidden")
        self.append({"actor": "a", "action": "b"}, token=resp)
        self.assertStatus(self.d.http("GET", "/v1/audit/events", token=viewer), 200)
        self.assertStatus(self.d.http("GET", "/v1/audit/duplicates", token=viewer), 200)
        self.assertStatus(self.d.http("GET", "/v1/audit/recipients", token=viewer), 200)
        self.assertError(self.d.http("GET", "/v1/audit/verify", token=resp), 403, "forbidden")
        self.assertError(self.d.http("GET", "/v1/audit/events", token=None), 401)
        self.assertError(self.d.http("DELETE", "/v1/audit/events"), 405)


class AuditQueries(AuditTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.actor = uniq()
        a = cls.actor
        now = utcnow()

        def at(minutes):
            return rfc3339(now.replace(microsecond=0) - datetime.timedelta(minutes=minutes))

        events = [
            {"at": at(300), "actor": a, "action": "comment", "account": "@brand", "client": "acme",
             "target": "post/1", "content_hash": "h1", "platform": "instagram"},
            {"at": at(50), "actor": a, "action": "comment", "account": "@brand", "client": "acme",
             "target": "post/1", "content_hash": "h1", "platform": "instagram"},
            {"at": at(40), "actor": a, "action": "comment", "account": "@other", "client": "acme",
             "target": "post/1", "content_hash": "h1", "platform": "instagram"},
            {"at": at(30), "actor": a, "action": "comment", "account": "@brand", "client": "acme",
             "target": "post/2", "content_hash": "h2", "platform": "instagram"},
            {"at": at(20), "actor": a, "action": "dm", "account": "@brand", "client": "acme",
             "target": "@alice", "platform": "instagram"},
            {"at": at(10), "actor": a, "action": "dm", "account": "@brand", "client": "acme",
             "target": "@alice", "platform": "instagram", "labels": {"campaign": "x"}},
            {"at": at(5), "actor": a, "action": "dm", "account": "@other", "client": "acme",
             "target": "@bob", "platform": "tiktok", "labels": {"campaign": "y"}},
        ]
        st, _, js = cls.d.http("POST", "/v1/audit/events", {"events": events})
        assert st == 201, js
        cls.first = js["first_seq"]

    def q(self, query):
        return self.events(query + "&actor=" + self.actor)

    def test_recent_is_newest_first_with_limit(self):
        got = self.q("?limit=3")
        self.assertEqual([e["seq"] for e in got], [self.first + 6, self.first + 5, self.first + 4])
        self.assertEqual(len(self.q("?limit=100")), 7)

    def test_filters(self):
        self.assertEqual(len(self.q("?account=@brand")), 5)
        self.assertEqual(len(self.q("?account=@brand&since=1h")), 4)
        self.assertEqual(len(self.q("?action=dm&since=1h")), 3)
        self.assertEqual(len(self.q("?platform=tiktok")), 1)
        self.assertEqual(len(self.q("?client=acme")), 7)
        self.assertEqual(len(self.q("?client=beta")), 0)
        self.assertEqual(len(self.q("?target=post/1")), 3)
        self.assertEqual([e["seq"] for e in self.q("?label=campaign=y")], [self.first + 6])
        # since/until: a duration back from now or a time; until excludes
        self.assertEqual(len(self.q("?since=45m&until=15m")), 3)
        until = self.q("?order=asc")[3]["at"]
        self.assertEqual(len(self.q("?until=" + until)), 3)
        self.assertEqual(len(self.q("?since=" + until)), 4)
        got = self.q("?order=asc&after_seq=%d" % (self.first + 4))
        self.assertEqual([e["seq"] for e in got], [self.first + 5, self.first + 6])

    def test_bad_queries(self):
        for query, msg in [("?limit=0", "'limit'"), ("?limit=10001", "'limit'"),
                           ("?limit=x", "'limit'"), ("?since=soon", "cannot parse 'since'"),
                           ("?until=2026-13-01T00:00:00Z", "cannot parse 'until'"),
                           ("?format=xml", "unknown format 'xml'"), ("?order=up", "'order'"),
                           ("?after_seq=-1", "'after_seq'"), ("?colour=red", "unknown query parameter"),
                           ("?account=", "'account' must not be empty"),
                           ("?label=client=acme", "'client' is a field"),
                           ("?label=nope", "expected key=value"),
                           ("?since=1h&until=2h", "'since' is after 'until'")]:
            err = self.assertError(self.d.http("GET", "/v1/audit/events" + query), 400,
                                   "invalid", query)
            self.assertIn(msg, err["message"], query)
        err = self.assertError(self.d.http("GET", "/v1/audit/duplicates?format=csv"), 400)
        self.assertIn("unknown query parameter 'format'", err["message"])

    def test_ndjson_and_csv(self):
        st, hdrs, text = self.d.http("GET", "/v1/audit/events?order=asc&format=ndjson&actor=" + self.actor)
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["Content-Type"], "application/x-ndjson")
        lines = text.splitlines()
        self.assertEqual(len(lines), 7)
        as_json = self.q("?order=asc")
        self.assertEqual([json.loads(l) for l in lines], as_json)

        st, hdrs, text = self.d.http("GET", "/v1/audit/events?order=asc&format=csv&actor=" + self.actor)
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/csv"))
        self.assertIn("\r\n", text)
        rows = list(csv.reader(io.StringIO(text, newline="")))
        self.assertEqual(rows[0], ["seq", "at"] + FIELDS + ["labels", "prev_hash", "hash"])
        self.assertEqual(len(rows), 8)
        for row, e in zip(rows[1:], as_json):
            self.assertEqual(int(row[0]), e["seq"])
            self.assertEqual(row[1], e["at"])
            for i, k in enumerate(FIELDS):
                self.assertEqual(row[2 + i], e[k] or "", k)
            self.assertEqual(json.loads(row[14]) if row[14] else {}, e["labels"])
            self.assertEqual(row[15:], [e["prev_hash"], e["hash"]])

    def test_csv_quoting(self):
        actor = uniq()
        tricky = {"actor": actor, "action": "comment",
                  "target": 'post/1, "quoted"', "content_hash": "a,b",
                  "outcome": 'say "hi"', "labels": {"note": 'x, "y"', "back": "sl\\ash"}}
        self.append(tricky)
        st, _, text = self.d.http("GET", "/v1/audit/events?format=csv&actor=" + actor)
        self.assertEqual(st, 200)
        self.assertIn('"post/1, ""quoted"""', text)
        rows = list(csv.reader(io.StringIO(text, newline="")))
        self.assertEqual(len(rows), 2)
        row = dict(zip(rows[0], rows[1]))
        self.assertEqual(row["target"], tricky["target"])
        self.assertEqual(row["content_hash"], "a,b")
        self.assertEqual(row["outcome"], 'say "hi"')
        self.assertEqual(json.loads(row["labels"]), tricky["labels"])

    def test_duplicates(self):
        st, _, js = self.d.http("GET", "/v1/audit/duplicates?since=24h&actor=" + self.actor)
        self.assertEqual(st, 200, js)
        got = {(g["action"], g["target"], g["content_hash"]): g for g in js["duplicates"]}
        self.assertEqual(set(got), {("comment", "post/1", "h1"), ("dm", "@alice", None)})
        g = got[("comment", "post/1", "h1")]
        self.assertEqual((g["count"], g["accounts"]), (3, 2))
        self.assertEqual(js["duplicates"][0], g, "most repeated first")
        self.assertEqual(set(g), {"action", "target", "content_hash", "count", "accounts",
                                  "first_at", "last_at"})
        self.assertLess(g["first_at"], g["last_at"])
        # the seeds' question: one action, a window
        st, _, js = self.d.http("GET", "/v1/audit/duplicates?action=comment&since=1h&actor="
                                + self.actor)
        self.assertEqual([(g["target"], g["count"]) for g in js["duplicates"]], [("post/1", 2)])
        st, _, js = self.d.http("GET", "/v1/audit/duplicates?since=45m&until=35m&actor="
                                + self.actor)
        self.assertEqual(js["duplicates"], [], "one event in the window is no duplicate")

    def test_recipients(self):
        st, _, js = self.d.http("GET", "/v1/audit/recipients?action=dm&since=1h&actor="
                                + self.actor)
        self.assertEqual(st, 200, js)
        self.assertEqual([(g["target"], g["count"], g["accounts"]) for g in js["recipients"]],
                         [("@alice", 2, 1), ("@bob", 1, 1)])
        self.assertEqual(set(js["recipients"][0]),
                         {"target", "count", "accounts", "first_at", "last_at"})
        st, _, js = self.d.http("GET", "/v1/audit/recipients?limit=1&actor=" + self.actor)
        self.assertEqual([g["target"] for g in js["recipients"]], ["post/1"])

    def test_cli_recent_list_duplicates_recipients(self):
        rc, out, err = self.d.cli("audit", "recent", "--limit", "3", check=0)
        lines = out.splitlines()
        self.assertTrue(lines[0].split()[:3] == ["SEQ", "TIME", "ACTOR"], out)
        self.assertEqual(len(lines), 4)
        rc, out, err = self.d.cli("audit", "list", "--account", "@brand", "--since", "1h",
                                  "--actor", self.actor, check=0)
        self.assertEqual(len(out.splitlines()), 5, out)
        self.assertIn("@alice", out)
        rc, out, err = self.d.cli("--json", "audit", "list", "--actor", self.actor,
                                  "--action", "dm", check=0)
        self.assertEqual(len(json.loads(out)["events"]), 3)
        rc, out, err = self.d.cli("audit", "duplicates", "--action", "comment", "--since", "24h",
                                  check=0)
        self.assertIn("post/1", out)
        self.assertIn("COUNT", out.splitlines()[0])
        rc, out, err = self.d.cli("audit", "recipients", "--action", "dm", "--since", "1h",
                                  "--client", "acme", check=0)
        self.assertIn("@alice", out)
        self.assertIn("TARGET", out.splitlines()[0])
        rc, out, err = self.d.cli("audit", "list", "--actor", uniq(), check=0)
        self.assertEqual(out.strip(), "no events")
        rc, out, err = self.d.cli("audit", "duplicates", "--action", uniq(), check=0)
        self.assertEqual(out.strip(), "no duplicates")
        rc, out, err = self.d.cli("audit", "list", "--since", "soon", check=2)
        self.assertIn("--since", err)
        rc, out, err = self.d.cli("audit", "list", "--label", "client=acme", check=2)
        self.assertIn("use --client", err)
        rc, out, err = self.d.cli("audit", "recent", "--limit", "0", check=2)

    def test_cli_help_at_every_level(self):
        rc, out, _ = self.d.cli("--help", check=0)
        self.assertIn("audit", out)
        rc, out, _ = self.d.cli("audit", "--help", check=0)
        for c in ("recent", "list", "export", "duplicates", "recipients", "verify", "append"):
            self.assertIn(c, out)
        for c in ("recent", "list", "export", "duplicates", "recipients", "verify", "append"):
            rc, out, _ = self.d.cli("audit", c, "--help", check=0)
            self.assertTrue(out.startswith("usage: klaxon audit " + c), out)
        self.d.cli("audit", check=2)
        self.d.cli("audit", "nope", check=2)


class AuditExport(AuditTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.actor = uniq()
        # more than one page of the CLI's export (1000 events)
        for chunk in range(3):
            n = 1000 if chunk < 2 else 500
            batch = [{"actor": cls.actor, "action": "comment", "target": "post/%d" % (chunk * 1000 + i),
                      "labels": {"n": str(chunk * 1000 + i)}} for i in range(n)]
            st, _, js = cls.d.http("POST", "/v1/audit/events", {"events": batch}, timeout=60)
            assert st == 201, js

    def out_file(self, name):
        d = tempfile.mkdtemp(prefix="klaxon-export-", dir=self.d.root)
        return os.path.join(d, name)

    def test_export_json(self):
        path = self.out_file("audit.json")
        rc, out, err = self.d.cli("audit", "export", "--since", "2h", "--actor", self.actor,
                                  "--format", "json", "--output", path, check=0, timeout=60)
        self.assertEqual(out.strip(), "exported 2500 events to %s" % path)
        with open(path) as f:
            doc = json.load(f)
        seqs = [e["seq"] for e in doc["events"]]
        self.assertEqual(len(seqs), 2500)
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), 2500)
        self.assertEqual([e["target"] for e in doc["events"][:2]], ["post/0", "post/1"])
        self.assertEqual(os.listdir(os.path.dirname(path)), ["audit.json"], "no .part left")

    def test_export_ndjson_to_stdout(self):
        rc, out, err = self.d.cli("audit", "export", "--actor", self.actor, "--format", "ndjson",
                                  check=0, timeout=60)
        lines = out.splitlines()
        self.assertEqual(len(lines), 2500)
        self.assertEqual(json.loads(lines[-1])["target"], "post/2499")

    def test_export_csv(self):
        path = self.out_file("audit.csv")
        self.d.cli("audit", "export", "--actor", self.actor, "--format", "csv", "--output", path,
                   check=0, timeout=60)
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0][:3], ["seq", "at", "actor"])
        self.assertEqual(len(rows), 2501, "one header, then every event once")
        self.assertEqual([r[8] for r in rows[1:3]], ["post/0", "post/1"])
        self.assertEqual(json.loads(rows[-1][14]), {"n": "2499"})

    def test_export_errors(self):
        self.d.cli("audit", "export", "--format", "xml", check=2)
        rc, out, err = self.d.cli("audit", "export", "--output",
                                  os.path.join(self.d.root, "no", "such", "dir", "x.json"), check=1)
        self.assertIn("cannot write", err)


class AuditScope(AuditTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.d
        cls.acme = d.create_token("responder", uniq("acme"), {"client": "acme"})
        cls.beta = d.create_token("responder", uniq("beta"), {"client": "beta"})
        cls.ops = d.create_token("viewer", uniq("ops"), {"team": "ops"})
        cls.acme_admin = d.create_token("admin", uniq("acme-admin"), {"client": "acme"})

    def test_appends_take_the_scope(self):
        actor = uniq()
        js = self.append({"actor": actor, "action": "dm", "target": "@a"}, token=self.acme)
        e = self.events("?actor=" + actor)[0]
        self.assertEqual(e["client"], "acme")
        err = self.assertError(self.d.http("POST", "/v1/audit/events",
                                           {"events": [{"actor": actor, "action": "dm"},
                                                       {"actor": actor, "action": "dm",
                                                        "client": "beta"}]},
                                           token=self.acme), 403, "forbidden")
        self.assertEqual(err["message"], "event 2: 'client' is 'beta', outside this token's scope")
        self.assertEqual(len(self.events("?actor=" + actor)), 1, "nothing of the batch stored")
        self.assertEqual(js["appended"], 1)

    def test_isolation(self):
        actor = uniq()
        self.append({"events": [{"actor": actor, "action": "dm", "target": "@x"},
                                {"actor": actor, "action": "dm", "target": "@x"}]},
                    token=self.acme)
        self.append({"events": [{"actor": actor, "action": "dm", "target": "@y"},
                                {"actor": actor, "action": "dm", "target": "@y",
                                 "labels": {"team": "ops"}}]}, token=self.beta)
        self.assertEqual(len(self.events("?actor=" + actor)), 4)
        a = self.events("?actor=" + actor, token=self.acme)
        b = self.events("?actor=" + actor, token=self.beta)
        self.assertEqual({e["target"] for e in a}, {"@x"})
        self.assertEqual({e["client"] for e in a}, {"acme"})
        self.assertEqual({e["target"] for e in b}, {"@y"})
        self.assertEqual(self.events("?client=beta&actor=" + actor, token=self.acme), [],
                         "a filter outside the scope finds nothing")
        self.assertEqual(len(self.events("?client=acme&actor=" + actor, token=self.acme)), 2)
        # a scope on a free label
        ops = self.events("?actor=" + actor, token=self.ops)
        self.assertEqual([(e["client"], e["labels"]) for e in ops], [("beta", {"team": "ops"})])
        # the questions too
        st, _, js = self.d.http("GET", "/v1/audit/recipients?action=dm", token=self.acme)
        self.assertIn("@x", [g["target"] for g in js["recipients"]])
        self.assertNotIn("@y", [g["target"] for g in js["recipients"]])
        st, _, js = self.d.http("GET", "/v1/audit/duplicates?action=dm", token=self.beta)
        self.assertNotIn("@x", [g["target"] for g in js["duplicates"]])
        # the CLI with a scoped token
        rc, out, err = self.d.cli("audit", "list", "--actor", actor, token=self.beta, check=0)
        self.assertIn("@y", out)
        self.assertNotIn("@x", out)
        # and verification, which reads everything, is for unscoped admins
        err = self.assertError(self.d.http("GET", "/v1/audit/verify", token=self.acme_admin),
                               403, "forbidden")
        self.assertIn("without a label scope", err["message"])


class AuditHumanActions(AuditTestCase):

    def test_declare_and_tokens_are_recorded(self):
        alice = self.d.create_token("responder", uniq("alice"), {"client": "acme"})
        inc = self.d.declare(token=alice, title="duplicate comments", labels={"platform": "instagram"})
        e = self.events("?action=incident.declare&target=" + inc["id"])
        self.assertEqual(len(e), 1)
        e = e[0]
        self.assertEqual(e["actor"], alice["name"])
        self.assertEqual((e["client"], e["platform"], e["outcome"]), ("acme", "instagram", "success"))
        self.assertRecent(e["at"])
        # visible to the tokens that see the incident, not to others
        beta = self.d.create_token("viewer", uniq("beta"), {"client": "beta"})
        self.assertEqual(len(self.events("?target=" + inc["id"], token=alice)), 1)
        self.assertEqual(self.events("?target=" + inc["id"], token=beta), [])

        tok = self.d.create_token("viewer", uniq("victor"), {"client": "acme"})
        e = self.events("?action=token.create&target=" + tok["id"])
        self.assertEqual(len(e), 1)
        self.assertEqual((e[0]["actor"], e[0]["client"]), ("admin", "acme"))
        self.assertStatus(self.d.http("DELETE", "/v1/tokens/" + tok["id"]), 200)
        e = self.events("?action=token.revoke&target=" + tok["id"])
        self.assertEqual(len(e), 1)
        self.assertEqual(e[0]["actor"], "admin")
        self.assertNotIn(tok["token"], json.dumps(self.events("?limit=50")), "no secrets")

    def test_label_named_like_a_field(self):
        inc = self.d.declare(title="about comments", labels={"action": "comment", "lane": "api"})
        e = self.events("?target=" + inc["id"])
        self.assertEqual([(x["action"], x["lane"], x["labels"]) for x in e],
                         [("incident.declare", "api", {})])

    def test_failed_action_records_nothing(self):
        before = self.events("?action=incident.declare&limit=1")
        self.assertError(self.d.http("POST", "/v1/incidents", {"title": "x", "severity": "P9"}), 400)
        self.assertEqual(self.events("?action=incident.declare&limit=1"), before)


def chain_hash(prev, e):
    """BLAKE2b-256(prev_hash || canonical encoding), written from the layout
    core/audit.h documents: what a tamperer who read it could compute."""
    t = datetime.datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
    at = (t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // \
        datetime.timedelta(milliseconds=1)
    b = b"klaxon.audit.v1\0" + struct.pack(">qq", e["seq"], at)
    for f in FIELDS:
        v = e[f]
        b += b"\0" if v is None else b"\1" + struct.pack(">I", len(v.encode())) + v.encode()
    b += struct.pack(">I", len(e["labels"]))
    for k in sorted(e["labels"]):
        for x in (k, e["labels"][k]):
            b += struct.pack(">I", len(x.encode())) + x.encode()
    return hashlib.blake2b(prev + b, digest_size=32).hexdigest()


def psql(url, sql):
    r = subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stderr


class AuditTamper(AuditTestCase):
    """The chain catches changes made to the database behind the daemon."""

    fresh_daemon_per_test = True

    def fill(self, n=10):
        batch = [{"actor": "bot", "action": "comment", "target": "post/%d" % i,
                  "content_hash": "h%d" % i} for i in range(n)]
        self.append({"events": batch})

    def sql(self, statement):
        """Runs SQL on the daemon's database as someone with direct access
        would; returns (ok, error text)."""
        if BACKEND == "postgres":
            rc, err = psql(self.d.db_url, statement)
            return rc == 0, err
        db = sqlite3.connect(os.path.join(self.d.data_dir, "klaxon.db"), timeout=10)
        try:
            db.executescript(statement)
            db.commit()
            return True, ""
        except sqlite3.DatabaseError as e:
            return False, str(e)
        finally:
            db.close()

    def drop_guards(self):
        if BACKEND == "postgres":
            ok, err = self.sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            ok, err = self.sql("DROP TRIGGER audit_events_no_update; "
                               "DROP TRIGGER audit_events_no_delete;")
        self.assertTrue(ok, err)

    def test_changed_target_is_caught_at_its_seq(self):
        self.fill(10)
        rc, out, err = self.d.cli("audit", "verify", check=0)
        self.assertEqual(out.splitlines()[0], "chain intact: 10 events")
        self.assertRegex(out.splitlines()[1], r"^head: event 10, hash [0-9a-f]{64}$")
        js = self.verify()
        self.assertEqual((js["intact"], js["events"], js["head"]["seq"]), (True, 10, 10))

        # append-only: the database refuses a change…
        ok, err = self.sql("UPDATE audit_events SET target = 'post/evil' WHERE seq = 6")
        self.assertFalse(ok)
        self.assertIn("append-only", err)
        ok, err = self.sql("DELETE FROM audit_events WHERE seq = 6")
        self.assertFalse(ok)
        self.assertTrue(self.verify()["intact"])
        # …until someone with access removes the guard
        self.drop_guards()
        ok, err = self.sql("UPDATE audit_events SET target = 'post/evil' WHERE seq = 6")
        self.assertTrue(ok, err)

        js = self.verify()
        self.assertFalse(js["intact"])
        self.assertEqual(js["broken_at"], 6)
        self.assertEqual(js["events"], 5)
        self.assertIn("does not match the event's content", js["reason"])
        rc, out, err = self.d.cli("audit", "verify", check=1)
        self.assertTrue(out.startswith("chain broken at event 6: "), out)
        rc, out, err = self.d.cli("--json", "audit", "verify", check=1)
        self.assertEqual(json.loads(out)["broken_at"], 6)
        # the daemon keeps serving and appending
        self.append({"actor": "bot", "action": "like"})
        self.assertEqual(self.verify()["broken_at"], 6)

    def test_removed_event_is_caught(self):
        self.fill(8)
        self.drop_guards()
        ok, err = self.sql("DELETE FROM audit_events WHERE seq = 4")
        self.assertTrue(ok, err)
        js = self.verify()
        self.assertEqual((js["intact"], js["broken_at"], js["events"]), (False, 5, 3))
        self.assertIn("event 5 follows event 3", js["reason"])

    def test_rehashed_event_breaks_the_next_link(self):
        # A tamperer who changes an event and recomputes its hash (the
        # format is documented) still breaks the link from the next event.
        self.fill(6)
        e = [x for x in self.events("?order=asc") if x["seq"] == 3][0]
        self.assertEqual(chain_hash(bytes.fromhex(e["prev_hash"]), e), e["hash"])
        e["target"] = "post/evil"
        new = chain_hash(bytes.fromhex(e["prev_hash"]), e)
        self.drop_guards()
        if BACKEND == "postgres":
            ok, err = self.sql("UPDATE audit_events SET target = 'post/evil', "
                               "hash = '\\x%s' WHERE seq = 3" % new)
        else:
            ok, err = self.sql("UPDATE audit_events SET target = 'post/evil', "
                               "hash = X'%s' WHERE seq = 3" % new)
        self.assertTrue(ok, err)
        js = self.verify()
        self.assertEqual((js["broken_at"], js["events"]), (4, 3))
        self.assertIn("is not the hash of event 3", js["reason"])

    def test_empty_log_is_intact(self):
        rc, out, err = self.d.cli("audit", "verify", check=0)
        self.assertEqual(out.strip(), "chain intact: 0 events")

    def test_cli_append(self):
        path = os.path.join(self.d.root, "events.ndjson")
        with open(path, "w") as f:
            f.write(ndjson([{"actor": "bot", "action": "dm", "target": "@%d" % i}
                            for i in range(3)]))
        rc, out, err = self.d.cli("audit", "append", "--file", path, check=0)
        self.assertEqual(out.strip(), "appended 3 events (seq 1-3)")
        with open(path, "a") as f:
            f.write(ndjson([{"actor": "bot", "action": "dm"}, {"actor": "bot"}]))
        rc, out, err = self.d.cli("audit", "append", "--file", path, check=1)
        self.assertEqual(err.strip(), "klaxon: line 5: 'action' is required")
        self.assertEqual(len(self.events()), 3, "the bad file stored nothing")
        rc, out, err = self.d.cli("--json", "audit", "append", "--file", "-", check=1)
        self.assertIn("no events", err)
        self.d.cli("audit", "append", check=2)
        rc, out, err = self.d.cli("audit", "append", "--file", path + ".missing", check=1)
        self.assertIn("cannot read", err)
        self.assertTrue(self.verify()["intact"])


@unittest.skipUnless(BACKEND == "postgres", "needs KX_TEST_BACKEND=postgres")
class AuditTwoDaemons(AuditTestCase):
    """Two daemons on one PostgreSQL database append at the same time: one
    chain, no fork, no gap."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.e = Daemon(extra_args=["--db", cls.d.db_url], start=False)
        cls.e.start(read_token=False)
        cls.e.admin_token = cls.d.admin_token
        cls.daemons.append(cls.e)

    def test_concurrent_appends_keep_one_chain(self):
        def work(i):
            daemon = self.d if i % 2 else self.e
            batch = [{"actor": "bot-%d" % i, "action": "comment", "target": "post/%d" % k}
                     for k in range(4)]
            if i % 3 == 0:
                st, _, js = daemon.http("POST", "/v1/audit/events", raw=ndjson(batch),
                                        headers=NDJSON)
            else:
                st, _, js = daemon.http("POST", "/v1/audit/events", {"events": batch})
            return st, js

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(work, range(120)))
        self.assertTrue(all(st == 201 for st, _ in results), results[:3])
        seqs = []
        for _, js in results:
            self.assertEqual(js["last_seq"] - js["first_seq"], 3, "a batch is consecutive")
            seqs += range(js["first_seq"], js["last_seq"] + 1)
        self.assertEqual(len(set(seqs)), 480)
        for daemon in (self.d, self.e):
            js = self.verify(daemon)
            self.assertTrue(js["intact"], js)
            self.assertGreaterEqual(js["events"], 480)
            self.assertEqual(js["head"]["seq"], js["events"])
        # human actions from both daemons join the same chain
        self.e.declare(title="from the second daemon")
        self.d.declare(title="from the first daemon")
        self.assertTrue(self.verify(self.e)["intact"])


if __name__ == "__main__":
    main()

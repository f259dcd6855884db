"""Bad input: every rejection is a 4xx with {"error":{"code","message"}},
nothing is stored, and the daemon keeps serving. Plus the CLI's error paths."""

import datetime
import http.client
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KlaxonTestCase, free_port, id_seq, main, rfc3339, utcnow  # noqa: E402

FUTURE = rfc3339(utcnow() + datetime.timedelta(days=1))
BAD_TIMES = ["yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", FUTURE,
             "1969-12-31T23:59:59Z", "1999-12-31T23:59:59Z", "2026-01-01T00:00:00", "2026-01-01T25:00:00Z",
             "2026-01-01", "", "2026-01-01T00:00:00+25:00"]


def declare(**over):
    body = {"title": "bad input test", "severity": "P2"}
    for k, v in over.items():
        if v is Ellipsis:
            body.pop(k, None)
        else:
            body[k] = v
    return body


class ApiErrors(KlaxonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.d
        cls.base = d.declare(title="base", labels={"client": "acme"})["id"]
        p = "/v1/incidents/" + cls.base
        for path, body in (("/action-items", {"title": "open item", "kind": "prevent"}),
                           ("/action-items", {"title": "done item", "kind": "detect"})):
            st, _, js = d.http("POST", p + path, body)
            assert st == 201, (st, js)
        st, _, js = d.http("POST", p + "/action-items/2/done", {})
        assert st == 200, (st, js)
        cls.resolved = d.declare(title="resolved one")["id"]
        st, _, js = d.http("POST", "/v1/incidents/%s/resolve" % cls.resolved, {"resolution": "ok"})
        assert st == 200, (st, js)

    def snapshot(self):
        d = self.d
        return {"list": d.http("GET", "/v1/incidents?limit=1000")[2],
                "base": d.get(self.base), "resolved": d.get(self.resolved)}

    def rejected(self, method, path, body=None, raw=None, status=400, code="invalid",
                 headers=None):
        """Sends one bad request; asserts the error and that nothing changed
        and the daemon still serves. Returns the error object."""
        d = self.d
        before = self.snapshot()
        resp = d.http(method, path, body, raw=raw, headers=headers)
        shown = raw if raw is not None else json.dumps(body)
        if isinstance(shown, bytes):
            shown = repr(shown)
        if shown is not None and len(shown) > 200:
            shown = shown[:200] + "..."
        err = self.assertError(resp, status, code, "%s %s %s" % (method, path, shown))
        st, _, js = d.http("GET", "/healthz", token=None)
        self.assertEqual(st, 200, "daemon stopped serving after %s %s %s" % (method, path, shown))
        self.assertEqual(self.snapshot(), before, "%s %s %s stored something" % (method, path, shown))
        return err, resp

    # -- bodies that are not JSON objects -----------------------------------

    def test_malformed_json(self):
        for raw in ('{"title": "x", "severity": ',
                    '{"title": "x" "severity": "P2"}',
                    "{'title': 'x', 'severity': 'P2'}",
                    '{"title": "x", "severity": "P2",}',
                    '{"title": "x", "severity": "P2"} trailing',
                    '{"title": "x",\n "severity": P2}',
                    '{',
                    '}'):
            with self.subTest(raw=raw):
                err, _ = self.rejected("POST", "/v1/incidents", raw=raw, code="invalid_json")
                self.assertRegex(err["message"].lower(), r"line", "message gives the line: %r" % err)
                self.assertRegex(err["message"].lower(), r"col", "message gives the column: %r" % err)
        for raw in ('[{"title": "x", "severity": "P2"}]', '"a string"', "42", "null", "true"):
            with self.subTest(raw=raw):
                self.rejected("POST", "/v1/incidents", raw=raw, code="invalid_json")
        # api.md: an empty body counts as {} (so bodiless POSTs like acknowledge
        # work); declaring then fails on the first required field.
        err, _ = self.rejected("POST", "/v1/incidents", raw="", code="invalid")
        self.assertIn("'title' is required", err["message"])
        # the same on other endpoints
        p = "/v1/incidents/" + self.base
        for sub in ("/status", "/severity", "/roles", "/impact", "/timeline", "/action-items",
                    "/resolve"):
            self.rejected("POST", p + sub, raw='{"oops"', code="invalid_json")
            self.rejected("POST", p + sub, raw="[]", code="invalid_json")
        self.rejected("PATCH", p, raw='{"title": ', code="invalid_json")
        self.rejected("POST", "/v1/tokens", raw="{nope}", code="invalid_json")

    def test_hostile_bodies(self):
        for raw in (b'\xff\xfe{"title":"x"}',
                    b'{"title": "caf\xc3", "severity": "P2"}',
                    b'{"title": "a\\u0000b", "severity": "P2"}',
                    b'{"title": "x", "severity": "P2", "labels": ' + b"[" * 50000 + b"]" * 50000 + b"}",
                    b'{"title": "\\ud800", "severity": "P2"}'):
            with self.subTest(raw=raw[:40]):
                self.rejected("POST", "/v1/incidents", raw=raw, code=None)

    # -- declare: types, missing fields, limits --------------------------------

    def test_declare_wrong_types_and_missing_fields(self):
        cases = [
            declare(title=42), declare(title=None), declare(title=True), declare(title=["x"]),
            declare(severity=2), declare(severity=None),
            declare(labels=["client=acme"]), declare(labels="client=acme"),
            declare(labels={"client": 5}), declare(labels={"client": ["a"]}),
            declare(types="ENGAGE"), declare(types=[1]), declare(types={"ENGAGE": True}),
            declare(summary={"text": "x"}), declare(summary=5),
            declare(started_at=1700000000), declare(detected_at=True),
            {}, declare(title=...), declare(severity=...),
            declare(title=""), declare(title="x" * 201),
            declare(severity="P9"), declare(severity=""),
            declare(types=["NOPE"]), declare(types=["ENGAGE", "NOPE"]),
            declare(colour="red"), declare(id="INC-20260101-001"),
            declare(summary="s" * (16 * 1024 + 1)),
        ]
        for body in cases:
            with self.subTest(body=json.dumps(body)[:120]):
                self.rejected("POST", "/v1/incidents", body)

    def test_unknown_severity_message(self):
        err, _ = self.rejected("POST", "/v1/incidents", declare(severity="P9"))
        self.assertIn("P9", err["message"])
        self.assertIn("severity", err["message"])

    def test_bad_timestamps(self):
        for field in ("started_at", "detected_at"):
            for t in BAD_TIMES:
                with self.subTest(field=field, t=t):
                    self.rejected("POST", "/v1/incidents", declare(**{field: t}))
        for t in BAD_TIMES:
            with self.subTest(note_at=t):
                self.rejected("POST", "/v1/incidents/%s/timeline" % self.base,
                              {"text": "timed note", "at": t})

    def test_bad_labels(self):
        for labels in ({"Client": "acme"}, {"": "x"}, {"a b": "x"}, {"k" * 65: "x"},
                       {"a/b": "x"}, {"ключ": "x"}, {"client": ""}, {"client": "v" * 257},
                       {"client": "a\nb"}, {"client": "a\u0007b"}):
            with self.subTest(labels=list(labels)[0][:10]):
                self.rejected("POST", "/v1/incidents", declare(labels=labels))
                self.rejected("PATCH", "/v1/incidents/" + self.base, {"labels": labels})

    def test_limits_accept_the_boundary(self):
        d = self.d
        for body in (declare(title="x" * 200), declare(title="é" * 200),
                     declare(labels={"k" * 64: "v" * 256, "a.b-c_9": "x"}),
                     declare(summary="s" * (16 * 1024)),
                     declare(started_at="2000-01-01T00:00:00Z"),
                     declare(started_at="2026-01-15T15:00:00.5+01:00")):
            with self.subTest(body=json.dumps(body)[:80]):
                st, _, js = d.http("POST", "/v1/incidents", body)
                self.assertEqual(st, 201, js)
                for k, v in body.items():
                    if k != "started_at":
                        self.assertEqual(js[k], v)

    def test_body_too_large(self):
        big = json.dumps(declare(summary="a" * (1 << 20)))
        self.rejected("POST", "/v1/incidents", raw=big, status=413, code="too_large")
        self.rejected("POST", "/v1/incidents/%s/timeline" % self.base,
                      raw=json.dumps({"text": "b" * (2 << 20)}), status=413, code="too_large")
        # under the limit but over the text limit is a 400, not a 413
        self.rejected("POST", "/v1/incidents", raw=json.dumps(declare(summary="c" * 1000000)))

    def test_chunked_body_too_large(self):
        """Without a Content-Length the limit still holds."""
        d = self.d
        before = self.snapshot()
        chunk = b"a" * 65536
        chunks = [b'{"title": "chunked", "severity": "P2", "summary": "'] + [chunk] * 40 + [b'"}']
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=15)
        try:
            try:
                conn.request("POST", "/v1/incidents", body=iter(chunks), encode_chunked=True,
                             headers={"Authorization": "Bearer " + d.admin_token,
                                      "Transfer-Encoding": "chunked",
                                      "Content-Type": "application/json"})
            except (BrokenPipeError, ConnectionResetError):
                pass
            resp = conn.getresponse()
            body = json.loads(resp.read().decode())
            self.assertError((resp.status, resp.headers, body), 413, "too_large", "chunked 2.5 MiB")
        finally:
            conn.close()
        self.assertEqual(d.http("GET", "/healthz", token=None)[0], 200)
        self.assertEqual(self.snapshot(), before)
        # a small chunked body is fine
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=15)
        try:
            conn.request("POST", "/v1/incidents/%s/timeline" % self.base,
                         body=iter([b'{"text": ', b'"chunked note"}']), encode_chunked=True,
                         headers={"Authorization": "Bearer " + d.admin_token,
                                  "Transfer-Encoding": "chunked"})
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 201)
        finally:
            conn.close()

    def test_odd_requests_do_not_crash(self):
        d = self.d
        for method, path, hdrs in (
                ("GET", "/v1/incidents?label=client=%ff%fe", None),
                ("GET", "/v1/incidents?limit=99999999999999999999999", None),
                ("GET", "/v1/incidents?" + "&".join("label=k%d=v" % i for i in range(300)), None),
                ("GET", "/v1/incidents", {"Authorization": "Bearer kx_" + "a" * 6000}),
                ("GET", "/v1/incidents/" + "%ff" * 10, None)):
            with self.subTest(path=path[:60]):
                st, _, body = d.http(method, path, headers=hdrs)
                self.assertTrue(200 <= st < 500 and st != 500, "%s %s -> %s %r" % (method, path[:60], st, body))
                self.assertEqual(d.http("GET", "/healthz", token=None)[0], 200)

    # -- other endpoints ---------------------------------------------------------

    def test_change_endpoints_bad_values(self):
        p = "/v1/incidents/" + self.base
        cases = [
            ("/status", {"status": "bogus"}), ("/status", {"status": 3}), ("/status", {}),
            ("/status", {"status": "identified", "colour": 1}),
            ("/status", {"status": "identified", "note": 5}),
            ("/status", {"status": "identified", "version": "1"}),
            ("/severity", {"severity": "P9"}), ("/severity", {}), ("/severity", {"severity": 1}),
            ("/roles", {"role": "overlord", "person": "x"}), ("/roles", {"role": "commander"}),
            ("/roles", {"person": "x"}), ("/roles", {"role": "commander", "person": ""}),
            ("/roles", {"role": "commander", "person": 7}),
            ("/roles", {"role": "commander", "person": "x", "remove": "yes"}),
            ("/impact", {"users": "15"}), ("/impact", {"users": -1}), ("/impact", {"users": 1.5}),
            ("/impact", {"accounts": -5}), ("/impact", {"actions": "x"}),
            ("/impact", {"users": True}), ("/impact", {"revenue": "E" * 65}),
            ("/impact", {"revenue": 300}), ("/impact", {"colour": 1}),
            ("/timeline", {}), ("/timeline", {"text": ""}), ("/timeline", {"text": 5}),
            ("/timeline", {"text": "n" * (16 * 1024 + 1)}),
            ("/timeline", {"text": "x", "kind": "status"}),
            ("/action-items", {"title": "x", "kind": "fix"}), ("/action-items", {"title": "x"}),
            ("/action-items", {"kind": "prevent"}), ("/action-items", {"title": "", "kind": "prevent"}),
            ("/action-items", {"title": "x", "kind": "prevent", "owner": 5}),
            ("/action-items", {"title": "x", "kind": "prevent", "due": "tomorrow"}),
            ("/action-items", {"title": "x", "kind": "prevent", "due": "2026-13-45"}),
            ("/action-items", {"title": "x", "kind": "prevent", "due": "2026-02-30"}),
            ("/action-items", {"title": "x", "kind": "prevent", "due": "12/01/2026"}),
            ("/action-items", {"title": "x", "kind": "prevent", "due": 20261201}),
            ("/resolve", {}), ("/resolve", {"resolution": 5}),
            ("/resolve", {"resolution": "x", "root_cause": 1}),
            ("/resolve", {"resolution": "r" * (16 * 1024 + 1)}),
        ]
        for sub, body in cases:
            with self.subTest(sub=sub, body=json.dumps(body)[:80]):
                self.rejected("POST", p + sub, body)
        for body in ({"title": ""}, {"title": 5}, {"title": "x" * 201},
                     {"labels": {"Bad": "x"}}, {"labels": []},
                     {"types": ["NOPE"]}, {"types": "ENGAGE"}, {"colour": 1},
                     {"status": "resolved"}, {"severity": "P1"}, {"id": "INC-20260101-001"},
                     {"version": "abc", "title": "x"}):
            with self.subTest(patch=body):
                self.rejected("PATCH", p, body)

    def test_token_create_bad_values(self):
        for body in ({"role": "god", "name": "x"}, {"name": "x"}, {"role": "viewer"},
                     {"role": "viewer", "name": ""}, {"role": "viewer", "name": 5},
                     {"role": "viewer", "name": "x", "labels": {"Bad": "x"}},
                     {"role": "viewer", "name": "x", "labels": ["client=acme"]},
                     {"role": "viewer", "name": "x", "colour": 1}):
            with self.subTest(body=body):
                _, _, before = self.d.http("GET", "/v1/tokens")
                self.rejected("POST", "/v1/tokens", body)
                self.assertEqual(self.d.http("GET", "/v1/tokens")[2], before)

    # -- state conflicts --------------------------------------------------------

    def test_illegal_transitions(self):
        p = "/v1/incidents/"
        for status in ("monitoring", "identified", "resolved"):
            self.rejected("POST", p + self.resolved + "/status", {"status": status},
                          status=409, code="conflict")
        self.rejected("POST", p + self.resolved + "/resolve", {"resolution": "again"},
                      status=409, code="conflict")
        self.rejected("POST", p + self.base + "/status", {"status": "investigating"},
                      status=409, code="conflict")
        self.rejected("POST", p + self.base + "/reopen", {}, status=409, code="conflict")
        self.rejected("POST", p + self.base + "/action-items/2/done", {}, status=409, code="conflict")

    def test_missing_objects(self):
        p = "/v1/incidents/%s/action-items/" % self.base
        for n in ("99", "0", "-1", "abc", "1.0", "3"):
            self.rejected("POST", p + n + "/done", {}, status=404, code="not_found")

    def test_invalid_incident_ids(self):
        date, seq = id_seq(self.base)
        forms = ["INC-2026-001", self.base.lower(), "inc-%s-%03d" % (date, seq),
                 "INC-%s-%02d" % (date, seq), "INC-%s-%04d" % (date, seq),
                 self.base + "x", " " + self.base, "INC-%s-%03d" % (date, seq + 500),
                 "INC-99999999-001", "INC-20261301-001", "INC--001", "1", "-1", "0",
                 "..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "A" * 3000,
                 urllib.parse.quote(self.base + "\x00"),
                 urllib.parse.quote("' OR 1=1 --", safe=""),
                 urllib.parse.quote(self.base + "' OR '1'='1", safe="")]
        for form in forms:
            with self.subTest(id=form[:40]):
                q = form if "%" in form else urllib.parse.quote(form, safe="")
                for method, sub, body in (("GET", "", None), ("GET", "/timeline", None),
                                          ("POST", "/status", {"status": "identified"}),
                                          ("PATCH", "", {"title": "x"}),
                                          ("POST", "/timeline", {"text": "x"})):
                    self.rejected(method, "/v1/incidents/" + q + sub, body,
                                  status=404, code="not_found")

    # -- routes and methods -------------------------------------------------------

    def test_unknown_routes(self):
        for path in ("/v1/nope", "/nope", "/v1", "/v1/incident", "/v2/incidents",
                     "/v1/incidents/%s/nope" % self.base,
                     "/v1/incidents/%s/status/extra" % self.base,
                     "/v1/incidents/%s/action-items/1/undo" % self.base):
            for method in ("GET", "POST"):
                with self.subTest(method=method, path=path):
                    self.rejected(method, path, {} if method == "POST" else None,
                                  status=404, code="not_found")

    def test_wrong_method(self):
        p = "/v1/incidents/" + self.base
        for method, path, must_allow in (
                ("DELETE", "/v1/incidents", {"GET", "POST"}),
                ("PUT", "/v1/incidents", {"GET", "POST"}),
                ("PUT", p, {"GET", "PATCH"}),
                ("DELETE", p, {"GET", "PATCH"}),
                ("GET", p + "/status", {"POST"}),
                ("PATCH", p + "/severity", {"POST"}),
                ("DELETE", p + "/timeline", {"GET", "POST"}),
                ("GET", p + "/action-items/1/done", {"POST"}),
                ("POST", p + "/export", {"GET"}),
                ("POST", "/v1/severities", {"GET"}),
                ("PUT", "/v1/tokens", {"GET", "POST"}),
                ("POST", "/healthz", {"GET"})):
            with self.subTest(method=method, path=path):
                _, (st, hdrs, body) = self.rejected(method, path, {} if method != "GET" else None,
                                                    status=405, code="method_not_allowed")
                allow = hdrs.get("Allow")
                self.assertIsNotNone(allow, "405 without an Allow header")
                allowed = {m.strip().upper() for m in allow.split(",")}
                self.assertTrue(must_allow <= allowed, "Allow %r lacks %s" % (allow, must_allow))
                self.assertNotIn(method, allowed)

    # -- query parameters ------------------------------------------------------

    def test_bad_query_parameters(self):
        for q in ("limit=0", "limit=abc", "limit=1001", "limit=-1", "limit=1.5", "limit=",
                  "since=forever", "since=-1h", "since=", "status=bogus",
                  "severity=P9", "label=noequals", "label==x", "label=Bad=x", "open=banana"):
            with self.subTest(q=q):
                self.rejected("GET", "/v1/incidents?" + q)
        for q in ("limit=1000", "limit=1", "since=90s", "since=1h30m", "since=2d", "open=true",
                  "status=resolved", "severity=P2", "label=client=acme"):
            with self.subTest(good=q):
                self.assertStatus(self.d.http("GET", "/v1/incidents?" + q), 200, q)
        self.assertEqual(self.d.list_ids("?label=client=acme"), [self.base])
        self.assertEqual(self.d.list_ids("?status=resolved"), [self.resolved])


class CliErrors(KlaxonTestCase):

    def test_api_error_is_exit_1_one_line(self):
        d = self.d
        n = d.count()
        rc, out, err = d.cli("incident", "show", "INC-19990101-001")
        self.assertOneLineError(rc, out, err, 1, "show of a missing incident")
        self.assertEqual(out, "")
        rc, out, err = d.cli("incident", "declare", "--severity", "P9", "--title", "bad sev")
        lines = self.assertOneLineError(rc, out, err, 1, "declare with P9")
        self.assertIn("P9", lines[0], "the daemon's message is shown")
        rc, out, err = d.cli("incident", "declare", "--severity", "P2", "--title", "x",
                             "--started-at", "yesterday")
        self.assertIn(rc, (1, 2), err)
        self.assertTrue(err.startswith("klaxon: "), err)
        self.assertEqual(d.count(), n, "a failed declare stored something")
        iid = d.declare(title="cli errors")["id"]
        before = d.get(iid)
        for argv, codes in ((("incident", "status", iid, "investigating"), (1,)),
                            (("incident", "status", iid, "bogus"), (1, 2)),
                            (("incident", "severity", iid, "P9"), (1,)),
                            (("incident", "action-item", "done", iid, "7"), (1,)),
                            (("incident", "action-item", "add", iid, "--title", "t",
                              "--kind", "fix"), (1, 2)),
                            (("incident", "note", iid, "x", "--at", "yesterday"), (1, 2)),
                            (("incident", "reopen", iid), (1,))):
            rc, out, err = d.cli(*argv)
            self.assertIn(rc, codes, "%s: %r %r" % (argv, out, err))
            self.assertOneLineError(rc, out, err, rc, " ".join(argv))
        self.assertEqual(d.get(iid), before)

    def test_usage_errors_are_exit_2(self):
        d = self.d
        n = d.count()
        for argv in (("incident", "declare", "--severity", "P2"),
                     ("incident", "declare", "--title", "no severity"),
                     ("incident", "declare", "--severity", "P2", "--title", "t", "--label", "client"),
                     ("incident", "declare", "--severity", "P2", "--title", "t", "--bogus"),
                     ("incident", "declare", "--severity"),
                     ("incident", "list", "--limit"),
                     ("incident", "list", "--label", "noequals"),
                     ("incident", "show"),
                     ("incident", "frobnicate"),
                     ("frobnicate",),
                     ("token", "create", "--name", "x"),
                     ()):
            with self.subTest(argv=argv):
                rc, out, err = d.cli(*argv)
                self.assertEqual(rc, 2, "%s: exit %d %r %r" % (argv, rc, out, err))
                self.assertTrue(err.startswith("klaxon: "), "%s: %r" % (argv, err))
                self.assertIn("--help", err, "a usage error hints at --help: %r" % err)
        self.assertEqual(d.count(), n)

    def test_connection_refused(self):
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        for argv in (("incident", "list"), ("incident", "declare", "--severity", "P2",
                                            "--title", "nowhere")):
            rc, out, err = self.d.cli(*argv, url=url)
            lines = self.assertOneLineError(rc, out, err, 1, "connection refused")
            self.assertRegex(lines[0].lower(), r"connect|refused|reach",
                             "the message says the daemon cannot be reached: %r" % lines[0])

    def test_missing_token(self):
        rc, out, err = self.d.cli("incident", "list", token=None)
        self.assertIn(rc, (1, 2), "%r %r" % (out, err))
        self.assertTrue(err.startswith("klaxon: "), err)
        self.assertTrue(err.strip(), "a message on stderr")


if __name__ == "__main__":
    main()

"""Roles and label scopes: a token scoped to one client must not see or touch
another client's incidents (404, never 403), viewers cannot change anything,
only admins manage tokens, and bad credentials get 401."""

import base64
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KlaxonTestCase, ids_in, main  # noqa: E402

NO_SUCH_ID = "INC-19990101-001"


def foreign_requests(iid):
    """Every request a token could make on one incident: (method, path, body)."""
    p = "/v1/incidents/" + iid
    return [
        ("GET", p, None),
        ("GET", p + "/timeline", None),
        ("GET", p + "/action-items", None),
        ("GET", p + "/export", None),
        ("GET", p + "/export?format=md", None),
        ("GET", p + "/export?format=json", None),
        ("POST", p + "/status", {"status": "identified"}),
        ("POST", p + "/status", {"status": "investigating", "note": "reopen via status"}),
        ("POST", p + "/status", {"status": "monitoring", "version": 1}),
        ("POST", p + "/severity", {"severity": "P1"}),
        ("POST", p + "/roles", {"role": "commander", "person": "mallory"}),
        ("POST", p + "/roles", {"role": "commander", "person": "gina", "remove": True}),
        ("POST", p + "/acknowledge", {}),
        ("POST", p + "/impact", {"users": 1000}),
        ("POST", p + "/resolve", {"resolution": "closed by the wrong tenant"}),
        ("POST", p + "/reopen", {"note": "reopened by the wrong tenant"}),
        ("POST", p + "/timeline", {"text": "note from the wrong tenant"}),
        ("POST", p + "/action-items", {"title": "wrong tenant", "kind": "prevent"}),
        ("POST", p + "/action-items/1/done", {}),
        ("PATCH", p, {"title": "renamed by the wrong tenant"}),
        ("PATCH", p, {"labels": {"client": "acme"}}),
        ("PATCH", p, {"labels": {"client": None}}),
        ("PATCH", p, {"summary": "x", "version": 1}),
    ]


class Scope(KlaxonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.d
        cls.acme = d.create_token("responder", "acme-resp", {"client": "acme"})
        cls.globex = d.create_token("responder", "globex-resp", {"client": "globex"})
        cls.viewer = d.create_token("viewer", "vic")
        cls.resp = d.create_token("responder", "rita")

    def setUp(self):
        d = self.d
        # every incident of this test carries run=<id>, so queries can be
        # narrowed to them while the daemon is shared between tests
        self.run_id = uuid.uuid4().hex[:12]
        run = {"run": self.run_id}
        self.acme_inc = d.declare(token=self.acme, title="acme incident", labels=dict(run))["id"]
        self.acme_ig = d.declare(token=self.resp, title="acme on instagram",
                                 labels=dict(run, client="acme", platform="instagram"))["id"]
        self.globex_inc = d.declare(token=self.globex, title="globex incident", severity="P3",
                                    labels=dict(run))["id"]
        p = "/v1/incidents/" + self.globex_inc
        self.assertStatus(d.http("POST", p + "/roles", {"role": "commander", "person": "gina"},
                                 token=self.globex), 200)
        self.assertStatus(d.http("POST", p + "/action-items", {"title": "g1", "kind": "mitigate"},
                                 token=self.globex), 201)
        self.globex_done = d.declare(token=self.globex, title="globex resolved",
                                     labels=dict(run))["id"]
        self.assertStatus(d.http("POST", "/v1/incidents/%s/resolve" % self.globex_done,
                                 {"resolution": "fixed"}, token=self.globex), 200)
        self.globex_ig = d.declare(title="globex on instagram",
                                   labels=dict(run, client="globex", platform="instagram"))["id"]
        self.unlabeled = d.declare(token=self.resp, title="no client label",
                                   labels=dict(run))["id"]
        self.foreign = [self.globex_inc, self.globex_done, self.globex_ig, self.unlabeled]

    def state(self, ids=None):
        """What an unscoped admin sees: every incident in full, and the count."""
        d = self.d
        ids = ids if ids is not None else self.foreign
        return {"count": d.count(), **{i: d.get(i) for i in ids}}

    # -- listing ---------------------------------------------------------------

    def test_list_shows_only_own_tenant(self):
        d = self.d
        acme_ids = set(d.list_ids("?limit=1000", token=self.acme))
        self.assertIn(self.acme_inc, acme_ids)
        self.assertIn(self.acme_ig, acme_ids)
        for i in self.foreign:
            self.assertNotIn(i, acme_ids)
        st, _, js = d.http("GET", "/v1/incidents?limit=1000", token=self.acme)
        for inc in js["incidents"]:
            self.assertEqual(inc["labels"].get("client"), "acme", inc)
        queries = {
            "?label=platform=instagram": {self.acme_ig},
            "?label=client=globex": set(),
            "?label=client=acme&label=client=globex": set(),
            "?label=client=globex&label=platform=instagram": set(),
            "?status=resolved": set(),
            "?severity=P3": set(),
            "?open=true&limit=1000": None,
            "?since=1h&limit=1000": None,
        }
        for q, want in queries.items():
            got = set(d.list_ids(q, token=self.acme))
            for i in self.foreign:
                self.assertNotIn(i, got, "%s leaked %s" % (q, i))
            if want is not None:
                self.assertTrue(got >= want, q)
                if not want:
                    self.assertEqual(got, set(), q)
        run = "&label=run=" + self.run_id
        self.assertEqual(set(d.list_ids("?label=platform=instagram" + run, token=self.acme)),
                         {self.acme_ig})
        self.assertEqual(set(d.list_ids("?" + run[1:], token=self.acme)),
                         {self.acme_inc, self.acme_ig})
        self.assertEqual(set(d.list_ids("?" + run[1:], token=self.globex)),
                         {self.globex_inc, self.globex_done, self.globex_ig})
        self.assertEqual(set(d.list_ids("?" + run[1:], token=self.viewer)),
                         {self.acme_inc, self.acme_ig} | set(self.foreign))
        # the other tenant sees its own and not ours
        globex_ids = set(d.list_ids("?limit=1000", token=self.globex))
        self.assertTrue({self.globex_inc, self.globex_done, self.globex_ig} <= globex_ids)
        self.assertFalse({self.acme_inc, self.acme_ig, self.unlabeled} & globex_ids)
        # the CLI shows the same
        rc, out, err = d.cli("incident", "list", "--limit", "1000", token=self.acme, check=0)
        self.assertFalse(set(ids_in(out)) & set(self.foreign), out)
        rc, out, err = d.cli("incident", "list", "--label", "client=globex", token=self.acme, check=0)
        self.assertEqual(ids_in(out), [], out)

    # -- another tenant's incident ------------------------------------------

    def test_foreign_incident_is_404_and_unchanged(self):
        d = self.d
        before = self.state()
        missing = {}
        for method, path, body in foreign_requests(NO_SUCH_ID):
            missing[(method, path.replace(NO_SUCH_ID, "{id}"), json.dumps(body))] = \
                d.http(method, path, body, token=self.acme)
        for iid in self.foreign:
            for method, path, body in foreign_requests(iid):
                resp = d.http(method, path, body, token=self.acme)
                what = "acme token: %s %s %r" % (method, path, body)
                err = self.assertError(resp, 404, "not_found", what)
                # indistinguishable from an incident that does not exist
                other = missing[(method, path.replace(iid, "{id}"), json.dumps(body))]
                self.assertError(other, 404, "not_found", "%s on a missing incident" % method)
                self.assertEqual(err["message"].replace(iid, "{id}"),
                                 other[2]["error"]["message"].replace(NO_SUCH_ID, "{id}"),
                                 "the message must not reveal that %s exists (%s)" % (iid, what))
        # bad bodies on a foreign incident answer exactly as on a missing one
        for iid in self.foreign:
            for method, sub, raw in (("POST", "/status", '{"status": "bogus"}'),
                                     ("POST", "/severity", '{"severity": "P9"}'),
                                     ("POST", "/roles", '{"role": "overlord", "person": "x"}'),
                                     ("POST", "/timeline", '{"text": ""}'),
                                     ("POST", "/action-items/99/done", "{}"),
                                     ("POST", "/resolve", "{}"),
                                     ("PATCH", "", '{"labels": {"Bad Key": "x"}}'),
                                     ("POST", "/status", '{"status": '),
                                     ("GET", "/export?format=xml", None)):
                got = d.http(method, "/v1/incidents/%s%s" % (iid, sub), raw=raw, token=self.acme)
                ref = d.http(method, "/v1/incidents/%s%s" % (NO_SUCH_ID, sub), raw=raw,
                             token=self.acme)
                self.assertEqual(got[0], ref[0], "%s %s on a foreign incident: %r vs missing %r"
                                 % (method, sub, got[2], ref[2]))
                self.assertEqual(json.dumps(got[2]).replace(iid, "{id}"),
                                 json.dumps(ref[2]).replace(NO_SUCH_ID, "{id}"))
        after = self.state()
        for k in before:
            self.assertEqual(after[k], before[k], "%s changed by another tenant's token" % k)
        # the owner still sees and can change it: the 404s were about scope
        self.assertStatus(d.http("GET", "/v1/incidents/" + self.globex_inc, token=self.globex), 200)
        self.assertStatus(d.http("POST", "/v1/incidents/%s/status" % self.globex_inc,
                                 {"status": "identified"}, token=self.globex), 200)

    def test_foreign_incident_through_cli(self):
        d = self.d
        g = self.globex_inc
        before = self.state()
        for argv in (("incident", "show", g),
                     ("incident", "timeline", g),
                     ("incident", "status", g, "identified"),
                     ("incident", "severity", g, "P1"),
                     ("incident", "assign", g, "--role", "commander", "--to", "mallory"),
                     ("incident", "ack", g),
                     ("incident", "note", g, "hello from acme"),
                     ("incident", "impact", g, "--users", "5"),
                     ("incident", "resolve", g, "--resolution", "not yours"),
                     ("incident", "reopen", self.globex_done),
                     ("incident", "edit", g, "--title", "mine now"),
                     ("incident", "edit", g, "--label", "client=acme"),
                     ("incident", "action-item", "add", g, "--title", "x", "--kind", "detect"),
                     ("incident", "action-item", "list", g),
                     ("incident", "action-item", "done", g, "1"),
                     ("incident", "export", g),
                     ("incident", "export", g, "--format", "json")):
            rc, out, err = d.cli(*argv, token=self.acme)
            self.assertOneLineError(rc, out, err, 1, "acme: klaxon %s" % " ".join(argv))
            self.assertNotIn("globex incident", out + err)
        self.assertEqual(self.state(), before)

    # -- declaring ---------------------------------------------------------------

    def test_declare_outside_scope_is_403_and_stores_nothing(self):
        d = self.d
        n = d.count()
        for labels in ({"client": "globex"}, {"client": "Acme"}, {"client": "acme "},
                       {"client": "globex", "platform": "instagram"}):
            self.assertError(d.http("POST", "/v1/incidents",
                                    {"title": "sneaky", "severity": "P2", "labels": labels},
                                    token=self.acme), 403, "forbidden", "labels %r" % labels)
        rc, out, err = d.cli("incident", "declare", "--severity", "P2", "--title", "sneaky",
                             "--label", "client=globex", token=self.acme)
        self.assertOneLineError(rc, out, err, 1, "CLI declare outside scope")
        self.assertEqual(d.count(), n, "a refused declaration stored something")
        self.assertNotIn("sneaky", json.dumps(d.http("GET", "/v1/incidents?limit=1000")[2]))

    def test_declare_gets_scope_labels(self):
        d = self.d
        a = d.declare(token=self.acme, title="no labels given")
        self.assertEqual(a["labels"], {"client": "acme"})
        self.assertEqual(a["created_by"], "acme-resp")
        b = d.declare(token=self.acme, title="other labels", labels={"platform": "x"})
        self.assertEqual(b["labels"], {"client": "acme", "platform": "x"})
        c = d.declare(token=self.acme, title="own label", labels={"client": "acme"})
        self.assertEqual(c["labels"], {"client": "acme"})
        rc, out, err = d.cli("incident", "declare", "--severity", "P2", "--title", "via cli",
                             token=self.acme, check=0)
        iid = out.splitlines()[0].strip()
        self.assertEqual(d.get(iid)["labels"], {"client": "acme"})
        self.assertEqual(d.timeline(iid)[0]["author"], "acme-resp")

    def test_patch_cannot_drop_or_change_scope_label(self):
        d = self.d
        iid = self.acme_inc
        before = d.get(iid)
        for body in ({"labels": {"client": None}},
                     {"labels": {"client": "globex"}},
                     {"labels": {"client": "ACME"}},
                     {"title": "should not stick", "labels": {"client": None}},
                     {"labels": {"platform": "x", "client": "globex"}}):
            self.assertError(d.http("PATCH", "/v1/incidents/" + iid, body, token=self.acme),
                             403, "forbidden", "PATCH %r" % body)
            self.assertEqual(d.get(iid), before, "refused PATCH %r changed something" % body)
        rc, out, err = d.cli("incident", "edit", iid, "--unlabel", "client", token=self.acme)
        self.assertOneLineError(rc, out, err, 1, "CLI edit --unlabel client")
        self.assertEqual(d.get(iid), before)
        # other labels may change
        st, _, js = d.http("PATCH", "/v1/incidents/" + iid, {"labels": {"platform": "x"}},
                           token=self.acme)
        self.assertEqual(st, 200, js)
        self.assertEqual(js["labels"], {"client": "acme", "platform": "x", "run": self.run_id})
        # it is still visible to its tenant
        self.assertStatus(d.http("GET", "/v1/incidents/" + iid, token=self.acme), 200)

    def test_scope_matching_is_exact(self):
        d = self.d
        run = {"run": self.run_id}
        near = [d.declare(token=self.resp, title="near miss", labels=dict(run, **lab))["id"]
                for lab in ({"client": "acmecorp"}, {"client": "acm"}, {"client": "ACME"},
                            {"client": "acme%"}, {"client.": "acme"}, {"clients": "acme"},
                            {"note": '"client":"acme"'}, {"note": "client=acme"},
                            {"x": "acme", "client2": "acme"})]
        ids = set(d.list_ids("?limit=1000", token=self.acme))
        self.assertFalse(ids & set(near), "acme's scope matched near misses")
        for iid in near:
            self.assertError(d.http("GET", "/v1/incidents/" + iid, token=self.acme), 404, "not_found")
        # scope and filter values with SQL or glob wildcards match literally
        for value in ("ac%", "a_me", "%", "*", "acm?", "ac.*"):
            t = d.create_token("viewer", "wild-" + value, {"client": value})
            got = set(d.list_ids("?limit=1000", token=t))
            self.assertFalse(got & ({self.acme_inc, self.acme_ig} | set(self.foreign)),
                             "scope client=%s matched other clients" % value)
            got = set(d.list_ids("?limit=1000&label=client=" + value.replace("%", "%25"),
                                 token=self.viewer))
            self.assertFalse(got & {self.acme_inc, self.acme_ig, self.globex_inc},
                             "filter client=%s matched other clients" % value)

    def test_duplicate_keys_cannot_smuggle_a_scope_label(self):
        d = self.d
        n = d.count()
        raw = ('{"title": "dup", "severity": "P2", '
               '"labels": {"client": "acme", "client": "globex"}}')
        st, _, js = d.http("POST", "/v1/incidents", raw=raw, token=self.acme)
        if st == 201:
            self.assertEqual(js["labels"].get("client"), "acme", js)
            self.assertEqual(d.get(js["id"])["labels"].get("client"), "acme")
        else:
            self.assertIn(st, (400, 403), js)
            self.assertEqual(d.count(), n)
        before = d.get(self.acme_inc)
        raw = '{"labels": {"client": "acme", "client": "globex"}}'
        st, _, js = d.http("PATCH", "/v1/incidents/" + self.acme_inc, raw=raw, token=self.acme)
        self.assertIn(st, (200, 400, 403), js)
        after = d.get(self.acme_inc)
        self.assertEqual(after["labels"].get("client"), "acme", after)
        if st != 200:
            self.assertEqual(after, before)
        self.assertNotIn(self.acme_inc, d.list_ids("?limit=1000", token=self.globex))

    # -- roles ---------------------------------------------------------------------

    def test_viewer_reads_but_changes_nothing(self):
        d = self.d
        v = self.viewer
        iid = self.acme_inc
        for path in ("/v1/incidents", "/v1/incidents/" + iid, "/v1/incidents/%s/timeline" % iid,
                     "/v1/incidents/%s/action-items" % iid, "/v1/incidents/%s/export" % iid,
                     "/v1/incidents/%s/export?format=json" % iid, "/v1/severities", "/v1/types"):
            self.assertStatus(d.http("GET", path, token=v), 200, "viewer GET " + path)
        self.assertIn(self.globex_inc, d.list_ids("?limit=1000", token=v), "unscoped viewer sees all")
        self.assertStatus(d.http("POST", "/v1/incidents/%s/action-items" % iid,
                                 {"title": "a", "kind": "detect"}), 201)
        before = self.state([iid, self.globex_done])
        changes = [("POST", "/v1/incidents", {"title": "viewer", "severity": "P2"})]
        changes += [(m, p, b) for m, p, b in foreign_requests(iid) if m != "GET"]
        changes += [("POST", "/v1/incidents/%s/reopen" % self.globex_done, {})]
        for method, path, body in changes:
            self.assertError(d.http(method, path, body, token=v), 403, "forbidden",
                             "viewer %s %s %r" % (method, path, body))
        self.assertEqual(self.state([iid, self.globex_done]), before)
        for method, path, body in (("GET", "/v1/tokens", None),
                                   ("POST", "/v1/tokens", {"role": "admin", "name": "x"}),
                                   ("POST", "/v1/tokens", {"role": "viewer", "name": "y"}),
                                   ("DELETE", "/v1/tokens/" + self.acme["id"], None)):
            self.assertError(d.http(method, path, body, token=v), 403, "forbidden",
                             "viewer %s %s" % (method, path))
        self.assertStatus(d.http("GET", "/v1/incidents", token=self.acme), 200)
        rc, out, err = d.cli("incident", "declare", "--severity", "P2", "--title", "v", token=v)
        self.assertOneLineError(rc, out, err, 1, "viewer declares through the CLI")
        rc, out, err = d.cli("incident", "note", iid, "viewer note", token=v)
        self.assertOneLineError(rc, out, err, 1, "viewer notes through the CLI")
        self.assertEqual(self.state([iid, self.globex_done]), before)

    def test_responders_cannot_manage_tokens(self):
        d = self.d
        _, _, before = d.http("GET", "/v1/tokens")
        victim = d.create_token("viewer", "victim")
        for tok in (self.resp, self.acme):
            for method, path, body in (("GET", "/v1/tokens", None),
                                       ("POST", "/v1/tokens", {"role": "admin", "name": "x"}),
                                       ("POST", "/v1/tokens", {"role": "responder", "name": "y",
                                                               "labels": {"client": "acme"}}),
                                       ("DELETE", "/v1/tokens/" + victim["id"], None)):
                self.assertError(d.http(method, path, body, token=tok), 403, "forbidden",
                                 "%s: %s %s" % (tok["name"], method, path))
            rc, out, err = d.cli("token", "create", "--role", "admin", "--name", "z", token=tok)
            self.assertOneLineError(rc, out, err, 1, "responder token create")
        self.assertStatus(d.http("GET", "/v1/incidents", token=victim), 200)
        _, _, after = d.http("GET", "/v1/tokens")
        self.assertEqual(len(after["tokens"]), len(before["tokens"]) + 1)

    def test_scoped_admin(self):
        d = self.d
        sa = d.create_token("admin", "acme-admin", {"client": "acme"})
        _, _, before = d.http("GET", "/v1/tokens")
        for body in ({"role": "viewer", "name": "u"},
                     {"role": "admin", "name": "u"},
                     {"role": "responder", "name": "u", "labels": {}},
                     {"role": "responder", "name": "u", "labels": {"client": "globex"}},
                     {"role": "responder", "name": "u", "labels": {"platform": "instagram"}}):
            self.assertError(d.http("POST", "/v1/tokens", body, token=sa), 403, "forbidden",
                             "scoped admin creates %r" % body)
        _, _, after = d.http("GET", "/v1/tokens")
        self.assertEqual(len(after["tokens"]), len(before["tokens"]))
        t1 = d.create_token("responder", "acme-2", {"client": "acme"}, token=sa)
        self.assertEqual(t1["labels"], {"client": "acme"})
        t2 = d.create_token("viewer", "acme-ig", {"client": "acme", "platform": "instagram"}, token=sa)
        # a two-label scope sees only incidents carrying both labels
        self.assertEqual(set(d.list_ids("?limit=1000", token=t2)) & {self.acme_inc, self.acme_ig},
                         {self.acme_ig})
        self.assertError(d.http("GET", "/v1/incidents/" + self.acme_inc, token=t2), 404, "not_found")
        # the scoped admin is scoped for incidents as well
        ids = set(d.list_ids("?limit=1000", token=sa))
        self.assertFalse(ids & set(self.foreign))
        self.assertError(d.http("GET", "/v1/incidents/" + self.globex_inc, token=sa), 404, "not_found")
        # and cannot revoke another tenant's token
        st, _, js = d.http("DELETE", "/v1/tokens/" + self.globex["id"], token=sa)
        self.assertIn(st, (403, 404), "scoped admin revoked another tenant's token: %s %r" % (st, js))
        self.assertStatus(d.http("GET", "/v1/incidents", token=self.globex), 200)
        # CLI
        rc, out, err = d.cli("token", "create", "--role", "viewer", "--name", "w", token=sa)
        self.assertOneLineError(rc, out, err, 1, "scoped admin creates an unscoped token")
        rc, out, err = d.cli("token", "create", "--role", "viewer", "--name", "w",
                             "--label", "client=acme", token=sa, check=0)
        secret = out.splitlines()[0].strip()
        self.assertRegex(secret, r"^kx_\S+$", "the secret on its own line: %r" % out)
        self.assertStatus(d.http("GET", "/v1/incidents", token=secret), 200)

    # -- credentials -------------------------------------------------------------

    def test_revoked_token_is_401(self):
        d = self.d
        t = d.create_token("responder", "short-lived")
        self.assertStatus(d.http("GET", "/v1/incidents", token=t), 200)
        st, _, js = d.http("DELETE", "/v1/tokens/" + t["id"])
        self.assertEqual(st, 200, js)
        self.assertEqual(js["id"], t["id"])
        self.assertNotEqual(js.get("token"), t["token"], "the secret is shown only at creation")
        n = d.count()
        self.assertError(d.http("GET", "/v1/incidents", token=t), 401, "unauthorized")
        self.assertError(d.http("POST", "/v1/incidents", {"title": "x", "severity": "P2"}, token=t),
                         401, "unauthorized")
        self.assertEqual(d.count(), n)
        rc, out, err = d.cli("incident", "list", token=t)
        self.assertOneLineError(rc, out, err, 1, "revoked token through the CLI")
        self.assertError(d.http("DELETE", "/v1/tokens/tok_doesnotexist"), 404, "not_found")
        # the CLI revokes too
        t2 = d.create_token("viewer", "short-lived-2")
        d.cli("token", "revoke", t2["id"], check=0)
        self.assertError(d.http("GET", "/v1/incidents", token=t2), 401, "unauthorized")

    def test_bad_credentials_are_401(self):
        d = self.d
        admin = d.admin_token
        n = d.count()
        variants = {
            "missing": None,
            "garbage": "Bearer kx_garbage",
            "not kx": "Bearer hello",
            "empty bearer": "Bearer ",
            "bare scheme": "Bearer",
            "basic": "Basic " + base64.b64encode(b"admin:" + admin.encode()).decode(),
            "wrong scheme": "Token " + admin,
            "no scheme": admin,
            "truncated": "Bearer " + admin[:-1],
            "extended": "Bearer " + admin + "x",
            "two tokens": "Bearer kx_garbage " + admin,
        }
        for what, value in variants.items():
            hdr = {"Authorization": value}
            for method, path, body in (("GET", "/v1/incidents", None),
                                       ("POST", "/v1/incidents", {"title": "x", "severity": "P2"}),
                                       ("GET", "/v1/tokens", None),
                                       ("GET", "/v1/severities", None)):
                self.assertError(d.http(method, path, body, token=None, headers=hdr),
                                 401, "unauthorized", "%s: %s %s" % (what, method, path))
        self.assertEqual(d.count(), n)
        st, _, js = d.http("GET", "/healthz", token=None)
        self.assertEqual((st, js), (200, {"status": "ok"}))
        st, _, js = d.http("GET", "/readyz", token=None)
        self.assertEqual(st, 200, js)
        self.assertEqual(js["status"], "ready")
        rc, out, err = d.cli("incident", "list", token="kx_garbage")
        self.assertOneLineError(rc, out, err, 1, "garbage token through the CLI")

    def test_token_list_has_no_secrets(self):
        d = self.d
        t = d.create_token("viewer", "secretive", {"client": "acme"})
        st, _, js = d.http("GET", "/v1/tokens")
        self.assertEqual(st, 200, js)
        text = json.dumps(js)
        for secret in (t["token"], self.acme["token"], d.admin_token):
            self.assertNotIn(secret, text)
        mine = [x for x in js["tokens"] if x["id"] == t["id"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0]["name"], mine[0]["role"], mine[0]["labels"]),
                         ("secretive", "viewer", {"client": "acme"}))
        rc, out, err = d.cli("token", "list", check=0)
        self.assertIn("secretive", out)
        self.assertNotIn(t["token"], out)


if __name__ == "__main__":
    main()

"""Everything a user changes survives a restart of klaxond on the same data."""

import os
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BACKEND, KlaxonTestCase, id_seq, main, today_ymd  # noqa: E402


class Restart(KlaxonTestCase):
    fresh_daemon_per_test = True

    def snapshot(self, ids):
        d = self.d
        snap = {"list": d.http("GET", "/v1/incidents?limit=1000")[2]}
        for iid in ids:
            snap[iid] = d.get(iid)
            snap[iid + "/timeline"] = d.timeline(iid)
            snap[iid + "/items"] = d.http("GET", "/v1/incidents/%s/action-items" % iid)[2]
            snap[iid + "/export"] = d.http("GET", "/v1/incidents/%s/export?format=md" % iid)[2]
        st, _, toks = d.http("GET", "/v1/tokens")
        self.assertEqual(st, 200, toks)
        snap["tokens"] = toks
        return snap

    def test_state_survives_sigterm_and_restart(self):
        d = self.d
        tok_path = os.path.join(d.data_dir, "admin.token")
        mode = stat.S_IMODE(os.stat(tok_path).st_mode)
        self.assertEqual(mode, 0o600, "admin.token mode is %o" % mode)
        with open(tok_path) as f:
            admin_before = f.read()
        self.assertTrue(admin_before.strip().startswith("kx_"), admin_before)

        alice = d.create_token("responder", "alice", {"client": "acme"})
        viewer = d.create_token("viewer", "val")
        gone = d.create_token("responder", "gone")
        self.assertStatus(d.http("DELETE", "/v1/tokens/" + gone["id"]), 200)

        a = d.declare(token=alice, title="first", types=["ENGAGE"])["id"]
        b = d.declare(title="second", severity="P1", labels={"client": "globex"})["id"]
        c = d.declare(token=alice, title="third")["id"]
        p = "/v1/incidents/" + a
        for method, sub, body in (("POST", "/status", {"status": "identified", "note": "n1"}),
                                  ("POST", "/roles", {"role": "commander", "person": "alice"}),
                                  ("POST", "/impact", {"users": 7, "revenue": "EUR 1"}),
                                  ("POST", "/timeline", {"text": "a note that must survive"}),
                                  ("POST", "/action-items", {"title": "fix it", "kind": "prevent",
                                                             "due": "2026-12-24"}),
                                  ("POST", "/action-items/1/done", {}),
                                  ("PATCH", "", {"summary": "patched summary"})):
            st, _, js = d.http(method, p + sub, body, token=alice)
            self.assertIn(st, (200, 201), "%s %s -> %s %r" % (method, sub, st, js))
        self.assertStatus(d.http("POST", "/v1/incidents/%s/resolve" % b, {"resolution": "done"}), 200)
        before = self.snapshot([a, b, c])
        self.assertEqual(id_seq(c), (today_ymd(), 3))

        rc, killed = d.stop()
        self.assertFalse(killed, "klaxond did not exit within 10 s of SIGTERM")
        d.start()

        with open(tok_path) as f:
            self.assertEqual(f.read(), admin_before, "admin.token rewritten on restart")
        self.assertEqual(d.admin_token, admin_before.strip())
        self.assertEqual(stat.S_IMODE(os.stat(tok_path).st_mode), 0o600)
        after = self.snapshot([a, b, c])
        for k in before:
            self.assertEqual(after[k], before[k], "%s differs after restart" % k)

        # tokens still valid (with their scope), revoked ones still revoked
        st, _, js = d.http("GET", "/v1/incidents", token=alice)
        self.assertEqual(st, 200, js)
        self.assertEqual(sorted(i["id"] for i in js["incidents"]), sorted([a, c]))
        self.assertError(d.http("GET", "/v1/incidents/" + b, token=alice), 404, "not_found")
        self.assertStatus(d.http("GET", "/v1/incidents/" + b, token=viewer), 200)
        self.assertError(d.http("GET", "/v1/incidents", token=gone), 401, "unauthorized")
        rc, out, err = d.cli("incident", "show", a, token=alice, check=0)
        self.assertIn("a note that must survive", out)

        # the day's sequence continues
        nxt = d.declare(token=alice, title="after restart")["id"]
        self.assertEqual(id_seq(nxt), (today_ymd(), 4))
        # and the change after restart is stored too
        d.restart()
        self.assertEqual(d.get(nxt)["title"], "after restart")
        self.assertEqual(id_seq(d.declare(title="x")["id"]), (today_ymd(), 5))

    def test_sigterm_exits_cleanly_and_kill_loses_nothing_committed(self):
        d = self.d
        iid = d.declare(title="committed before kill")["id"]
        self.assertStatus(d.http("POST", "/v1/incidents/%s/timeline" % iid, {"text": "acked note"}), 201)
        # a 2xx means committed: even SIGKILL must not lose it
        d._kill()
        d.start()
        self.assertIn("acked note", [e["text"] for e in d.timeline(iid)])
        rc, killed = d.stop()
        self.assertFalse(killed)
        self.assertEqual(rc, 0, "klaxond should exit 0 on SIGTERM")

    def test_deleted_admin_token_file_is_not_a_new_admin(self):
        """docs/operations.md: the admin token is made only when the store has
        no token; deleting the file does not revoke it."""
        d = self.d
        old = d.admin_token
        _, _, toks = d.http("GET", "/v1/tokens")
        d.stop()
        os.unlink(os.path.join(d.data_dir, "admin.token"))
        d.start(read_token=False)
        path = os.path.join(d.data_dir, "admin.token")
        if os.path.exists(path):
            with open(path) as f:
                self.assertEqual(f.read().strip(), old, "a second admin token was made")
        self.assertEqual(d.http("GET", "/v1/tokens")[2], toks, "tokens changed on restart")

    def test_data_dir_is_created_private(self):
        d2 = self.new_daemon(make_data_dir=False)
        self.assertTrue(os.path.isdir(d2.data_dir))
        self.assertEqual(stat.S_IMODE(os.stat(d2.data_dir).st_mode), 0o700,
                         "docs/config.md: data_dir is created with mode 0700")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d2.data_dir, "admin.token")).st_mode),
                         0o600)

    def test_custom_db_path(self):
        dbdir = os.path.join(self.d.root, "elsewhere")
        os.mkdir(dbdir)
        dbpath = os.path.join(dbdir, "k.db")
        d2 = self.new_daemon(extra_args=["--db", "sqlite:" + dbpath])
        iid = d2.declare(title="in a custom db")["id"]
        self.assertTrue(os.path.exists(dbpath), "--db sqlite:PATH creates the database there")
        self.assertFalse(os.path.exists(os.path.join(d2.data_dir, "klaxon.db")),
                         "no database in the data dir when --db is given")
        d2.restart()
        self.assertEqual(d2.get(iid)["title"], "in a custom db")

    @unittest.skipUnless(BACKEND == "sqlite", "the default store is SQLite in the data dir")
    def test_default_db_location(self):
        self.d.declare(title="x")
        self.assertTrue(os.path.exists(os.path.join(self.d.data_dir, "klaxon.db")))


if __name__ == "__main__":
    main()

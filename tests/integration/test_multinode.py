"""Several klaxond on one PostgreSQL database (issue: PostgreSQL backend).

Runs only with KX_TEST_BACKEND=postgres (SQLite serves one daemon); under
the sqlite backend every test here is skipped.
"""
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BACKEND, Daemon, KlaxonTestCase, REPO_ROOT, id_seq, main, today_ymd  # noqa: E402

PG_SCRIPT = os.path.join(REPO_ROOT, "scripts", "pg-test-server")


@unittest.skipUnless(BACKEND == "postgres", "needs KX_TEST_BACKEND=postgres")
class TwoDaemons(KlaxonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # a second daemon on the first one's database
        cls.e = Daemon(extra_args=["--db", cls.d.db_url], start=False)
        cls.e.start(read_token=False)  # the first daemon made the only admin token
        cls.e.admin_token = cls.d.admin_token

    @classmethod
    def tearDownClass(cls):
        cls.e.cleanup()
        super().tearDownClass()

    def test_change_through_one_is_visible_through_the_other(self):
        inc = self.d.declare(title="seen everywhere", severity="P2")
        st, _, js = self.e.http("GET", "/v1/incidents/" + inc["id"])
        self.assertEqual(st, 200, js)
        self.assertEqual(js["title"], "seen everywhere")
        st, _, js = self.e.http("POST", "/v1/incidents/%s/status" % inc["id"],
                                {"status": "identified"})
        self.assertEqual(st, 200, js)
        st, _, js = self.d.http("GET", "/v1/incidents/" + inc["id"])
        self.assertEqual(js["status"], "identified")
        self.assertEqual([e["kind"] for e in js["timeline"]], ["declared", "status"])

    def test_only_one_admin_token_is_bootstrapped(self):
        self.assertFalse(os.path.exists(os.path.join(self.e.data_dir, "admin.token")),
                         "the second daemon found tokens in the store and made none")
        st, _, js = self.e.http("GET", "/v1/tokens")
        self.assertEqual(st, 200, js)
        self.assertEqual([t["name"] for t in js["tokens"]].count("admin"), 1)

    def test_concurrent_declarations_through_both(self):
        before = set(self.d.list_ids("?limit=1000"))

        def declare(i):
            daemon = self.d if i % 2 else self.e
            st, _, js = daemon.http("POST", "/v1/incidents",
                                    {"title": "burst %d" % i, "severity": "P3"})
            return st, js.get("id") if isinstance(js, dict) else None

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(declare, range(200)))
        self.assertTrue(all(st == 201 for st, _ in results), results[:5])
        ids = [i for _, i in results]
        self.assertEqual(len(set(ids)), 200, "no duplicate incident IDs")
        self.assertTrue(all(i.startswith("INC-%s-" % today_ymd()) for i in ids))
        after = set(self.d.list_ids("?limit=1000")) - before
        self.assertEqual(after, set(ids))
        seqs = sorted(id_seq(i)[1] for i in ids)
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 200)), "no gaps, no repeats")

    def test_concurrent_changes_are_never_lost(self):
        inc = self.d.declare(title="hammered", severity="P2")
        path = "/v1/incidents/%s" % inc["id"]

        def change(i):
            daemon = self.d if i % 2 else self.e
            if i % 3 == 0:
                return daemon.http("POST", path + "/impact", {"users": i})[0]
            return daemon.http("POST", path + "/timeline", {"text": "note %d" % i})[0]

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            codes = list(ex.map(change, range(120)))
        self.assertEqual(set(codes), {200, 201}, codes)
        tl = self.d.timeline(inc["id"])
        notes = [e["text"] for e in tl if e["kind"] == "note"]
        impacts = [e for e in tl if e["kind"] == "impact"]
        want_notes = ["note %d" % i for i in range(120) if i % 3]
        self.assertEqual(sorted(notes), sorted(want_notes), "every note exactly once")
        self.assertEqual(len(impacts), 40, "every impact change exactly once")
        st, _, js = self.e.http("GET", path)
        self.assertEqual(js["version"], 1 + 40, "each impact change bumped the version once")

    def test_stale_version_through_the_other_daemon_is_a_conflict(self):
        inc = self.d.declare(title="versioned", severity="P2")
        path = "/v1/incidents/%s/severity" % inc["id"]

        def bump(i):
            daemon = self.d if i % 2 else self.e
            return daemon.http("POST", path, {"severity": "P%d" % (i % 2), "version": 1})

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(bump, range(8)))
        codes = sorted(st for st, _, _ in results)
        self.assertEqual(codes.count(200), 1, codes)
        self.assertEqual(codes.count(409), 7, codes)
        for st, _, js in results:
            if st == 409:
                self.assertEqual(js["error"]["code"], "conflict")
                self.assertIn("version", js["error"]["message"])

    def test_revoking_on_one_daemon_takes_effect_on_the_other(self):
        tok = self.d.create_token("responder", "short-lived")["token"]
        # both daemons have the token cached after one use each
        for daemon in (self.d, self.e):
            self.assertEqual(daemon.http("GET", "/v1/incidents", token=tok)[0], 200)
        st, _, js = self.d.http("GET", "/v1/tokens")
        tid = [t["id"] for t in js["tokens"] if t["name"] == "short-lived"][0]
        t0 = time.monotonic()
        self.assertEqual(self.d.http("DELETE", "/v1/tokens/" + tid)[0], 200)
        deadline = t0 + 5
        while True:
            st = self.e.http("GET", "/v1/incidents", token=tok)[0]
            if st == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        delay_ms = (time.monotonic() - t0) * 1000
        print("revocation reached the other daemon in %.1f ms" % delay_ms)
        self.assertEqual(st, 401, "the other daemon stopped accepting the revoked token")
        self.assertLess(delay_ms, 1000)


@unittest.skipUnless(BACKEND == "postgres", "needs KX_TEST_BACKEND=postgres")
class LosingTheDatabase(unittest.TestCase):
    """Its own PostgreSQL server, stopped and started again under a daemon."""

    def setUp(self):
        self.pgdir = tempfile.mkdtemp(prefix="klaxon-pgloss-")
        r = subprocess.run([PG_SCRIPT, "start", self.pgdir], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.url = r.stdout.strip().splitlines()[-1]
        self.d = Daemon(extra_args=["--db", self.url])

    def tearDown(self):
        try:
            self.d.cleanup()
        finally:
            subprocess.run([PG_SCRIPT, "stop", self.pgdir], capture_output=True, timeout=60)
            shutil.rmtree(self.pgdir, ignore_errors=True)

    def test_unavailable_then_back_by_itself(self):
        iid = self.d.declare(title="before the outage")["id"]
        r = subprocess.run([PG_SCRIPT, "stop", self.pgdir], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

        t0 = time.monotonic()
        st, _, js = self.d.http("GET", "/readyz")
        self.assertEqual(st, 503, js)
        self.assertEqual(js["status"], "unavailable")
        self.assertLess(time.monotonic() - t0, 8, "readyz answers quickly, no hang")
        self.assertEqual(self.d.http("GET", "/healthz")[0], 200, "still alive")
        for method, path, body in (("GET", "/v1/incidents/" + iid, None),
                                   ("POST", "/v1/incidents", {"title": "x", "severity": "P2"}),
                                   ("POST", "/v1/incidents/%s/timeline" % iid, {"text": "n"})):
            t0 = time.monotonic()
            st, _, js = self.d.http(method, path, body)
            self.assertEqual(st, 503, (method, path, js))
            self.assertEqual(js["error"]["code"], "unavailable")
            self.assertIn("database", js["error"]["message"])
            self.assertLess(time.monotonic() - t0, 8)
        rc, out, err = self.d.cli("incident", "list")
        self.assertEqual(rc, 1)
        self.assertIn("unavailable", err)

        r = subprocess.run([PG_SCRIPT, "start", self.pgdir], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.d.http("GET", "/readyz")[0] == 200:
                break
            time.sleep(0.2)
        self.assertEqual(self.d.http("GET", "/readyz")[0], 200, "ready again by itself")
        st, _, js = self.d.http("GET", "/v1/incidents/" + iid)
        self.assertEqual(st, 200, js)
        self.assertEqual(self.d.http("POST", "/v1/incidents/%s/timeline" % iid,
                                     {"text": "after the outage"})[0], 201)


if __name__ == "__main__":
    main()

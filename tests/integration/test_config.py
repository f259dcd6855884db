"""The YAML config: custom severities and types are served and enforced, and a
config with an error stops klaxond with FILE:LINE:COL: on stderr."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KLAXOND, HOST, KlaxonTestCase, free_port, main  # noqa: E402

CUSTOM = """\
# a team's own scheme
severities:
  - name: SEV1
    description: Critical, customers affected
    response_time: 15m
    update_every: 30m
    pages: true
    postmortem: required
  - name: SEV2
    description: Major
    response_time: 1h
    update_every: 2h
    pages: false
    postmortem: optional
  - name: SEV3
    description: Minor
    response_time: 1d
    update_every: 1d
    pages: false
    postmortem: none
types:
  - name: WIDGET
    description: Widgets misbehaving
  - name: GADGET
    description: Gadgets misbehaving
max_body_bytes: 4096
"""


class CustomConfig(KlaxonTestCase):
    config = CUSTOM

    def test_custom_severities_are_served_in_order(self):
        st, _, js = self.d.http("GET", "/v1/severities")
        self.assertEqual(st, 200, js)
        sev = js["severities"]
        self.assertEqual([s["name"] for s in sev], ["SEV1", "SEV2", "SEV3"])
        self.assertEqual([s["rank"] for s in sev], [0, 1, 2])
        s1 = sev[0]
        self.assertEqual((s1["description"], s1["response_time"], s1["update_every"],
                          s1["pages"], s1["postmortem"]),
                         ("Critical, customers affected", "15m", "30m", True, "required"))
        self.assertEqual((sev[1]["pages"], sev[1]["postmortem"], sev[1]["response_time"]),
                         (False, "optional", "1h"))
        self.assertEqual(sev[2]["postmortem"], "none")
        rc, out, err = self.d.cli("severity", "list", check=0)
        for n in ("SEV1", "SEV2", "SEV3"):
            self.assertIn(n, out)

    def test_custom_types(self):
        st, _, js = self.d.http("GET", "/v1/types")
        self.assertEqual(st, 200, js)
        names = [t["name"] for t in js["types"]]
        self.assertIn("WIDGET", names)
        self.assertIn("GADGET", names)
        widget = [t for t in js["types"] if t["name"] == "WIDGET"][0]
        self.assertEqual(widget["description"], "Widgets misbehaving")

    def test_custom_scheme_is_enforced(self):
        d = self.d
        inc = d.declare(severity="SEV2", types=["WIDGET"])
        self.assertEqual((inc["severity"], inc["types"]), ("SEV2", ["WIDGET"]))
        st, _, js = d.http("POST", "/v1/incidents/%s/severity" % inc["id"], {"severity": "SEV1"})
        self.assertEqual(st, 200, js)
        n = d.count()
        for body in ({"title": "x", "severity": "P2"}, {"title": "x", "severity": "SEV4"},
                     {"title": "x", "severity": "SEV1", "types": ["NOPE"]}):
            self.assertError(d.http("POST", "/v1/incidents", body), 400, "invalid", repr(body))
        self.assertEqual(d.count(), n)
        self.assertEqual(d.list_ids("?severity=SEV1"), [inc["id"]])
        self.assertError(d.http("GET", "/v1/incidents?severity=P2"), 400, "invalid")

    def test_max_body_bytes_from_config(self):
        d = self.d
        n = d.count()
        body = '{"title": "x", "severity": "SEV1", "summary": "%s"}' % ("a" * 5000)
        self.assertError(d.http("POST", "/v1/incidents", raw=body), 413, "too_large")
        self.assertEqual(d.count(), n)
        body = '{"title": "x", "severity": "SEV1", "summary": "%s"}' % ("a" * 3000)
        self.assertEqual(d.http("POST", "/v1/incidents", raw=body)[0], 201)


class BadConfig(KlaxonTestCase):
    """Each bad config must stop klaxond (non-zero exit) with FILE:LINE:COL."""

    @classmethod
    def setUpClass(cls):
        cls.daemons = []
        cls.d = None

    def start_with(self, text):
        root = tempfile.mkdtemp(prefix="klaxon-itest-cfg-")
        self.addCleanup(shutil.rmtree, root, True)
        path = os.path.join(root, "klaxon.yaml")
        with open(path, "w") as f:
            f.write(text)
        data = os.path.join(root, "data")
        os.mkdir(data)
        port = free_port()
        try:
            p = subprocess.run([KLAXOND, "--listen", "%s:%d" % (HOST, port), "--data-dir", data,
                                "--config", path], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("klaxond kept running with a bad config:\n" + text)
        err = p.stderr.decode("utf-8", "replace")
        return p.returncode, err, path

    def assertConfigError(self, text, line, words=()):
        rc, err, path = self.start_with(text)
        self.assertNotEqual(rc, 0, "klaxond accepted:\n%s\nstderr: %s" % (text, err))
        m = re.search(re.escape(path) + r":(\d+):(\d+): (.+)", err)
        self.assertIsNotNone(m, "stderr lacks %s:LINE:COL: message\n%s" % (path, err))
        self.assertEqual(int(m.group(1)), line, "wrong line in: %s" % m.group(0))
        self.assertGreaterEqual(int(m.group(2)), 1)
        for w in words:
            self.assertIn(w, m.group(3), "message should mention %r: %s" % (w, m.group(0)))
        self.assertNotIn("Segmentation", err)
        return m.group(0)

    def test_bad_duration(self):
        self.assertConfigError("severities:\n  - name: P1\n    response_time: soon\n", 3,
                               ("response_time",))

    def test_bad_values(self):
        self.assertConfigError("severities:\n  - name: P1\n    response_time: 5m\n"
                               "    pages: sometimes\n", 4, ("pages",))
        self.assertConfigError("severities:\n  - name: P1\n    postmortem: maybe\n", 3,
                               ("postmortem",))
        self.assertConfigError("max_body_bytes: lots\n", 1, ("max_body_bytes",))
        self.assertConfigError("max_body_bytes: -5\n", 1, ("max_body_bytes",))
        self.assertConfigError("severities:\n  - description: no name\n", 2)
        self.assertConfigError("severities:\n  - name: P1\n  - name: P1\n", 3, ("P1",))
        self.assertConfigError("severities: P1\n", 1, ("severities",))
        # unknown keys are errors (docs/config.md), so typos never pass
        self.assertConfigError("lisen: 127.0.0.1:1\n", 1, ("lisen",))
        self.assertConfigError("types:\n  - name: A\n    colour: red\n", 3, ("colour",))

    def test_yaml_syntax_error(self):
        self.assertConfigError("severities:\n  - name: P1\n   bad: [unclosed\n", 3)

    def test_missing_config_file(self):
        root = tempfile.mkdtemp(prefix="klaxon-itest-cfg-")
        self.addCleanup(shutil.rmtree, root, True)
        p = subprocess.run([KLAXOND, "--listen", "%s:%d" % (HOST, free_port()),
                            "--data-dir", root, "--config", os.path.join(root, "nope.yaml")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("nope.yaml", p.stderr.decode())


if __name__ == "__main__":
    main()

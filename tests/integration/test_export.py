"""The incident record export: Markdown in the seed runbook's shape, and JSON."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KlaxonTestCase, main  # noqa: E402

SECTIONS = ["## Summary", "## Timeline", "## Impact", "## Root Cause", "## Resolution",
            "## Action Items"]


def section(md, heading):
    """The text of one `## ` section (without its heading)."""
    m = re.search(r"^%s[ \t]*$" % re.escape(heading), md, re.M)
    if not m:
        return None
    rest = md[m.end():]
    n = re.search(r"^## ", rest, re.M)
    return rest[:n.start()] if n else rest


class Export(KlaxonTestCase):

    def setUp(self):
        d = self.d
        self.inc = d.declare(title="Duplicate comments sent", severity="P2",
                             types=["ENGAGE"], labels={"client": "acme"},
                             summary="Dedupe check failed",
                             detected_at="2026-01-15T14:30:00Z",
                             started_at="2026-01-15T14:00:00Z")
        self.iid = self.inc["id"]
        p = "/v1/incidents/" + self.iid
        self.assertStatus(d.http("POST", p + "/roles", {"role": "commander", "person": "alice"}), 200)
        self.assertStatus(d.http("POST", p + "/timeline", {"text": "automation stopped"}), 201)
        self.assertStatus(d.http("POST", p + "/impact",
                                 {"users": 15, "accounts": 1, "actions": 15,
                                  "description": "15 duplicate comments posted"}), 200)
        self.assertStatus(d.http("POST", p + "/action-items",
                                 {"title": "Delete duplicate comments", "kind": "mitigate"}), 201)
        self.assertStatus(d.http("POST", p + "/action-items",
                                 {"title": "Fix dedupe logic", "kind": "prevent", "owner": "dev"}), 201)
        self.assertStatus(d.http("POST", p + "/action-items/1/done", {}), 200)

    def export_md(self, *extra):
        rc, out, err = self.d.cli("incident", "export", self.iid, *extra, check=0)
        return out

    def assertSectionsInOrder(self, md):
        first = md.lstrip().splitlines()[0]
        self.assertEqual(first.strip(), "# Incident %s: Duplicate comments sent" % self.iid, md)
        pos = []
        for h in SECTIONS:
            m = re.search(r"^%s[ \t]*$" % re.escape(h), md, re.M)
            self.assertIsNotNone(m, "missing %r in:\n%s" % (h, md))
            pos.append(m.start())
        self.assertEqual(pos, sorted(pos), "sections out of order:\n" + md)

    def test_markdown_before_resolution(self):
        md = self.export_md()
        self.assertSectionsInOrder(md)
        summ = section(md, "## Summary")
        self.assertRegex(summ, r"\*\*Severity\*\*:?\s*P2")
        self.assertRegex(summ, r"(?i)\*\*Status\*\*:?\s*investigating")
        self.assertRegex(summ, r"\*\*Detected\*\*:?\s*2026-01-15")
        self.assertRegex(summ, r"\*\*Resolved\*\*:?\s*\[pending\]")
        self.assertIn("alice", md, "the commander appears in the record")
        self.assertIn("automation stopped", section(md, "## Timeline"))
        self.assertIn("15 duplicate comments posted", section(md, "## Impact"))
        self.assertEqual(section(md, "## Root Cause").strip(), "[To be determined]")
        self.assertEqual(section(md, "## Resolution").strip(), "[To be documented]")
        items = section(md, "## Action Items")
        self.assertRegex(items, r"(?m)^- \[x\] .*Delete duplicate comments")
        self.assertRegex(items, r"(?m)^- \[ \] .*Fix dedupe logic")

        # --format md is the default; --output writes the same to a file
        self.assertEqual(self.export_md("--format", "md"), md)
        path = os.path.join(self.d.root, "record.md")
        rc, out, err = self.d.cli("incident", "export", self.iid, "--output", path, check=0)
        with open(path) as f:
            self.assertEqual(f.read(), md)

    def test_markdown_after_resolution(self):
        d = self.d
        self.assertStatus(d.http("POST", "/v1/incidents/%s/resolve" % self.iid,
                                 {"resolution": "fixed the dedupe query",
                                  "root_cause": "cache skipped after deploy"}), 200)
        self.assertStatus(d.http("POST", "/v1/incidents/%s/action-items/2/done" % self.iid, {}), 200)
        md = self.export_md()
        self.assertSectionsInOrder(md)
        summ = section(md, "## Summary")
        self.assertNotRegex(summ, r"\*\*Resolved\*\*:?\s*\[pending\]")
        self.assertRegex(summ, r"\*\*Resolved\*\*:?\s*\d{4}-\d{2}-\d{2}")
        self.assertRegex(summ, r"(?i)\*\*Status\*\*:?\s*resolved")
        self.assertIn("cache skipped after deploy", section(md, "## Root Cause"))
        self.assertNotIn("[To be determined]", md)
        self.assertIn("fixed the dedupe query", section(md, "## Resolution"))
        self.assertNotIn("[To be documented]", md)
        items = section(md, "## Action Items")
        self.assertNotIn("- [ ]", items)
        self.assertEqual(len(re.findall(r"(?m)^- \[x\] ", items)), 2, items)

    def test_json_export(self):
        rc, out, err = self.d.cli("incident", "export", self.iid, "--format", "json", check=0)
        js = json.loads(out)
        self.assertEqual(js["id"], self.iid)
        self.assertEqual(js["title"], "Duplicate comments sent")
        self.assertIn("automation stopped", [e["text"] for e in js["timeline"]
                                             if e["kind"] == "note"])
        self.assertEqual([(i["number"], i["status"]) for i in js["action_items"]],
                         [(1, "done"), (2, "open")])
        st, hdrs, body = self.d.http("GET", "/v1/incidents/%s/export?format=json" % self.iid)
        self.assertEqual(st, 200, body)
        self.assertIn("application/json", hdrs.get("Content-Type", ""))
        self.assertEqual(body["id"], self.iid)
        self.assertIn("timeline", body)
        self.assertIn("action_items", body)

    def test_http_markdown(self):
        d = self.d
        for q in ("?format=md", ""):
            st, hdrs, body = d.http("GET", "/v1/incidents/%s/export%s" % (self.iid, q))
            self.assertEqual(st, 200, body)
            self.assertTrue(hdrs.get("Content-Type", "").startswith("text/markdown"),
                            hdrs.get("Content-Type"))
            self.assertIsInstance(body, str)
            self.assertTrue(body.lstrip().startswith("# Incident %s: " % self.iid), body)
        self.assertEqual(body, self.export_md(), "the CLI prints what the API serves")

    def test_bad_format_and_unknown_incident(self):
        d = self.d
        for q in ("?format=xml", "?format=", "?format=MD"):
            self.assertError(d.http("GET", "/v1/incidents/%s/export%s" % (self.iid, q)),
                             400, "invalid", q)
        self.assertError(d.http("GET", "/v1/incidents/INC-19990101-001/export"), 404, "not_found")
        rc, out, err = d.cli("incident", "export", self.iid, "--format", "xml")
        self.assertIn(rc, (1, 2), "bad --format fails: %r %r" % (out, err))
        self.assertTrue(err.startswith("klaxon: "), err)
        rc, out, err = d.cli("incident", "export", "INC-19990101-001")
        self.assertOneLineError(rc, out, err, 1, "export of an unknown incident")


if __name__ == "__main__":
    main()

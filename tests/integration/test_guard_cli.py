"""The guardrail commands of the klaxon CLI against a real daemon: the
emergency stop and its switches (stop, resume, switch list/show/set/clear/
watch), caps, the gate's exit statuses, approvals, and attaching audit
evidence to an incident.

Every test works on a client of its own (uniq()), so that the switches and
caps of one test never decide the actions of another; nothing here sets a
switch over everything on the shared daemon.
"""

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KLAXON, KlaxonTestCase, main  # noqa: E402

SW_RE = re.compile(r"\bsw_[0-9a-f]+\b")
APR_RE = re.compile(r"\bapr_[0-9a-f]+\b")

DENY, APPROVAL = 3, 4


def uniq(prefix="c"):
    return "%s%s" % (prefix, uuid.uuid4().hex[:10])


class GuardCli(KlaxonTestCase):

    # -- helpers -------------------------------------------------------------

    def ok(self, *args, **kw):
        rc, out, err = self.d.cli(*args, **kw)
        self.assertEqual(rc, 0, "klaxon %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), rc, out, err))
        return out

    def js(self, *args, check=0, **kw):
        rc, out, err = self.d.cli("--json", *args, **kw)
        self.assertEqual(rc, check, "klaxon --json %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), rc, out, err))
        return json.loads(out)

    def stop(self, *args):
        out = self.ok("stop", *args)
        self.assertTrue(out.startswith("stopped: sw_"), out)
        return SW_RE.search(out).group(0), out

    def gate(self, client, *labels, extra=()):
        args = ["gate", "check", "--label", "client=" + client]
        for l in labels:
            args += ["--label", l]
        return self.d.cli(*(args + list(extra)))

    def switch_ids(self, all_=False):
        args = ["switch", "list"] + (["--all"] if all_ else [])
        return [s["id"] for s in self.js(*args)["switches"]]

    # -- help ----------------------------------------------------------------

    def test_help_everywhere(self):
        out = self.ok("--help")
        for name in ("stop", "resume", "switch", "cap", "gate", "approval"):
            self.assertRegex(out, r"(?m)^  %s\s" % name)
        self.assertIn("exits 3", out)
        paths = [
            ["stop"], ["resume"], ["switch"], ["switch", "list"], ["switch", "show"],
            ["switch", "set"], ["switch", "clear"], ["switch", "watch"], ["cap"],
            ["cap", "list"], ["cap", "set"], ["cap", "clear"], ["gate"], ["gate", "check"],
            ["approval"], ["approval", "list"], ["approval", "show"], ["approval", "approve"],
            ["approval", "deny"], ["incident", "evidence"],
        ]
        for p in paths:
            for flag in ("--help", "-h"):
                rc, out, err = self.d.cli(*(p + [flag]))
                self.assertEqual(rc, 0, "%s %s: %s" % (p, flag, err))
                self.assertTrue(out.startswith("usage: klaxon " + " ".join(p)), out)
                self.assertEqual(err, "")
        self.assertIn("exit status: 0 allow, 3 deny, 4 approval required".lower(),
                      self.ok("gate", "check", "--help").lower().replace("\n", " "))
        self.assertIn("evidence", self.ok("incident", "--help"))

    # -- stop, gate, resume, clear -------------------------------------------

    def test_stop_gate_resume_clear(self):
        c = uniq()
        sw, out = self.stop("--client", c, "--platform", "instagram",
                            "--reason", "duplicate comments")
        self.assertEqual(out.strip(), "stopped: %s block client=%s,platform=instagram (in force now)"
                         % (sw, c))

        listing = self.ok("switch", "list")
        self.assertRegex(listing, r"(?m)^ID\s+MODE\s+SELECTOR\s+REASON\s+SET BY\s+SET AT\s+EXPIRES")
        row = [l for l in listing.splitlines() if sw in l]
        self.assertEqual(len(row), 1, listing)
        self.assertIn("client=%s,platform=instagram" % c, row[0])
        self.assertIn("duplicate comments", row[0])
        self.assertIn(sw, self.switch_ids())

        rc, out, err = self.gate(c, "platform=instagram", "action=comment")
        self.assertEqual(rc, DENY, out + err)
        self.assertTrue(out.startswith("deny: switch %s" % sw), out)
        self.assertIn("duplicate comments", out)
        rc, out, err = self.gate(uniq(), "platform=instagram", "action=comment")
        self.assertEqual((rc, out.strip()), (0, "allow"), err)
        rc, out, err = self.gate(c, "platform=tiktok", "action=comment")
        self.assertEqual((rc, out.strip()), (0, "allow"), err)
        # --json prints the daemon's answer and keeps the exit status
        d = self.js("gate", "check", "--label", "client=" + c, "--label", "platform=instagram",
                    check=DENY)
        self.assertEqual((d["decision"], d["by"], d["id"]), ("deny", "switch", sw))

        out = self.ok("resume", sw, "--ramp", "30m", "--floor", "1", "--peak", "60",
                      "--window", "1m", "--reason", "dedupe fixed")
        self.assertTrue(out.startswith("resumed: %s ramping up, 1 to 60 actions per 1m" % sw), out)
        show = self.ok("switch", "show", sw)
        self.assertRegex(show, r"(?m)^State:\s+ramping$")
        self.assertRegex(show, r"(?m)^Ramp:\s+1 to 60 actions per 1m, ")
        self.assertRegex(show, r"(?m)^Selector:\s+client=%s,platform=instagram$" % c)
        ramp = self.js("switch", "show", sw)["switch"]["ramp"]
        self.assertEqual((ramp["floor"], ramp["peak"], ramp["window"]), (1, 60, "1m"))
        # the ramp lets the floor through, then limits
        rc, out, _ = self.gate(c, "platform=instagram", "action=comment")
        self.assertEqual(rc, 0, out)
        rc, out, _ = self.gate(c, "platform=instagram", "action=comment")
        self.assertEqual(rc, DENY, out)
        self.assertIn("retry in", out)

        out = self.ok("switch", "clear", sw, "--reason", "all good")
        self.assertEqual(out.strip(), "cleared: %s block client=%s,platform=instagram (cleared)"
                         % (sw, c))
        self.assertNotIn(sw, self.switch_ids())
        self.assertIn(sw, self.switch_ids(all_=True))
        full = self.ok("switch", "list", "--all")
        self.assertRegex(full, r"(?m)^%s\s.*\scleared$" % sw)
        show = self.ok("switch", "show", sw)
        self.assertRegex(show, r"(?m)^Clear reason:\s+all good$")
        rc, out, _ = self.gate(c, "platform=instagram", "action=comment")
        self.assertEqual(rc, 0, out)

    def test_resume_at_once(self):
        c = uniq()
        sw, _ = self.stop("--client", c, "--reason", "r")
        out = self.ok("resume", sw)
        self.assertEqual(out.strip(), "resumed: %s block client=%s lifted now" % (sw, c))
        self.assertNotIn(sw, self.switch_ids())
        rc, out, _ = self.gate(c, "action=dm")
        self.assertEqual(rc, 0, out)

    def test_stop_by_every_filter_and_quoting(self):
        c = "Acme, Inc (%s)" % uniq()
        sw, out = self.stop("--client", c, "--account", "@brand", "--lane", "browser",
                            "--action", "dm", "--label", "campaign=spring", "--reason", "r")
        sel = self.js("switch", "show", sw)["switch"]["selector"]
        for part in ("account=@brand", "action=dm", "campaign=spring", "lane=browser"):
            self.assertIn(part, sel)
        rc, out, _ = self.gate(c, "account=@brand", "lane=browser", "action=dm", "campaign=spring")
        self.assertEqual(rc, DENY, out)
        rc, out, _ = self.gate(c, "account=@brand", "lane=browser", "action=comment",
                               "campaign=spring")
        self.assertEqual(rc, 0, out)
        self.ok("switch", "clear", sw)

    def test_stop_with_selector_mode_and_expiry(self):
        c = uniq()
        sw, out = self.stop("--client", c, "--selector", "action in (dm,comment)",
                            "--mode", "read_only", "--expires", "2h", "--reason", "r")
        self.assertIn("read_only", out)
        self.assertRegex(out, r"\(in force until \d{4}-\d\d-\d\d \d\d:\d\d UTC\)")
        got = self.js("switch", "show", sw)["switch"]
        self.assertEqual(got["mode"], "read_only")
        self.assertIsNotNone(got["expires_at"])
        rc, out, _ = self.gate(c, "action=dm")
        self.assertEqual(rc, DENY, out)
        rc, out, _ = self.gate(c, "action=dm", extra=["--read"])
        self.assertEqual(rc, 0, out)
        rc, out, _ = self.gate(c, "action=like")
        self.assertEqual(rc, 0, out)
        self.ok("switch", "clear", sw)

    def test_switch_set_and_incident_link(self):
        c = uniq()
        inc = self.d.declare(title="runaway replies")["id"]
        out = self.ok("switch", "set", "--selector", "client=%s,action=dm" % c, "--mode", "block",
                      "--reason", "reply loop", "--incident", inc)
        self.assertTrue(out.startswith("set: sw_"), out)
        sw = SW_RE.search(out).group(0)
        self.assertEqual(self.js("switch", "show", sw)["switch"]["incident"], inc)
        self.assertRegex(self.ok("switch", "show", sw), r"(?m)^Incident:\s+%s$" % inc)
        self.assertIn(sw, self.ok("incident", "timeline", inc))
        self.ok("switch", "clear", sw)

    # -- refusals and errors ----------------------------------------------------

    def test_stop_without_filter_needs_all(self):
        before = self.switch_ids(all_=True)
        rc, out, err = self.d.cli("stop", "--reason", "oops")
        lines = self.assertOneLineError(rc, out, err, code=2)
        self.assertIn("everything", lines[0])
        self.assertIn("--all", lines[0])
        self.assertIn("klaxon stop --help", err)
        for args in (["stop", "--selector", "", "--reason", "x"],
                     ["stop", "--selector", "  ", "--reason", "x"],
                     ["stop", "--all", "--client", "x", "--reason", "x"],
                     ["switch", "set", "--selector", "", "--mode", "block", "--reason", "x"]):
            rc, out, err = self.d.cli(*args)
            self.assertOneLineError(rc, out, err, code=2, msg=" ".join(args))
            self.assertIn("--all", err)
        self.assertEqual(self.switch_ids(all_=True), before)

    def test_usage_errors(self):
        cases = [
            ["stop", "--client", "x", "--reason", "r", "--mode", "stop"],
            ["stop", "--client", "x", "--reason", "r", "--expires", "soon"],
            ["stop", "--client", "x", "--label", "client=y", "--reason", "r"],
            ["stop", "--client", "x", "--label", "oops", "--reason", "r"],
            ["stop", "--client", "x"],
            ["resume", "sw_0000000000000000", "--floor", "3"],
            ["resume", "sw_0000000000000000", "--ramp", "soon"],
            ["resume", "sw_0000000000000000", "--ramp", "30m", "--peak", "-1"],
            ["gate", "check"],
            ["gate", "check", "--label", "noequals"],
            ["approval", "list", "--limit", "0"],
            ["cap", "set", "only-id"],
            ["incident", "evidence", "INC-20261125-001"],
            ["incident", "evidence", "INC-20261125-001", "--audit", "--since", "yesterday"],
            ["switch", "show"],
        ]
        for args in cases:
            rc, out, err = self.d.cli(*args)
            self.assertOneLineError(rc, out, err, code=2, msg=" ".join(args))

    def test_daemon_errors_are_one_line(self):
        c = uniq()
        rc, out, err = self.d.cli("stop", "--client", c, "--selector", "client2=a platform=x",
                                  "--reason", "r")
        lines = self.assertOneLineError(rc, out, err, msg="bad selector")
        self.assertIn("selector", lines[0])
        rc, out, err = self.d.cli("switch", "set", "--selector", "client=(", "--mode", "block",
                                  "--reason", "r")
        lines = self.assertOneLineError(rc, out, err, msg="bad selector")
        self.assertIn("selector", lines[0])
        for args in (["switch", "show", "sw_0000000000000000"],
                     ["switch", "clear", "sw_0000000000000000"],
                     ["resume", "sw_0000000000000000"],
                     ["approval", "show", "apr_0000000000000000"],
                     ["approval", "approve", "apr_0000000000000000"],
                     ["cap", "clear", "no-such-cap-" + c],
                     ["cap", "set", "bad-" + c, "not a spec"],
                     ["incident", "evidence", "INC-20000101-999", "--audit"]):
            rc, out, err = self.d.cli(*args)
            self.assertOneLineError(rc, out, err, msg=" ".join(args))
        # a viewer may look but not stop
        viewer = self.d.create_token("viewer", "viewer-" + c)
        rc, out, err = self.d.cli("stop", "--client", c, "--reason", "r", token=viewer)
        self.assertOneLineError(rc, out, err, msg="viewer stop")
        rc, out, err = self.d.cli("switch", "list", token=viewer)
        self.assertEqual(rc, 0, err)

    # -- approvals ------------------------------------------------------------------

    def test_approve_mode_and_approvals(self):
        c = uniq()
        sw, out = self.stop("--client", c, "--mode", "approve", "--reason", "review replies")
        self.assertIn(" approve client=%s " % c, out)

        rc, out, err = self.gate(c, "action=comment", "target=post/1")
        self.assertEqual(rc, APPROVAL, out + err)
        self.assertTrue(out.startswith("approval required: apr_"), out)
        self.assertIn("(switch %s)" % sw, out)
        apr = APR_RE.search(out).group(0)
        # reads pass an approve switch
        rc, out, _ = self.gate(c, "action=comment", extra=["--read"])
        self.assertEqual(rc, 0, out)

        listing = self.ok("approval", "list")
        self.assertRegex(listing, r"(?m)^ID\s+STATUS\s+ACTION\s+REQUESTED BY")
        row = [l for l in listing.splitlines() if apr in l]
        self.assertEqual(len(row), 1, listing)
        self.assertIn("pending", row[0])
        self.assertIn("client=%s" % c, row[0])
        self.assertIn(sw, row[0])

        out = self.ok("approval", "approve", apr, "--note", "reply checked")
        self.assertEqual(out.strip(), "%s: approved" % apr)
        show = self.ok("approval", "show", apr)
        self.assertRegex(show, r"(?m)^Status:\s+approved$")
        self.assertRegex(show, r"(?m)^Note:\s+reply checked$")
        self.assertRegex(show, r"(?m)^Switch:\s+%s$" % sw)
        self.assertEqual(self.js("approval", "show", apr)["approval"]["status"], "approved")
        pending = [a["id"] for a in self.js("approval", "list")["approvals"]]
        self.assertNotIn(apr, pending)
        every = [a["id"] for a in self.js("approval", "list", "--all", "--limit", "1000")["approvals"]]
        self.assertIn(apr, every)
        self.assertIn(apr, self.ok("approval", "list", "--all", "--limit", "1000"))
        # deciding twice is the daemon's 409, one line
        rc, out, err = self.d.cli("approval", "deny", apr)
        self.assertOneLineError(rc, out, err, msg="decide twice")

        rc, out, _ = self.gate(c, "action=dm", "target=@alice")
        self.assertEqual(rc, APPROVAL, out)
        apr2 = APR_RE.search(out).group(0)
        self.assertEqual(self.ok("approval", "deny", apr2, "--note", "wrong account").strip(),
                         "%s: denied" % apr2)
        self.assertRegex(self.ok("approval", "show", apr2), r"(?m)^Status:\s+denied$")
        self.ok("switch", "clear", sw)

    # -- caps -------------------------------------------------------------------------

    def test_caps(self):
        c = uniq()
        cap = "cap-" + c
        out = self.ok("cap", "set", cap, "client=%s,action=comment: 1/1h" % c)
        self.assertEqual(out.strip(), "%s: set to action=comment,client=%s: 1/1h" % (cap, c))
        listing = self.ok("cap", "list")
        self.assertRegex(listing, r"(?m)^ID\s+SPEC\s+SOURCE\s+SET BY\s+SET AT")
        row = [l for l in listing.splitlines() if l.startswith(cap + " ")]
        self.assertEqual(len(row), 1, listing)
        self.assertIn("1/1h", row[0])
        got = {x["id"]: x for x in self.js("cap", "list")["caps"]}
        self.assertEqual(got[cap]["spec"], "action=comment,client=%s: 1/1h" % c)

        rc, out, _ = self.gate(c, "action=comment")
        self.assertEqual(rc, 0, out)
        rc, out, _ = self.gate(c, "action=comment")
        self.assertEqual(rc, DENY, out)
        self.assertTrue(out.startswith("deny: cap %s" % cap), out)
        self.assertRegex(out, r"\(retry in (\d+[hms])+\)")
        d = self.js("gate", "check", "--label", "client=" + c, "--label", "action=comment",
                    check=DENY)
        self.assertEqual((d["by"], d["id"]), ("cap", cap))
        self.assertGreater(d["retry_after"], 3000)
        rc, out, _ = self.gate(c, "action=like")
        self.assertEqual(rc, 0, out)

        # set again replaces
        self.ok("cap", "set", cap, "client=%s,action=comment: 5/1h" % c)
        self.assertEqual({x["id"]: x for x in self.js("cap", "list")["caps"]}[cap]["spec"],
                         "action=comment,client=%s: 5/1h" % c)
        self.assertEqual(self.ok("cap", "clear", cap).strip(), "%s: cleared" % cap)
        self.assertNotIn(cap, [x["id"] for x in self.js("cap", "list")["caps"]])
        rc, out, _ = self.gate(c, "action=comment")
        self.assertEqual(rc, 0, out)

    def test_duplicate_key(self):
        c = uniq()
        key = uniq("key-")
        rc, out, _ = self.gate(c, "action=comment", extra=["--key", key])
        self.assertEqual(rc, 0, out)
        rc, out, _ = self.gate(c, "action=comment", extra=["--key", key])
        self.assertEqual(rc, DENY, out)
        self.assertTrue(out.startswith("deny: duplicate"), out)

    # -- tokens -----------------------------------------------------------------------

    def test_automation_token(self):
        c = uniq()
        rc, out, err = self.d.cli("token", "create", "--role", "automation", "--name", "bot-" + c)
        self.assertEqual(rc, 0, err)
        secret = out.splitlines()[0]
        self.assertTrue(secret.startswith("kx_"), out)
        rc, out, err = self.d.cli("gate", "check", "--label", "client=" + c, token=secret)
        self.assertEqual((rc, out.strip()), (0, "allow"), err)
        rc, out, err = self.d.cli("stop", "--client", c, "--reason", "r", token=secret)
        self.assertOneLineError(rc, out, err, msg="automation stop")

    # -- evidence -----------------------------------------------------------------------

    def test_evidence(self):
        acc = "@" + uniq()
        events = [{"actor": "reply-bot", "account": acc, "action": "comment",
                   "target": "post/%d" % i, "platform": "instagram"} for i in range(3)]
        st, _, js = self.d.http("POST", "/v1/audit/events", {"events": events})
        self.assertEqual(st, 201, js)
        inc = self.d.declare(title="duplicate comments")["id"]
        before = len(self.d.timeline(inc))

        out = self.ok("incident", "evidence", inc, "--audit", "--since", "1h", "--account", acc)
        self.assertEqual(out.strip(), "%s: attached 3 audit events as evidence" % inc)
        tl = self.d.timeline(inc)
        self.assertEqual(len(tl), before + 1)

        out = self.ok("incident", "evidence", inc, "--audit", "--account", acc, "--limit", "2")
        self.assertEqual(out.strip(),
                         "%s: attached 2 of 3 matching audit events as evidence "
                         "(raise --limit for more)" % inc)
        ans = self.js("incident", "evidence", inc, "--audit", "--account", acc, "--action",
                      "comment", "--platform", "instagram", "--until", "2099-01-01T00:00:00Z")
        self.assertEqual((ans["events"], ans["total"]), (3, 3))
        tl = self.d.timeline(inc)
        self.assertEqual(len(tl), before + 3)
        self.assertEqual(tl[-1]["id"], ans["entry"]["id"])
        shown = self.ok("incident", "timeline", inc)
        self.assertIn(ans["entry"]["text"].splitlines()[0][:40], shown)

    # -- watch --------------------------------------------------------------------------

    def watch(self, *extra):
        env = dict(os.environ)
        env["KLAXON_URL"] = self.d.url
        env["KLAXON_TOKEN"] = self.d.admin_token
        p = subprocess.Popen([KLAXON] + list(extra) + ["switch", "watch"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()

        def pump():
            for line in p.stdout:
                lines.put(line)
            lines.put(None)
        threading.Thread(target=pump, daemon=True).start()

        def reap():
            p.kill()
            p.wait(timeout=10)
            p.stdout.close()
            p.stderr.close()
        self.addCleanup(reap)
        return p, lines

    def next_matching(self, lines, pattern, timeout=15):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if re.search(pattern, line):
                return line
        self.fail("no line matching %r within %ss; got %r" % (pattern, timeout, seen))

    def test_watch(self):
        c = uniq()
        p, lines = self.watch()
        self.next_matching(lines, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  v\d+  connected: \d+ switch")
        sw, _ = self.stop("--client", c, "--reason", "watch me")
        line = self.next_matching(lines, r"  set  %s " % sw)
        self.assertIn("block client=%s" % c, line)
        self.assertIn("watch me", line)
        self.ok("resume", sw, "--ramp", "10m")
        self.next_matching(lines, r"  ramping  %s .*actions per" % sw)
        self.ok("switch", "clear", sw)
        self.next_matching(lines, r"  lifted  %s " % sw)
        self.assertIsNone(p.poll())
        p.terminate()
        p.wait(timeout=10)

    def test_watch_json(self):
        c = uniq()
        p, lines = self.watch("--json")
        first = json.loads(self.next_matching(lines, r"^\{"))
        self.assertIn("version", first)
        self.assertIsInstance(first["switches"], list)
        sw, _ = self.stop("--client", c, "--reason", "r")
        while True:
            ev = json.loads(self.next_matching(lines, r"^\{"))
            if sw in [s["id"] for s in ev["switches"]]:
                break
        self.assertGreater(ev["version"], first["version"])
        self.ok("switch", "clear", sw)

    def test_watch_fails_cleanly(self):
        rc, out, err = self.d.cli("switch", "watch", token="kx_not_a_real_token")
        self.assertOneLineError(rc, out, err, msg="watch with a bad token")
        rc, out, err = self.d.cli("switch", "watch", url="http://127.0.0.1:1")
        self.assertOneLineError(rc, out, err, msg="watch with no daemon")


if __name__ == "__main__":
    main()

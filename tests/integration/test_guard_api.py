"""The guardrail API through raw HTTP against a real klaxond: kill switches
(/v1/switches and their Server-Sent Events stream), caps (/v1/caps), the
gate (/v1/gate/check), approvals (/v1/approvals), evidence, automation and
scoped tokens, the audit trail of every change, restarts and bad input.

Every test that shares a daemon works on a client of its own (uniq()), so
the switches and caps of one test never decide the actions of another; the
few switches over everything are cleared before the test ends.

Tests whose docstring starts "BUG" pinned a bug found while writing them
(the docstring says what used to happen); they pass since it was fixed.
"""

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ADMIN, HOST, Daemon, KlaxonTestCase, main  # noqa: E402


def uniq(prefix="c"):
    return "%s%s" % (prefix, uuid.uuid4().hex[:10])


class SseClient:
    """A minimal Server-Sent Events reader on GET /v1/switches/stream; every
    read is bounded by a deadline."""

    def __init__(self, daemon, token=ADMIN, timeout=5.0):
        tok = daemon._auth(token)
        self.conn = http.client.HTTPConnection(HOST, daemon.port, timeout=timeout)
        hdrs = {"Accept": "text/event-stream"}
        if tok is not None:
            hdrs["Authorization"] = "Bearer " + tok
        self.conn.request("GET", "/v1/switches/stream", headers=hdrs)
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers
        self.retry = None
        self.comments = []
        self.seen = []

    def close(self):
        try:
            self.resp.close()
        finally:
            self.conn.close()
            if self.sock is not None:
                try:
                    self.sock.close()
                except OSError:
                    pass

    def event(self, timeout=5.0):
        """The next event as (name, parsed data). Raises TimeoutError or
        EOFError."""
        deadline = time.monotonic() + timeout
        name, data = None, []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no event within %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                line = self.resp.readline()
            except socket.timeout:
                raise TimeoutError("no event within %.1fs" % timeout)
            if not line:
                raise EOFError("the stream ended")
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    return name or "message", json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            key, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if key == "data":
                data.append(value)
            elif key == "event":
                name = value
            elif key == "retry":
                self.retry = int(value)

    def wait_for(self, pred, timeout=5.0, event="switches"):
        """Reads events until one named `event` has data for which pred
        holds; returns that data. Other events are kept in self.seen."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching %s event within %.1fs" % (event, timeout))
            name, data = self.event(left)
            self.seen.append((name, data))
            if name == event and pred(data):
                return data

    def at_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                if not self.resp.readline():
                    return True
            except socket.timeout:
                return False
            except (OSError, http.client.HTTPException):
                return True
        return False


class GuardTestCase(KlaxonTestCase):
    """Helpers over raw HTTP; every one asserts the status it expects."""

    def setsw(self, selector, mode="block", reason="test", token=ADMIN, daemon=None, **extra):
        body = {"selector": selector, "mode": mode, "reason": reason}
        body.update(extra)
        st, hdrs, js = (daemon or self.d).http("POST", "/v1/switches", body, token=token)
        self.assertEqual(st, 201, "set %r: %s %r" % (body, st, js))
        sw = js["switch"]
        self.assertEqual(hdrs.get("Location"), "/v1/switches/" + sw["id"])
        return sw

    def check(self, labels, token=ADMIN, daemon=None, **extra):
        body = {"labels": labels}
        body.update(extra)
        st, _, js = (daemon or self.d).http("POST", "/v1/gate/check", body, token=token)
        self.assertEqual(st, 200, "check %r: %s %r" % (body, st, js))
        self.assertIn(js["decision"], ("allow", "deny", "approval_required"), js)
        return js

    def batch(self, actions, token=ADMIN):
        st, _, js = self.d.http("POST", "/v1/gate/check", {"actions": actions}, token=token)
        self.assertEqual(st, 200, "batch: %s %r" % (st, js))
        self.assertEqual(len(js["decisions"]), len(actions), js)
        return js["decisions"]

    def assertAllow(self, labels, **kw):
        js = self.check(labels, **kw)
        self.assertEqual(js, {"decision": "allow"}, "expected allow for %r" % (labels,))
        return js

    def assertDeny(self, labels, by, id_=None, **kw):
        js = self.check(labels, **kw)
        self.assertEqual(js["decision"], "deny", "expected deny for %r: %r" % (labels, js))
        self.assertEqual(js["by"], by, js)
        if id_ is not None:
            self.assertEqual(js["id"], id_, js)
        self.assertTrue(js["reason"], js)
        return js

    def clear(self, sw_id, reason=None, token=ADMIN, status=200):
        body = {} if reason is None else {"reason": reason}
        st, _, js = self.d.http("POST", "/v1/switches/%s/clear" % sw_id, body, token=token)
        self.assertEqual(st, status, "clear %s: %s %r" % (sw_id, st, js))
        return js

    def putcap(self, cap_id, spec, token=ADMIN, status=None):
        st, _, js = self.d.http("PUT", "/v1/caps/" + cap_id, {"spec": spec}, token=token)
        if status is None:
            self.assertIn(st, (200, 201), "cap %s %r: %s %r" % (cap_id, spec, st, js))
        else:
            self.assertEqual(st, status, "cap %s %r: %s %r" % (cap_id, spec, st, js))
        return js

    def all_switches(self, token=ADMIN):
        st, _, js = self.d.http("GET", "/v1/switches?all=true", token=token)
        self.assertEqual(st, 200, js)
        return js["switches"]

    def cap_ids(self, token=ADMIN):
        st, _, js = self.d.http("GET", "/v1/caps", token=token)
        self.assertEqual(st, 200, js)
        return [c["id"] for c in js["caps"]]

    def audit(self, action, target):
        st, _, js = self.d.http("GET", "/v1/audit/events?action=%s&target=%s" % (action, target))
        self.assertEqual(st, 200, js)
        return js["events"]


CONFIG = """\
gate:
  ramp_floor: 2
  ramp_peak: 50
  ramp_window: 2m
  caps:
    - id: cfg-cap
      spec: "client=cfgclient,action=dm: 1/1h"
"""


class Switches(GuardTestCase):
    config = CONFIG

    def test_switch_shape_and_canonical_selector(self):
        c = uniq()
        sw = self.setsw(" action in ( dm , comment,dm ) , client = %s" % c, reason="why",
                        expires_in="2h")
        self.assertEqual(set(sw), {"id", "selector", "mode", "reason", "set_by", "set_at",
                                   "expires_at", "incident", "ramp", "cleared_at", "cleared_by",
                                   "clear_reason", "active"})
        self.assertRegex(sw["id"], r"^sw_[0-9a-f]+$")
        self.assertEqual(sw["selector"], "action in (comment,dm),client=%s" % c)
        self.assertEqual((sw["mode"], sw["reason"], sw["set_by"]), ("block", "why", "admin"))
        set_at = self.assertRecent(sw["set_at"])
        exp = self.assertTimestamp(sw["expires_at"])
        self.assertAlmostEqual((exp - set_at).total_seconds(), 7200, delta=1)
        self.assertEqual((sw["incident"], sw["ramp"], sw["cleared_at"], sw["cleared_by"],
                          sw["clear_reason"], sw["active"]), (None, None, None, None, None, True))
        st, _, js = self.d.http("GET", "/v1/switches/" + sw["id"])
        self.assertEqual(st, 200, js)
        self.assertEqual(js["switch"], sw)
        st, _, js = self.d.http("GET", "/v1/switches")
        self.assertEqual(st, 200, js)
        self.assertIsInstance(js["version"], int)
        self.assertIn(sw, js["switches"])
        # oldest first, in force and on record
        time.sleep(0.003)  # set_at has millisecond resolution
        later = self.setsw("client=" + c, reason="later")
        for q in ("", "?all=true"):
            ids = [x["id"] for x in self.d.http("GET", "/v1/switches" + q)[2]["switches"]]
            self.assertLess(ids.index(sw["id"]), ids.index(later["id"]), q)
        # the mode defaults to block
        st, _, js = self.d.http("POST", "/v1/switches", {"selector": "client=" + c, "reason": "r"})
        self.assertEqual((st, js["switch"]["mode"]), (201, "block"), js)

    def test_block_read_only_approve(self):
        c = uniq()
        blk = self.setsw("client=%s,lane=blk" % c, "block")
        ro = self.setsw("client=%s,lane=ro" % c, "read_only")
        apr = self.setsw("client=%s,lane=apr" % c, "approve")
        # block: side effects and reads
        self.assertDeny({"client": c, "lane": "blk", "action": "dm"}, "switch", blk["id"])
        self.assertDeny({"client": c, "lane": "blk", "action": "feed"}, "switch", blk["id"],
                        read_only=True)
        # read_only: side effects denied, reads pass
        js = self.assertDeny({"client": c, "lane": "ro", "action": "dm"}, "switch", ro["id"])
        self.assertNotIn("retry_after", js)
        self.assertAllow({"client": c, "lane": "ro", "action": "feed"}, read_only=True)
        # approve: side effects need a human, reads pass
        js = self.check({"client": c, "lane": "apr", "action": "dm"})
        self.assertEqual((js["decision"], js["by"], js["id"]),
                         ("approval_required", "switch", apr["id"]), js)
        self.assertRegex(js["request_id"], r"^apr_[0-9a-f]+$")
        self.assertIn(apr["id"], js["reason"])
        self.assertAllow({"client": c, "lane": "apr", "action": "feed"}, read_only=True)
        # actions outside every selector
        self.assertAllow({"client": c, "lane": "other", "action": "dm"})
        self.assertAllow({"client": uniq(), "lane": "blk", "action": "dm"})
        # the reason carries the switch's reason
        js = self.check({"client": c, "lane": "blk"})
        self.assertIn("test", js["reason"])

    def test_precedence(self):
        c = uniq()
        apr = self.setsw("client=%s" % c, "approve")
        ro = self.setsw("client=%s,lane=l1" % c, "read_only")
        blk = self.setsw("client=%s,lane=l2" % c, "block")
        blk_narrow = self.setsw("client=%s,lane=l2,action=dm" % c, "block")
        # deny beats approve: read_only for a side effect, and block
        self.assertDeny({"client": c, "lane": "l1", "action": "x"}, "switch", ro["id"])
        self.assertDeny({"client": c, "lane": "l2", "action": "x"}, "switch", blk["id"])
        # among blocks the most specific is named
        self.assertDeny({"client": c, "lane": "l2", "action": "dm"}, "switch", blk_narrow["id"])
        # a read under approve + read_only passes
        self.assertAllow({"client": c, "lane": "l1", "action": "x"}, read_only=True)
        # block named before read_only
        blk2 = self.setsw("client=%s,lane=l1" % c, "block")
        self.assertDeny({"client": c, "lane": "l1", "action": "x"}, "switch", blk2["id"])
        # a cap that denies beats approval; so does a duplicate
        self.putcap("prec-" + c, "client=%s,lane=l3: 0/1h" % c)
        self.assertDeny({"client": c, "lane": "l3"}, "cap", "prec-" + c)
        js = self.check({"client": c, "lane": "l4"})
        self.assertEqual((js["decision"], js["id"]), ("approval_required", apr["id"]), js)
        self.assertEqual(self.d.http("DELETE", "/v1/caps/prec-" + c)[0], 200)

    def test_selector_operators(self):
        c = uniq()
        ne = self.setsw("client=%s,lane=ne,action!=dm" % c)
        inn = self.setsw("client=%s,lane=in,action in (dm,comment)" % c)
        notin = self.setsw("client=%s,lane=notin,action notin (dm,comment)" % c)
        quoted = self.setsw('client=%s,lane=q,target="post(1),2"' % c)
        self.assertEqual(quoted["selector"], 'client=%s,lane=q,target="post(1),2"' % c)
        # != matches other values and an absent label
        self.assertAllow({"client": c, "lane": "ne", "action": "dm"})
        self.assertDeny({"client": c, "lane": "ne", "action": "post"}, "switch", ne["id"])
        self.assertDeny({"client": c, "lane": "ne"}, "switch", ne["id"])
        # in: present and one of the values
        self.assertDeny({"client": c, "lane": "in", "action": "dm"}, "switch", inn["id"])
        self.assertDeny({"client": c, "lane": "in", "action": "comment"}, "switch", inn["id"])
        self.assertAllow({"client": c, "lane": "in", "action": "post"})
        self.assertAllow({"client": c, "lane": "in"})
        # notin: absent, or none of them
        self.assertAllow({"client": c, "lane": "notin", "action": "dm"})
        self.assertDeny({"client": c, "lane": "notin", "action": "post"}, "switch", notin["id"])
        self.assertDeny({"client": c, "lane": "notin"}, "switch", notin["id"])
        # quoted values
        self.assertDeny({"client": c, "lane": "q", "target": "post(1),2"}, "switch", quoted["id"])
        self.assertAllow({"client": c, "lane": "q", "target": "post(1)"})

    def test_empty_selector_covers_everything(self):
        before = len(self.all_switches())
        sw = self.setsw("", "block", reason="stop the world")
        try:
            self.assertEqual(sw["selector"], "")
            for labels in ({"client": uniq()}, {"action": "dm"}, {"x": "y", "platform": "tiktok"}):
                self.assertDeny(labels, "switch", sw["id"])
                self.assertDeny(labels, "switch", sw["id"], read_only=True)
            self.assertIn("all actions", self.check({"a": "b"})["reason"])
        finally:
            self.clear(sw["id"], "resumed")
        self.assertAllow({"client": uniq()})
        self.assertEqual(len(self.all_switches()), before + 1)
        # a missing selector is the empty selector too
        st, _, js = self.d.http("POST", "/v1/switches", {"reason": "no selector", "mode": "read_only"})
        self.assertEqual(st, 201, js)
        try:
            self.assertEqual(js["switch"]["selector"], "")
            self.assertDeny({"client": uniq()}, "switch", js["switch"]["id"])
        finally:
            self.clear(js["switch"]["id"])

    def test_expiry(self):
        c = uniq()
        sw = self.setsw("client=" + c, expires_in="2s")
        t0 = time.monotonic()
        self.assertDeny({"client": c}, "switch", sw["id"])
        deadline = t0 + 6
        while time.monotonic() < deadline:
            if self.check({"client": c})["decision"] == "allow":
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        self.assertEqual(self.check({"client": c}), {"decision": "allow"}, "allowed after expiry")
        self.assertGreater(elapsed, 1.5, "not lifted before its time")
        ids = [s["id"] for s in self.d.http("GET", "/v1/switches")[2]["switches"]]
        self.assertNotIn(sw["id"], ids, "an expired switch is not listed as in force")
        old = [s for s in self.all_switches() if s["id"] == sw["id"]]
        self.assertEqual(len(old), 1)
        self.assertFalse(old[0]["active"])
        # clearing an expired switch is a conflict
        err = self.assertError(self.d.http("POST", "/v1/switches/%s/clear" % sw["id"], {}), 409,
                               "conflict")
        self.assertIn(sw["id"], err["message"])
        # expires_at as an RFC 3339 time
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        sw2 = self.setsw("client=" + c, expires_at=at)
        self.assertEqual(sw2["expires_at"][:19], at[:19])
        self.assertDeny({"client": c}, "switch", sw2["id"])

    def test_clear(self):
        c = uniq()
        sw = self.setsw("client=" + c)
        self.assertDeny({"client": c}, "switch", sw["id"])
        js = self.clear(sw["id"], "false alarm")["switch"]
        self.assertEqual((js["active"], js["cleared_by"], js["clear_reason"]),
                         (False, "admin", "false alarm"))
        self.assertRecent(js["cleared_at"])
        self.assertAllow({"client": c})
        ids = [s["id"] for s in self.d.http("GET", "/v1/switches")[2]["switches"]]
        self.assertNotIn(sw["id"], ids)
        self.assertIn(sw["id"], [s["id"] for s in self.all_switches()])
        self.assertEqual(self.d.http("GET", "/v1/switches/" + sw["id"])[2]["switch"], js)
        self.assertError(self.d.http("POST", "/v1/switches/%s/clear" % sw["id"], {}), 409,
                         "conflict")
        self.assertError(self.d.http("POST", "/v1/switches/%s/resume" % sw["id"], {"ramp": "1h"}),
                         409, "conflict")
        self.assertError(self.d.http("POST", "/v1/switches/sw_0000000000000000/clear", {}), 404,
                         "not_found")
        # a body is optional
        sw = self.setsw("client=" + c)
        st, _, js = self.d.http("POST", "/v1/switches/%s/clear" % sw["id"], raw="")
        self.assertEqual(st, 200, js)

    def test_resume_with_ramp(self):
        c = uniq()
        sw = self.setsw("client=" + c)
        js = self.d.http("POST", "/v1/switches/%s/resume" % sw["id"],
                         {"ramp": "1h", "floor": 1, "peak": 1, "window": "1m",
                          "reason": "slowly"})
        self.assertEqual(js[0], 200, js)
        r = js[2]["switch"]
        self.assertTrue(r["active"], r)
        self.assertEqual((r["ramp"]["floor"], r["ramp"]["peak"], r["ramp"]["window"]),
                         (1, 1, "1m"), r)
        start = self.assertRecent(r["ramp"]["start"])
        end = self.assertTimestamp(r["ramp"]["end"])
        self.assertAlmostEqual((end - start).total_seconds(), 3600, delta=1)
        self.assertAllow({"client": c, "action": "dm"})
        js = self.assertDeny({"client": c, "action": "comment"}, "ramp", sw["id"])
        self.assertIsInstance(js["retry_after"], int)
        self.assertTrue(55 <= js["retry_after"] <= 60, js)
        self.assertEqual(js["retry_after"], (js["retry_after_ms"] + 999) // 1000, js)
        # a read is limited by the ramp too (the switch was a block)
        self.assertDeny({"client": c}, "ramp", sw["id"], read_only=True)
        # outside its selector nothing changes
        self.assertAllow({"client": uniq()})
        # resuming twice is a conflict; clearing a ramping switch lifts it at once
        self.assertError(self.d.http("POST", "/v1/switches/%s/resume" % sw["id"], {"ramp": "1h"}),
                         409, "conflict")
        self.clear(sw["id"])
        self.assertAllow({"client": c})
        self.assertEqual(len(self.audit("switch.resume", sw["id"])), 1)

    def test_ramp_counts_only_what_the_switch_covered(self):
        for mode in ("read_only", "approve"):
            c = uniq()
            sw = self.setsw("client=" + c, mode)
            st, _, js = self.d.http("POST", "/v1/switches/%s/resume" % sw["id"],
                                    {"ramp": "1h", "floor": 1, "peak": 1, "window": "1m"})
            self.assertEqual(st, 200, js)
            # reads were never covered: not limited, not counted
            for _ in range(3):
                self.assertAllow({"client": c}, read_only=True)
            self.assertAllow({"client": c, "action": "dm"})
            self.assertDeny({"client": c, "action": "dm"}, "ramp", sw["id"])

    def test_resume_at_once(self):
        c = uniq()
        sw = self.setsw("client=" + c)
        st, _, js = self.d.http("POST", "/v1/switches/%s/resume" % sw["id"], {"reason": "ok"})
        self.assertEqual(st, 200, js)
        self.assertFalse(js["switch"]["active"], js)
        self.assertAllow({"client": c})

    def test_resume_defaults_come_from_the_config(self):
        """BUG: POST /v1/switches/{id}/resume {"ramp":"1h"} with gate.ramp_floor
        2 in the config gives a ramp with floor 0 (peak and window do come
        from the config). service/guard.c lift(): `if (!floor && !peak)` is
        tested after peak was defaulted, so it never holds."""
        sw = self.setsw("client=" + uniq())
        st, _, js = self.d.http("POST", "/v1/switches/%s/resume" % sw["id"], {"ramp": "1h"})
        self.assertEqual(st, 200, js)
        ramp = js["switch"]["ramp"]
        self.assertEqual((ramp["peak"], ramp["window"]), (50, "2m"), ramp)
        self.assertEqual(ramp["floor"], 2, ramp)

    def test_incident_link_timeline_and_audit(self):
        c = uniq()
        inc = self.d.declare(title="spam wave")["id"]
        sw = self.setsw("client=" + c, reason="spam", incident=inc)
        self.assertEqual(sw["incident"], inc)
        self.clear(sw["id"], "calm again")
        sw2 = self.setsw("client=" + c, reason="again", incident=inc)
        self.d.http("POST", "/v1/switches/%s/resume" % sw2["id"], {"ramp": "10m", "peak": 5})
        tl = [e for e in self.d.timeline(inc) if e["kind"] == "switch"]
        self.assertEqual(len(tl), 4, tl)
        self.assertIn(sw["id"], tl[0]["text"])
        self.assertIn("spam", tl[0]["text"])
        self.assertIn("calm again", tl[1]["text"])
        self.assertIn(sw2["id"], tl[3]["text"])
        for e in tl:
            self.assertEqual(e["author"], "admin")
        # one audit event per change, actor = token name, client from the selector
        for action, target in (("switch.set", sw["id"]), ("switch.clear", sw["id"]),
                               ("switch.set", sw2["id"]), ("switch.resume", sw2["id"])):
            ev = self.audit(action, target)
            self.assertEqual(len(ev), 1, (action, target, ev))
            self.assertEqual((ev[0]["actor"], ev[0]["client"]), ("admin", c), ev)
        # an unknown incident: 404 and nothing stored
        before = len(self.all_switches())
        self.assertError(self.d.http("POST", "/v1/switches",
                                     {"selector": "client=" + c, "reason": "r",
                                      "incident": "INC-19990101-001"}), 404, "not_found")
        self.assertEqual(len(self.all_switches()), before)
        c2 = uniq()
        self.assertError(self.d.http("POST", "/v1/switches",
                                     {"selector": "client=" + c2, "reason": "r",
                                      "incident": "INC-19990101-001"}), 404, "not_found")
        self.assertAllow({"client": c2, "action": "x"})

    def test_evidence(self):
        acc = "@" + uniq()
        events = [{"actor": "bot", "account": acc, "action": "comment",
                   "target": "post/%d" % i} for i in range(3)]
        st, _, js = self.d.http("POST", "/v1/audit/events", {"events": events})
        self.assertEqual(st, 201, js)
        inc = self.d.declare(title="evidence")["id"]
        st, _, js = self.d.http("POST", "/v1/incidents/%s/evidence" % inc,
                                {"since": "2h", "account": acc, "limit": 2})
        self.assertEqual(st, 201, js)
        self.assertEqual((js["events"], js["total"]), (2, 3), js)
        self.assertEqual(js["entry"]["kind"], "evidence")
        self.assertIn(acc, js["entry"]["text"])
        self.assertIn("evidence", [e["kind"] for e in self.d.timeline(inc)])
        self.assertEqual(len(self.audit("incident.evidence", inc)), 1)
        for body in ({"since": "yesterday"}, {"limit": 0}, {"limit": 1001}, {"bogus": 1},
                     {"since": "1h", "until": "2h"}, {"account": 5}):
            self.assertError(self.d.http("POST", "/v1/incidents/%s/evidence" % inc, body), 400,
                             msg=repr(body))
        self.assertError(self.d.http("POST", "/v1/incidents/INC-19990101-001/evidence", {}), 404)


class Caps(GuardTestCase):
    config = CONFIG

    def test_cap_per_key_and_retry_after(self):
        c = uniq()
        js = self.putcap("dm-" + c, "client=%s , action=dm : 1/10s per account" % c, status=201)
        cap = js["cap"]
        self.assertEqual(cap["spec"], "action=dm,client=%s: 1/10s per account" % c)
        self.assertEqual((cap["source"], cap["set_by"]), ("api", "admin"))
        self.assertRecent(cap["set_at"])
        self.assertAllow({"client": c, "action": "dm", "account": "a"})
        js = self.assertDeny({"client": c, "action": "dm", "account": "a"}, "cap", "dm-" + c)
        self.assertIsInstance(js["retry_after"], int)
        self.assertIsInstance(js["retry_after_ms"], int)
        self.assertTrue(9000 <= js["retry_after_ms"] <= 10000, js)
        self.assertEqual(js["retry_after"], (js["retry_after_ms"] + 999) // 1000, js)
        self.assertIn("'a'", js["reason"])
        # a counter per account; no account shares the "no value" counter
        self.assertAllow({"client": c, "action": "dm", "account": "b"})
        self.assertAllow({"client": c, "action": "dm"})
        self.assertDeny({"client": c, "action": "dm"}, "cap", "dm-" + c)
        # outside the selector: unlimited
        for _ in range(3):
            self.assertAllow({"client": c, "action": "comment", "account": "a"})
        # replace (200) keeps the id; a bigger limit lets one more through
        js = self.putcap("dm-" + c, "client=%s,action=dm: 2/10s per account" % c, status=200)
        self.assertEqual(js["cap"]["spec"], "action=dm,client=%s: 2/10s per account" % c)
        self.assertAllow({"client": c, "action": "dm", "account": "a"})
        self.assertDeny({"client": c, "action": "dm", "account": "a"}, "cap", "dm-" + c)
        self.assertIn("dm-" + c, self.cap_ids())
        # delete: unlimited again; deleting twice is 404
        st, _, js = self.d.http("DELETE", "/v1/caps/dm-" + c)
        self.assertEqual((st, js), (200, {"deleted": "dm-" + c}))
        self.assertAllow({"client": c, "action": "dm", "account": "a"})
        self.assertError(self.d.http("DELETE", "/v1/caps/dm-" + c), 404, "not_found")
        self.assertNotIn("dm-" + c, self.cap_ids())
        self.assertEqual(len(self.audit("cap.set", "dm-" + c)), 2)
        self.assertEqual(len(self.audit("cap.clear", "dm-" + c)), 1)

    def test_cap_window_words_and_zero(self):
        c = uniq()
        js = self.putcap("h-" + c, "client=%s: 3/hour" % c)
        self.assertEqual(js["cap"]["spec"], "client=%s: 3/1h" % c)
        for _ in range(3):
            self.assertAllow({"client": c, "action": "x"})
        js = self.assertDeny({"client": c, "action": "x"}, "cap", "h-" + c)
        self.assertTrue(3590 <= js["retry_after"] <= 3600, js)
        # a limit of 0 allows nothing, and waiting cannot help (no retry_after)
        c2 = uniq()
        self.putcap("z-" + c2, "client=%s: 0/1m" % c2)
        js = self.assertDeny({"client": c2}, "cap", "z-" + c2)
        self.assertNotIn("retry_after", js)
        self.d.http("DELETE", "/v1/caps/h-" + c)
        self.d.http("DELETE", "/v1/caps/z-" + c2)

    def test_config_caps(self):
        st, _, js = self.d.http("GET", "/v1/caps")
        self.assertEqual(st, 200, js)
        cfg = [x for x in js["caps"] if x["id"] == "cfg-cap"]
        self.assertEqual(len(cfg), 1, js)
        self.assertEqual((cfg[0]["source"], cfg[0]["spec"]),
                         ("config", "action=dm,client=cfgclient: 1/1h"))
        err = self.assertError(self.d.http("PUT", "/v1/caps/cfg-cap", {"spec": "client=x: 1/1h"}),
                               409, "conflict")
        self.assertIn("configuration", err["message"])
        self.assertError(self.d.http("DELETE", "/v1/caps/cfg-cap"), 409, "conflict")
        # and it is enforced
        acc = uniq()
        self.assertAllow({"client": "cfgclient", "action": "dm", "account": acc})
        self.assertDeny({"client": "cfgclient", "action": "dm", "account": acc}, "cap", "cfg-cap")

    def test_duplicates(self):
        c = uniq()
        k = uniq("key-")
        self.assertAllow({"client": c, "action": "post"}, idempotency_key=k)
        js = self.assertDeny({"client": c, "action": "post"}, "duplicate", idempotency_key=k)
        self.assertEqual(js["id"], "duplicate")
        self.assertNotIn("retry_after", js)
        # keys are compared without the labels
        self.assertDeny({"client": c, "action": "other"}, "duplicate", idempotency_key=k)
        self.assertAllow({"client": c, "action": "post"}, idempotency_key=k + "2")
        self.assertAllow({"client": c, "action": "post"}, idempotency_key="")
        self.assertAllow({"client": c, "action": "post"}, idempotency_key="")
        # a denied action's key is not remembered
        sw = self.setsw("client=" + c + ",lane=stopped")
        k3 = uniq("key-")
        self.assertDeny({"client": c, "lane": "stopped"}, "switch", idempotency_key=k3)
        self.clear(sw["id"])
        self.assertAllow({"client": c, "lane": "stopped"}, idempotency_key=k3)
        # the duplicate check comes before caps: a duplicate does not count
        self.putcap("dup-" + c, "client=%s,lane=capped: 1/1h" % c)
        k4 = uniq("key-")
        self.assertAllow({"client": c, "lane": "capped"}, idempotency_key=k4)
        self.assertDeny({"client": c, "lane": "capped"}, "duplicate", idempotency_key=k4)
        self.d.http("DELETE", "/v1/caps/dup-" + c)

    def test_batch(self):
        c = uniq()
        self.putcap("b-" + c, "client=%s,action=dm: 2/1h" % c)
        sw = self.setsw("client=%s,lane=stop" % c)
        k = uniq("key-")
        d = self.batch([
            {"labels": {"client": c, "action": "dm"}},
            {"labels": {"client": c, "action": "post"}, "idempotency_key": k},
            {"labels": {"client": c, "action": "post"}, "idempotency_key": k},
            {"labels": {"client": c, "action": "dm"}},
            {"labels": {"client": c, "action": "dm"}},
            {"labels": {"client": c, "lane": "stop"}, "read_only": True},
        ])
        self.assertEqual([x["decision"] for x in d],
                         ["allow", "allow", "deny", "allow", "deny", "deny"], d)
        self.assertEqual((d[2]["by"], d[4]["by"], d[4]["id"], d[5]["by"], d[5]["id"]),
                         ("duplicate", "cap", "b-" + c, "switch", sw["id"]), d)
        self.assertIn("retry_after", d[4])
        # a batch of one is still a batch
        st, _, js = self.d.http("POST", "/v1/gate/check",
                                {"actions": [{"labels": {"client": c}}]})
        self.assertEqual((st, js), (200, {"decisions": [{"decision": "allow"}]}))
        # 1000 actions are fine
        d = self.batch([{"labels": {"client": c, "n": str(i)}} for i in range(1000)])
        self.assertTrue(all(x == {"decision": "allow"} for x in d))

    def test_bad_batch_decides_nothing(self):
        c = uniq()
        self.putcap("bb-" + c, "client=%s: 1/1h" % c)
        k = uniq("key-")
        good = {"labels": {"client": c}, "idempotency_key": k}
        for bad, words in (({"labels": {"Bad": "x"}}, "label key"),
                           ({"labels": {}}, "labels"),
                           ({"labels": {"a": "b"}, "read_only": "no"}, "read_only"),
                           ({"labels": {"a": "b"}, "idempotency_key": "k" * 257}, "idempotency_key"),
                           ({"labels": {"a": "b"}, "idempotency_key": "a\x01b"}, "idempotency key"),
                           ({"labels": {"a": "b"}, "extra": 1}, "extra"),
                           ("not an object", "object"),
                           ({"idempotency_key": "x"}, "labels")):
            st, _, js = self.d.http("POST", "/v1/gate/check",
                                    {"actions": [good, {"labels": {"a": "b"}}, bad]})
            err = self.assertError((st, None, js), 400, "invalid", msg=repr(bad))
            self.assertTrue(err["message"].startswith("action 3: "), err)  # counted from 1
            self.assertIn(words, err["message"], err)
        # nothing was decided: the cap's single slot and the key are still free
        self.assertAllow(good["labels"], idempotency_key=k)
        self.assertDeny(good["labels"], "duplicate", idempotency_key=k)
        self.assertDeny(good["labels"], "cap", "bb-" + c)
        self.d.http("DELETE", "/v1/caps/bb-" + c)

    def test_batch_of_one_names_the_action(self):
        """BUG (minor): a batch of one action that the service refuses (a key
        over 256 bytes, a key with a control character, a label outside the
        token's scope) is refused without naming the action: POST
        /v1/gate/check {"actions":[{"labels":{"a":"b"},"idempotency_key":"k"*257}]}
        -> 400 "'idempotency_key' is longer than 256 bytes"; expected "action 1:
        …" as for the decoder's errors and for batches of two or more.
        kx_svc_gate_check() prefixes only when n > 1, not when it is a batch."""
        st, _, js = self.d.http("POST", "/v1/gate/check",
                                {"actions": [{"labels": {"a": "b"},
                                              "idempotency_key": "k" * 257}]})
        err = self.assertError((st, None, js), 400, "invalid")
        self.assertTrue(err["message"].startswith("action 1: "), err)

    def test_bad_cap_specs(self):
        before = self.cap_ids()
        for spec, words in (("action=dm: 1/0s", "column"), ("action=dm: -1/10s", "column"),
                            ("action=dm: 1/-10s", "column"), ("garbage", "column"),
                            ("action=dm: 1/10s per", "column"), ("action=dm: x/10s", "column"),
                            ("action=dm: 1/10s per Bad", "column"), ("action==dm: 1/1s", "column"),
                            ("action=dm: 1/400d", "366"), ("action=dm: 2000000/1s", "column"),
                            ("", "column")):
            err = self.assertError(self.d.http("PUT", "/v1/caps/bad", {"spec": spec}), 400,
                                   "invalid", msg=spec)
            self.assertIn(words, err["message"], spec)
        for body in ({}, {"spec": 5}, {"spec": None}, {"spec": "a=b: 1/1s", "x": 1}):
            self.assertError(self.d.http("PUT", "/v1/caps/bad", body), 400, "invalid", repr(body))
        self.assertError(self.d.http("PUT", "/v1/caps/bad", raw="{"), 400, "invalid_json")
        for cid in ("Bad", "a" * 65, "a%20b"):
            self.assertError(self.d.http("PUT", "/v1/caps/" + cid, {"spec": "a=b: 1/1s"}), 400,
                             "invalid", cid)
        self.assertEqual(self.cap_ids(), before, "nothing half-stored")


class Approvals(GuardTestCase):
    config = CONFIG

    def request(self, c, key=None, token=ADMIN, **labels):
        lb = {"client": c, "action": "post"}
        lb.update(labels)
        kw = {} if key is None else {"idempotency_key": key}
        js = self.check(lb, token=token, **kw)
        self.assertEqual(js["decision"], "approval_required", js)
        return js["request_id"]

    def get(self, rid, token=ADMIN):
        st, _, js = self.d.http("GET", "/v1/approvals/" + rid, token=token)
        self.assertEqual(st, 200, js)
        return js["approval"]

    def test_approve_end_to_end(self):
        c = uniq()
        sw = self.setsw("client=" + c, "approve", reason="careful")
        k = uniq("key-")
        rid = self.request(c, k, target="t1")
        self.assertEqual(self.request(c, k, target="t1"), rid, "same key while pending")
        other = self.request(c, None, target="t2")
        self.assertNotEqual(other, rid)
        self.assertNotEqual(self.request(c, None, target="t2"), other, "no key: a new request")
        a = self.get(rid)
        self.assertEqual((a["id"], a["status"], a["switch"], a["idempotency_key"],
                          a["read_only"], a["requested_by"]),
                         (rid, "pending", sw["id"], k, False, "admin"), a)
        self.assertEqual(a["labels"], {"client": c, "action": "post", "target": "t1"})
        req_at = self.assertRecent(a["requested_at"])
        exp = self.assertTimestamp(a["expires_at"])
        self.assertAlmostEqual((exp - req_at).total_seconds(), 3600, delta=1)
        self.assertEqual((a["decided_by"], a["decided_at"], a["note"]), (None, None, None))
        st, _, js = self.d.http("GET", "/v1/approvals")
        self.assertIn(rid, [x["id"] for x in js["approvals"]])
        st, _, js = self.d.http("POST", "/v1/approvals/%s/approve" % rid, {"note": "looks fine"})
        self.assertEqual(st, 200, js)
        a = js["approval"]
        self.assertEqual((a["status"], a["decided_by"], a["note"]),
                         ("approved", "admin", "looks fine"))
        self.assertRecent(a["decided_at"])
        self.assertEqual(self.get(rid)["status"], "approved")
        self.assertNotIn(rid, [x["id"] for x in self.d.http("GET", "/v1/approvals")[2]["approvals"]])
        self.assertIn(rid, [x["id"] for x in
                            self.d.http("GET", "/v1/approvals?status=all")[2]["approvals"]])
        for verb in ("approve", "deny"):
            err = self.assertError(self.d.http("POST", "/v1/approvals/%s/%s" % (rid, verb), {}),
                                   409, "conflict")
            self.assertIn("approved", err["message"])
        # the approved action counts: its key is now a duplicate
        self.assertDeny({"client": c, "action": "post", "target": "t1"}, "duplicate",
                        idempotency_key=k)
        ev = self.audit("approval.approve", rid)
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["client"], c)

    def test_approval_counts_against_caps(self):
        c = uniq()
        self.setsw("client=" + c, "approve")
        self.putcap("apc-" + c, "client=%s: 1/1h" % c)
        rid = self.request(c)
        self.assertEqual(self.request(c, action="other") != rid, True)
        self.assertEqual(self.d.http("POST", "/v1/approvals/%s/approve" % rid, {})[0], 200)
        self.assertDeny({"client": c, "action": "post"}, "cap", "apc-" + c)
        self.d.http("DELETE", "/v1/caps/apc-" + c)

    def test_deny(self):
        c = uniq()
        self.setsw("client=" + c, "approve")
        rid = self.request(c, uniq("key-"))
        st, _, js = self.d.http("POST", "/v1/approvals/%s/deny" % rid, {"note": "no"})
        self.assertEqual(st, 200, js)
        self.assertEqual((js["approval"]["status"], js["approval"]["note"]), ("denied", "no"))
        self.assertEqual(self.get(rid)["status"], "denied")
        self.assertError(self.d.http("POST", "/v1/approvals/%s/approve" % rid, {}), 409, "conflict")
        self.assertEqual(len(self.audit("approval.deny", rid)), 1)
        # a denied request's key may ask again: a new request
        a = self.get(rid)
        self.assertNotEqual(self.request(c, a["idempotency_key"]), rid)

    def test_list_and_errors(self):
        c = uniq()
        self.setsw("client=" + c, "approve")
        ids = []
        for i in range(3):
            ids.append(self.request(c, target=str(i)))
            time.sleep(0.003)  # requested_at has millisecond resolution
        st, _, js = self.d.http("GET", "/v1/approvals?status=pending&limit=1")
        self.assertEqual((st, len(js["approvals"])), (200, 1), js)
        st, _, js = self.d.http("GET", "/v1/approvals?status=all&limit=10000")
        self.assertEqual(st, 200, js)
        listed = [x["id"] for x in js["approvals"]]
        self.assertTrue(set(ids) <= set(listed))
        self.assertEqual([i for i in listed if i in ids], ids[::-1], "newest first")
        # in a batch, two actions with one key share one request
        k = uniq("key-")
        d = self.batch([{"labels": {"client": c}, "idempotency_key": k},
                        {"labels": {"client": c}, "idempotency_key": k},
                        {"labels": {"client": c}}])
        self.assertEqual([x["decision"] for x in d], ["approval_required"] * 3, d)
        self.assertEqual(d[0]["request_id"], d[1]["request_id"])
        self.assertNotEqual(d[0]["request_id"], d[2]["request_id"])
        for q in ("?status=bogus", "?limit=0", "?limit=10001", "?limit=x", "?bogus=1",
                  "?status=approved"):
            self.assertError(self.d.http("GET", "/v1/approvals" + q), 400, "invalid", q)
        self.assertError(self.d.http("GET", "/v1/approvals/apr_0000000000000000"), 404, "not_found")
        self.assertError(self.d.http("POST", "/v1/approvals/apr_0000000000000000/approve", {}),
                         404, "not_found")
        for body, code in (({"note": 5}, "invalid"), ({"x": 1}, "invalid"),
                           ({"note": "n" * 1001}, "invalid")):
            self.assertError(self.d.http("POST", "/v1/approvals/%s/approve" % ids[0], body), 400,
                             code, repr(body)[:40])
        self.assertError(self.d.http("POST", "/v1/approvals/%s/approve" % ids[0], raw="{x"), 400,
                         "invalid_json")
        self.assertEqual(self.get(ids[0])["status"], "pending", "nothing half-decided")


class ApprovalExpiry(GuardTestCase):
    config = "gate:\n  approval_ttl: 1s\n"

    def test_expired_request_cannot_be_approved(self):
        c = uniq()
        self.setsw("client=" + c, "approve")
        js = self.check({"client": c, "action": "post"}, idempotency_key="k-exp")
        rid = js["request_id"]
        t0 = time.monotonic()
        while time.monotonic() < t0 + 5:
            st, _, a = self.d.http("GET", "/v1/approvals/" + rid)
            if a["approval"]["status"] != "pending":
                break
            time.sleep(0.1)
        self.assertEqual(a["approval"]["status"], "expired", a)
        err = self.assertError(self.d.http("POST", "/v1/approvals/%s/approve" % rid, {}), 409,
                               "conflict")
        self.assertIn("expired", err["message"])
        self.assertNotIn(rid, [x["id"] for x in self.d.http("GET", "/v1/approvals")[2]["approvals"]])
        # the same key asks again: a new request, not the expired one
        js = self.check({"client": c, "action": "post"}, idempotency_key="k-exp")
        self.assertNotEqual(js["request_id"], rid)


class Tokens(GuardTestCase):
    config = CONFIG

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bot = cls.d.create_token("automation", "bot")
        cls.acme = cls.d.create_token("responder", "acme-resp", {"client": "acme"})
        cls.globex = cls.d.create_token("responder", "globex-resp", {"client": "globex"})
        cls.acme_bot = cls.d.create_token("automation", "acme-bot", {"client": "acme"})
        cls.viewer = cls.d.create_token("viewer", "vic")

    def test_automation_token(self):
        c = uniq()
        sw = self.setsw("client=" + c, "approve")
        js = self.check({"client": c}, token=self.bot)
        rid = js["request_id"]
        self.assertEqual(js["decision"], "approval_required", js)
        self.assertEqual(self.d.http("GET", "/v1/approvals/" + rid, token=self.bot)[0], 200)
        self.assertEqual(self.d.http("POST", "/v1/audit/events",
                                     {"actor": "bot", "action": "comment", "account": "@x"},
                                     token=self.bot)[0], 201)
        self.assertEqual(self.d.http("GET", "/v1/switches", token=self.bot)[0], 200)
        self.assertEqual(self.d.http("GET", "/v1/switches/" + sw["id"], token=self.bot)[0], 200)
        self.assertEqual(self.d.http("GET", "/v1/caps", token=self.bot)[0], 200)
        s = SseClient(self.d, token=self.bot)
        try:
            self.assertEqual(s.status, 200)
            s.event(5)
        finally:
            s.close()
        inc = self.d.declare()["id"]
        forbidden = [
            ("POST", "/v1/switches", {"selector": "client=" + c, "reason": "r"}),
            ("POST", "/v1/switches/%s/clear" % sw["id"], {}),
            ("POST", "/v1/switches/%s/resume" % sw["id"], {"ramp": "1h"}),
            ("PUT", "/v1/caps/botcap", {"spec": "client=x: 1/1s"}),
            ("DELETE", "/v1/caps/botcap", None),
            ("GET", "/v1/approvals", None),
            ("POST", "/v1/approvals/%s/approve" % rid, {}),
            ("POST", "/v1/approvals/%s/deny" % rid, {}),
            ("GET", "/v1/incidents", None),
            ("POST", "/v1/incidents", {"title": "t", "severity": "P2"}),
            ("POST", "/v1/incidents/%s/evidence" % inc, {}),
            ("GET", "/v1/audit/events", None),
            ("POST", "/v1/tokens", {"role": "viewer", "name": "x"}),
        ]
        for method, path, body in forbidden:
            err = self.assertError(self.d.http(method, path, body, token=self.bot), 403,
                                   "forbidden", "%s %s" % (method, path))
            self.assertIn("automation", err["message"])
        # nothing happened
        self.assertTrue(self.d.http("GET", "/v1/switches/" + sw["id"])[2]["switch"]["active"])
        self.assertEqual(self.d.http("GET", "/v1/approvals/" + rid)[2]["approval"]["status"],
                         "pending")
        self.assertNotIn("botcap", self.cap_ids())

    def test_viewer_cannot_change(self):
        c = uniq()
        sw = self.setsw("client=" + c)
        self.assertEqual(self.d.http("GET", "/v1/switches", token=self.viewer)[0], 200)
        for method, path, body in (
                ("POST", "/v1/switches", {"selector": "client=" + c, "reason": "r"}),
                ("POST", "/v1/switches/%s/clear" % sw["id"], {}),
                ("PUT", "/v1/caps/v", {"spec": "client=x: 1/1s"}),
                ("POST", "/v1/gate/check", {"labels": {"client": c}})):
            self.assertError(self.d.http(method, path, body, token=self.viewer), 403, "forbidden")
        self.assertError(self.d.http("GET", "/v1/switches", token=None), 401)

    def test_scoped_setting(self):
        ok = ["client=acme", "client=acme,action=dm", "client=acme,action!=dm",
              "client=acme,action in (dm,comment)"]
        for sel in ok:
            sw = self.setsw(sel, token=self.acme)
            self.assertEqual(sw["set_by"], "acme-resp")
            self.clear(sw["id"], token=self.acme)
        before = len(self.all_switches())
        for sel in ("", "client=globex", "client!=acme", "client in (acme,globex)",
                    "action=dm", "client notin (globex,initech)"):
            err = self.assertError(self.d.http("POST", "/v1/switches",
                                               {"selector": sel, "reason": "r"}, token=self.acme),
                                   403, "forbidden", sel)
            self.assertIn("client=acme", err["message"])
            st, _, js = self.d.http("PUT", "/v1/caps/scoped-x", {"spec": sel + ": 1/1h"},
                                    token=self.acme)
            self.assertEqual(st, 403, (sel, js))
        self.assertEqual(len(self.all_switches()), before, "nothing stored")
        self.assertNotIn("scoped-x", self.cap_ids())
        js = self.putcap("acme-dm", "client=acme,action=dm: 5/1m", token=self.acme)
        self.assertEqual(js["cap"]["set_by"], "acme-resp")
        self.assertEqual(self.d.http("DELETE", "/v1/caps/acme-dm", token=self.acme)[0], 200)

    def test_scoped_visibility(self):
        g = self.setsw("action=scopevis" + uniq(), reason="global")  # compatible with acme
        a = self.setsw("client=acme,lane=" + uniq())
        o = self.setsw("client=globex,lane=" + uniq())
        ne = self.setsw("client!=globex,lane=" + uniq())
        notme = self.setsw("client!=acme,lane=" + uniq())
        st, _, js = self.d.http("GET", "/v1/switches", token=self.acme)
        ids = {s["id"] for s in js["switches"]}
        self.assertTrue({g["id"], a["id"], ne["id"]} <= ids, js)
        self.assertFalse({o["id"], notme["id"]} & ids, js)
        self.assertEqual(self.d.http("GET", "/v1/switches/" + g["id"], token=self.acme)[0], 200)
        for sw in (o, notme):
            self.assertError(self.d.http("GET", "/v1/switches/" + sw["id"], token=self.acme), 404,
                             "not_found")
            self.assertError(self.d.http("POST", "/v1/switches/%s/clear" % sw["id"], {},
                                         token=self.acme), 404, "not_found")
        # visible, but wider than the scope: may not be lifted
        self.assertError(self.d.http("POST", "/v1/switches/%s/clear" % g["id"], {},
                                     token=self.acme), 403, "forbidden")
        self.assertError(self.d.http("POST", "/v1/switches/%s/resume" % g["id"], {"ramp": "1h"},
                                     token=self.acme), 403, "forbidden")
        self.assertTrue(self.d.http("GET", "/v1/switches/" + g["id"])[2]["switch"]["active"])
        # caps
        self.putcap("vis-g-" + a["id"][3:], "client=globex: 1/1h")
        self.assertNotIn("vis-g-" + a["id"][3:], self.cap_ids(token=self.acme))
        self.assertError(self.d.http("DELETE", "/v1/caps/vis-g-" + a["id"][3:], token=self.acme),
                         404, "not_found")
        self.assertIn("vis-g-" + a["id"][3:], self.cap_ids(token=self.globex))
        for sw in (g, a, o, ne, notme):
            self.clear(sw["id"])
        self.d.http("DELETE", "/v1/caps/vis-g-" + a["id"][3:])

    def test_scoped_gate_checks(self):
        lane = uniq()
        a = self.setsw("client=acme,lane=" + lane)
        # the scope's labels are applied to the action
        self.assertDeny({"lane": lane}, "switch", a["id"], token=self.acme_bot)
        self.assertDeny({"lane": lane, "client": "acme"}, "switch", a["id"], token=self.acme)
        self.assertAllow({"lane": lane}, token=self.globex)
        err = self.assertError(self.d.http("POST", "/v1/gate/check",
                                           {"labels": {"client": "globex", "lane": lane}},
                                           token=self.acme_bot), 403, "forbidden")
        self.assertIn("scope", err["message"])
        err = self.assertError(self.d.http("POST", "/v1/gate/check",
                                           {"actions": [{"labels": {"lane": "x"}},
                                                        {"labels": {"client": "globex"}}]},
                                           token=self.acme_bot), 403, "forbidden")
        self.assertTrue(err["message"].startswith("action 2: "), err)  # counted from 1
        # idempotency keys are per tenant
        k = uniq("key-")
        self.assertAllow({"lane": "k"}, token=self.acme, idempotency_key=k)
        self.assertAllow({"lane": "k"}, token=self.globex, idempotency_key=k)
        self.assertAllow({"lane": "k", "client": "x"}, idempotency_key=k)
        self.assertDeny({"lane": "k"}, "duplicate", token=self.acme_bot, idempotency_key=k)
        self.assertDeny({"lane": "k"}, "duplicate", token=self.globex, idempotency_key=k)
        # a scoped key plus its namespace must fit
        err = self.assertError(self.d.http("POST", "/v1/gate/check",
                                           {"labels": {"a": "b"}, "idempotency_key": "k" * 250},
                                           token=self.acme), 400, "invalid")
        self.assertIn("idempotency_key", err["message"])
        self.clear(a["id"])

    def test_scoped_approvals(self):
        lane = uniq()
        self.setsw("lane=" + lane, "approve")
        rid = self.check({"lane": lane}, token=self.acme_bot)["request_id"]
        a = self.d.http("GET", "/v1/approvals/" + rid, token=self.acme)[2]["approval"]
        self.assertEqual(a["labels"], {"client": "acme", "lane": lane})
        self.assertError(self.d.http("GET", "/v1/approvals/" + rid, token=self.globex), 404)
        self.assertError(self.d.http("POST", "/v1/approvals/%s/approve" % rid, {},
                                     token=self.globex), 404)
        self.assertNotIn(rid, [x["id"] for x in
                               self.d.http("GET", "/v1/approvals?status=all",
                                           token=self.globex)[2]["approvals"]])
        self.assertEqual(self.d.http("POST", "/v1/approvals/%s/approve" % rid, {},
                                     token=self.acme)[0], 200)

    def test_scoped_approval_list_limit(self):
        """BUG: GET /v1/approvals?limit=N for a scoped token applies the limit
        before the scope: with acme's pending request older than 5 of
        globex's, acme's GET /v1/approvals?limit=5 is {"approvals":[]}
        (expected acme's request). The store returns the newest N of every
        tenant and kx_svc_approval_list() filters them afterwards; with the
        default limit of 100 a tenant sees none of its requests once others
        have 100 newer ones."""
        lane = uniq()
        sw = self.setsw("lane=" + lane, "approve")
        try:
            mine = self.check({"lane": lane}, token=self.acme)["request_id"]
            for i in range(5):
                time.sleep(0.002)
                self.check({"lane": lane, "n": str(i)}, token=self.globex)
            st, _, js = self.d.http("GET", "/v1/approvals?limit=5", token=self.acme)
            self.assertEqual(st, 200, js)
            self.assertEqual([a["id"] for a in js["approvals"]], [mine])
        finally:
            self.clear(sw["id"])

    def test_scoped_cap_cannot_replace_another_tenants_cap(self):
        """BUG: PUT /v1/caps/{id} by a token scoped client=acme, where {id} is
        an existing cap of client=globex: expected 404 (like DELETE) or 403,
        got 200 — globex's cap is replaced by acme's spec (globex's limit is
        gone and GET /v1/caps no longer shows it to globex). kx_svc_cap_put
        checks only the new spec against the scope, not the stored cap."""
        cid = uniq("shared-")
        self.putcap(cid, "client=globex: 1/1h", token=self.globex, status=201)
        st, _, js = self.d.http("PUT", "/v1/caps/" + cid, {"spec": "client=acme: 1000/1s"},
                                token=self.acme)
        try:
            self.assertIn(st, (403, 404), js)
            self.assertIn(cid, self.cap_ids(token=self.globex))
        finally:
            self.d.http("DELETE", "/v1/caps/" + cid)

    def test_approval_keys_are_per_tenant(self):
        """BUG: two tenants checking the same idempotency key under one approve
        switch share one approval request: POST /v1/gate/check
        {"labels":{"lane":L},"idempotency_key":"k"} by client=acme then by
        client=globex gives globex acme's request_id (which globex then gets
        404 for). request_approvals() looks pending requests up by the raw key,
        not the namespaced one."""
        lane = uniq()
        sw = self.setsw("lane=" + lane, "approve")
        k = uniq("key-")
        try:
            r1 = self.check({"lane": lane}, token=self.acme, idempotency_key=k)["request_id"]
            r2 = self.check({"lane": lane}, token=self.globex, idempotency_key=k)["request_id"]
            self.assertNotEqual(r1, r2)
            self.assertEqual(self.d.http("GET", "/v1/approvals/" + r2, token=self.globex)[0], 200)
        finally:
            self.clear(sw["id"])

    def test_approved_key_is_remembered_in_the_tenants_namespace(self):
        """BUG: approving a scoped token's request records its raw key in the
        gate: afterwards an unscoped check with the same key is denied as a
        duplicate, while the tenant's own retry with that key is allowed.
        Expected the reverse. kx_svc_approval_decide() records
        out->idempotency_key without namespaced_key()."""
        lane = uniq()
        sw = self.setsw("lane=" + lane, "approve")
        k = uniq("key-")
        try:
            rid = self.check({"lane": lane}, token=self.acme, idempotency_key=k)["request_id"]
            self.assertEqual(self.d.http("POST", "/v1/approvals/%s/approve" % rid, {})[0], 200)
            self.assertAllow({"lane": "elsewhere", "client": "x"}, idempotency_key=k)
            self.assertDeny({"lane": lane}, "duplicate", token=self.acme, idempotency_key=k,
                            read_only=True)
        finally:
            self.clear(sw["id"])


class BadInput(GuardTestCase):
    config = CONFIG

    def assertBad(self, method, path, body=None, raw=None, code="invalid", words=(),
                  status=400):
        st, h, js = self.d.http(method, path, body, raw=raw)
        err = self.assertError((st, h, js), status, code, "%s %s %r" % (method, path,
                                                                        raw or body))
        for w in words:
            self.assertIn(w, err["message"], "%s %r" % (path, raw or body))
        return err

    def test_switch_create(self):
        before = len(self.all_switches())
        v0 = self.d.http("GET", "/v1/switches")[2]["version"]
        c = "client=" + uniq()
        self.assertBad("POST", "/v1/switches", raw="{bad", code="invalid_json")
        self.assertBad("POST", "/v1/switches", raw="[]", code=None)
        self.assertBad("POST", "/v1/switches", raw="", code=None)
        cases = [
            ({"selector": c, "reason": "r", "bogus": 1}, ["bogus"]),
            ({"selector": 5, "reason": "r"}, ["selector"]),
            ({"selector": c, "reason": 5}, ["reason"]),
            ({"selector": c, "reason": "r", "mode": 1}, ["mode"]),
            ({"selector": c, "reason": "r", "mode": "stop"}, ["stop", "block"]),
            ({"selector": c, "reason": "r", "mode": ""}, ["mode"]),
            ({"selector": "client=", "reason": "r"}, ["column 8"]),
            ({"selector": "client=a,,x=y", "reason": "r"}, ["column 10"]),
            ({"selector": "client=a platform=b", "reason": "r"}, ["column"]),
            ({"selector": "client=a,client=b", "reason": "r"}, ["in ("]),
            ({"selector": "Client=a", "reason": "r"}, ["column"]),
            ({"selector": "client in (a", "reason": "r"}, ["column"]),
            ({"selector": c}, ["reason"]),
            ({"selector": c, "reason": ""}, ["reason"]),
            ({"selector": c, "reason": None}, ["reason"]),
            ({"selector": c, "reason": "x" * 1001}, ["reason", "1000"]),
            ({"selector": c, "reason": "a\x01b"}, ["reason"]),
            ({"selector": c, "reason": "r", "expires_in": "0s"}, ["expires_in"]),
            ({"selector": c, "reason": "r", "expires_in": "-5s"}, ["expires_in"]),
            ({"selector": c, "reason": "r", "expires_in": "soon"}, ["expires_in"]),
            ({"selector": c, "reason": "r", "expires_in": 60}, ["expires_in"]),
            ({"selector": c, "reason": "r", "expires_in": "400d"}, ["expires_in"]),
            ({"selector": c, "reason": "r", "expires_at": "2000-01-01T00:00:00Z"}, ["future"]),
            ({"selector": c, "reason": "r", "expires_at": "tomorrow"}, ["expires_at"]),
            ({"selector": c, "reason": "r", "expires_in": "1h",
              "expires_at": "2099-01-01T00:00:00Z"}, ["not both"]),
            ({"selector": c, "reason": "r", "incident": 5}, ["incident"]),
        ]
        for body, words in cases:
            self.assertBad("POST", "/v1/switches", body, words=words)
        for sel in ("a=" + "x" * 20000, "a=" + "x" * 300):
            st, _, js = self.d.http("POST", "/v1/switches", {"selector": sel, "reason": "r"})
            self.assertTrue(400 <= st < 500, (st, js))
            self.assertIn("error", js)
        self.assertEqual(len(self.all_switches()), before, "nothing half-stored")
        self.assertEqual(self.d.http("GET", "/v1/switches")[2]["version"], v0,
                         "no snapshot was rebuilt for a refused switch")

    def test_switch_lift_and_queries(self):
        c = uniq()
        sw = self.setsw("client=" + c)
        p = "/v1/switches/%s/" % sw["id"]
        for body, words in (({"reason": 5}, ["reason"]), ({"x": 1}, ["x"]),
                            ({"reason": "r" * 1001}, ["reason"])):
            self.assertBad("POST", p + "clear", body, words=words)
        self.assertBad("POST", p + "clear", raw="{", code="invalid_json")
        for body, words in (({"ramp": "1h", "floor": 5, "peak": 2}, ["floor", "peak"]),
                            ({"ramp": "1h", "floor": -1}, ["floor"]),
                            ({"ramp": "1h", "peak": 0}, ["peak"]),
                            ({"ramp": "1h", "peak": 2000000}, ["peak"]),
                            ({"ramp": "1h", "window": "0s"}, ["window"]),
                            ({"ramp": "1h", "window": "x"}, ["window"]),
                            ({"ramp": "-1h"}, ["ramp"]),
                            ({"ramp": "400d"}, ["ramp"]),
                            ({"ramp": 30}, ["ramp"]),
                            ({"floor": 1}, ["ramp"]),
                            ({"ramp": "1h", "floor": "1"}, ["floor"]),
                            ({"ramp": "1h", "bogus": 1}, ["bogus"])):
            self.assertBad("POST", p + "resume", body, words=words)
        got = self.d.http("GET", "/v1/switches/" + sw["id"])[2]["switch"]
        self.assertEqual((got["active"], got["ramp"]), (True, None), "nothing half-stored")
        self.assertDeny({"client": c}, "switch", sw["id"])
        for q in ("?all=maybe", "?bogus=1"):
            self.assertBad("GET", "/v1/switches" + q)
        self.assertEqual(self.d.http("GET", "/v1/switches?all=false")[0], 200)
        self.assertBad("GET", "/v1/switches/" + "x" * 300, code=None, status=404)

    def test_gate_check(self):
        cases = [
            (None, "{", ["JSON"], "invalid_json"),
            (None, "[]", [], None),
            ({}, None, ["labels"], "invalid"),
            ({"labels": "client=a"}, None, ["labels"], "invalid"),
            ({"labels": {}}, None, ["labels"], "invalid"),
            ({"labels": {"Bad Key": "x"}}, None, ["Bad Key"], "invalid"),
            ({"labels": {"a" * 65: "x"}}, None, ["label key"], "invalid"),
            ({"labels": {"": "x"}}, None, ["label key"], "invalid"),
            ({"labels": {"a": 1}}, None, ["'a'"], "invalid"),
            ({"labels": {"a": None}}, None, ["'a'"], "invalid"),
            ({"labels": {"a": "x" * 5000}}, None, ["'a'"], "invalid"),
            ({"labels": {"a": "b"}, "bogus": True}, None, ["bogus"], "invalid"),
            ({"labels": {"a": "b"}, "read_only": "yes"}, None, ["read_only"], "invalid"),
            ({"labels": {"a": "b"}, "idempotency_key": 5}, None, ["idempotency_key"], "invalid"),
            ({"labels": {"a": "b"}, "idempotency_key": "k" * 257}, None, ["256"], "invalid"),
            ({"labels": {"a": "b"}, "idempotency_key": "a\nb"}, None, ["idempotency"], "invalid"),
            ({"actions": []}, None, ["1 to 1000"], "invalid"),
            ({"actions": {}}, None, ["actions"], "invalid"),
            ({"actions": [{"labels": {"a": "b"}}] * 1001}, None, ["1 to 1000"], "invalid"),
            ({"actions": [{"labels": {"a": "b"}}], "labels": {"a": "b"}}, None, ["labels"],
             "invalid"),
        ]
        for body, raw, words, code in cases:
            self.assertBad("POST", "/v1/gate/check", body, raw=raw, code=code, words=words)
        many = {"labels": {"k%d" % i: "v" for i in range(200)}}
        st, _, js = self.d.http("POST", "/v1/gate/check", many)
        self.assertTrue(st == 200 or 400 <= st < 500, (st, js))


class Streams(GuardTestCase):
    config = CONFIG

    def test_stream_initial_and_changes(self):
        c = uniq()
        first = self.setsw("client=%s,lane=a" % c)
        s = SseClient(self.d)
        try:
            self.assertEqual(s.status, 200)
            self.assertIn("text/event-stream", s.headers.get("Content-Type"))
            name, data = s.event(5)
            self.assertEqual(s.retry, 2000, "retry: 2000 comes first")
            self.assertEqual(name, "switches")
            self.assertIsInstance(data["version"], int)
            self.assertIn(first["id"], [x["id"] for x in data["switches"]])
            v0 = data["version"]
            t0 = time.monotonic()
            sw = self.setsw("client=%s,lane=b" % c, "read_only")
            data = s.wait_for(lambda d: sw["id"] in [x["id"] for x in d["switches"]], 1.0)
            took = time.monotonic() - t0
            print("\nnew switch reached the stream in %.1f ms" % (took * 1000))
            self.assertGreater(data["version"], v0)
            got = [x for x in data["switches"] if x["id"] == sw["id"]][0]
            self.assertEqual((got["mode"], got["selector"]), ("read_only", sw["selector"]))
            # a clear is seen too, and the stream carries the list's version
            self.clear(sw["id"])
            data = s.wait_for(lambda d: sw["id"] not in [x["id"] for x in d["switches"]], 1.0)
            deadline = time.monotonic() + 2
            while True:
                listed = self.d.http("GET", "/v1/switches")[2]
                if listed["version"] == data["version"] or time.monotonic() > deadline:
                    break
                try:
                    data = s.wait_for(lambda d: True, 0.2)
                except TimeoutError:
                    pass
            self.assertEqual(listed["version"], data["version"])
            self.assertEqual([x["id"] for x in listed["switches"]],
                             [x["id"] for x in data["switches"]])
        finally:
            s.close()

    def test_stream_drops_a_switch_when_it_stops_applying(self):
        c = uniq()
        s = SseClient(self.d)
        try:
            s.event(5)
            exp = self.setsw("client=%s,lane=exp" % c, expires_in="1s")
            ramp = self.setsw("client=%s,lane=ramp" % c)
            st, _, js = self.d.http("POST", "/v1/switches/%s/resume" % ramp["id"],
                                    {"ramp": "2s", "peak": 1})
            self.assertEqual(st, 200, js)
            s.wait_for(lambda d: exp["id"] in [x["id"] for x in d["switches"]], 1.0)
            t_exp = self.assertTimestamp(exp["expires_at"]).timestamp()
            t_end = self.assertTimestamp(js["switch"]["ramp"]["end"]).timestamp()
            data = s.wait_for(lambda d: exp["id"] not in [x["id"] for x in d["switches"]], 4.0)
            lag = time.time() - t_exp
            self.assertIn(ramp["id"], [x["id"] for x in data["switches"]], "ramp not over yet")
            data = s.wait_for(lambda d: ramp["id"] not in [x["id"] for x in d["switches"]], 4.0)
            lag2 = time.time() - t_end
            print("\nexpiry reached the stream %.0f ms after expires_at, ramp end %.0f ms after"
                  % (lag * 1000, lag2 * 1000))
            self.assertLess(lag, 1.0)
            self.assertLess(lag2, 1.0)
        finally:
            s.close()

    def test_stream_approval_decisions(self):
        lane = uniq()
        acme = self.d.create_token("viewer", "acme-view-" + uniq(), {"client": "acme"})
        acme_bot = self.d.create_token("automation", "acme-bot-" + uniq(), {"client": "acme"})
        sw = self.setsw("lane=" + lane, "approve")
        before = self.check({"lane": lane, "client": "acme", "n": "0"})["request_id"]
        # A decision reaches the streams' ring asynchronously (through the
        # change feed): wait until a stream has seen it, so that the streams
        # opened below certainly connect after it.
        probe = SseClient(self.d)
        try:
            probe.event(5)
            self.assertEqual(self.d.http("POST", "/v1/approvals/%s/deny" % before, {})[0], 200)
            probe.wait_for(lambda d: d["approval"]["id"] == before, 2.0, event="approval")
        finally:
            probe.close()
        admin_s, acme_s = SseClient(self.d), SseClient(self.d, token=acme_bot)
        try:
            admin_s.event(5)
            acme_s.event(5)
            mine = self.check({"lane": lane}, token=acme_bot)["request_id"]
            other = self.check({"lane": lane, "client": "globex"})["request_id"]
            self.assertEqual(self.d.http("POST", "/v1/approvals/%s/deny" % other,
                                         {"note": "no"})[0], 200)
            # one decision at a time: see test_stream_burst_of_decisions
            admin_s.wait_for(lambda d: d["approval"]["id"] == other, 2.0, event="approval")
            t0 = time.monotonic()
            self.assertEqual(self.d.http("POST", "/v1/approvals/%s/approve" % mine,
                                         {"note": "ok"})[0], 200)
            got = acme_s.wait_for(lambda d: d["approval"]["id"] == mine, 2.0, event="approval")
            print("\napproval decision reached the stream in %.1f ms"
                  % ((time.monotonic() - t0) * 1000))
            self.assertEqual((got["approval"]["status"], got["approval"]["note"]),
                             ("approved", "ok"))
            self.assertEqual(got["approval"],
                             self.d.http("GET", "/v1/approvals/" + mine)[2]["approval"])
            admin_s.wait_for(lambda d: d["approval"]["id"] == mine, 2.0, event="approval")
            admin_ids = [d["approval"]["id"] for n, d in admin_s.seen if n == "approval"]
            self.assertEqual(admin_ids, [other, mine], "in order, only news since connect")
            acme_ids = [d["approval"]["id"] for n, d in acme_s.seen if n == "approval"]
            self.assertEqual(acme_ids, [mine], "a scoped stream: only its own requests")
        finally:
            admin_s.close()
            acme_s.close()
            self.clear(sw["id"])

    def test_stream_burst_of_decisions(self):
        """BUG: approving 20 pending requests at once (8 in parallel) on
        PostgreSQL, a stream opened before gets 18-19 of the 20 `approval`
        events within 3 s; the rest come with the next periodic re-read (up to
        30 s). service/guard.c reload_thread() waits while `!rt->dirty` and
        never looks at rt->npending: an "approval" notification that arrives
        while the thread is busy in push_decisions() or a reload signals
        nobody, and the thread then sleeps with decisions pending (a lost
        wake-up). Seen on PostgreSQL in about one burst in four; not on SQLite."""
        lane = uniq()
        sw = self.setsw("lane=" + lane, "approve")
        try:
            for trial in range(6):
                rids = [self.check({"lane": lane, "n": "%d-%d" % (trial, i)})["request_id"]
                        for i in range(20)]
                s = SseClient(self.d)
                try:
                    s.event(5)
                    with concurrent.futures.ThreadPoolExecutor(8) as ex:
                        codes = list(ex.map(lambda r: self.d.http(
                            "POST", "/v1/approvals/%s/approve" % r, {})[0], rids))
                    self.assertEqual(set(codes), {200})
                    want = set(rids)
                    s.wait_for(lambda d: not (want.discard(d["approval"]["id"]) or want), 3.0,
                               event="approval")
                finally:
                    s.close()
        finally:
            self.clear(sw["id"])

    def test_stream_is_scoped(self):
        acme = self.d.create_token("viewer", "acme-view-" + uniq(), {"client": "acme"})
        s = SseClient(self.d, token=acme)
        try:
            s.event(5)
            other = self.setsw("client=globex,lane=" + uniq())
            mine = self.setsw("client=acme,lane=" + uniq())
            data = s.wait_for(lambda d: mine["id"] in [x["id"] for x in d["switches"]], 2.0)
            self.assertNotIn(other["id"], [x["id"] for x in data["switches"]])
            self.clear(other["id"])
            self.clear(mine["id"])
        finally:
            s.close()
        self.assertError(self.d.http("GET", "/v1/switches/stream", token=None), 401)

    def test_twenty_streams_and_other_requests(self):
        c = uniq()
        streams = []
        try:
            for _ in range(20):
                streams.append(SseClient(self.d))
            for s in streams:
                self.assertEqual(s.status, 200)
                s.event(5)
            worst = 0.0
            for i in range(10):
                t0 = time.monotonic()
                self.assertEqual(self.d.http("GET", "/v1/switches", timeout=3)[0], 200)
                self.assertAllow({"client": c, "n": str(i)})
                self.assertEqual(self.d.http("GET", "/healthz", timeout=3)[0], 200)
                worst = max(worst, time.monotonic() - t0)
            self.assertLess(worst, 2.0, "requests are served while 20 streams are open")
            sw = self.setsw("client=" + c)
            t0 = time.monotonic()
            for s in streams:
                s.wait_for(lambda d: sw["id"] in [x["id"] for x in d["switches"]],
                           max(0.1, t0 + 2.0 - time.monotonic()))
            print("\n20 streams saw the switch within %.1f ms" % ((time.monotonic() - t0) * 1000))
            # concurrent requests while they are open
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                codes = list(ex.map(lambda i: self.d.http("POST", "/v1/gate/check",
                                                          {"labels": {"client": c}},
                                                          timeout=5)[0], range(40)))
            self.assertEqual(set(codes), {200})
        finally:
            for s in streams:
                s.close()
        # closed streams do not hold the daemon up
        self.assertEqual(self.d.http("GET", "/v1/switches", timeout=3)[0], 200)

    def test_sigterm_with_open_streams(self):
        d = self.new_daemon()
        streams = [SseClient(d) for _ in range(20)]
        try:
            for s in streams:
                s.event(5)
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGTERM)
            try:
                rc = d.proc.wait(timeout=8)
            except Exception:
                rc = None
            took = time.monotonic() - t0
            print("\nklaxond stopped with 20 open streams in %.0f ms" % (took * 1000))
            self.assertIsNotNone(rc, "klaxond did not exit within 8 s of SIGTERM")
            self.assertEqual(rc, 0, d.log_tail())
            self.assertLess(took, 5.0)
            for s in streams:
                self.assertTrue(s.at_eof(2), "the stream was ended")
        finally:
            for s in streams:
                s.close()


# A stream on a daemon of its own that nothing changes, opened before the
# first test: the last class checks that it got a ": ping" (due after 15 s
# of silence) while the others ran, so the wait costs little.
_silent = {}


def setUpModule():
    d = Daemon()
    try:
        s = SseClient(d)
        s.event(5)
    except BaseException:
        d.cleanup()
        raise
    _silent.update(daemon=d, stream=s, opened=time.monotonic())


def tearDownModule():
    if _silent:
        _silent["stream"].close()
        _silent["daemon"].cleanup()
        _silent.clear()


class ZzSilentStream(GuardTestCase):
    """Runs last (classes run in name order)."""

    @classmethod
    def setUpClass(cls):
        cls.daemons = []
        cls.d = _silent["daemon"]

    @classmethod
    def tearDownClass(cls):
        pass

    def test_ping_after_15s_of_silence(self):
        s = _silent["stream"]
        deadline = _silent["opened"] + 25  # 15 s of silence, pinged at most 5 s late
        while ": ping" not in s.comments and time.monotonic() < deadline:
            try:
                s.event(max(0.1, deadline - time.monotonic()))
                self.fail("no switch changed, yet an event came")
            except TimeoutError:
                pass
        self.assertIn(": ping", s.comments, "no ping within 25 s of silence")
        waited = time.monotonic() - _silent["opened"]
        self.assertGreater(waited, 14, "a ping only after 15 s of silence")


class Restart(GuardTestCase):
    config = CONFIG

    def test_switches_and_caps_survive_a_restart(self):
        c = uniq()
        blk = self.setsw("client=%s,lane=b" % c, reason="kept")
        ro = self.setsw("client=%s,lane=r" % c, "read_only")
        apr = self.setsw("client=%s,lane=a" % c, "approve")
        gone = self.setsw("client=%s,lane=g" % c)
        self.clear(gone["id"], "lifted")
        ramp = self.setsw("client=%s,lane=ramp" % c)
        self.d.http("POST", "/v1/switches/%s/resume" % ramp["id"],
                    {"ramp": "1h", "floor": 1, "peak": 1, "window": "1m"})
        self.putcap("rs-" + c, "client=%s,lane=cap: 1/1h" % c)
        rid = self.check({"client": c, "lane": "a"})["request_id"]
        listing = self.d.http("GET", "/v1/switches?all=true")[2]["switches"]
        rc, killed = self.d.restart()
        self.assertEqual((rc, killed), (0, False), self.d.log_tail())
        self.assertEqual(self.d.http("GET", "/v1/switches?all=true")[2]["switches"], listing)
        self.assertDeny({"client": c, "lane": "b"}, "switch", blk["id"])
        self.assertDeny({"client": c, "lane": "r"}, "switch", ro["id"])
        self.assertAllow({"client": c, "lane": "r"}, read_only=True)
        self.assertEqual(self.check({"client": c, "lane": "a"})["decision"], "approval_required")
        self.assertAllow({"client": c, "lane": "g"})
        self.assertAllow({"client": c, "lane": "ramp"})
        self.assertDeny({"client": c, "lane": "ramp"}, "ramp", ramp["id"])
        self.assertIn("rs-" + c, self.cap_ids())
        self.assertAllow({"client": c, "lane": "cap"})
        self.assertDeny({"client": c, "lane": "cap"}, "cap", "rs-" + c)
        self.assertEqual(self.d.http("GET", "/v1/approvals/" + rid)[2]["approval"]["status"],
                         "pending")
        self.assertEqual(self.d.http("POST", "/v1/approvals/%s/approve" % rid, {})[0], 200)


if __name__ == "__main__":
    main()

"""E-mail channels against a real local SMTP server: Debian's aiosmtpd
(python3-aiosmtpd), run in this process on 127.0.0.1, recording every
message it is given.

One notification is one message: From, To (two recipients, both on the
envelope), a Subject with severity, incident ID and title, Message-ID
<ntf_…@klaxon>, X-Klaxon-Event and a plain-text body; the channel's
`events` and `severities` filter what is sent. With the server down for a
few seconds the delivery is retried and arrives once (the receiver dedupes
by Message-ID), and the delivery log (GET /v1/notifications, `klaxon
notification list --json`, GET /v1/notifications/{id}) shows the failed
attempts with their errors and the delivery. See docs/config.md
(Channels) and docs/operations.md (Notifications, Checking deliveries)."""

import email
import email.policy
import email.utils
import json
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, KlaxonTestCase, free_port, main  # noqa: E402

try:
    from aiosmtpd.controller import Controller
except ImportError:
    # ctest may run an interpreter other than Debian's, which is where
    # scripts/setup installs python3-aiosmtpd (pure Python)
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        Controller = None

# The daemon inherits our environment: never send loopback traffic to a proxy.
for _k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_k, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

WAIT = 20.0  # seconds, the longest any wait here may take
FROM = "klaxon@example.org"
TO = ["oncall@example.org", "sre-leads@example.org"]
BOUNCE = "nobody@bounce.example"  # the server refuses this recipient for good
MSGID_RE = re.compile(r"^<(ntf_[0-9a-f]{16})@klaxon>$")


class Recorder:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []  # dicts: mail_from, rcpt_tos, raw, msg, at

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == BOUNCE:
            return "550 5.1.1 <%s>: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            self.messages.append({"mail_from": envelope.mail_from,
                                  "rcpt_tos": list(envelope.rcpt_tos), "raw": raw,
                                  "msg": msg, "at": time.monotonic()})
        return "250 OK queued"

    def matching(self, incident=None, event=None):
        with self.lock:
            msgs = list(self.messages)
        out = []
        for m in msgs:
            if event is not None and m["msg"]["X-Klaxon-Event"] != event:
                continue
            if incident is not None and incident not in m["raw"].decode("utf-8", "replace"):
                continue
            out.append(m)
        return out

    def wait_for(self, count, timeout=WAIT, **kw):
        deadline = time.monotonic() + timeout
        while True:
            got = self.matching(**kw)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


class SMTPServer:
    """An aiosmtpd Controller on 127.0.0.1 that can be taken down and
    brought up again on the same port. While down the port is held by a
    socket that is bound but not listening: connections are refused, and
    nobody else can take the port."""

    def __init__(self):
        self.handler = Recorder()
        self.port = free_port()
        self.controller = None
        self.reserved = None
        self.up()

    def up(self):
        if self.reserved is not None:
            self.reserved.close()
            self.reserved = None
        deadline = time.monotonic() + 10
        while True:
            c = Controller(self.handler, hostname=HOST, port=self.port, ready_timeout=10.0)
            try:
                c.start()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.controller = c

    def down(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, self.port))
        self.reserved = s

    def close(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        if self.reserved is not None:
            self.reserved.close()
            self.reserved = None


def email_yaml(port):
    return """public_url: https://klaxon.example.org/
channels:
  - name: oncall-mail
    type: email
    url: smtp://%s:%d
    from: "%s"
    to: [%s]
    events: ["incident.declared", "incident.resolved"]
    severities: [P0, P1, P2]
    timeout: 5s
  - name: bounce
    type: email
    url: smtp://%s:%d
    from: %s
    to: %s
    events: incident.declared
    severities: [P0]
""" % (HOST, port, FROM, ", ".join(TO), HOST, port, FROM, BOUNCE)


@unittest.skipIf(Controller is None, "aiosmtpd is not installed (Debian package "
                 "python3-aiosmtpd, installed by scripts/setup)")
class Email(KlaxonTestCase):

    @classmethod
    def setUpClass(cls):
        cls.smtp = SMTPServer()
        cls.config = email_yaml(cls.smtp.port)
        try:
            super().setUpClass()
        except BaseException:
            cls.smtp.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.smtp.close()

    # -- helpers -------------------------------------------------------------

    def notifications(self, subject, channel="oncall-mail"):
        q = "?subject=%s&limit=1000" % subject + ("&channel=" + channel if channel else "")
        st, _, body = self.d.http("GET", "/v1/notifications" + q)
        self.assertEqual(st, 200, body)
        return body["notifications"]

    def wait_notification(self, subject, pred, what, timeout=WAIT, channel="oncall-mail"):
        deadline = time.monotonic() + timeout
        while True:
            rows = self.notifications(subject, channel)
            hit = [n for n in rows if pred(n)]
            if hit:
                return hit[0]
            if time.monotonic() > deadline:
                self.fail("within %.0fs: %s (delivery log: %r)" % (timeout, what, rows))
            time.sleep(0.1)

    def assertMessage(self, m, inc, event, severity, title):
        msg = m["msg"]
        self.assertEqual(m["mail_from"], "klaxon@example.org", "envelope sender")
        self.assertEqual(sorted(m["rcpt_tos"]), sorted(TO), "envelope recipients")
        self.assertEqual(msg["From"], FROM)
        self.assertEqual(sorted(a for _, a in email.utils.getaddresses([str(msg["To"])])),
                         sorted(TO))
        subject = str(msg["Subject"])
        self.assertIn(severity, subject)
        self.assertIn(inc, subject)
        self.assertIn(title, subject)
        self.assertNotIn("\n", subject)
        mid = msg["Message-ID"]
        self.assertRegex(mid, MSGID_RE)
        ntf = MSGID_RE.match(mid).group(1)
        self.assertEqual(msg["X-Klaxon-Event"], event)
        self.assertEqual(msg["X-Klaxon-Delivery"], ntf)
        self.assertIsNotNone(email.utils.parsedate_to_datetime(str(msg["Date"])))
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertFalse(msg.is_multipart())
        body = msg.get_content()
        self.assertIn(inc, body)
        self.assertIn(title, body)
        self.assertIn("https://klaxon.example.org/incidents/%s" % inc, body)
        self.assertIn(ntf, body)
        return ntf

    def unique_by_message_id(self, msgs):
        by_id = {}
        for m in msgs:
            by_id.setdefault(m["msg"]["Message-ID"], []).append(m)
        return by_id

    # -- tests ---------------------------------------------------------------

    def test_declared_and_resolved_messages(self):
        title = "Card payments failing at checkout"
        inc = self.d.declare(title=title, severity="P1", labels={"client": "acme"})["id"]
        got = self.smtp.handler.wait_for(1, incident=inc, event="incident.declared")
        self.assertEqual(len(got), 1, "no e-mail for %s within %ss" % (inc, WAIT))
        ntf1 = self.assertMessage(got[0], inc, "incident.declared", "P1", title)
        row = self.wait_notification(inc, lambda n: n["status"] == "delivered",
                                     "the declaration delivered in the log")
        self.assertEqual(row["id"], ntf1)
        self.assertEqual(row["channel"], "oncall-mail")
        self.assertEqual(row["event"], "incident.declared")
        self.assertEqual(row["subject"], inc)
        self.assertEqual(row["attempts"], 1)
        self.assertEqual(row["last_code"], 250, "the SMTP reply to the message")
        self.assertIsNone(row["last_error"])
        self.assertRecent(row["delivered_at"], msg="delivered_at")

        # a status change is not among the channel's events: nothing queued
        st, _, _ = self.d.http("POST", "/v1/incidents/%s/status" % inc,
                               {"status": "identified", "note": "bad deploy"})
        self.assertEqual(st, 200)
        self.assertEqual([n["event"] for n in self.notifications(inc)], ["incident.declared"])

        st, _, body = self.d.http("POST", "/v1/incidents/%s/resolve" % inc,
                                  {"resolution": "rolled back"})
        self.assertEqual(st, 200, body)
        got = self.smtp.handler.wait_for(1, incident=inc, event="incident.resolved")
        self.assertEqual(len(got), 1, "no resolve e-mail for %s" % inc)
        ntf2 = self.assertMessage(got[0], inc, "incident.resolved", "P1", title)
        self.assertNotEqual(ntf1, ntf2, "one Message-ID per notification")
        self.wait_notification(inc, lambda n: n["id"] == ntf2 and n["status"] == "delivered",
                               "the resolve delivered in the log")
        time.sleep(1.0)  # a repeat would have come by now
        self.assertEqual(len(self.smtp.handler.matching(incident=inc)), 2,
                         "one message per notification")
        self.assertEqual(sorted(n["event"] for n in self.notifications(inc)),
                         ["incident.declared", "incident.resolved"])

    def test_severities_filter(self):
        # P3 is not in the channel's severities: no notification at all
        low = self.d.declare(title="Cosmetic glitch", severity="P3")["id"]
        high = self.d.declare(title="Partial outage", severity="P2")["id"]
        self.assertEqual(len(self.smtp.handler.wait_for(1, incident=high)), 1)
        self.assertEqual(self.notifications(low, channel=None), [],
                         "the delivery log row is written with the event: none means none sent")
        self.assertEqual(self.notifications(high, channel="bounce"), [],
                         "the bounce channel takes P0 only")
        self.assertEqual(self.smtp.handler.matching(incident=low), [])

    def test_permanent_rejection_is_dropped(self):
        # P0 goes to both channels; the server refuses the bounce channel's
        # only recipient with a 550: dropped after one attempt, not retried
        inc = self.d.declare(title="Everything is down", severity="P0")["id"]
        row = self.wait_notification(inc, lambda n: n["status"] != "pending" and
                                     n["attempts"] >= 1, "the bounce attempt", channel="bounce")
        self.assertEqual(row["status"], "dropped", row)
        self.assertEqual(row["attempts"], 1, row)
        self.assertEqual(row["last_code"], 550, row)
        self.assertIn("550", row["last_error"] or "", row)
        got = self.smtp.handler.wait_for(1, incident=inc)
        self.assertEqual(len(got), 1, "the other channel's message still arrives")
        self.assertEqual(sorted(got[0]["rcpt_tos"]), sorted(TO))
        self.wait_notification(inc, lambda n: n["status"] == "delivered", "oncall-mail delivered")
        time.sleep(1.5)  # a retry (backoff 1 s) would have come by now
        st, _, full = self.d.http("GET", "/v1/notifications/" + row["id"])
        self.assertEqual(len(full["attempt_log"]), 1, full)
        self.assertEqual(full["status"], "dropped")
        self.assertEqual(len(self.smtp.handler.matching(incident=inc)), 1)

    def test_non_ascii_subject(self):
        title = "Zahlungen schlagen fehl \u2013 M\u00fcnchen"
        inc = self.d.declare(title=title, severity="P1")["id"]
        got = self.smtp.handler.wait_for(1, incident=inc)
        self.assertEqual(len(got), 1)
        self.assertIn(b"=?UTF-8?B?", got[0]["raw"].split(b"\r\n\r\n", 1)[0],
                      "a non-ASCII subject goes as RFC 2047 encoded words")
        self.assertMessage(got[0], inc, "incident.declared", "P1", title)

    def test_retried_while_the_server_is_down_and_delivered_once(self):
        self.smtp.down()
        try:
            title = "Declared while the mail server is down"
            inc = self.d.declare(title=title, severity="P1")["id"]
            # a few failed attempts (backoff 1 s, 2 s, ...) before it comes back
            row = self.wait_notification(inc, lambda n: n["attempts"] >= 3,
                                         "three failed attempts while the server is down")
            self.assertEqual(row["status"], "retrying", row)
            self.assertIsNotNone(row["last_error"])
            self.assertIsNotNone(row["next_attempt_at"])
            self.assertEqual(self.smtp.handler.matching(incident=inc), [])
        finally:
            if self.smtp.controller is None:
                self.smtp.up()
        got = self.smtp.handler.wait_for(1, incident=inc)
        self.assertGreaterEqual(len(got), 1, "not delivered within %ss of the server's return"
                                % WAIT)
        row = self.wait_notification(inc, lambda n: n["status"] == "delivered",
                                     "delivered in the log")
        time.sleep(1.5)  # any repeat would have come by now
        got = self.smtp.handler.matching(incident=inc)
        by_id = self.unique_by_message_id(got)
        self.assertEqual(list(by_id), ["<%s@klaxon>" % row["id"]],
                         "the receiver, deduping by Message-ID, has it exactly once")
        if len(got) > 1:
            sys.stderr.write("\n[email] %d copies of one Message-ID arrived\n" % len(got))
        self.assertMessage(got[0], inc, "incident.declared", "P1", title)

        self.assertGreater(row["attempts"], 1)
        self.assertEqual(row["last_code"], 250)
        self.assertIsNone(row["last_error"], "the error of a failed attempt is not left behind")
        self.assertIsNone(row["next_attempt_at"])
        self.assertRecent(row["delivered_at"], msg="delivered_at")

        # the CLI's view of the delivery log
        rc, out, err = self.d.cli("--json", "notification", "list", "--subject", inc, check=0)
        listed = json.loads(out)["notifications"]
        self.assertEqual([(n["id"], n["status"], n["attempts"]) for n in listed],
                         [(row["id"], "delivered", row["attempts"])])
        rc, out, err = self.d.cli("notification", "show", row["id"], check=0)
        self.assertIn("delivered", out)
        self.assertIn(row["id"], out)

        # every attempt, the failed ones with their errors
        st, _, full = self.d.http("GET", "/v1/notifications/" + row["id"])
        self.assertEqual(st, 200, full)
        log = full["attempt_log"]
        self.assertEqual([a["number"] for a in log], list(range(1, row["attempts"] + 1)), log)
        for a in log[:-1]:
            self.assertIsInstance(a["error"], str, a)
            self.assertTrue(a["error"].strip(), a)
            self.assertRegex(a["error"], r"(?i)connect", "a refused connection says so: %r" % a)
            self.assertNotEqual(a["code"], 250, a)
            self.assertRecent(a["at"], msg="attempt at")
        self.assertEqual(log[-1]["code"], 250, log[-1])
        self.assertIsNone(log[-1]["error"], log[-1])
        times = [a["at"] for a in log]
        self.assertEqual(times, sorted(times), "oldest first")


if __name__ == "__main__":
    main()

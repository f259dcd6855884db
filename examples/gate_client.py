#!/usr/bin/env python3
"""gate_client.py — ask Klaxon's gate before every side effect, and fail closed.

A sketch of how automation (a posting bot, a reply runner) should talk to
klaxond, with the Python standard library only:

  * Before every side effect it asks POST /v1/gate/check and acts only on
    "allow" (an "approval_required" waits for a person's decision).
  * In the background it follows GET /v1/switches/stream and keeps the last
    switch set it received, with the time it last heard anything (an event
    or the daemon's ": ping" every 15 s).
  * When the gate cannot be reached it decides from that local copy —
    switches only: caps and duplicate suppression need the daemon. (When
    the gate answers, its answer wins: it knows the switches in force.)
  * When the stream has been silent longer than GRACE (2 x the ping), the
    local copy is stale: every side effect is DENIED until the stream is
    back, whatever the copy says. A stop set during the outage must not be
    missed.
  * It reconnects with exponential backoff and jitter, and after every
    reconnection re-reads GET /v1/switches before trusting the copy again.

Run it against a daemon (an automation token is enough):

    KLAXON_URL=http://127.0.0.1:8080 KLAXON_TOKEN=kx_... \\
        python3 examples/gate_client.py client=acme platform=instagram action=comment

It checks that one action every few seconds and prints what it would do;
stop it with Ctrl-C. `klaxon stop --client acme --reason test` in another
terminal shows the next check denied; stopping klaxond shows the client
deny everything once GRACE has passed.
"""

import calendar
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request

URL = os.environ.get("KLAXON_URL", "http://127.0.0.1:8080").rstrip("/")
TOKEN = os.environ.get("KLAXON_TOKEN", "")

PING = 15.0              # the daemon's ping interval, seconds
GRACE = 2 * PING         # silence after which the local copy is stale
CHECK_TIMEOUT = 5.0      # one gate check
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0


def request(method, path, body=None, timeout=CHECK_TIMEOUT):
    """One JSON request; returns the decoded answer or raises."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if TOKEN:
        req.add_header("Authorization", "Bearer " + TOKEN)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


# -- selectors (docs/api.md, "Kill switches"), enough to decide locally -------

def parse_selector(text):
    """[(key, op, [values])] for a selector as the daemon writes it
    (canonical form). Raises ValueError on anything it does not follow."""
    reqs, i, n = [], 0, len(text)

    def value(i, stops):
        if i < n and text[i] == '"':
            out, i = [], i + 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(text[i])
                i += 1
            if i >= n:
                raise ValueError("unterminated quote")
            return "".join(out), i + 1
        j = i
        while j < n and text[j] not in stops:
            j += 1
        return text[i:j].strip(), j

    while i < n:
        j = i
        while j < n and text[j] not in "=!, (":
            j += 1
        key = text[i:j].strip()
        if not key:
            raise ValueError("no key at %d" % i)
        rest = text[j:]
        if rest.startswith("!="):
            v, i = value(j + 2, ",")
            reqs.append((key, "!=", [v]))
        elif rest.startswith("="):
            v, i = value(j + 1, ",")
            reqs.append((key, "=", [v]))
        else:
            words = rest.lstrip()
            op = "notin" if words.startswith("notin") else "in" if words.startswith("in") else None
            if not op:
                raise ValueError("no operator after %r" % key)
            i = text.index("(", j) + 1
            vals = []
            while True:
                v, i = value(i, ",)")
                vals.append(v)
                if i >= n:
                    raise ValueError("unterminated list")
                if text[i] == ")":
                    i += 1
                    break
                i += 1
            reqs.append((key, op, vals))
        if i < n and text[i] != ",":
            raise ValueError("expected ',' at %d" % i)
        i += 1
    return reqs


def matches(selector, labels):
    """Whether an action's labels fall under a selector. A selector this
    code cannot read matches everything: fail closed."""
    try:
        reqs = parse_selector(selector or "")
    except ValueError:
        return True
    for key, op, vals in reqs:
        have = labels.get(key)
        if op == "=" and have != vals[0]:
            return False
        if op == "!=" and have == vals[0]:
            return False
        if op == "in" and have not in vals:
            return False
        if op == "notin" and have in vals:
            return False
    return True


def rfc3339_seconds(s):
    """Seconds since the epoch of a UTC time as the daemon writes it."""
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))


def decide_locally(switches, labels, read_only):
    """The switch part of the gate, from the local copy. A ramping switch
    still denies here: its shared limit lives in the daemon."""
    verdict = {"decision": "allow"}
    now = time.time()
    for sw in switches:
        exp = sw.get("expires_at")
        if exp and rfc3339_seconds(exp) <= now:
            continue  # the daemon lifts it at that moment too
        if not matches(sw.get("selector", ""), labels):
            continue
        mode = sw.get("mode")
        reason = "switch %s (%s, local copy): %s" % (sw.get("id"), mode, sw.get("reason"))
        if mode == "block" or (not read_only and (mode == "read_only" or sw.get("ramp"))):
            return {"decision": "deny", "by": "switch", "id": sw.get("id"), "reason": reason}
        if mode == "approve" and not read_only:
            # No request can be filed offline, so nobody could approve it.
            verdict = {"decision": "deny", "by": "switch", "id": sw.get("id"),
                       "reason": reason + " (needs approval; the gate is unreachable)"}
    return verdict


# -- the switch stream ----------------------------------------------------------

class SwitchWatcher(threading.Thread):
    """Follows /v1/switches/stream; keeps the last set and when it was
    last heard. fresh() is false until a first set has been read, and
    whenever the stream has been silent (or down) for more than GRACE. A
    short drop within GRACE keeps the copy in use; after reconnecting the
    set is read again before anything else is heard."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.switches = []
        self.heard = 0.0      # time.monotonic() of the last byte
        self.synced = False   # a set has been read at all

    def silence(self):
        """Seconds since the stream was last heard (None: never synced)."""
        with self.lock:
            return time.monotonic() - self.heard if self.synced else None

    def fresh(self):
        quiet = self.silence()
        return quiet is not None and quiet <= GRACE

    def copy(self):
        with self.lock:
            return list(self.switches)

    def _hear(self, switches=None, synced=None):
        with self.lock:
            self.heard = time.monotonic()
            if switches is not None:
                self.switches = switches
            if synced is not None:
                self.synced = synced

    def run(self):
        backoff = BACKOFF_MIN
        while True:
            try:
                self._follow()
                backoff = BACKOFF_MIN
                reason = "the daemon closed the stream"
            except (OSError, ValueError, urllib.error.URLError) as e:
                reason = str(e)
            delay = random.uniform(backoff / 2, backoff)   # jitter: not all at once
            sys.stderr.write("switch stream lost (%s); reconnecting in %.1fs\n" % (reason, delay))
            time.sleep(delay)
            backoff = min(BACKOFF_MAX, backoff * 2)

    def _follow(self):
        req = urllib.request.Request(URL + "/v1/switches/stream")
        req.add_header("Accept", "text/event-stream")
        if TOKEN:
            req.add_header("Authorization", "Bearer " + TOKEN)
        # The read timeout is the grace period: silence that long ends it.
        with urllib.request.urlopen(req, timeout=GRACE) as resp:
            # Re-read the whole set after every (re)connection; the stream's
            # first event carries it too, whichever comes first wins.
            listing = request("GET", "/v1/switches")
            self._hear(listing["switches"], synced=True)
            event, data = "", []
            while True:
                raw = resp.readline()
                if not raw:
                    return
                self._hear()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line == "":
                    if event == "switches" and data:
                        self._hear(json.loads("\n".join(data))["switches"], synced=True)
                    event, data = "", []
                elif line.startswith(":"):
                    continue  # ping
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event = value
                    elif field == "data":
                        data.append(value)


# -- the gate ---------------------------------------------------------------------

class Gate:
    def __init__(self, watcher):
        self.watcher = watcher

    def check(self, labels, key=None, read_only=False):
        """The decision for one action: a dict like the daemon's answer.
        Ask exactly once per action, right before performing it."""
        body = {"labels": labels, "read_only": read_only}
        if key:
            body["idempotency_key"] = key
        try:
            return request("POST", "/v1/gate/check", body)
        except urllib.error.HTTPError as e:
            if e.code < 500:
                raise  # a bad request or token is a bug, not an outage
            failure = "HTTP %d" % e.code
        except (OSError, urllib.error.URLError, ValueError) as e:
            failure = str(e)
        # The gate is unreachable: the local copy, if it is fresh. A stale
        # copy denies everything, reads too: a block may have been set since.
        if not self.watcher.fresh():
            quiet = self.watcher.silence()
            return {"decision": "deny", "by": "state",
                    "reason": "gate unreachable (%s) and %s: failing closed"
                              % (failure, "no switch set read yet" if quiet is None else
                                 "the switch stream silent for %ds (grace %ds)" % (quiet, GRACE))}
        return decide_locally(self.watcher.copy(), labels, read_only)

    def wait_for_approval(self, request_id, timeout=600, every=5):
        """Polls an approval request; True only once a person approved it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = request("GET", "/v1/approvals/" + request_id)["approval"]["status"]
            except (OSError, urllib.error.URLError, ValueError):
                status = "pending"  # unknown is not approved
            if status != "pending":
                return status == "approved"
            time.sleep(every)
        return False


def main(argv):
    labels = dict(a.split("=", 1) for a in argv if "=" in a)
    if not labels:
        sys.exit("usage: gate_client.py KEY=VALUE... (e.g. client=acme action=comment)")
    watcher = SwitchWatcher()
    watcher.start()
    gate = Gate(watcher)
    n = 0
    while True:
        n += 1
        key = "demo-%d-%d" % (os.getpid(), n)
        d = gate.check(labels, key=key)
        if d["decision"] == "allow":
            print("allow: acting (%s)" % key)
        elif d["decision"] == "approval_required":
            print("waiting for approval %s: %s" % (d["request_id"], d.get("reason")))
            print("approved: acting" if gate.wait_for_approval(d["request_id"])
                  else "not approved: skipping")
        else:
            wait = d.get("retry_after")
            print("deny (%s): %s%s" % (d.get("by"), d.get("reason"),
                                       "; retry in %ss" % wait if wait else ""))
        sys.stdout.flush()
        time.sleep(3)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:
        pass

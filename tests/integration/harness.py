"""Integration test harness: runs a real klaxond on a free port and drives it
with raw HTTP and with the real `klaxon` CLI.

Standard library only. Every subprocess and socket call is bounded by a
timeout. Each daemon gets its own temporary directory holding its data
directory and its stderr log; the log is printed when a test fails.

Binaries come from $KLAXOND and $KLAXON (set by ctest); otherwise from
build/klaxond and build/klaxon under the repository root.

The store backend comes from $KX_TEST_BACKEND: "sqlite" (default) or
"postgres". With postgres, the first daemon of the process starts a private
PostgreSQL server (scripts/pg-test-server, in a temporary directory, on a
free loopback port), every daemon gets a database of its own in it, and the
server is stopped when the tests end. $KX_TEST_PG_URL points at a server
that is already running instead.
"""

import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import atexit
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.environ.get("KX_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))

# Absolute, since klaxond runs with its temporary directory as working directory.
KLAXOND = os.path.abspath(os.environ.get("KLAXOND") or os.path.join(REPO_ROOT, "build", "klaxond"))
KLAXON = os.path.abspath(os.environ.get("KLAXON") or os.path.join(REPO_ROOT, "build", "klaxon"))

HOST = "127.0.0.1"
HTTP_TIMEOUT = 15.0      # seconds, per HTTP request
CLI_TIMEOUT = 20.0       # seconds, per CLI invocation
START_TIMEOUT = 10.0     # seconds to wait for /healthz
STOP_TIMEOUT = 10.0      # seconds after SIGTERM before SIGKILL

ID_RE = re.compile(r"^INC-(\d{8})-(\d{3,})$")
ID_IN_TEXT_RE = re.compile(r"INC-\d{8}-\d{3,}")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

# Marker meaning "use the daemon's admin token" (the default for http/cli).
ADMIN = object()

BACKEND = os.environ.get("KX_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgres"):
    sys.exit("KX_TEST_BACKEND must be sqlite or postgres, not %r" % BACKEND)

_pg = {"url": os.environ.get("KX_TEST_PG_URL") or None, "dir": None}


def _pg_stop():
    if _pg["dir"]:
        subprocess.run([os.path.join(REPO_ROOT, "scripts", "pg-test-server"), "stop", _pg["dir"]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(_pg["dir"], ignore_errors=True)
        _pg["dir"] = None


def pg_server_url():
    """URL of the private PostgreSQL server, started on first use."""
    if not _pg["url"]:
        d = tempfile.mkdtemp(prefix="klaxon-pg-")
        _pg["dir"] = d
        atexit.register(_pg_stop)
        r = subprocess.run([os.path.join(REPO_ROOT, "scripts", "pg-test-server"), "start", d],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("cannot start PostgreSQL:\n" + r.stdout + r.stderr)
        _pg["url"] = r.stdout.strip().splitlines()[-1]
    return _pg["url"]


def pg_url_for(dbname):
    base = pg_server_url()
    head, _, tail = base.rpartition("/")
    query = ""
    if "?" in tail:
        tail, query = tail.split("?", 1)
        query = "?" + query
    return "%s/%s%s" % (head, dbname, query)


def pg_new_database():
    """A fresh, empty database on the private server; returns its URL."""
    name = "kx_" + uuid.uuid4().hex[:16]
    r = subprocess.run(["psql", pg_server_url(), "-q", "-v", "ON_ERROR_STOP=1", "-c",
                        "CREATE DATABASE %s" % name], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("cannot create a database: " + r.stderr)
    return pg_url_for(name)


def free_port():
    """A port that was free a moment ago on 127.0.0.1 (never 8080)."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port != 8080:
            return port


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    """Parses an RFC 3339 UTC timestamp as the daemon writes it."""
    if not isinstance(s, str) or not RFC3339_UTC_RE.match(s):
        raise ValueError("not an RFC 3339 UTC timestamp: %r" % (s,))
    dt = datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    frac = s[19:-1]
    if frac:
        dt = dt.replace(microsecond=int((frac[1:] + "000000")[:6]))
    return dt.replace(tzinfo=datetime.timezone.utc)


def today_ymd():
    return utcnow().strftime("%Y%m%d")


def id_seq(incident_id):
    m = ID_RE.match(incident_id)
    if not m:
        raise ValueError("not an incident ID: %r" % (incident_id,))
    return m.group(1), int(m.group(2))


def ids_in(text):
    """Every incident ID that appears in a piece of CLI output, in order."""
    return ID_IN_TEXT_RE.findall(text)


class DaemonError(Exception):
    pass


class Daemon:
    """One klaxond process with its own temporary directory.

    root/            tempfile.mkdtemp()
      data/          --data-dir
      klaxond.log    the daemon's stdout+stderr, across restarts
    """

    def __init__(self, config=None, extra_args=(), start=True, make_data_dir=True):
        self.root = tempfile.mkdtemp(prefix="klaxon-itest-")
        self.data_dir = os.path.join(self.root, "data")
        if make_data_dir:
            os.mkdir(self.data_dir)
        self.log_path = os.path.join(self.root, "klaxond.log")
        self.config_path = None
        if config is not None:
            self.config_path = os.path.join(self.root, "klaxon.yaml")
            with open(self.config_path, "w") as f:
                f.write(config)
        self.extra_args = list(extra_args)
        if BACKEND == "postgres" and "--db" not in self.extra_args:
            self.db_url = pg_new_database()
            self.extra_args += ["--db", self.db_url]
        self.port = None
        self.proc = None
        self.admin_token = None
        self._log = None
        if start:
            try:
                self.start()
            except BaseException:
                # the log is in the exception's message already
                self.cleanup()
                raise

    # -- process control ---------------------------------------------------

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)

    def argv(self):
        argv = [KLAXOND, "--listen", "%s:%d" % (HOST, self.port),
                "--data-dir", self.data_dir]
        if self.config_path:
            argv += ["--config", self.config_path]
        return argv + self.extra_args

    def start(self, attempts=3, read_token=True):
        """Starts klaxond (keeping the port across restarts) and waits for
        /healthz. Then reads DATA_DIR/admin.token unless read_token is false.
        On the very first start, losing the free port to another process
        (our daemon exits, or someone else's answers) is retried."""
        if not os.path.exists(KLAXOND):
            raise DaemonError("klaxond binary not found at %s (set KLAXOND)" % KLAXOND)
        first = self.port is None
        for attempt in range(attempts if first else 1):
            if first:
                self.port = free_port()
            self._log = open(self.log_path, "ab")
            self._log.write(("\n=== start %s ===\n" % " ".join(self.argv())).encode())
            self._log.flush()
            try:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                             stdout=self._log, stderr=self._log,
                                             cwd=self.root)
            except OSError:
                self._log.close()
                self._log = None
                raise
            stolen = False
            try:
                self._wait_healthy()
                if read_token:
                    with open(os.path.join(self.data_dir, "admin.token")) as f:
                        self.admin_token = f.read().strip()
                    if self.proc.poll() is not None or \
                            self.http("GET", "/v1/types", timeout=5)[0] == 401:
                        stolen = True
                        raise DaemonError("port %d answered by another process:\n%s"
                                          % (self.port, self.log_tail()))
                return self
            except DaemonError:
                retry = stolen or self.proc.poll() is not None
                self._kill()
                if not first or not retry or attempt == attempts - 1:
                    raise
        raise DaemonError("unreachable")

    def _wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise DaemonError("klaxond exited with %s before serving:\n%s"
                                  % (rc, self.log_tail()))
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=1.0)
                try:
                    conn.request("GET", "/healthz")
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        return
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise DaemonError("klaxond did not answer /healthz within %.0fs:\n%s"
                          % (START_TIMEOUT, self.log_tail()))

    def stop(self):
        """SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL. Returns
        (returncode, killed) where killed says SIGKILL was needed."""
        if self.proc is None:
            return None, False
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                killed = True
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        rc = self.proc.returncode
        self.proc = None
        if self._log:
            self._log.write(("=== stopped rc=%s%s ===\n"
                             % (rc, " (SIGKILL)" if killed else "")).encode())
            self._log.close()
            self._log = None
        return rc, killed

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def restart(self):
        rc, killed = self.stop()
        self.start()
        return rc, killed

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|"
                              r"AddressSanitizer:DEADLYSIGNAL")

    def sanitizer_report(self):
        """The daemon log from the first sanitizer report on, or None (for
        the KX_SANITIZE build; harmless otherwise)."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        m = self.SANITIZER_RE.search(text)
        return text[max(0, m.start() - 200):m.start() + 8000] if m else None

    def log_tail(self, limit=20000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log)"
        text = data.decode("utf-8", "replace")
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return text

    # -- clients -----------------------------------------------------------

    def _auth(self, token):
        if token is ADMIN:
            return self.admin_token
        if isinstance(token, dict):
            return token["token"]
        return token

    def http(self, method, path, body=None, token=ADMIN, raw=None, headers=None,
             timeout=HTTP_TIMEOUT):
        """One HTTP request on a fresh connection.

        body: a Python value sent as JSON; raw: bytes/str sent as is.
        token: ADMIN (default), a token string, a token dict from
        create_token(), or None for no Authorization header. headers may
        override anything (e.g. a malformed Authorization).
        Returns (status, headers, parsed JSON or text)."""
        hdrs = {}
        tok = self._auth(token)
        if tok is not None:
            hdrs["Authorization"] = "Bearer " + tok
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
            hdrs["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if headers:
            for k, v in headers.items():
                for existing in list(hdrs):
                    if existing.lower() == k.lower():
                        del hdrs[existing]
                if v is not None:
                    hdrs[k] = v
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            try:
                conn.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer (413) and close before reading a
                # large body; the answer is still there to read.
                pass
            resp = conn.getresponse()
            payload = resp.read()
            rheaders = resp.headers
            status = resp.status
        finally:
            conn.close()
        ctype = (rheaders.get("Content-Type") or "").lower()
        text = payload.decode("utf-8", "replace")
        parsed = text
        if "json" in ctype or (text[:1] in ("{", "[")):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        return status, rheaders, parsed

    def cli(self, *args, token=ADMIN, check=None, url=None, env=None,
            timeout=CLI_TIMEOUT):
        """Runs the real klaxon binary with KLAXON_URL/KLAXON_TOKEN set.
        check: an expected exit code (asserted). Returns (rc, stdout, stderr)."""
        e = dict(os.environ)
        e.pop("KLAXON_URL", None)
        e.pop("KLAXON_TOKEN", None)
        e["KLAXON_URL"] = url if url is not None else self.url
        tok = self._auth(token)
        if tok is not None:
            e["KLAXON_TOKEN"] = tok
        if env:
            for k, v in env.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
        return run_cli(list(args), env=e, check=check, timeout=timeout)

    # -- helpers -------------------------------------------------------------

    def create_token(self, role, name, labels=None, token=ADMIN):
        """Creates a token through the API (asserting 201); returns its dict
        including the secret under "token"."""
        body = {"role": role, "name": name}
        if labels is not None:
            body["labels"] = labels
        st, _, js = self.http("POST", "/v1/tokens", body, token=token)
        if st != 201 or not isinstance(js, dict) or "token" not in js:
            raise AssertionError("token create %r -> %s %r" % (body, st, js))
        return js

    def declare(self, token=ADMIN, **fields):
        """Declares an incident through the API (asserting 201)."""
        body = {"title": "test incident", "severity": "P2"}
        body.update(fields)
        st, _, js = self.http("POST", "/v1/incidents", body, token=token)
        if st != 201 or not isinstance(js, dict) or "id" not in js:
            raise AssertionError("declare %r -> %s %r" % (body, st, js))
        return js

    def get(self, incident_id, token=ADMIN):
        st, _, js = self.http("GET", "/v1/incidents/" + incident_id, token=token)
        if st != 200:
            raise AssertionError("GET %s -> %s %r" % (incident_id, st, js))
        return js

    def list_ids(self, query="", token=ADMIN):
        st, _, js = self.http("GET", "/v1/incidents" + query, token=token)
        if st != 200:
            raise AssertionError("list %s -> %s %r" % (query, st, js))
        return [i["id"] for i in js["incidents"]]

    def count(self):
        return len(self.list_ids("?limit=1000"))

    def timeline(self, incident_id, token=ADMIN):
        st, _, js = self.http("GET", "/v1/incidents/%s/timeline" % incident_id,
                              token=token)
        if st != 200:
            raise AssertionError("timeline %s -> %s %r" % (incident_id, st, js))
        return js["timeline"]


def run_cli(args, env=None, check=None, timeout=CLI_TIMEOUT):
    if not os.path.exists(KLAXON):
        raise DaemonError("klaxon binary not found at %s (set KLAXON)" % KLAXON)
    p = subprocess.run([KLAXON] + list(args), env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if check is not None and p.returncode != check:
        raise AssertionError("klaxon %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(args), p.returncode, check, out, err))
    return p.returncode, out, err


class KlaxonTestCase(unittest.TestCase):
    """Base class: one daemon per test class (self.d), started in setUpClass.
    When a test fails, the daemon's log is printed to stderr.

    Subclasses may set `config` (YAML text) or `fresh_daemon_per_test`."""

    config = None
    fresh_daemon_per_test = False
    daemons = None  # every daemon whose log is printed on failure

    @classmethod
    def setUpClass(cls):
        cls.daemons = []
        cls.d = None
        if not cls.fresh_daemon_per_test:
            cls.d = cls.new_daemon()

    @classmethod
    def doClassCleanups(cls):
        # runs even when setUpClass fails (tearDownClass does not)
        for d in cls.daemons or []:
            d.cleanup()
        super().doClassCleanups()

    @classmethod
    def tearDownClass(cls):
        problems = []
        for d in cls.daemons or []:
            d.stop()
            problem = d.sanitizer_report()
            if problem:
                problems.append("%s:\n%s" % (d.log_path, problem))
            d.cleanup()
        cls.daemons = []
        if problems:
            raise AssertionError("klaxond reported memory or undefined-behaviour errors:\n"
                                 + "\n".join(problems))

    @classmethod
    def new_daemon(cls, **kw):
        kw.setdefault("config", cls.config)
        d = Daemon(**kw)
        cls.daemons.append(d)
        return d

    def setUp(self):
        if self.fresh_daemon_per_test:
            type(self).d = self.new_daemon()

    def tearDown(self):
        # Stopped, not removed: the log is printed after tearDown on failure.
        if self.fresh_daemon_per_test and type(self).d is not None:
            type(self).d.stop()

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        first = len(type(self).daemons or [])
        out = super().run(result)
        after = len(result.failures) + len(result.errors)
        if after > before:
            # the class's shared daemon and those this test started
            daemons = list((type(self).daemons or [])[first:])
            if not self.fresh_daemon_per_test and type(self).d is not None:
                daemons.insert(0, type(self).d)
            for d in daemons:
                sys.stderr.write("\n----- klaxond log (%s, %s) -----\n%s\n----- end of log -----\n"
                                 % (self.id(), d.log_path, d.log_tail()))
                sys.stderr.flush()
        return out

    # -- assertions ----------------------------------------------------------

    def assertError(self, resp, status, code=None, msg=""):
        """resp is (status, headers, body): asserts the status and the
        documented error body shape {"error":{"code","message"}}."""
        st, hdrs, body = resp
        ctx = "%s: got %s %r" % (msg, st, body)
        self.assertEqual(st, status, ctx)
        self.assertIsInstance(body, dict, ctx)
        self.assertIn("error", body, ctx)
        err = body["error"]
        self.assertIsInstance(err, dict, ctx)
        self.assertIsInstance(err.get("code"), str, ctx)
        self.assertIsInstance(err.get("message"), str, ctx)
        self.assertTrue(err["message"].strip(), "empty error message: " + ctx)
        if code is not None:
            self.assertEqual(err["code"], code, ctx)
        return err

    def assertStatus(self, resp, status, msg=""):
        st, _, body = resp
        self.assertEqual(st, status, "%s: got %s %r" % (msg, st, body))
        return body

    def assertTimestamp(self, value, msg=""):
        self.assertIsInstance(value, str, "%s: %r" % (msg, value))
        self.assertRegex(value, RFC3339_UTC_RE, msg)
        try:
            return parse_time(value)
        except ValueError as e:
            self.fail("%s: %s" % (msg, e))

    def assertRecent(self, value, seconds=120, msg=""):
        t = self.assertTimestamp(value, msg)
        delta = abs((utcnow() - t).total_seconds())
        self.assertLess(delta, seconds, "%s: %s is not close to now" % (msg, value))
        return t

    def assertOneLineError(self, rc, out, err, code=1, msg=""):
        ctx = "%s: exit %d\nstdout: %r\nstderr: %r" % (msg, rc, out, err)
        self.assertEqual(rc, code, ctx)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertGreaterEqual(len(lines), 1, "no message on stderr: " + ctx)
        self.assertTrue(lines[0].startswith("klaxon: "), "stderr should start 'klaxon: ': " + ctx)
        if code == 1:
            self.assertEqual(len(lines), 1, "expected one line on stderr: " + ctx)
        return lines


def main():
    unittest.main(verbosity=2)

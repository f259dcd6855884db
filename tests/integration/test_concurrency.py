"""Many clients at once: IDs stay unique and consecutive, no write is lost or
doubled, and optimistic locking lets exactly one of several racing writers win."""

import collections
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KlaxonTestCase, id_seq, main, parse_time, today_ymd  # noqa: E402

THREADS = 8
DEADLINE = 60.0  # seconds for one whole burst


class Concurrency(KlaxonTestCase):
    fresh_daemon_per_test = True

    def burst(self, n, fn):
        """Runs fn(i) in n threads released together; returns their results
        in thread order. Fails on a thread's exception or a timeout."""
        barrier = threading.Barrier(n, timeout=10)
        results = [None] * n
        errors = []

        def worker(i):
            try:
                barrier.wait()
                results[i] = fn(i)
            except BaseException as e:  # reported below
                errors.append("thread %d: %r" % (i, e))

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        end = time.monotonic() + DEADLINE
        for t in threads:
            t.join(max(0.0, end - time.monotonic()))
        alive = [t for t in threads if t.is_alive()]
        self.assertFalse(alive, "%d threads still running after %.0fs" % (len(alive), DEADLINE))
        self.assertFalse(errors, "\n".join(errors))
        return results

    def test_concurrent_declarations(self):
        d = self.d
        per = 25

        def declare_many(i):
            out = []
            for j in range(per):
                st, _, js = d.http("POST", "/v1/incidents",
                                   {"title": "t%d-%d" % (i, j), "severity": "P3",
                                    "labels": {"thread": str(i)}})
                out.append((st, js))
            return out

        results = self.burst(THREADS, declare_many)
        flat = [r for rs in results for r in rs]
        bad = [(st, js) for st, js in flat if st != 201]
        self.assertFalse(bad, "failed declarations: %r" % bad[:5])
        ids = [js["id"] for _, js in flat]
        self.assertEqual(len(set(ids)), THREADS * per, "duplicate IDs")
        seqs = sorted(id_seq(x)[1] for x in ids)
        self.assertEqual(seqs, list(range(1, THREADS * per + 1)), "sequence has gaps or repeats")
        self.assertEqual({id_seq(x)[0] for x in ids}, {today_ymd()})
        # within one thread, later declarations get later numbers
        for rs in results:
            s = [id_seq(js["id"])[1] for _, js in rs]
            self.assertEqual(s, sorted(s))
        # everything is stored exactly once, with the right content
        st, _, js = d.http("GET", "/v1/incidents?limit=1000")
        self.assertEqual(st, 200, js)
        stored = {i["id"]: i for i in js["incidents"]}
        self.assertEqual(set(stored), set(ids))
        for _, inc in flat:
            s = stored[inc["id"]]
            self.assertEqual((s["title"], s["labels"]), (inc["title"], inc["labels"]))
        titles = collections.Counter(i["title"] for i in js["incidents"])
        self.assertEqual(set(titles.values()), {1})
        self.assertEqual(len(titles), THREADS * per)
        self.assertEqual(d.http("GET", "/healthz", token=None)[0], 200)
        # the next one continues the sequence
        self.assertEqual(id_seq(d.declare(title="after")["id"])[1], THREADS * per + 1)

    def test_concurrent_notes(self):
        d = self.d
        iid = d.declare(title="noisy")["id"]
        per = 10

        def notes(i):
            out = []
            for j in range(per):
                st, _, js = d.http("POST", "/v1/incidents/%s/timeline" % iid,
                                   {"text": "note %d-%d" % (i, j)})
                out.append((st, js))
            return out

        results = self.burst(THREADS, notes)
        bad = [(st, js) for rs in results for st, js in rs if st != 201]
        self.assertFalse(bad, "failed notes: %r" % bad[:5])
        tl = d.timeline(iid)
        texts = collections.Counter(e["text"] for e in tl if e["kind"] == "note")
        want = {"note %d-%d" % (i, j) for i in range(THREADS) for j in range(per)}
        self.assertEqual(set(texts), want)
        self.assertEqual(set(texts.values()), {1}, "a note appears more than once")
        self.assertEqual(len({e["id"] for e in tl}), len(tl), "timeline entry ids repeat")
        ats = [parse_time(e["at"]) for e in tl]
        self.assertEqual(ats, sorted(ats), "timeline is oldest first")

    def test_racing_writers_with_version(self):
        d = self.d
        iid = d.declare(title="contended")["id"]
        v = d.get(iid)["version"]
        results = self.burst(THREADS, lambda i: d.http(
            "PATCH", "/v1/incidents/" + iid, {"title": "winner %d" % i, "version": v}))
        statuses = sorted(st for st, _, _ in results)
        self.assertEqual(statuses, [200] + [409] * (THREADS - 1), results)
        for st, _, js in results:
            if st == 409:
                self.assertEqual(js["error"]["code"], "conflict")
        winner = [js for st, _, js in results if st == 200][0]
        inc = d.get(iid)
        self.assertEqual(inc["title"], winner["title"])
        self.assertEqual(inc["version"], v + 1)
        self.assertEqual([e["kind"] for e in inc["timeline"]], ["declared", "edit"])

    def test_racing_resolves(self):
        d = self.d
        iid = d.declare(title="resolve me")["id"]
        results = self.burst(THREADS, lambda i: d.http(
            "POST", "/v1/incidents/%s/resolve" % iid, {"resolution": "fix %d" % i}))
        statuses = sorted(st for st, _, _ in results)
        self.assertEqual(statuses, [200] + [409] * (THREADS - 1),
                         "exactly one resolve wins: %r" % [(s, b) for s, _, b in results])
        inc = d.get(iid)
        self.assertEqual([e["kind"] for e in inc["timeline"]].count("resolved"), 1)
        self.assertEqual(inc["version"], 2)

    def test_unversioned_changes_are_all_applied(self):
        d = self.d
        iid = d.declare(title="busy")["id"]
        v0 = d.get(iid)["version"]
        per = 5

        def edits(i):
            return [d.http("PATCH", "/v1/incidents/" + iid,
                           {"summary": "s%d-%d" % (i, j)})[0] for j in range(per)]

        results = self.burst(THREADS, edits)
        self.assertEqual({st for rs in results for st in rs}, {200})
        inc = d.get(iid)
        self.assertEqual(inc["version"], v0 + THREADS * per, "a change was lost")
        self.assertEqual(sum(1 for e in inc["timeline"] if e["kind"] == "edit"), THREADS * per)

    def test_concurrent_action_items(self):
        d = self.d
        iid = d.declare(title="many items")["id"]
        per = 5

        def add(i):
            return [d.http("POST", "/v1/incidents/%s/action-items" % iid,
                           {"title": "item %d-%d" % (i, j), "kind": "prevent"}) for j in range(per)]

        results = self.burst(THREADS, add)
        flat = [r for rs in results for r in rs]
        self.assertEqual({st for st, _, _ in flat}, {201}, [b for s, _, b in flat if s != 201][:3])
        numbers = sorted(js["number"] for _, _, js in flat)
        self.assertEqual(numbers, list(range(1, THREADS * per + 1)))
        st, _, js = d.http("GET", "/v1/incidents/%s/action-items" % iid)
        self.assertEqual(sorted(i["number"] for i in js["action_items"]), numbers)


if __name__ == "__main__":
    main()

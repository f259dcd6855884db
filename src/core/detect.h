/* detect.h — detection rules over the audit stream: "more than 20 dm events
 * per account in 1m" (a runaway loop), "more than 5 events with the same
 * action, target and content hash in 10m" (duplicate comments).
 *
 * A detector is built once from the config's rules (struct kx_detection,
 * core/config.h; selectors are parsed here, once) and fed appended audit
 * events one at a time. It keeps, per rule, one sliding window per group
 * and says when a group's count goes over the rule's threshold. It does no
 * I/O, never reads the clock (`now` is a parameter) and takes no locks: the
 * caller serialises calls (service/detect.h holds it under a mutex).
 *
 * What an event looks like to a rule. Its fields actor, client, account,
 * platform, lane, action, target and outcome act as labels alongside its
 * free labels, so `selector: action=dm,platform=instagram`, `per: account`
 * and `contain_by: [client, account]` all work; where a free label has the
 * name of a field the event also has, the field wins.
 *
 * Groups. A rate rule groups by the value of `per` (events that lack it
 * form one group of their own, "no account"; no `per`: one group for the
 * whole rule). A duplicates rule groups by (action, target, content_hash),
 * an absent field counting as a value of its own.
 *
 * Windows. The window is the `window` that ends at `now`: an event counts
 * from its `at` (an `at` after `now`, within the clock skew the audit log
 * tolerates, counts as `now`) until `at + window`; an event older than the
 * window when it arrives (a backfill) counts for nothing. A rule fires for
 * a group when the group's count goes over `threshold`, so `threshold: 20`
 * fires on the 21st event. Below KX_DETECT_EXACT_MAX the count is exact
 * (one timestamp per event in the window); for larger thresholds it is
 * kept in KX_DETECT_SLICES slices of the window, so an event may count up
 * to window/KX_DETECT_SLICES longer than the window.
 *
 * Re-arming. Once a rule has fired for a group it stays quiet for that
 * group until the group has had no event for a whole window (its count is
 * back to 0); the next event after that starts a fresh count. One runaway
 * loop is one incident, not one per event past the threshold.
 *
 * Memory bound. A rule tracks at most `max_groups` groups (0 at creation:
 * KX_DETECT_GROUPS_DEFAULT). Groups that have gone quiet are dropped as
 * they reach the end of the least-recently-used list; when the rule is at
 * its bound and a new group appears, the least recently used group is
 * evicted even though it is active (its count is lost, and if it had
 * fired it may fire again: the bound wins over re-arming). A group holds
 * its key (at most ~1.6 KiB: action, target and content hash) and at most
 * min(threshold + 1, KX_DETECT_EXACT_MAX) timestamps of 8 bytes, or
 * KX_DETECT_SLICES slices of 16 bytes; a group that has fired holds no
 * timestamps. So one rule holds at most about max_groups × (1.6 KiB + 8 KiB).
 */
#ifndef KX_DETECT_H
#define KX_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/audit.h"
#include "core/config.h"
#include "core/labels.h"
#include "lib/err.h"
#include "lib/time.h"

#define KX_DETECT_GROUPS_DEFAULT 1000 /* groups tracked per rule */
#define KX_DETECT_EXACT_MAX 1024      /* thresholds below this count exactly */
#define KX_DETECT_SLICES 64	      /* slices of the window above it */

/* One rule going over its threshold for one group. Every string and the
 * labels are owned by the struct; `rule` is borrowed from the rules the
 * detector was built from. */
struct kx_detect_fired {
	const struct kx_detection *rule;
	size_t rule_index;	  /* in the rules given to kx_detector_new */
	char *group;		  /* the group as people read it: "account '@brand'",
				   * "no account", "all events", "target 'x' (action
				   * 'comment', content hash 'h')" */
	uint32_t count;		  /* events in the window when it fired (threshold + 1) */
	kx_ms first_at, last_at;  /* oldest and newest of them */
	int64_t seq;		  /* the triggering event's seq (0 if it had none) */
	char *title;		  /* the incident's: the rule's `title`, or made from the
				   * rule ("Detection 'dm-loop': 21 dm events for account
				   * '@brand' in 1m"), at most KX_TITLE_MAX characters */
	char *evidence;		  /* the timeline note: counts, window, times, group */
	/* The incident's labels: client, account, platform and lane as the
	 * triggering event has them, and detection=RULE. */
	struct kx_labels labels;
	/* The switch: an equality selector (canonical text) on the rule's
	 * contain_by fields (default: `per`; client and account for duplicates
	 * and for rate rules without `per`) as the triggering event has them;
	 * fields it lacks, or whose value cannot be a label value (a target
	 * over 256 bytes), are left out. NULL when the rule does not contain,
	 * or when nothing is left — a detection never stops everything. */
	char *contain_selector;
};

/* A caller-owned list that kx_detector_feed appends to. */
struct kx_detect_firings {
	struct kx_detect_fired *v;
	size_t n, cap;
};
void kx_detect_firings_init(struct kx_detect_firings *l);
/* Frees every entry and the list's memory; the list is then empty. */
void kx_detect_firings_release(struct kx_detect_firings *l);

struct kx_detector;

/* Builds a detector for rules[0..n) (borrowed: they must outlive it).
 * A selector that does not parse is KX_EINVAL naming the rule ("detection
 * 'x': cannot parse selector at column 3: …"). n may be 0. */
int kx_detector_new(const struct kx_detection *rules, size_t n, size_t max_groups,
		    struct kx_detector **out, struct kx_err *err);
void kx_detector_free(struct kx_detector *d);

/* Counts ev (an event as appended: checked, `at` set) in every rule whose
 * selector it matches, at time now, and appends to out one entry per rule
 * that fires. 0, or KX_ENOMEM (the count may then be partly updated and a
 * firing lost). */
int kx_detector_feed(struct kx_detector *d, const struct kx_audit_event *ev, kx_ms now,
		     struct kx_detect_firings *out, struct kx_err *err);

/* For tests and metrics: groups rule i tracks now, and groups it had to
 * evict while active since creation. */
size_t kx_detector_groups(const struct kx_detector *d, size_t rule);
uint64_t kx_detector_evicted(const struct kx_detector *d, size_t rule);

#endif

/* app.h — what every service call needs: the store and the configuration.
 * Built once by klaxond and shared read-only by all request threads. */
#ifndef KX_APP_H
#define KX_APP_H

#include "core/config.h"
#include "lib/time.h"
#include "store/store.h"

struct kx_hash_cache;
struct kx_gate_rt;
struct kx_detect_rt;
struct kx_router;
struct kx_ingest_rt;

struct kx_app {
	struct kx_store *store;
	const struct kx_config *cfg;
	struct kx_hash_cache *tokens;  /* service/tokens.h; may be NULL: no caching */
	struct kx_gate_rt *gate;       /* service/guard.h; NULL: gate not running */
	struct kx_detect_rt *detect;   /* service/detect.h; NULL: no detections */
	struct kx_router *router;      /* core/route.h: alert routing */
	struct kx_ingest_rt *ingest;   /* service/ingest.h; NULL: ingest in the caller's thread */
	kx_ms started_at;              /* when the daemon started */
};

#endif

/* migrate.h — versioned schema migrations embedded in the binary
 * (generated from src/store/migrations/<backend>/NNNN_name.sql). */
#ifndef KX_MIGRATE_H
#define KX_MIGRATE_H

struct kx_migration {
	int version;
	const char *name;
	const char *sql;
};

/* {0, NULL, NULL}-terminated, in version order. */
extern const struct kx_migration kx_sqlite_migrations[];
extern const struct kx_migration kx_postgres_migrations[];

#endif

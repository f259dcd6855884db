/* replay.c — runs a libFuzzer target without libFuzzer.
 *
 * Usage: fuzz_NAME DIR...
 *
 * Feeds every regular file of each DIR to LLVMFuzzerTestOneInput, then a
 * fixed number of deterministic mutations of each (bit flips, byte
 * changes, truncations, insertions, deletions, duplicated chunks, splices
 * with another seed), so that the plain ctest run and the sanitizer run
 * exercise more than the seeds. Every input is passed in a buffer of
 * exactly its size, so ASan catches reads past the end.
 *
 * The mutation stream depends only on the seed files (fixed PRNG seed,
 * files in name order), so a failure reproduces on every run. Mutating
 * stops early after a time budget; KX_REPLAY_MUTATIONS overrides the number
 * of mutations per file (0: seeds only). Exits 1 when a directory is
 * missing or holds no files, else 0 (a crash aborts the process).
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEFAULT_MUTATIONS 1000
#define TIME_BUDGET_S 8.0
#define MAX_INPUT (1 << 20)

struct seed {
	char *name;
	uint8_t *data;
	size_t len;
};

static uint64_t rng_state = 0x6b6c61786f6e2121ULL; /* "klaxon!!" */

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long runs;

/* Runs the target on a private exact-size copy of p[0..n). */
static void run(const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);
	if (!copy) {
		fprintf(stderr, "replay: out of memory\n");
		exit(2);
	}
	if (n)
		memcpy(copy, p, n);
	LLVMFuzzerTestOneInput(copy, n);
	free(copy);
	runs++;
}

static int cmp_seed(const void *a, const void *b)
{
	return strcmp(((const struct seed *)a)->name, ((const struct seed *)b)->name);
}

static int read_file(const char *path, struct seed *s)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	if (!fp)
		return -1;
	for (;;) {
		size_t got;
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 4096;
			uint8_t *np = realloc(buf, nc);
			if (!np || nc > MAX_INPUT) {
				free(np ? np : buf);
				fclose(fp);
				return -1;
			}
			buf = np;
			cap = nc;
		}
		got = fread(buf + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	fclose(fp);
	s->data = buf;
	s->len = len;
	return 0;
}

/* Loads the regular files of dir, sorted by name. */
static int load_dir(const char *dir, struct seed **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct seed *v = NULL;
	size_t cap = 0;
	char path[4096];

	*n = 0;
	if (!d) {
		fprintf(stderr, "replay: cannot open '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			struct seed *nv = realloc(v, nc * sizeof(*nv));
			if (!nv)
				break;
			v = nv;
			cap = nc;
		}
		if (read_file(path, &v[*n])) {
			fprintf(stderr, "replay: cannot read '%s'\n", path);
			continue;
		}
		v[*n].name = strdup(e->d_name);
		if (!v[*n].name) {
			free(v[*n].data);
			break;
		}
		(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_seed);
	*out = v;
	return 0;
}

static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '"', '\\', '{', '}', '[',
				      ']', ':', ',', '-', '\n', '\t', ' ', '0', '9', 'Z', '=',
				      '#', '*', '&', '!', 0xc3, 0xe2, 0xf0, 0xed, 0xc0};

/* Applies 1..4 random edits to buf (len bytes, capacity cap), returning the
 * new length. other is a second seed for splicing. */
static size_t mutate(uint8_t *buf, size_t len, size_t cap, const struct seed *other)
{
	int edits = 1 + (int)below(4);
	for (int k = 0; k < edits; k++) {
		size_t at = below(len + 1);
		switch (below(9)) {
		case 0: /* flip a bit */
			if (len)
				buf[below(len)] ^= (uint8_t)(1u << below(8));
			break;
		case 1: /* set a byte to something random */
			if (len)
				buf[below(len)] = (uint8_t)rnd();
			break;
		case 2: /* set a byte to something interesting */
			if (len)
				buf[below(len)] = interesting[below(sizeof(interesting))];
			break;
		case 3: /* truncate */
			len = below(len + 1);
			break;
		case 4: /* insert 1..8 bytes */
		{
			size_t n = 1 + below(8);
			if (len + n > cap)
				break;
			memmove(buf + at + n, buf + at, len - at);
			for (size_t i = 0; i < n; i++)
				buf[at + i] = below(2) ? (uint8_t)rnd()
						       : interesting[below(sizeof(interesting))];
			len += n;
			break;
		}
		case 5: /* delete a run */
		{
			size_t n;
			if (at >= len)
				break;
			n = 1 + below(len - at < 16 ? len - at : 16);
			memmove(buf + at, buf + at + n, len - at - n);
			len -= n;
			break;
		}
		case 6: /* duplicate a chunk */
		{
			size_t from, n;
			if (!len)
				break;
			from = below(len);
			n = 1 + below(len - from < 64 ? len - from : 64);
			if (len + n > cap)
				break;
			memmove(buf + at + n, buf + at, len - at);
			memmove(buf + at, buf + (from >= at ? from + n : from), n);
			len += n;
			break;
		}
		case 7: /* splice the tail of another seed */
		{
			size_t from, n;
			if (!other || !other->len)
				break;
			from = below(other->len);
			n = other->len - from;
			if (at + n > cap)
				n = cap - at;
			memcpy(buf + at, other->data + from, n);
			len = at + n;
			break;
		}
		default: /* overwrite with an ASCII digit or letter */
			if (len)
				buf[below(len)] = (uint8_t)(below(2) ? '0' + below(10) : 'a' + below(26));
			break;
		}
	}
	return len;
}

static long mutations_per_file(void)
{
	const char *s = getenv("KX_REPLAY_MUTATIONS");
	char *end;
	long v;
	if (!s || !*s)
		return DEFAULT_MUTATIONS;
	v = strtol(s, &end, 10);
	return (*end || v < 0) ? DEFAULT_MUTATIONS : v;
}

int main(int argc, char **argv)
{
	double start = now_s();
	long per_file = mutations_per_file();
	unsigned long long seeds = 0, mutants = 0;
	int status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
		return 1;
	}
	for (int a = 1; a < argc; a++) {
		struct seed *v = NULL;
		size_t n = 0;
		int rc = load_dir(argv[a], &v, &n);
		if (rc || n == 0) {
			if (!rc)
				fprintf(stderr, "replay: no inputs in '%s'\n", argv[a]);
			status = 1;
			free(v);
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			run(v[i].data, v[i].len);
			seeds++;
		}
		for (size_t i = 0; i < n; i++) {
			size_t cap = v[i].len * 2 + 256;
			uint8_t *buf = malloc(cap);
			if (!buf)
				break;
			for (long m = 0; m < per_file; m++) {
				size_t len;
				if ((m & 31) == 0 && now_s() - start > TIME_BUDGET_S)
					break;
				memcpy(buf, v[i].data, v[i].len);
				len = mutate(buf, v[i].len, cap, n > 1 ? &v[below(n)] : NULL);
				run(buf, len);
				mutants++;
			}
			free(buf);
		}
		for (size_t i = 0; i < n; i++) {
			free(v[i].name);
			free(v[i].data);
		}
		free(v);
	}
	printf("replay: %llu inputs ran (%llu seeds, %llu mutations) in %.2fs\n", runs, seeds,
	       mutants, now_s() - start);
	return status;
}

/*
 * Several databases in one report (see multidb.h).
 *
 * One connection per database, one after the other, rather than ATTACH:
 * every id (lifetime, address, process) belongs to its database, so a query
 * over attached files would have to carry the database in every join, and
 * every report's statements, plans and indexes would change. Run as they
 * are, on each file in turn, the reports keep their plans and their
 * streaming; only the document around them is new. The price: rows come
 * database by database, in the order given, not interleaved in time.
 *
 * Two passes. The first opens each database and refuses what cannot be
 * read (missing, unreadable, not connhist, another schema version), sets
 * aside a second name of a file already listed (same device and file
 * number: a link, or a file named and also found in a directory), and
 * builds each one's header, so that the document's header, printed first,
 * holds every database's coverage and every refusal. Nothing is printed
 * when a database was refused, unless --partial asks for the others. The
 * second pass runs the report on each database in turn with one connection
 * open at a time: a directory may hold more databases than a process may
 * open files.
 */
#include "multidb.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "addr_text.h"
#include "db.h"
#include "header.h"
#include "names.h"
#include "platform.h"
#include "rowjson.h"

typedef struct {
    char *path;          /* as given, or DIR/NAME (sqlite3_malloc'd, as are the strings below) */
    char *refused;       /* why it is not read, or NULL */
    const char *same_as; /* the first name of the same file, or NULL */
    ch_file_id id;
    char *host;          /* runs.host of its newest run; NULL: unknown */
    cJSON *header;       /* its own header, as one database would have it */
} source;

typedef struct {
    source *v;
    size_t n, cap;
} source_list;

/* Adds a source for path (taken over); NULL when out of memory. */
static source *add_source(source_list *l, char *path)
{
    if (path == NULL)
        return NULL;
    if (l->n == l->cap) {
        size_t more = l->cap ? 2 * l->cap : 16;
        source *grown = realloc(l->v, more * sizeof *grown);
        if (grown == NULL) {
            sqlite3_free(path);
            return NULL;
        }
        l->v = grown;
        l->cap = more;
    }
    source *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    s->path = path;
    return s;
}

/* Marks s refused, for the reason printed from fmt. 0, or -1 when out of memory. */
static int refuse(source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(source *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s->refused = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    return s->refused != NULL ? 0 : -1;
}

/* A directory's databases are its files, less the companions SQLite keeps
 * beside a database (-wal, -shm, -journal) and hidden files. */
static bool is_database_name(const char *name)
{
    static const char *const companions[] = {"-wal", "-shm", "-journal"};
    size_t n = strlen(name);
    if (name[0] == '.')
        return false;
    for (size_t i = 0; i < sizeof companions / sizeof companions[0]; i++) {
        size_t k = strlen(companions[i]);
        if (n >= k && strcmp(name + n - k, companions[i]) == 0)
            return false;
    }
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the databases of directory dir, by name; a directory without any,
 * or one that cannot be read, is refused. 0, or -1 when out of memory. */
static int add_directory(source_list *l, const char *dir)
{
    char **names;
    size_t n;
    if (ch_list_dir(dir, &names, &n) != 0) {
        source *s = add_source(l, sqlite3_mprintf("%s", dir));
        return s ? refuse(s, "cannot read the database directory %s: %s", dir, ch_platform_error()) : -1;
    }
    if (n > 1) /* an empty directory's list is NULL, which qsort may not take */
        qsort(names, n, sizeof *names, compare_names);
    size_t len = strlen(dir), before = l->n;
    const char *native = ch_is_path_sep('\\') ? "\\" : "/"; /* the platform's own: '\\' on Windows */
    const char *sep = len > 0 && ch_is_path_sep(dir[len - 1]) ? "" : native;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!is_database_name(names[i]))
            continue;
        char *path = sqlite3_mprintf("%s%s%s", dir, sep, names[i]);
        if (path != NULL && ch_path_kind(path) == CH_PATH_DIR)
            sqlite3_free(path); /* not a database: subdirectories are not searched */
        else if (add_source(l, path) == NULL)
            rc = -1;
    }
    ch_free_names(names, n);
    if (rc == 0 && l->n == before) {
        source *s = add_source(l, sqlite3_mprintf("%s", dir));
        rc = s ? refuse(s, "database directory %s holds no files: expected connhist databases in it", dir) : -1;
    }
    return rc;
}

/* The databases of the command line, directories expanded. 0, or -1 when out of memory. */
static int collect(source_list *l, const query_opts *o)
{
    for (int i = 0; i < o->ndb; i++) {
        const char *p = o->db_paths[i];
        if (ch_path_kind(p) == CH_PATH_DIR ? add_directory(l, p) != 0
                                           : add_source(l, sqlite3_mprintf("%s", p)) == NULL)
            return -1;
    }
    return 0;
}

/* The earlier source naming the same file as l->v[i], or NULL. */
static const source *same_file(const source_list *l, size_t i)
{
    const source *s = &l->v[i];
    for (size_t j = 0; j < i; j++) {
        const source *e = &l->v[j];
        if (e->refused == NULL && e->same_as == NULL && e->id.volume == s->id.volume && e->id.file == s->id.file)
            return e;
    }
    return NULL;
}

/* Keeps h as s's header, and its host. 0, or -1 when out of memory. */
static int keep_header(source *s, cJSON *h)
{
    s->header = h;
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(h, "host");
    if (cJSON_IsString(host)) {
        s->host = sqlite3_mprintf("%s", host->valuestring);
        return s->host != NULL ? 0 : -1;
    }
    return 0;
}

/*
 * The first pass over l->v[i]: refused, a second name of a file already
 * listed, or readable with its header built. 0, or -1 after a message (a
 * query failed on a database that opened: the report stops, as it would on
 * that database alone).
 */
static int inspect(source_list *l, size_t i, const query_opts *o)
{
    source *s = &l->v[i];
    if (s->refused != NULL)
        return 0;
    char err[CH_ERR_MAX];
    sqlite3 *db;
    if (ch_db_open_read(s->path, &db, err) != 0)
        return refuse(s, "%s", err);
    int rc = 0;
    const source *first;
    if (ch_file_identity(s->path, &s->id) != 0) {
        rc = refuse(s, "cannot tell which file %s is: %s", s->path, ch_platform_error());
    } else if ((first = same_file(l, i)) != NULL) {
        s->same_as = first->path;
    } else {
        query_ctx c = {db, o, s->path, NULL, false, 0};
        cJSON *h = NULL;
        rc = chq_read_last_sample(&c) == 0 && header_json(&c, &h) == 0 ? 0 : -1;
        if (rc == 0 && o->report->run == report_at)
            report_at_note(&c, h);
        if (rc == 0 && keep_header(s, h) != 0) {
            chq_error("out of memory");
            rc = -1;
        }
    }
    sqlite3_close(db);
    return rc;
}

/* Moves the member key of from (if there) to the end of to. */
static void move_item(cJSON *from, cJSON *to, const char *key)
{
    cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(from, key);
    if (item != NULL)
        cJSON_AddItemToObject(to, key, item);
}

static void add_pair(cJSON *list, const char *k1, const char *v1, const char *k2, const char *v2)
{
    cJSON *pair = cJSON_CreateObject();
    json_add_text(pair, k1, v1);
    json_add_text(pair, k2, v2);
    cJSON_AddItemToArray(list, pair);
}

/*
 * The document's header: what every database's header shares (report,
 * time, window, filters), then each readable database's own part (host,
 * database, coverage, and the at report's note), the refused ones and the
 * second names set aside.
 */
static cJSON *fleet_header(source_list *l)
{
    static const char *const shared[] = {"report", "generated_at", "window", "filters"};
    static const char *const own[] = {"host", "database", "coverage", "note"};
    cJSON *h = cJSON_CreateObject(), *dbs = cJSON_CreateArray();
    cJSON *refused = cJSON_CreateArray(), *dups = cJSON_CreateArray();
    bool first = true;
    for (size_t i = 0; i < l->n; i++) {
        source *s = &l->v[i];
        if (s->refused != NULL) {
            add_pair(refused, "database", s->path, "reason", s->refused);
            continue;
        }
        if (s->same_as != NULL) {
            add_pair(dups, "database", s->path, "same_as", s->same_as);
            continue;
        }
        for (size_t k = 0; first && k < sizeof shared / sizeof shared[0]; k++)
            move_item(s->header, h, shared[k]);
        first = false;
        cJSON *entry = cJSON_CreateObject();
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
            move_item(s->header, entry, own[k]);
        cJSON_AddItemToArray(dbs, entry);
    }
    cJSON_AddItemToObject(h, "databases", dbs);
    cJSON_AddItemToObject(h, "refused", refused);
    cJSON_AddItemToObject(h, "duplicates", dups);
    return h;
}

/* The second pass over one readable database: its section of the document.
 * 0, or -1 after a message. */
static int report_on(const source *s, const query_opts *base, jw *w)
{
    query_opts o = *base; /* its own window state and SQL functions' filters */
    char err[CH_ERR_MAX];
    sqlite3 *db;
    if (ch_db_open_read(s->path, &db, err) != 0) {
        chq_error("%s", err); /* it was readable a moment ago */
        return -1;
    }
    query_ctx c = {db, &o, s->path, w, false, 0};
    int rc = chq_ready(&c, &o);
    if (rc == 0) {
        /* A run of the coverage report names its own host (runs.host): a second "host" would be a
         * duplicate key, and the run's is the truth (a machine renamed between runs). */
        jw_open_section(w, "host", s->host, o.report->run != report_coverage);
        if (w->mode != JW_NDJSON)
            jw_text(w, "database", s->path);
        rc = o.report->run(&c, cJSON_CreateObject()); /* its header is in the document's */
        if (rc == 0)
            jw_close_section(w);
    }
    addr_text_close();
    names_close();
    rowjson_close();
    sqlite3_close(db);
    return rc;
}

/* Both passes' output: the header, then a section per readable database. 0 or 1. */
static int write_report(source_list *l, const query_opts *o)
{
    jw w;
    jw_init(&w, stdout, o->mode);
    jw_begin(&w);
    jw_put_free(&w, "header", fleet_header(l));
    jw_open_main(&w, "databases");
    for (size_t i = 0; i < l->n; i++) {
        const source *s = &l->v[i];
        if (s->refused == NULL && s->same_as == NULL && report_on(s, o, &w) != 0) {
            jw_flush(&w); /* what was printed before it, as with one database */
            return 1;
        }
    }
    jw_close(&w);
    jw_end(&w);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        chq_error("cannot write the report to standard output");
        return 1;
    }
    return 0;
}

static void free_sources(source_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        sqlite3_free(l->v[i].path);
        sqlite3_free(l->v[i].refused);
        sqlite3_free(l->v[i].host);
        cJSON_Delete(l->v[i].header);
    }
    free(l->v);
}

int multidb_main(query_opts *o)
{
    source_list l = {NULL, 0, 0};
    int rc = 1;
    if (collect(&l, o) != 0) {
        chq_error("out of memory listing the databases");
        goto done;
    }
    size_t readable = 0, refused = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (inspect(&l, i, o) != 0)
            goto done;
        const source *s = &l.v[i];
        if (s->refused != NULL)
            chq_error("%s", s->refused);
        refused += s->refused != NULL;
        readable += s->refused == NULL && s->same_as == NULL;
    }
    if (refused > 0 && !o->partial && readable > 0)
        chq_error("%lu of %lu databases refused, nothing reported: --partial reports on the other %lu",
                  (unsigned long)refused, (unsigned long)(refused + readable), (unsigned long)readable);
    if ((refused > 0 && !o->partial) || readable == 0)
        goto done;
    rc = write_report(&l, o);
done:
    free_sources(&l);
    return rc;
}

/*
 * The DNS capture in the record loop (see names_source.h).
 */
#include "names_source.h"

#include <stdio.h>
#include <string.h>

int ch_names_parse_mode(const char *v, int *mode)
{
    static const char *const names[] = {[CH_NAMES_AUTO] = "auto", [CH_NAMES_ON] = "on", [CH_NAMES_OFF] = "off"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        if (strcmp(v, names[i]) == 0) {
            *mode = i;
            return 0;
        }
    }
    return -1;
}

static int rider_write(void *ctx, ch_addr_ids *ids, int64_t run_id)
{
    return ch_answers_write(ctx, ids, run_id);
}

static void rider_done(void *ctx, bool committed)
{
    ch_answers_done(ctx, committed);
}

int ch_names_source_start(ch_names_source *ns, int mode, bool once, sqlite3 *db, int64_t interval_ms,
                          ch_store *store)
{
    memset(ns, 0, sizeof *ns);
    ns->db = db;
    char why[CH_NAMES_WHY_MAX - 64] = "";
    if (mode == CH_NAMES_OFF)
        snprintf(why, sizeof why, "--names off");
    else if (once && mode == CH_NAMES_AUTO)
        snprintf(why, sizeof why, "--once takes one sample and watches nothing between samples");
    else if ((ns->answers = ch_answers_new(db, interval_ms, why, sizeof why)) != NULL &&
             (ns->capture = ch_names_open(why, sizeof why)) != NULL) {
        ch_store_set_rider(store, &(ch_store_rider){rider_write, rider_done, ns->answers});
        return 0;
    }
    ch_answers_free(ns->answers);
    ns->answers = NULL;
    snprintf(ns->off, sizeof ns->off, "DNS names off: %s, so connections carry no remote_names", why);
    return mode == CH_NAMES_ON ? -1 : 0;
}

bool ch_names_source_drain(ch_names_source *ns)
{
    if (ns->capture != NULL) {
        ch_names_settle(ns->capture);
        size_t n;
        const ch_dns_answer *facts = ch_names_take(ns->capture, &n);
        ch_answers_add(ns->answers, facts, n);
    }
    return ns->answers != NULL && ch_answers_pending(ns->answers) > 0;
}

/* Writes the run's names columns. */
static void store_state(ch_names_source *ns, int64_t dropped)
{
    sqlite3_stmt *st;
    const char *sql = "UPDATE runs SET names = ?2, names_off = ?3, names_dropped = ?4 WHERE run_id = ?1";
    if (sqlite3_prepare_v2(ns->db, sql, -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, ns->run_id);
    sqlite3_bind_int(st, 2, ns->capture != NULL);
    if (ns->off[0] != '\0')
        sqlite3_bind_text(st, 3, ns->off, -1, SQLITE_STATIC);
    if (dropped >= 0)
        sqlite3_bind_int64(st, 4, dropped);
    if (sqlite3_step(st) == SQLITE_DONE)
        ns->dropped_stored = dropped;
    sqlite3_finalize(st);
}

const char *ch_names_source_begin_run(ch_names_source *ns, int64_t run_id)
{
    ns->run_id = run_id;
    store_state(ns, ns->capture != NULL ? 0 : -1);
    return ns->off[0] != '\0' ? ns->off : NULL;
}

const char *ch_names_source_tick(ch_names_source *ns)
{
    if (ns->capture == NULL)
        return NULL;
    size_t n;
    const ch_dns_answer *facts = ch_names_take(ns->capture, &n);
    ch_answers_add(ns->answers, facts, n);
    int64_t dropped = ch_names_dropped(ns->capture) + ch_answers_dropped(ns->answers);
    const char *failed = ch_names_failed(ns->capture);
    if (failed != NULL) {
        /* Off from now on; what it captured is still written by the flushes. */
        snprintf(ns->off, sizeof ns->off, "DNS names off from now on: %s", failed);
        ch_names_close(ns->capture);
        ns->capture = NULL;
        store_state(ns, dropped);
        return ns->off;
    }
    if (dropped != ns->dropped_stored)
        store_state(ns, dropped);
    if (dropped > 0 && !ns->noted_drop) {
        ns->noted_drop = true;
        return "DNS answers were dropped: more arrived between two samples than the recorder keeps"
               " (runs.names_dropped counts them)";
    }
    return NULL;
}

void ch_names_source_stop(ch_names_source *ns)
{
    ch_names_close(ns->capture);
    ns->capture = NULL;
    ch_answers_free(ns->answers);
    ns->answers = NULL;
}

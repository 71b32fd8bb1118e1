/*
 * Filters as SQL (see filter.h). Exact addresses use the remote_addr index;
 * an IPv4 peer of a dual-stack socket is stored as '::ffff:a.b.c.d', so an
 * exact address matches both spellings. A prefix cannot be an index range
 * on text, so it goes through a SQL function that compares the bytes.
 */
#include "filter.h"

#include <stdint.h>

int filter_remote_is_prefix(const query_filters *f)
{
    return f->remote_len < (f->remote_net.family == 6 ? 128 : 32);
}

static void filter_remote(qsql *q, const query_filters *f)
{
    if (filter_remote_is_prefix(f)) {
        qsql_add(q, " AND chq_in_prefix(l.remote_addr)");
    } else if (f->remote_alt[0] != '\0') {
        qsql_text(q, " AND l.remote_addr IN (?", f->remote_text);
        qsql_text(q, ", ?)", f->remote_alt);
    } else {
        qsql_text(q, " AND l.remote_addr = ?", f->remote_text);
    }
}

void filter_lifetimes(qsql *q, const query_filters *f, int window)
{
    if (window == FILTER_WINDOW) {
        qsql_int(q, " AND l.first_seen <= ?", f->until);
        if (f->given & OPT_SINCE)
            qsql_int(q, " AND (l.closed_at IS NULL OR l.closed_at >= ?)", f->since);
    }
    if (f->given & OPT_REMOTE)
        filter_remote(q, f);
    if (f->given & OPT_REMOTE_PORT)
        qsql_int(q, " AND l.remote_port = ?", f->remote_port);
    if (f->given & OPT_LOCAL_PORT)
        qsql_int(q, " AND l.local_port = ?", f->local_port);
    if (f->given & OPT_PORT) {
        qsql_int(q, " AND (l.local_port = ?", f->port);
        qsql_int(q, " OR l.remote_port = ?)", f->port);
    }
    if (f->given & OPT_PROTO)
        qsql_text(q, " AND l.proto = ?", f->proto);
    if (f->given & OPT_FAMILY)
        qsql_int(q, " AND l.family = ?", f->family);
    if (f->given & OPT_PID)
        qsql_int(q, " AND l.pid = ?", f->pid);
    if (f->given & OPT_PROCESS)
        qsql_text(q, " AND p.name GLOB ?", f->process);
    if (f->given & OPT_STATE) /* whole names only: SYN_RECV must not match NEW_SYN_RECV */
        qsql_text(q, " AND instr(',' || l.states || ',', ',' || ? || ',') > 0", f->state);
    if (f->given & OPT_OPEN)
        qsql_add(q, " AND l.closed_at IS NULL");
}

void filter_limit(qsql *q, const query_filters *f)
{
    qsql_int(q, " LIMIT ?", (f->given & OPT_LIMIT) ? f->limit : -1);
}

/* chq_in_prefix(addr): 1 inside the prefix, 0 outside or for NULL/garbage. */
static void in_prefix(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const query_filters *f = sqlite3_user_data(ctx);
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    ch_addr a;
    if (text == NULL || ch_addr_parse(text, &a) != 0) {
        sqlite3_result_int(ctx, 0);
        return;
    }
    sqlite3_result_int(ctx, ch_addr_in_prefix(&a, &f->remote_net, f->remote_len));
}

int filter_register_prefix(sqlite3 *db, const query_filters *f)
{
    return sqlite3_create_function_v2(db, "chq_in_prefix", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                      (void *)f, in_prefix, NULL, NULL, NULL);
}

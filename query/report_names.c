/*
 * names: the DNS answers captured in the window, oldest first: what was
 * resolved, when, to what, by whom (the asking process where its socket
 * was recorded with an owner). A row is an answer lifetime (see
 * schema/README.md): the first and latest response that carried it, and
 * when it stopped being in force.
 */
#include "names.h"

#include "coverage.h"
#include "filter.h"
#include "rowjson.h"
#include "stream.h"

static void answer_row(jw *w, sqlite3_stmt *st)
{
    jw_open(w, NULL, false);
    put_int_col(w, "id", st, 0);
    put_text_col(w, "name", st, 1);
    put_text_col(w, "record_name", st, 2);
    put_text_col(w, "type", st, 3);
    put_text_col(w, "addr", st, 4);
    put_text_col(w, "target", st, 5);
    put_int_col(w, "ttl", st, 6);
    put_time_col(w, "first_seen", st, 7);
    put_time_col(w, "last_seen", st, 8);
    put_time_col(w, "expires", st, 9);
    put_int_col(w, "times_seen", st, 10);
    put_text_col(w, "resolver", st, 11);
    put_text_col(w, "client_addr", st, 12);
    put_int_col(w, "client_port", st, 13);
    put_code_col(w, "proto", CODE_PROTO, st, 14);
    put_process(w, "process", st, 15);
    jw_close(w);
}

int report_names(query_ctx *c, cJSON *header)
{
    const query_filters *f = &c->o->f;
    qsql q;
    qsql_init(&q, c->db);
    qsql_add(&q, "SELECT a.answer_id, qn.name, rn.name, (SELECT name FROM codes WHERE field = 'dns_type' AND code = a.type),"
                 " ad.addr, tn.name, a.ttl, a.first_seen, a.first_seen + a.last_seen_after,"
                 " a.first_seen + a.expires_after, a.times_seen, rs.addr, ca.addr, a.client_port, a.proto, "
                 CHQ_PROCESS_COLUMNS " FROM dns_answers a"
                 " JOIN dns_names qn ON qn.name_id = a.qname_id JOIN dns_names rn ON rn.name_id = a.rname_id"
                 " LEFT JOIN dns_names tn ON tn.name_id = a.target_id LEFT JOIN addrs ad ON ad.addr_id = a.addr_id"
                 " JOIN addrs rs ON rs.addr_id = a.resolver_addr_id JOIN addrs ca ON ca.addr_id = a.client_addr_id"
                 " LEFT JOIN processes p ON p.proc_id = a.proc_id WHERE 1");
    qsql_int(&q, " AND a.first_seen <= ?", f->until);
    if (f->given & OPT_SINCE)
        qsql_int(&q, " AND a.first_seen + a.last_seen_after >= ?", f->since);
    if (f->given & OPT_REMOTE_NAME) {
        qsql_text(&q, " AND (qn.name GLOB ?", f->remote_name);
        qsql_text(&q, " OR rn.name GLOB ?", f->remote_name);
        qsql_text(&q, " OR tn.name GLOB ?)", f->remote_name);
    }
    if (f->given & OPT_PID)
        qsql_int(&q, " AND p.pid = ?", f->pid);
    if (f->given & OPT_PROCESS)
        qsql_text(&q, " AND p.name GLOB ?", f->process);
    qsql_add(&q, " ORDER BY a.first_seen, a.answer_id");
    filter_limit(&q, f);
    chq_start(c, header);
    return stream_list(c, "answers", true, &q, answer_row, "selecting DNS answers");
}

/*
 * The /proc/net parser on lines captured from a real kernel
 * (tests/data/procnet, little-endian x86_64): a listener, both ends of an
 * established connection, TIME_WAIT, IPv6, bound and connected UDP.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "procnet.h"

#ifndef DATA_DIR
#define DATA_DIR "tests/data/procnet"
#endif

/* The row with these ports in *out (returned), or NULL. */
static const ch_sock *find_row(const ch_sample *s, int proto, int family, int lport, int rport, ch_sock *out)
{
    for (size_t i = 0; i < s->count; i++) {
        *out = ch_sample_row(s, i);
        if (out->proto == proto && out->local.family == family && out->local_port == lport && out->remote_port == rport)
            return out;
    }
    return NULL;
}

static void addr_is(const ch_addr *a, const char *text)
{
    char buf[CH_ADDR_TEXT];
    ch_addr_format(a, buf);
    CHECK_STR(buf, text);
}

static void test_captured_tables(void)
{
    ch_sample s = {0};
    char err[256];
    CHECK_INT(ch_procnet_read(DATA_DIR, &s, err, sizeof err), 0);
    CHECK_INT(s.count, 11);

    ch_sock l_row;
    const ch_sock *l = find_row(&s, CH_TCP, 4, 47001, 0, &l_row);
    CHECK(l != NULL);
    if (l) {
        addr_is(&l->local, "127.0.0.1");
        CHECK_INT(l->state, CH_ST_LISTEN);
        CHECK_INT(l->inode, 10811);
        CHECK_INT(l->ident, 10811);
        CHECK(!ch_sock_has_remote(l));
        CHECK_INT(ch_sock_offload(l), -1); /* unknown, never a made-up "in_host" */
        CHECK_INT(l->bytes_sent, -1);
    }
    ch_sock e_row;
    const ch_sock *e = find_row(&s, CH_TCP, 4, 34848, 47001, &e_row);
    CHECK(e != NULL);
    if (e) {
        addr_is(&e->remote, "127.0.0.1");
        CHECK_INT(e->state, CH_ST_ESTABLISHED);
        CHECK_INT(e->uid, 0);
        CHECK(ch_sock_has_remote(e));
    }
    ch_sock tw_row;
    const ch_sock *tw = find_row(&s, CH_TCP, 4, 34858, 47001, &tw_row);
    CHECK(tw != NULL);
    if (tw) {
        CHECK_INT(tw->state, CH_ST_TIME_WAIT);
        CHECK_INT(tw->inode, 0);
        CHECK_INT(tw->ident, 0);
    }
    ch_sock e6_row;
    const ch_sock *e6 = find_row(&s, CH_TCP, 6, 50752, 47002, &e6_row);
    CHECK(e6 != NULL);
    if (e6) {
        addr_is(&e6->local, "::1");
        addr_is(&e6->remote, "::1");
    }
    ch_sock ub_row;
    const ch_sock *ub = find_row(&s, CH_UDP, 4, 47003, 0, &ub_row);
    CHECK(ub != NULL && ub->state == CH_ST_UNCONN);
    ch_sock uc_row;
    const ch_sock *uc = find_row(&s, CH_UDP, 4, 57910, 47003, &uc_row);
    CHECK(uc != NULL && uc->state == CH_ST_ESTABLISHED);
    ch_sock u6_row;
    const ch_sock *u6 = find_row(&s, CH_UDP, 6, 47004, 0, &u6_row);
    CHECK(u6 != NULL && u6->state == CH_ST_UNCONN && u6->inode == 10821);
    ch_sample_free(&s);
}

static void test_bad_lines(void)
{
    ch_sock r;
    CHECK_INT(ch_procnet_parse_line("  sl  local_address rem_address   st", CH_TCP, 4, &r), 0);
    CHECK_INT(ch_procnet_parse_line("", CH_TCP, 4, &r), -1);
    CHECK_INT(ch_procnet_parse_line("   0: 0100007F:B799", CH_TCP, 4, &r), -1);
    CHECK_INT(ch_procnet_parse_line("   0: 0100007G:B799 00000000:0000 0A 0:0 0:0 0 0 0 1", CH_TCP, 4, &r), -1);
    CHECK_INT(ch_procnet_parse_line("   0: 0100007F:B799 00000000:0000 0A 00000000:00000000 00:00000000 00000000", CH_TCP, 4, &r), -1);
    CHECK_INT(ch_procnet_parse_line("   0: 0100007F:B799 00000000:0000 FF 00000000:00000000 00:00000000 00000000 0 0 5", CH_TCP, 4, &r), -1);
    CHECK_INT(ch_procnet_parse_line("   0: 0100007F:B799 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1000 0 5 1", CH_TCP, 4, &r), 1);
    CHECK_INT(r.uid, 1000);
    CHECK_INT(r.local_port, 0xB799);
    char err[256];
    ch_sample s = {0};
    CHECK_INT(ch_procnet_read("/nonexistent-dir", &s, err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent-dir") != NULL);
    ch_sample_free(&s);
}

int main(void)
{
    test_captured_tables();
    test_bad_lines();
    return check_report("test_procnet");
}

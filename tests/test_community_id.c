/*
 * The Community ID v1 (query/community_id.c) against the published test
 * vectors of the specification: corelight/community-id-spec on GitHub,
 * baseline/baseline_deflt.json (seed 0) and baseline/baseline_seed1.json
 * (seed 1), commit c4ec2bc40d65ddbcbdd642582bf5609797a80772. Every vector of
 * a protocol with ports (TCP 6, UDP 17, SCTP 132) is here, each flow in
 * both directions as the files give them; the ICMP ones (their "ports" are
 * type and code, mapped by rules connhist has no use for) and the
 * port-less RSVP ones are left out.
 */
#include <string.h>

#include "addr.h"
#include "check.h"
#include "community_id.h"

typedef struct {
    int seed, proto;
    const char *saddr, *daddr;
    int sport, dport;
    const char *id;
} vector;

static const vector vectors[] = {
    /* baseline_deflt.json */
    {0, 6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {0, 6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {0, 132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {0, 132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {0, 6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {0, 6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {0, 17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {0, 17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    /* baseline_seed1.json */
    {1, 6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25,
     "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {1, 6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943,
     "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {1, 132, "192.168.170.8", "192.168.170.56", 7, 7, "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
    {1, 132, "192.168.170.56", "192.168.170.8", 7, 7, "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="},
    {1, 6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {1, 6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {1, 17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
    {1, 17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
};

int main(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const vector *v = &vectors[i];
        ch_addr s, d;
        CHECK(ch_addr_parse(v->saddr, &s) == 0);
        CHECK(ch_addr_parse(v->daddr, &d) == 0);
        char id[COMMUNITY_ID_TEXT];
        CHECK(community_id_v1((uint16_t)v->seed, (uint8_t)v->proto, &s, (uint16_t)v->sport, &d,
                              (uint16_t)v->dport, id) == 0);
        CHECK_STR(id, v->id);
    }
    /* Two ends of different families are no flow. */
    ch_addr v4, v6;
    char id[COMMUNITY_ID_TEXT];
    CHECK(ch_addr_parse("10.0.0.1", &v4) == 0 && ch_addr_parse("2001:db8::1", &v6) == 0);
    CHECK(community_id_v1(0, 6, &v4, 1, &v6, 2, id) == -1);
    return check_report("test_community_id");
}

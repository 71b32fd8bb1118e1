/*
 * connhist-genstore: the query benchmark's database, written by the
 * recorder's own tracker and store (issue 4: "generated through the real
 * store code").
 *
 *   connhist-genstore --out PATH [--lifetimes N] [--seed S]
 *
 * It simulates a busy server over 30 days. Sockets open and close in
 * simulated time; every 10 s of it the machine is "sampled": the sockets
 * open at that moment form a ch_sample that goes through ch_tracker_apply,
 * the sockets that closed since the last sample are announced first through
 * ch_tracker_destroyed (as the sock_diag destroy events are), and
 * ch_store_flush writes the queued events and the heartbeat in one
 * transaction, exactly as connhist-record's tick does. The coarse tick keeps
 * 10 million lifetimes to minutes; a socket that opened and closed between
 * two samples is recorded as the recorder records it, from its
 * announcement alone.
 *
 * What the OS would tell the recorder is simulated here: socket rows (with
 * cookies and inodes that are counters, as the kernel's are, and no byte
 * counters, which the recorder leaves out of its dumps), announcements (TCP
 * in CLOSE with the final counters; a connection freed into TIME_WAIT
 * before any dump saw it leaves an entry with a cookie of its own), and the
 * owning process of a new socket, which the generator puts into the open
 * events where the recorder's /proc scan would (ch_procs_resolve), so
 * processes reach the processes table through the store like the
 * recorder's.
 *
 * The spread: 2,000 processes under 40 names (50 each); 100,000 remotes,
 * 10% of the lifetimes over IPv6, a few remotes far more frequent than the
 * rest; 70% outgoing TCP (half to port 443, the rest to 80, 22, 53, 5432,
 * 993), 20% incoming TCP (to 22, 80, 443, 8080, owned by sshd, nginx, java;
 * a fifth without owner), 8% UDP (half bound to a service port, half
 * connected), 2% listeners (ports 8000-8049); durations from 1 s to about
 * an hour; two thirds of TCP connections close through 60 s of TIME_WAIT.
 * Openings follow the time of day, 50% above the mean at 14:00 UTC and 50%
 * below it at 02:00. The simulation starts 70 minutes before the first sample, so the
 * first sample finds a machine already busy, as a recorder started on one
 * would. The last sample is now (rounded down to 10 s); the same seed gives
 * the same database, shifted in time.
 *
 * On stdout, last, one line for bench/bench.py: "t0 MS t_end MS lifetimes N
 * seconds S remote ADDR", where ADDR is the 10th most frequent remote.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "message.h"
#include "platform.h"
#include "store.h"
#include "timeutil.h"
#include "tracker.h"

#define DAY_MS 86400000LL
#define SPAN_DAYS 30
#define TICK_MS 10000LL             /* one sample per simulated 10 s */
#define WARMUP_MS (70 * 60000LL)    /* longer than any lifetime: the first sample sees a busy machine */
#define TIME_WAIT_MS 60000LL        /* Linux keeps a TIME_WAIT socket 60 s */
#define MIN_DURATION_MS 1000.0
#define DURATION_SPREAD_MS 3572100.0 /* durations 1 s + u^2 * this: 1 s to about an hour */
#define PEAK_HOUR_MS (14 * 3600000LL) /* busiest time of day, UTC */
#define DIURNAL 0.5                 /* openings swing +-50% around the mean over a day */
#define REMOTES4 90000
#define REMOTES6 10000
#define PROCS_PER_NAME 50
#define COOKIE_BASE 40000ULL        /* cookies and inodes are counters, as the kernel's */
#define INODE_BASE 2000000ULL
#define MAX_LIFETIMES 1000000000LL
#define RANKED_REMOTE 10            /* the benchmark filters on the 10th most frequent remote */
#define GENERATE_PRAGMAS "PRAGMA synchronous = OFF; PRAGMA journal_mode = OFF; PRAGMA mmap_size = 17179869184"

/* A program: every one of its 50 processes has these details. */
typedef struct {
    char *name, *path, *cmdline;
    int64_t uid;
    char *user;
} program;

static const program programs[] = {
    {"nginx", "/usr/sbin/nginx", "nginx: worker process", 33, "www-data"},
    {"curl", "/usr/bin/curl", "curl -fsS https://api.example.com/v1/status", 1000, "deploy"},
    {"python3", "/usr/bin/python3.11", "/usr/bin/python3 /opt/app/worker.py --queue default", 1000, "deploy"},
    {"sshd", "/usr/sbin/sshd", "sshd: deploy [priv]", 0, "root"},
    {"chrome", "/opt/google/chrome/chrome", "/opt/google/chrome/chrome --type=utility", 1001, "alice"},
    {"firefox", "/usr/lib/firefox-esr/firefox-esr", "/usr/lib/firefox-esr/firefox-esr", 1001, "alice"},
    {"postgres", "/usr/lib/postgresql/15/bin/postgres", "postgres: 15/main: app app 10.0.0.7(52310) idle",
     112, "postgres"},
    {"java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java -Xmx2g -jar /opt/svc/service.jar", 998, "svc"},
    {"node", "/usr/bin/node", "node /srv/web/server.js", 998, "svc"},
    {"dockerd", "/usr/bin/dockerd", "/usr/bin/dockerd -H fd://", 0, "root"},
    {"systemd-resolve", "/usr/lib/systemd/systemd-resolved", "/usr/lib/systemd/systemd-resolved", 101,
     "systemd-resolve"},
    {"chronyd", "/usr/sbin/chronyd", "/usr/sbin/chronyd -F 1", 104, "_chrony"},
    {"apt", "/usr/bin/apt", "apt-get -qq update", 0, "root"},
    {"wget", "/usr/bin/wget", "wget -q https://downloads.example.org/pkg.tar.gz", 1000, "deploy"},
    {"redis-server", "/usr/bin/redis-server", "/usr/bin/redis-server 127.0.0.1:6379", 110, "redis"},
    {"mysqld", "/usr/sbin/mysqld", "/usr/sbin/mysqld", 111, "mysql"},
    {"containerd", "/usr/bin/containerd", "/usr/bin/containerd", 0, "root"},
    {"git", "/usr/bin/git", "git fetch origin", 1000, "deploy"},
    {"ssh", "/usr/bin/ssh", "ssh -o BatchMode=yes backup@198.18.0.2", 1000, "deploy"},
    {"php-fpm", "/usr/sbin/php-fpm8.2", "php-fpm: pool www", 33, "www-data"},
    {"ruby", "/usr/bin/ruby3.1", "ruby /srv/jobs/bin/sidekiq", 998, "svc"},
    {"go", "/usr/local/go/bin/go", "go mod download", 1000, "deploy"},
    {"kubelet", "/usr/bin/kubelet", "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml", 0, "root"},
    {"etcd", "/usr/local/bin/etcd", "etcd --data-dir=/var/lib/etcd", 0, "root"},
    {"haproxy", "/usr/sbin/haproxy", "/usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg", 113, "haproxy"},
    {"envoy", "/usr/local/bin/envoy", "envoy -c /etc/envoy/envoy.yaml", 998, "svc"},
    {"prometheus", "/usr/bin/prometheus", "/usr/bin/prometheus --config.file=/etc/prometheus/prometheus.yml",
     114, "prometheus"},
    {"grafana", "/usr/share/grafana/bin/grafana", "grafana server --homepath=/usr/share/grafana", 115, "grafana"},
    {"sssd", "/usr/sbin/sssd", "/usr/sbin/sssd -i --logger=files", 0, "root"},
    {"cupsd", "/usr/sbin/cupsd", "/usr/sbin/cupsd -l", 0, "root"},
    {"avahi-daemon", "/usr/sbin/avahi-daemon", "avahi-daemon: running [benchhost.local]", 105, "avahi"},
    {"dnsmasq", "/usr/sbin/dnsmasq", "/usr/sbin/dnsmasq -k --conf-file=/etc/dnsmasq.conf", 106, "dnsmasq"},
    {"snapd", "/usr/lib/snapd/snapd", "/usr/lib/snapd/snapd", 0, "root"},
    {"thunderbird", "/usr/lib/thunderbird/thunderbird", "/usr/lib/thunderbird/thunderbird", 1001, "alice"},
    {"slack", "/usr/lib/slack/slack", "/usr/lib/slack/slack --enable-crashpad", 1001, "alice"},
    {"zoom", "/opt/zoom/zoom", "/opt/zoom/zoom", 1001, "alice"},
    {"code", "/usr/share/code/code", "/usr/share/code/code --type=utility", 1001, "alice"},
    {"rsync", "/usr/bin/rsync", "rsync -az /srv/data/ backup@198.18.0.2:/backup/", 0, "root"},
    {"openvpn", "/usr/sbin/openvpn", "/usr/sbin/openvpn --config /etc/openvpn/client.conf", 0, "root"},
    {"tor", "/usr/bin/tor", "/usr/bin/tor --defaults-torrc /usr/share/tor/tor-service-defaults-torrc", 107,
     "debian-tor"},
};
#define NAMES ((int)(sizeof programs / sizeof programs[0]))
#define PROCESSES (NAMES * PROCS_PER_NAME)

/* Programs that own the incoming connections and bound UDP ports. */
enum { P_NGINX = 0, P_SSHD = 3, P_JAVA = 7, P_RESOLVED = 10, P_CHRONYD = 11, P_CUPSD = 29, P_AVAHI = 30 };

/* What the simulation knows of a socket beyond its row. */
typedef struct {
    int64_t opened_at;
    int64_t closes_at;     /* when it enters TIME_WAIT, or is freed */
    uint32_t send_rate;    /* TCP bytes per second each way */
    uint32_t recv_rate;
    bool time_wait;        /* it closes through TIME_WAIT */
} sim;

typedef struct {
    uint64_t rng;
    int64_t lifetimes_wanted;
    int64_t t0, t_end;         /* first and last sample */
    ch_proc procs[PROCESSES];
    ch_sock *live; /* the sockets open now: the next sample */
    size_t nlive;
    ch_sample snap; /* live, as the tracker takes it */
    sim *sims;      /* parallel to live */
    size_t sims_cap;
    int16_t *owner_of;         /* process index by socket serial; -1: not attributable */
    uint64_t serials, serials_cap;
    uint32_t remote_count[REMOTES4 + REMOTES6];
    sqlite3 *db;
    ch_tracker *tracker;
    ch_store *store;
    ch_events queue;
    int64_t last_sample;       /* -1 before the first */
    int64_t lifetimes;         /* open events written */
    char err[CH_ERR_MAX];
} generator;

static int usage(FILE *f, int rc)
{
    fputs("usage: connhist-genstore --out PATH [--lifetimes N] [--seed S]\n"
          "  --out PATH       the database to create (must not exist)\n"
          "  --lifetimes N    lifetimes to generate, default 10000000\n"
          "  --seed S         seed of the simulation, default 1\n",
          f);
    return rc;
}

/* A one-line message; returns rc. */
static int say(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ch_vmessage(stderr, "connhist-genstore: ", fmt, ap);
    va_end(ap);
    return rc;
}

/* The simulation's random numbers: a Weyl sequence through a 64-bit mixer,
 * so a seed gives the same database on every machine. */
static uint64_t next_u64(generator *g)
{
    uint64_t x = g->rng += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Uniform in [0, 1). */
static double uniform(generator *g)
{
    return (double)(next_u64(g) >> 11) * (1.0 / 9007199254740992.0);
}

static uint32_t below(generator *g, uint32_t n)
{
    return (uint32_t)(uniform(g) * n);
}

/* 0..n-1, the low values far more likely: P(< k) = (k/n)^(1/p). */
static uint32_t skewed(generator *g, uint32_t n, int p)
{
    double u = uniform(g), v = u;
    for (int i = 1; i < p; i++)
        v *= u;
    return (uint32_t)(v * n);
}

static void make_processes(generator *g)
{
    for (int k = 0; k < PROCESSES; k++) {
        const program *pg = &programs[k % NAMES];
        ch_proc *p = &g->procs[k];
        p->pid = 300 + (int64_t)below(g, 4000000);
        p->start_time = g->t0 - WARMUP_MS - (int64_t)below(g, (uint32_t)(20 * (DAY_MS / 1000))) * 1000 -
                        (int64_t)below(g, 1000);
        p->name = pg->name;
        p->path = pg->path;
        p->cmdline = pg->cmdline;
        p->uid = pg->uid;
        p->user = pg->user;
    }
}

/* One of the 50 processes of a program, the first ones busier. */
static int process_of(generator *g, int prog)
{
    return prog + NAMES * (int)skewed(g, PROCS_PER_NAME, 2);
}

/* Any process, the lower-numbered ones busier. */
static int any_process(generator *g)
{
    return (int)skewed(g, PROCESSES, 2);
}

static void set_addr4(ch_addr *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
    memset(a, 0, sizeof *a);
    a->family = 4;
    a->bytes[0] = b0, a->bytes[1] = b1, a->bytes[2] = b2, a->bytes[3] = b3;
}

/* 2001:db8:<b4b5>::<low 32 bits> */
static void set_addr6(ch_addr *a, uint16_t net, uint32_t low)
{
    static const uint8_t prefix[4] = {0x20, 0x01, 0x0d, 0xb8};
    memset(a, 0, sizeof *a);
    a->family = 6;
    memcpy(a->bytes, prefix, 4);
    a->bytes[4] = (uint8_t)(net >> 8), a->bytes[5] = (uint8_t)net;
    for (int i = 0; i < 4; i++)
        a->bytes[12 + i] = (uint8_t)(low >> (24 - 8 * i));
}

/* Remote number r: 0..REMOTES4-1 are 198.18.0.0/15 (the benchmarking
 * range), the rest 2001:db8:1::/64. */
static void remote_addr(ch_addr *a, uint32_t r)
{
    if (r < REMOTES4)
        set_addr4(a, 198, (uint8_t)(18 + (r >> 16)), (uint8_t)(r >> 8), (uint8_t)r);
    else
        set_addr6(a, 1, r - REMOTES4);
}

/* This server's own address in a family, or the any address. */
static void local_addr(ch_addr *a, int family, bool any)
{
    if (family == 4) {
        set_addr4(a, any ? 0 : 10, 0, 0, any ? 0 : 5);
    } else {
        set_addr6(a, 0, 5); /* 2001:db8::5 */
        if (any)
            memset(a->bytes, 0, sizeof a->bytes);
    }
}

/* A peer: 10% IPv6; each family's remotes with a few far more frequent. */
static uint32_t pick_remote(generator *g, ch_sock *row)
{
    bool v6 = below(g, 10) == 0;
    uint32_t r = v6 ? REMOTES4 + skewed(g, REMOTES6, 3) : skewed(g, REMOTES4, 3);
    remote_addr(&row->remote, r);
    local_addr(&row->local, row->remote.family, false);
    return r;
}

static uint16_t ephemeral_port(generator *g)
{
    return (uint16_t)(32768 + below(g, 28232)); /* Linux's default ip_local_port_range */
}

static uint16_t service_port(generator *g)
{
    static const uint16_t ports[10] = {443, 443, 443, 443, 443, 80, 22, 53, 5432, 993};
    return ports[below(g, 10)];
}

/*
 * Fills a new socket's row and sim: what it is, whom it talks to, who owns
 * it. Returns its owner's process index, or -1 when the recorder could not
 * attribute it. *remote gets the remote number, or -1 without a peer.
 */
static int new_socket(generator *g, ch_sock *row, sim *m, int64_t *remote)
{
    uint32_t kind = below(g, 1000);
    int owner;
    *remote = -1;
    row->proto = CH_TCP;
    if (kind < 20) { /* 2% listeners */
        local_addr(&row->local, below(g, 10) == 0 ? 6 : 4, true);
        row->remote.family = row->local.family;
        row->state = CH_ST_LISTEN;
        row->local_port = (uint16_t)(8000 + below(g, 50));
        owner = any_process(g);
    } else if (kind < 100) { /* 8% UDP: half bound to a service port, half connected */
        static const uint16_t ports[4] = {53, 123, 5353, 631};
        static const int owners[4] = {P_RESOLVED, P_CHRONYD, P_AVAHI, P_CUPSD};
        static const uint16_t peers[10] = {53, 53, 53, 53, 53, 53, 53, 443, 443, 123};
        row->proto = CH_UDP;
        if (below(g, 2) == 0) {
            uint32_t s = below(g, 4);
            local_addr(&row->local, below(g, 10) == 0 ? 6 : 4, true);
            row->remote.family = row->local.family;
            row->state = CH_ST_UNCONN;
            row->local_port = ports[s];
            owner = process_of(g, owners[s]);
        } else {
            *remote = pick_remote(g, row);
            row->state = CH_ST_ESTABLISHED;
            row->local_port = ephemeral_port(g);
            row->remote_port = peers[below(g, 10)];
            owner = any_process(g);
        }
    } else if (kind < 300) { /* 20% incoming TCP, a fifth of it not attributable */
        static const uint16_t ports[4] = {22, 80, 443, 8080};
        static const int owners[4] = {P_SSHD, P_NGINX, P_NGINX, P_JAVA};
        uint32_t s = below(g, 4);
        *remote = pick_remote(g, row);
        row->state = CH_ST_ESTABLISHED;
        row->local_port = ports[s];
        row->remote_port = ephemeral_port(g);
        owner = process_of(g, owners[s]);
        row->uid = g->procs[owner].uid; /* the kernel knows the uid even when we cannot see the process */
        if (below(g, 5) == 0)
            owner = -1;
    } else { /* 70% outgoing TCP */
        *remote = pick_remote(g, row);
        row->state = CH_ST_ESTABLISHED;
        row->local_port = ephemeral_port(g);
        row->remote_port = service_port(g);
        owner = any_process(g);
    }
    if (owner >= 0)
        row->uid = g->procs[owner].uid;
    double u = uniform(g);
    m->closes_at = m->opened_at + (int64_t)(MIN_DURATION_MS + u * u * DURATION_SPREAD_MS);
    m->time_wait = row->proto == CH_TCP && row->state == CH_ST_ESTABLISHED && below(g, 3) != 0;
    if (row->proto == CH_TCP) {
        m->send_rate = (uint32_t)pow(10.0, 1.0 + 4.0 * uniform(g));
        m->recv_rate = (uint32_t)pow(10.0, 1.0 + 4.0 * uniform(g));
    }
    return owner;
}

/* The row a TIME_WAIT socket has in a dump: no inode, no uid. */
static void enter_time_wait(ch_sock *row)
{
    row->state = CH_ST_TIME_WAIT;
    row->inode = 0;
    row->uid = 0;
}

/*
 * The kernel's announcement that a socket was freed at time when, handed to
 * the tracker as connhist-record's take_closes does (clamped into the
 * interval since the last sample). The announcement has no inode or uid; a
 * TCP socket is announced in CLOSE, with its final byte counters, which the
 * samples do not carry (the recorder leaves tcp_info out of its dumps).
 */
static int announce(generator *g, const ch_sock *row, const sim *m, int64_t when, int64_t at)
{
    ch_sock gone = *row;
    gone.inode = 0;
    gone.uid = 0;
    if (row->proto == CH_TCP) {
        gone.state = CH_ST_CLOSE;
        if (row->state != CH_ST_LISTEN) {
            gone.bytes_sent = (int64_t)m->send_rate * (when - m->opened_at) / 1000;
            gone.bytes_received = (int64_t)m->recv_rate * (when - m->opened_at) / 1000;
        }
    }
    int64_t lo = g->last_sample >= 0 ? g->last_sample + 2 : 0;
    when = when < lo ? lo : when > at ? at : when;
    if (ch_tracker_destroyed(g->tracker, &gone, when, g->last_sample, &g->queue) != 0)
        return say(-1, "out of memory");
    return 0;
}

static void remove_live(generator *g, size_t i)
{
    size_t last = --g->nlive;
    g->live[i] = g->live[last];
    g->sims[i] = g->sims[last];
}

/*
 * Moves the open sockets on to time at: those that closed since the last
 * step are announced (when the recorder listens) and either enter TIME_WAIT
 * or leave the next sample; TIME_WAIT sockets expire.
 */
static int age_sockets(generator *g, int64_t at, bool listening)
{
    for (size_t i = g->nlive; i-- > 0;) {
        ch_sock *row = &g->live[i];
        sim *m = &g->sims[i];
        if (row->state == CH_ST_TIME_WAIT) {
            if (m->closes_at + TIME_WAIT_MS <= at)
                remove_live(g, i); /* TIME_WAIT ends unannounced */
            continue;
        }
        if (m->closes_at > at)
            continue;
        /* A connection freed into TIME_WAIT is announced too; a dump had
         * given it a cookie, which the TIME_WAIT entry keeps. */
        if (listening && announce(g, row, m, m->closes_at, at) != 0)
            return -1;
        if (m->time_wait && m->closes_at + TIME_WAIT_MS > at)
            enter_time_wait(row);
        else
            remove_live(g, i);
    }
    return 0;
}

/* The next socket serial (its cookie and inode), owned by process owner
 * (-1: none the recorder could find). */
static int new_serial(generator *g, int owner, uint64_t *serial)
{
    if (g->serials == g->serials_cap) {
        uint64_t cap = g->serials_cap ? g->serials_cap * 2 : 1 << 20;
        int16_t *o = realloc(g->owner_of, cap * sizeof *o);
        if (o == NULL)
            return say(-1, "out of memory");
        g->owner_of = o;
        g->serials_cap = cap;
    }
    g->owner_of[g->serials] = (int16_t)owner;
    *serial = g->serials++;
    return 0;
}

/* Adds a socket to the live set: the next sample will have it. */
static int add_live(generator *g, const ch_sock *row, const sim *m)
{
    if (g->nlive == g->sims_cap) {
        size_t cap = g->sims_cap ? g->sims_cap * 2 : 4096;
        sim *s = realloc(g->sims, cap * sizeof *s);
        ch_sock *live = s != NULL ? realloc(g->live, cap * sizeof *live) : NULL;
        if (s != NULL)
            g->sims = s;
        if (live == NULL)
            return say(-1, "out of memory");
        g->live = live;
        g->sims_cap = cap;
    }
    g->live[g->nlive] = *row;
    g->sims[g->nlive++] = *m;
    return 0;
}

/*
 * A socket opened at time opened, before the sample at: it joins the next
 * sample if still there then. One that already closed is announced: the
 * announcement is all the recorder learns of it (a lifetime without owner),
 * unless it left a TIME_WAIT entry, which the sample finds under a cookie
 * of its own (no dump gave the socket one before it was freed) and the
 * tracker joins to the announcement.
 */
static int open_socket(generator *g, int64_t opened, int64_t at, bool listening)
{
    ch_sock row;
    memset(&row, 0, sizeof row);
#if CH_SOCK_OS_FIELDS
    row.offload = -1;
#endif
    row.bytes_sent = row.bytes_received = -1;
    sim m = {.opened_at = opened};
    int64_t remote;
    uint64_t serial = 0;
    if (new_serial(g, new_socket(g, &row, &m, &remote), &serial) != 0)
        return -1;
    row.ident = COOKIE_BASE + serial;
    row.inode = INODE_BASE + 4 * serial; /* other files take inode numbers too */
    int64_t ends = m.closes_at + (m.time_wait ? TIME_WAIT_MS : 0);
    if (ends > g->t0 && remote >= 0) /* it will have a lifetime */
        g->remote_count[remote]++;
    if (m.closes_at > at)
        return add_live(g, &row, &m);
    if (listening && announce(g, &row, &m, m.closes_at, at) != 0)
        return -1;
    if (!m.time_wait || ends <= at)
        return 0;
    if (listening) {
        if (new_serial(g, -1, &serial) != 0)
            return -1;
        row.ident = COOKIE_BASE + serial;
    }
    enter_time_wait(&row);
    return add_live(g, &row, &m);
}

/* Expected openings from t0 to t (negative before t0): the mean rate, swung
 * by the time of day. Over whole days the swing cancels out. */
static double openings_until(const generator *g, int64_t t)
{
    const double w = 2.0 * 3.14159265358979323846 / (double)DAY_MS;
    double mean = (double)g->lifetimes_wanted / (double)(SPAN_DAYS * DAY_MS);
    double swing = DIURNAL / w * (cos(w * (double)(g->t0 - PEAK_HOUR_MS + DAY_MS / 4)) -
                                  cos(w * (double)(t - PEAK_HOUR_MS + DAY_MS / 4)));
    return mean * ((double)(t - g->t0) + swing);
}

/* The sockets that opened in (prev, at]. */
static int open_sockets(generator *g, int64_t prev, int64_t at, bool listening)
{
    int64_t n = (int64_t)floor(openings_until(g, at)) - (int64_t)floor(openings_until(g, prev));
    for (int64_t i = 0; i < n; i++) {
        int64_t opened = prev + 1 + (int64_t)below(g, (uint32_t)(at - prev));
        if (open_socket(g, opened, at, listening) != 0)
            return -1;
    }
    return 0;
}

/* What connhist-record's /proc scan would have found: the owner of every
 * socket first seen with an inode. Also counts the lifetimes opened. */
static void attribute(generator *g)
{
    for (size_t i = 0; i < g->queue.count; i++) {
        ch_event *ev = &g->queue.items[i];
        if (ev->type != CH_EV_OPEN)
            continue;
        g->lifetimes++;
        ch_opened *o = ch_events_opened(&g->queue, ev);
        uint64_t serial = o->sock.ident - COOKIE_BASE;
        if (ev->seen_by != CH_SEEN_BY_SAMPLES || o->sock.inode == 0 || o->owner.proc != NULL || serial >= g->serials)
            continue;
        int k = g->owner_of[serial];
        if (k >= 0)
            o->owner = (ch_owner){.proc = &g->procs[k], .holders = 1, .source = CH_OWNER_SOCKET};
    }
}

/* One sample at time at: the tracker diffs it, the store writes it. */
static int sample(generator *g, int64_t at)
{
    ch_sample_clear(&g->snap);
    for (size_t i = 0; i < g->nlive; i++) {
        ch_sock *row = ch_sample_add(&g->snap);
        if (row == NULL)
            return say(-1, "out of memory");
        *row = g->live[i];
    }
    if (ch_tracker_apply(g->tracker, &g->snap, at, g->last_sample, NULL, &g->queue) != 0)
        return say(-1, "out of memory");
    attribute(g);
    g->last_sample = at;
    if (ch_store_flush(g->store, &g->queue, at, g->err, sizeof g->err) != SQLITE_OK)
        return say(-1, "cannot write a sample: %s", g->err);
    return 0;
}

static int begin(generator *g, const char *path, uint64_t seed)
{
    if (ch_db_open_write(path, &g->db, NULL, g->err) != 0)
        return say(-1, "%s", g->err);
    /* Every row is the store's; how it reaches the file is not: a benchmark
     * file made again when lost needs neither fsyncs nor a journal (this
     * halves the time; the pages are the same). The file is left in WAL
     * mode at the end, as the recorder leaves it. */
    sqlite3_exec(g->db, GENERATE_PRAGMAS, NULL, NULL, NULL);
    g->store = ch_store_open(g->db, g->err, sizeof g->err);
    g->tracker = ch_tracker_new(1);
    if (g->store == NULL || g->tracker == NULL)
        return say(-1, "%s", g->store == NULL ? g->err : "out of memory");
    char boot_id[64];
    snprintf(boot_id, sizeof boot_id, "00000000-0000-4000-8000-%012llx",
             (unsigned long long)(seed & 0xffffffffffffULL));
    ch_run_info run = {
        .mode = "continuous", .interval_ms = TICK_MS, .host = "benchhost",
        .os = "Linux (simulated by connhist-genstore)", .boot_id = boot_id,
        .boot_time = g->t0 - WARMUP_MS - 3 * DAY_MS, .sampler = "netlink", .ident_is_cookie = 1,
        .version = CONNHIST_VERSION, .pid = 4242, .uid = 0, .started_at = g->t0 - 200,
    };
    if (ch_store_begin_run(g->store, &run, g->err, sizeof g->err) != 0)
        return say(-1, "%s", g->err);
    ch_store_event_overruns(g->store, 0);
    return 0;
}

/* The remote of rank RANKED_REMOTE by lifetimes (1 = the most frequent). */
static uint32_t ranked_remote(const generator *g)
{
    uint32_t top[RANKED_REMOTE]; /* the most frequent so far, most frequent first */
    int n = 0;
    for (uint32_t r = 0; r < REMOTES4 + REMOTES6; r++) {
        int i;
        if (n < RANKED_REMOTE)
            i = n++;
        else if (g->remote_count[r] <= g->remote_count[top[RANKED_REMOTE - 1]])
            continue;
        else
            i = RANKED_REMOTE - 1;
        for (; i > 0 && g->remote_count[top[i - 1]] < g->remote_count[r]; i--)
            top[i] = top[i - 1];
        top[i] = r;
    }
    return top[RANKED_REMOTE - 1];
}

static void progress(const generator *g, int64_t at, int64_t started)
{
    double s = (double)(ch_mono_ms() - started) / 1000.0;
    fprintf(stderr, "connhist-genstore: day %2lld of %d: %lld lifetimes, %lld open, %.0f s, %.0f lifetimes/s\n",
            (long long)((at - g->t0) / DAY_MS), SPAN_DAYS, (long long)g->lifetimes,
            (long long)ch_tracker_count(g->tracker), s, s > 0 ? (double)g->lifetimes / s : 0.0);
}

static int simulate(generator *g)
{
    int64_t started = ch_mono_ms();
    for (int64_t prev = g->t0 - WARMUP_MS, at = prev + TICK_MS; at <= g->t_end; prev = at, at += TICK_MS) {
        bool recording = at >= g->t0;
        bool listening = at > g->t0; /* the recorder starts just before its first sample */
        if (age_sockets(g, at, listening) != 0 || open_sockets(g, prev, at, listening) != 0)
            return -1;
        if (recording && sample(g, at) != 0)
            return -1;
        if (recording && (at - g->t0) % DAY_MS == 0 && at > g->t0)
            progress(g, at, started);
    }
    if (ch_store_end_run(g->store, g->t_end, "signal", g->err, sizeof g->err) != 0)
        return say(-1, "%s", g->err);
    char addr[CH_ADDR_TEXT];
    ch_addr a;
    remote_addr(&a, ranked_remote(g));
    ch_addr_format(&a, addr);
    printf("t0 %lld t_end %lld lifetimes %lld seconds %.1f remote %s\n", (long long)g->t0, (long long)g->t_end,
           (long long)g->lifetimes, (double)(ch_mono_ms() - started) / 1000.0, addr);
    return 0;
}

/* Parses the options; 0, 1 for --help, or 2 after a one-line message. */
static int parse_options(int argc, char **argv, const char **out, int64_t *lifetimes, uint64_t *seed)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0)
            return 1;
        if (strcmp(opt, "--out") != 0 && strcmp(opt, "--lifetimes") != 0 && strcmp(opt, "--seed") != 0)
            return say(2, "unknown option '%s' (see --help)", opt);
        if (i + 1 == argc)
            return say(2, "%s needs a value", opt);
        const char *v = argv[++i];
        int64_t n;
        if (strcmp(opt, "--out") == 0) {
            if (*v == '\0')
                return say(2, "--out '': give the path of the database to create");
            if (ch_path_kind(v) != CH_PATH_MISSING)
                return say(2, "--out '%s': that path exists; remove it or pick another", v);
            *out = v;
        } else if (strcmp(opt, "--lifetimes") == 0) {
            if (ch_parse_int(v, 1, MAX_LIFETIMES, &n) != 0)
                return say(2, "--lifetimes '%s': not a whole number from 1 to %lld", v, (long long)MAX_LIFETIMES);
            *lifetimes = n;
        } else {
            if (ch_parse_int(v, 0, INT64_MAX, &n) != 0)
                return say(2, "--seed '%s': not a whole number from 0 to %lld", v, (long long)INT64_MAX);
            *seed = (uint64_t)n;
        }
    }
    if (*out == NULL)
        return say(2, "--out PATH is required (see --help)");
    return 0;
}

static void cleanup(generator *g)
{
    ch_store_close(g->store);
    if (g->db != NULL) {
        sqlite3_exec(g->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
        sqlite3_close(g->db);
    }
    ch_tracker_free(g->tracker);
    ch_events_free(&g->queue);
    ch_sample_free(&g->snap);
    free(g->live);
    free(g->sims);
    free(g->owner_of);
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    int64_t lifetimes = 10000000;
    uint64_t seed = 1;
    int rc = parse_options(argc, argv, &out, &lifetimes, &seed);
    if (rc != 0)
        return rc == 1 ? usage(stdout, 0) : rc;
    generator *g = calloc(1, sizeof *g);
    if (g == NULL)
        return say(1, "out of memory");
    g->rng = seed;
    g->lifetimes_wanted = lifetimes;
    g->t_end = ch_now_ms() / TICK_MS * TICK_MS;
    g->t0 = g->t_end - SPAN_DAYS * DAY_MS;
    g->last_sample = -1;
    make_processes(g);
    rc = begin(g, out, seed) == 0 && simulate(g) == 0 ? 0 : 1;
    cleanup(g);
    free(g);
    return rc;
}

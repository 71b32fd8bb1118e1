/*
 * The command line of connhist-query verify and snapshot (custody.h):
 *
 *   connhist-query [--db PATH] [--pretty] verify [--anchor SEQ:HASH]... [--anchors FILE]... [--key FILE]
 *   connhist-query [--db PATH] [--pretty] snapshot OUT [--manifest PATH]
 *
 * Exit codes: verify 0 intact, 1 not (or unreadable), 2 bad input;
 * snapshot 0 written, 1 failed, 2 bad input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain_codec.h"
#include "custody.h"
#include "db.h"
#include "query.h"
#include "utf8.h"

/* The options that take a value, wherever they stand. */
static const char *const valued[] = {"--db", "--anchor", "--anchors", "--key", "--manifest"};

static bool takes_value(const char *arg)
{
    for (size_t i = 0; i < sizeof valued / sizeof valued[0]; i++)
        if (strcmp(arg, valued[i]) == 0)
            return true;
    return false;
}

const char *custody_command(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return i + 1 < argc && (strcmp(argv[i + 1], "verify") == 0 || strcmp(argv[i + 1], "snapshot") == 0)
                       ? argv[i + 1]
                       : NULL;
        if (strncmp(argv[i], "--", 2) == 0) {
            i += takes_value(argv[i]) ? 1 : 0;
            continue;
        }
        return strcmp(argv[i], "verify") == 0 || strcmp(argv[i], "snapshot") == 0 ? argv[i] : NULL;
    }
    return NULL;
}

/* "SEQ:HASH": a sequence number from 1 and 64 hex digits. 0 or -1. */
static int parse_anchor(const char *s, chq_anchor *a)
{
    char *end;
    long long seq = strtoll(s, &end, 10);
    if (end == s || *s < '0' || *s > '9' || *end != ':' || seq < 1 || strlen(end + 1) != 2 * CH_DIGEST_LEN)
        return -1;
    a->seq = seq;
    return ch_chain_unhex(end + 1, a->hash, CH_DIGEST_LEN);
}

static int add_anchor(custody_opts *o, const chq_anchor *a)
{
    if (o->nanchors == CHQ_MAX_ANCHORS) {
        chq_error("more than %d anchors: give the newest ones", CHQ_MAX_ANCHORS);
        return -1;
    }
    o->anchors[o->nanchors++] = *a;
    return 0;
}

/* One line of an anchor file: "SEQ:HASH", or a recorder's log line with
 * "seq=N hash=HEX" (as syslog, journalctl or the anchor file has it).
 * Other lines are not anchors: 0 with *found false. -1 when malformed. */
static int anchor_line(const char *line, chq_anchor *a, bool *found)
{
    *found = false;
    while (*line == ' ' || *line == '\t')
        line++;
    const char *seq = strstr(line, "seq="), *hash = strstr(line, "hash=");
    char buf[128];
    if (seq != NULL && hash != NULL && strstr(line, "connhist chain head") != NULL) {
        int n = snprintf(buf, sizeof buf, "%.*s:%.*s", (int)strcspn(seq + 4, " \r\n"), seq + 4,
                         (int)strcspn(hash + 5, " \r\n"), hash + 5);
        if (n <= 0 || (size_t)n >= sizeof buf)
            return -1;
    } else if (*line >= '0' && *line <= '9') {
        snprintf(buf, sizeof buf, "%.*s", (int)strcspn(line, " \t\r\n"), line);
    } else {
        return 0;
    }
    *found = true;
    return parse_anchor(buf, a);
}

static int read_anchor_file(custody_opts *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        chq_error("--anchors: cannot read %s (expected a file of SEQ:HASH lines or the recorder's log lines)", path);
        return -1;
    }
    char line[4096];
    int lineno = 0, taken = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        chq_anchor a;
        bool found;
        if (anchor_line(line, &a, &found) != 0) {
            chq_error("--anchors: %s line %d: '%.*s' is not an anchor (expected SEQ:HASH, HASH 64 hex digits)", path,
                      lineno, (int)strcspn(line, "\r\n"), line);
            rc = -1;
        } else if (found) {
            rc = add_anchor(o, &a);
            taken++;
        }
    }
    fclose(f);
    if (rc == 0 && taken == 0) {
        chq_error("--anchors: %s has no anchor (expected SEQ:HASH lines or the recorder's 'connhist chain head' lines)",
                  path);
        rc = -1;
    }
    return rc;
}

static void usage(FILE *to)
{
    fputs("usage: connhist-query [--db PATH] [--pretty] verify [--anchor SEQ:HASH]... [--anchors FILE]... [--key FILE]\n"
          "       connhist-query [--db PATH] [--pretty] snapshot OUT [--manifest PATH]\n"
          "verify recomputes the database's tamper-evident chain: exit 0 intact, 1 not, 2 bad input.\n"
          "snapshot copies it consistently (also while the recorder writes) and writes OUT.manifest.json.\n",
          to);
}

/* Takes one option and its value; 0, or -1 after a message. */
static int take_option(custody_opts *o, const char *opt, const char *val)
{
    bool verify = strcmp(o->command, "verify") == 0;
    if (strcmp(opt, "--db") == 0) {
        o->db_path = val;
    } else if (strcmp(opt, "--anchor") == 0 && verify) {
        chq_anchor a;
        if (parse_anchor(val, &a) != 0) {
            chq_error("--anchor: '%s' is not an anchor (expected SEQ:HASH, SEQ from 1, HASH 64 hex digits)", val);
            return -1;
        }
        return add_anchor(o, &a);
    } else if (strcmp(opt, "--anchors") == 0 && verify) {
        return read_anchor_file(o, val);
    } else if (strcmp(opt, "--key") == 0 && verify) {
        o->key_path = val;
    } else if (strcmp(opt, "--manifest") == 0 && !verify) {
        o->manifest = val;
    } else {
        chq_error("%s: not an option of '%s' (see connhist-query %s --help)", opt, o->command, o->command);
        return -1;
    }
    if (*val == '\0') {
        chq_error("%s: '' is not a path (expected a file)", opt);
        return -1;
    }
    return 0;
}

/* 0 to run, -1 when done (--help), 2 after a message. */
static int parse(int argc, char **argv, custody_opts *o)
{
    bool positional_only = false, seen_command = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!positional_only && strcmp(arg, "--") == 0) {
            positional_only = true;
        } else if (!positional_only && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            usage(stdout);
            return -1;
        } else if (!positional_only && strcmp(arg, "--pretty") == 0) {
            o->pretty = true;
        } else if (!positional_only && strncmp(arg, "--", 2) == 0) {
            const char *eq = strchr(arg, '=');
            char name[32];
            snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
            if (!takes_value(name)) {
                chq_error("unknown option '%s' (see connhist-query %s --help)", name, o->command);
                return 2;
            }
            if (eq == NULL && i + 1 >= argc) {
                chq_error("%s: missing value (see connhist-query %s --help)", name, o->command);
                return 2;
            }
            if (take_option(o, name, eq ? eq + 1 : argv[++i]) != 0)
                return 2;
        } else if (!seen_command) {
            seen_command = true; /* custody_command found it */
        } else if (strcmp(o->command, "snapshot") == 0 && o->out == NULL && *arg != '\0') {
            o->out = arg;
        } else {
            chq_error("unexpected argument '%s' (see connhist-query %s --help)", arg, o->command);
            return 2;
        }
    }
    if (strcmp(o->command, "snapshot") == 0 && o->out == NULL) {
        chq_error("snapshot: missing OUT, the file to copy the database to");
        return 2;
    }
    return 0;
}

/* Reads a verifier's copy of the chain's key. Its length, or -1. */
static int read_key(const char *path, unsigned char *key)
{
    FILE *f = fopen(path, "rb");
    size_t n = f != NULL ? fread(key, 1, CH_DIGEST_KEY_MAX + 1, f) : 0;
    if (f != NULL)
        fclose(f);
    if (f == NULL || n < 16 || n > CH_DIGEST_KEY_MAX) {
        chq_error("--key: %s: %s (expected a file of 16 to %d bytes)", path, f == NULL ? "cannot be read" : "wrong size",
                  CH_DIGEST_KEY_MAX);
        return -1;
    }
    return (int)n;
}

/* Names and messages from a damaged file may be any bytes: every key and
 * string becomes valid UTF-8 before it is printed. */
static void repair_tree(cJSON *v)
{
    for (cJSON *item = v; item != NULL; item = item->next) {
        char *fixed;
        if (item->string != NULL && !(item->type & cJSON_StringIsConst) &&
            (fixed = utf8_repair(item->string)) != NULL) {
            cJSON_free(item->string);
            item->string = fixed;
        }
        if (cJSON_IsString(item) && (fixed = utf8_repair(item->valuestring)) != NULL) {
            cJSON_SetValuestring(item, fixed);
            free(fixed);
        }
        repair_tree(item->child);
    }
}

int custody_print(cJSON *v, bool pretty)
{
    repair_tree(v);
    char *text = pretty ? cJSON_Print(v) : cJSON_PrintUnformatted(v);
    int rc = text != NULL && puts(text) >= 0 && fflush(stdout) == 0 ? 0 : 1;
    if (rc != 0)
        chq_error("cannot write to standard output");
    free(text);
    return rc;
}

static int run_verify(sqlite3 *db, const char *path, const custody_opts *o)
{
    unsigned char key[CH_DIGEST_KEY_MAX + 1];
    int keylen = 0;
    if (o->key_path != NULL && (keylen = read_key(o->key_path, key)) < 0)
        return 2;
    cJSON *out = NULL;
    int rc = verify_run(db, path, keylen > 0 ? key : NULL, (size_t)keylen, o->anchors, o->nanchors, &out);
    if (out != NULL && custody_print(out, o->pretty) != 0 && rc == 0)
        rc = 1;
    cJSON_Delete(out);
    return rc;
}

int custody_main(int argc, char **argv)
{
    custody_opts o = {.command = custody_command(argc, argv)};
    o.anchors = calloc(CHQ_MAX_ANCHORS, sizeof *o.anchors);
    if (o.anchors == NULL)
        return 1;
    int rc = parse(argc, argv, &o);
    if (rc != 0) {
        free(o.anchors);
        return rc < 0 ? 0 : rc;
    }
    char path[CH_PATH_MAX], err[CH_ERR_MAX];
    if (o.db_path == NULL) {
        if (ch_default_db_path(path, sizeof path, err) != 0) {
            chq_error("%s", err);
            rc = 1;
        }
        o.db_path = path;
    }
    /* One thread: no mutex around each of the millions of column reads. */
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* no global lock around each allocation */
    sqlite3 *db = NULL;
    if (rc == 0 && ch_db_open_read(o.db_path, &db, err) != 0) {
        char *fixed = utf8_repair(err); /* SQLite quotes a damaged schema's bytes as they are */
        chq_error("%s", fixed != NULL ? fixed : err);
        free(fixed);
        rc = 1;
    }
    if (rc == 0)
        rc = strcmp(o.command, "verify") == 0 ? run_verify(db, o.db_path, &o) : snapshot_run(db, &o);
    sqlite3_close(db);
    free(o.anchors);
    return rc;
}

/*
 * One report over several hosts' databases: connhist-query --db A --db B
 * ... REPORT, or --db DIR for every file in a directory. Each database is
 * read on its own connection, one after the other, by the same report code
 * as a single database (so each keeps its own plans), into one document:
 * a header with every database's coverage and what was refused, then one
 * section per database whose rows carry its host.
 */
#ifndef CHQ_MULTIDB_H
#define CHQ_MULTIDB_H

#include "query.h"

/* Runs o's report over o->db_paths (files and directories); the exit code. */
int multidb_main(query_opts *o);

#endif

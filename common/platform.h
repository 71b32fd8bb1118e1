/*
 * The few things the shared code needs from the operating system, behind one
 * neutral interface: clocks, where the database lives by default, creating
 * its private directory, looking at a path, and address text. CMake builds
 * platform_posix.c or platform_windows.c; nothing above this layer includes
 * a system header of either family.
 */
#ifndef CH_PLATFORM_H
#define CH_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Called first by each program's main: replaces argv with UTF-8 text (on
 * Windows, from the UTF-16 command line; argv in the ANSI code page would
 * lose non-ASCII paths) and makes the console print UTF-8. Nothing on POSIX.
 */
void ch_platform_init(int *argc, char ***argv);

/* What lies at a path. CH_PATH_ERROR leaves a reason for ch_platform_error().
 * CH_PATH_OTHER: neither a regular file nor a directory (a FIFO, socket or
 * device), which opening for reading might wait on forever; POSIX only. */
enum ch_path_kind { CH_PATH_MISSING, CH_PATH_FILE, CH_PATH_DIR, CH_PATH_ERROR, CH_PATH_OTHER };

enum ch_path_kind ch_path_kind(const char *path);

/*
 * True when path is a symbolic link owned by somebody other than this user
 * (or the administrator): following it would let that user point the
 * recorder's writes at a file of their choosing. Windows: never (reparse
 * points need privilege to create).
 */
int ch_path_is_foreign_link(const char *path);

/* True when this process may read the file at path. */
int ch_path_readable(const char *path);

/* fopen and remove of a UTF-8 path (Windows: through the UTF-16 calls, so a
 * non-ASCII name works). Fail as those do, with errno set. */
FILE *ch_fopen(const char *path, const char *mode);
int ch_remove(const char *path);

/*
 * Creates the directory dir (not its parents) readable only by its owner
 * (POSIX: mode 0700; Windows: an ACL for SYSTEM and Administrators, plus the
 * creating user when not elevated). An existing directory is left alone.
 * Returns 0 or -1 (reason in ch_platform_error()).
 */
int ch_make_private_dir(const char *dir);

/* The reason for the last failure above, as text ("Permission denied"). */
const char *ch_platform_error(void);

/* True for a path separator of this platform ('/', and '\\' on Windows). */
int ch_is_path_sep(char c);

/* Length of the root prefix of path that is never created ("/", "C:\\", "\\\\server\\share\\"). */
size_t ch_path_root_len(const char *path);

/*
 * The default database path without $CONNHIST_DB (db.c checks that first).
 * Returns 0, or -1 with a one-line message in err (CH_ERR_MAX bytes).
 */
int ch_platform_default_db(char *out, size_t n, char *err);

/* Address text: family 4 or 6, bytes in network order. 0 or -1. */
int ch_platform_ntop(int family, const uint8_t *bytes, char *out, size_t n);
int ch_platform_pton(int family, const char *text, uint8_t *bytes);

/*
 * Which file a path names (device and file number; Windows: volume serial
 * and file index): two paths with the same identity are one file, however
 * they are spelled (links, "./a" and "a"). Returns 0 or -1 (reason in
 * ch_platform_error()).
 */
typedef struct {
    uint64_t volume, file;
} ch_file_id;

int ch_file_identity(const char *path, ch_file_id *out);

/*
 * The names in directory dir (not "." and ".."), in no particular order,
 * as a malloc'd array of *n malloc'd strings; free it with ch_free_names.
 * Returns 0 or -1 (reason in ch_platform_error()).
 */
int ch_list_dir(const char *dir, char ***names, size_t *n);
void ch_free_names(char **names, size_t n);

#endif

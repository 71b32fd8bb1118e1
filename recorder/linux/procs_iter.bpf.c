/*
 * The kernel half of the socket holder look-up: a BPF iterator over every
 * open file of every process (iter/task_file, Linux 5.8+) that writes one
 * record per descriptor, naming the socket's inode when the file is a
 * socket. procs_iter.c reads it in one go instead of a readlink of every
 * /proc/PID/fd/N; procs_linux.c decides what the records mean.
 *
 * Only a thread group's leader is reported: /proc/PID/fd lists the
 * leader's descriptor table, and the iterator already skips threads that
 * share it. A file is a socket when its inode lives in sockfs, exactly
 * the files whose /proc link reads "socket:[INODE]" (an O_PATH descriptor
 * of a Unix socket's path is not one: its inode is the filesystem's).
 *
 * The kernel types are declared by hand with the fields read only, as in
 * owners_kernel.h (CO-RE: libbpf moves each access to where the running
 * kernel keeps the field).
 */
#include <linux/types.h>
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

#include "procs_iter_record.h"

#define CH_SOCKFS_MAGIC 0x534F434B /* SOCKFS_MAGIC, include/uapi/linux/magic.h */

char LICENSE[] SEC("license") = "GPL";

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct seq_file;

struct bpf_iter_meta {
    struct seq_file *seq;
};

struct task_struct {
    int pid;
    int tgid;
    __u64 start_boottime;
};

struct super_block {
    unsigned long s_magic;
};

struct inode {
    struct super_block *i_sb;
    unsigned long i_ino;
};

struct file {
    struct inode *f_inode;
};

struct bpf_iter__task_file {
    struct bpf_iter_meta *meta;
    struct task_struct *task;
    __u32 fd;
    struct file *file;
};

#pragma clang attribute pop

SEC("iter/task_file")
int socket_files(struct bpf_iter__task_file *ctx)
{
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;
    if (task == 0 || file == 0 || task->pid != task->tgid)
        return 0; /* the end of the walk, or a thread with a table of its own */
    struct ch_file_record r = {.start_ns = task->start_boottime, .tgid = task->tgid, .fd = ctx->fd};
    struct inode *inode = file->f_inode;
    if (inode != 0 && inode->i_sb != 0 && inode->i_sb->s_magic == CH_SOCKFS_MAGIC)
        r.inode = inode->i_ino;
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}

/*
 * commands.h - the ucache CLI's subcommands that live in files of their
 * own (ucache.c dispatches).  Each returns the process exit code.
 */
#ifndef UCACHE_TOOLS_COMMANDS_H
#define UCACHE_TOOLS_COMMANDS_H

#include "util/opt.h"

/** Get ready to take command @p cmd's options (argv[2] on) from table
 *  @p opts: -1 to go on, else the exit code (the refusal printed). */
int cmd_opts(uc_optparse_t *op, int argc, char **argv, const char *cmd,
             const uc_opt_t *opts);

/** The next option of command @p cmd (uc_opt_next(); @p o_p may be NULL):
 *  its key, 0 at the end, -1 with the refusal printed. */
int cmd_opt_next(uc_optparse_t *op, const char *cmd, uc_optval_t *v, const uc_opt_t **o_p);

int cmd_warmup(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_pin(int argc, char **argv);
int cmd_evict(int argc, char **argv);
int cmd_drain(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_manifest(int argc, char **argv);
int cmd_mount(int argc, char **argv);

/**
 * How the cache's exported memory is exposed to peers over the UCX
 * transports in @p tls ("rc_mlx5/mlx5_0:1,tcp/eth0", or one name): NULL if
 * read-only over all of them, else why not (UCX 1.13's IB memory domain
 * registers memory with remote write whatever is asked).
 */
const char *dv_memory_writable(const char *tls);

#endif

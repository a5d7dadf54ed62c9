/* The application startup cache (cache.c): a per-user directory of
 * entries, each a checkpoint of one command line at its cache point. */
#ifndef CRYO_CACHE_H
#define CRYO_CACHE_H

#include <stdint.h>

#define CACHE_KEY_LEN 32	/* hex digits of a 128-bit XXH3 */

/* What a key is made of: the command as it will run, where, and with
 * which environment (minus cache_env_ignored()), and the cache point. */
struct cache_cmd {
	const char *path;	/* CMD as execvp would find it: what runs */
	const char *exe;	/* its realpath: checked at lookup, not keyed, so
				 * a symlink moved to a new target replaces the entry */
	char **argv;
	char **envp;
	const char *cwd;
	const char *point;	/* "stop" or "stdin" */
};

/* The cache directory: override, else $XDG_STATE_HOME/cryo/cache, else
 * ~/.local/state/cryo/cache; created 0700. *dir is malloc'ed. */
int cache_dir(const char *override, char **dir);
int cache_key(const struct cache_cmd *c, char key[CACHE_KEY_LEN + 1]);
/* 1: an environment variable left out of the key (documented list) */
int cache_env_ignored(const char *var);

/* flock of DIR/lock: shared while an entry is read, exclusive while
 * entries are installed or removed. Returns the fd or -errno. */
int cache_lock(const char *dir, int exclusive);
void cache_unlock(int fd);

/* Entry paths (malloc'ed): DIR/KEY/{image,swap,meta} */
char *cache_path(const char *dir, const char *key, const char *file);

/* 1: DIR/KEY holds a usable entry; 0: no entry; -ESTALE (message set):
 * the entry exists but a file it depends on changed, or it is damaged. */
int cache_lookup(const char *dir, const char *key, const struct cache_cmd *c);
/* A new entry is built in a private directory and renamed into place */
int cache_new_tmp(const char *dir, char **tmp);
/* A regular file the first run opened read-only before its cache point */
struct cache_read {
	uint64_t dev, ino, size, mtime_ns;
	char *path;
};
/* Record what the image in tmp depends on (the executable, every file
 * mapped, with their identities and build-ids, and the files in reads)
 * and refuse images a restore under a new pid would get wrong;
 * -EOPNOTSUPP with a message: not cacheable. */
int cache_write_meta(const char *tmp, const struct cache_cmd *c, pid_t pid,
		     const struct cache_read *reads, size_t nreads);
int cache_install(const char *dir, const char *key, const char *tmp);
int cache_remove_dir(const char *path);	/* an entry or a tmp directory */
void cache_touch(const char *dir, const char *key);	/* last used: now */

#endif

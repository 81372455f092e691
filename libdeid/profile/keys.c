/* Secret keys: random generation, key files (64 hex digits, mode 0600, created atomically and
 * never overwritten), wiping on free. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "core/core.h"
#include "profile/profile_impl.h"

#define KEY_HEX (2 * DEID_KEY_BYTES)
#define KEY_FILE_MAX 256 /* a key file is 65 bytes; anything much longer is not one */

deid_status deid__sodium_ready(const char *module)
{
    /* sodium_init is thread-safe and cheap after the first call. */
    if (sodium_init() < 0)
        return deid__fail(DEID_ERR_GENERIC, module, "libsodium could not be initialised");
    return DEID_OK;
}

size_t deid_key_bytes(void) { return DEID_KEY_BYTES; }

static deid_status key_new(const void *bytes, deid_key **out)
{
    deid_key *k = deid__malloc(sizeof *k);
    if (!k)
        return DEID_ERR_NOMEM;
    if (bytes)
        memcpy(k->bytes, bytes, DEID_KEY_BYTES);
    else
        randombytes_buf(k->bytes, DEID_KEY_BYTES);
    *out = k;
    return DEID_OK;
}

deid_status deid_key_generate(deid_key **out)
{
    if (!out)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_key_generate: out is NULL");
    deid_status st = deid__sodium_ready("profile");
    return st != DEID_OK ? st : key_new(NULL, out);
}

deid_status deid_key_from_bytes(const void *bytes, size_t size, deid_key **out)
{
    if (!bytes || !out)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_key_from_bytes: NULL argument");
    if (size != DEID_KEY_BYTES)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "a key has %d bytes, not %zu",
                          DEID_KEY_BYTES, size);
    deid_status st = deid__sodium_ready("profile");
    return st != DEID_OK ? st : key_new(bytes, out);
}

void deid_key_free(deid_key *key)
{
    if (!key)
        return;
    sodium_memzero(key, sizeof *key);
    free(key);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 64 hex digits, then only whitespace (the newline). */
static int parse_key_text(const char *text, size_t n, unsigned char bytes[DEID_KEY_BYTES])
{
    if (n < KEY_HEX)
        return -1;
    for (size_t i = 0; i < DEID_KEY_BYTES; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    for (size_t i = KEY_HEX; i < n; i++)
        if (text[i] != '\n' && text[i] != '\r' && text[i] != ' ' && text[i] != '\t')
            return -1;
    return 0;
}

static deid_status read_key_fd(int fd, const char *path, deid_key **out)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return deid__fail(DEID_ERR_IO, "profile", "%s: cannot stat key file: %s", path,
                          strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "%s: key file is not a regular file",
                          path);
    if (sb.st_mode & 077)
        return deid__fail(DEID_ERR_ARGUMENT, "profile",
                          "%s: key file is accessible by group or others (mode %03o): anyone "
                          "who reads it can re-identify; run chmod 600 %s",
                          path, (unsigned)(sb.st_mode & 0777), path);
    char text[KEY_FILE_MAX];
    size_t n = 0;
    while (n < sizeof text) {
        ssize_t got = read(fd, text + n, sizeof text - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            sodium_memzero(text, sizeof text);
            return deid__fail(DEID_ERR_IO, "profile", "%s: cannot read key file: %s", path,
                              strerror(errno));
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    unsigned char bytes[DEID_KEY_BYTES];
    int bad = n == sizeof text || parse_key_text(text, n, bytes) != 0;
    sodium_memzero(text, sizeof text);
    deid_status st = bad ? deid__fail(DEID_ERR_ARGUMENT, "profile",
                                      "%s: not a key file: expected 64 hexadecimal digits and a "
                                      "newline", path)
                         : key_new(bytes, out);
    sodium_memzero(bytes, sizeof bytes);
    return st;
}

static deid_status write_all(int fd, const char *data, size_t n, const char *path)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return deid__fail(DEID_ERR_IO, "profile", "%s: cannot write key file: %s", path,
                              strerror(errno));
        data += w;
        n -= (size_t)w;
    }
    return DEID_OK;
}

/* Write the key text to an open file, fsync and close it (closing even on failure). */
static deid_status write_key_fd(int fd, const deid_key *key, const char *path)
{
    char text[KEY_HEX + 2];
    sodium_bin2hex(text, sizeof text, key->bytes, DEID_KEY_BYTES);
    text[KEY_HEX] = '\n';
    deid_status st = DEID_OK;
    if (fchmod(fd, 0600) != 0) /* whatever the umask */
        st = deid__fail(DEID_ERR_IO, "profile", "%s: cannot chmod key file: %s", path,
                        strerror(errno));
    if (st == DEID_OK)
        st = write_all(fd, text, KEY_HEX + 1, path);
    sodium_memzero(text, sizeof text);
    if (st == DEID_OK && fsync(fd) != 0)
        st = deid__fail(DEID_ERR_IO, "profile", "%s: cannot sync key file: %s", path,
                        strerror(errno));
    if (close(fd) != 0 && st == DEID_OK)
        st = deid__fail(DEID_ERR_IO, "profile", "%s: cannot close key file: %s", path,
                        strerror(errno));
    return st;
}

/* Direct O_EXCL creation, for file systems without hard links: exclusive but not atomic, so a
 * failed write removes the partial file. */
static deid_status save_direct(const deid_key *key, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return deid__fail(DEID_ERR_IO, "profile", "%s: cannot create key file: %s", path,
                          errno == EEXIST ? "file exists (not overwritten)" : strerror(errno));
    deid_status st = write_key_fd(fd, key, path);
    if (st != DEID_OK)
        unlink(path);
    return st;
}

/* Complete file under a temporary name, then link() into place: link never replaces an
 * existing file, so two processes racing to create the key cannot overwrite each other. */
deid_status deid_key_save_file(const deid_key *key, const char *path)
{
    if (!key || !path || !*path)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_key_save_file: NULL argument");
    size_t len = strlen(path);
    char *tmp = deid__malloc(len + 16);
    if (!tmp)
        return DEID_ERR_NOMEM;
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        deid_status st = deid__fail(DEID_ERR_IO, "profile", "%s: cannot create key file: %s",
                                    path, strerror(errno));
        free(tmp);
        return st;
    }
    deid_status st = write_key_fd(fd, key, path);
    if (st == DEID_OK && link(tmp, path) != 0) {
        int err = errno;
        if (err == EEXIST)
            st = deid__fail(DEID_ERR_IO, "profile", "%s: key file exists (not overwritten)",
                            path);
        else if (err == EPERM || err == ENOTSUP || err == ENOSYS || err == EXDEV ||
                 err == EMLINK)
            st = save_direct(key, path);
        else
            st = deid__fail(DEID_ERR_IO, "profile", "%s: cannot create key file: %s", path,
                            strerror(err));
    }
    unlink(tmp);
    free(tmp);
    return st;
}

deid_status deid_key_load_file(const char *path, int create, int *created, deid_key **out)
{
    if (!path || !*path || !out)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_key_load_file: NULL argument");
    deid_status st = deid__sodium_ready("profile");
    if (st != DEID_OK)
        return st;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            st = read_key_fd(fd, path, out);
            close(fd);
            if (st == DEID_OK && created)
                *created = 0;
            return st;
        }
        if (errno != ENOENT || !create)
            return deid__fail(DEID_ERR_IO, "profile", "%s: cannot open key file: %s", path,
                              strerror(errno));
        deid_key *key;
        if ((st = key_new(NULL, &key)) != DEID_OK)
            return st;
        st = deid_key_save_file(key, path);
        if (st == DEID_OK) {
            *out = key;
            if (created)
                *created = 1;
            return DEID_OK;
        }
        deid_key_free(key);
        if (access(path, F_OK) != 0)
            return st;
        /* Another process created it meanwhile: load theirs. */
    }
    return st;
}

/* paths.c: a name that becomes a path stays inside its folder.
 *
 * Every reference a playbook, an app manifest or a client gives (custom
 * functions "repo/name", child playbooks, an app's main file) is checked
 * here before any file is opened: its text first (no NUL, no absolute path,
 * no empty, "." or ".." part, only the characters documented for
 * references), then where it really leads (symlinks resolved) must lie under
 * the folder.  Errors name the reference, never a file's content. */
#include "engine.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Letters, digits, space, '_', '-', '.', and '/' between parts: what SOAR's
 * repository and playbook names use. */
static int ref_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == ' ' || c == '_' || c == '-' || c == '.' || c == '/';
}

int lsr_ref_check(const char *ref, size_t len, char *err, size_t errlen) {
  if (len == 0) return snprintf(err, errlen, "an empty name"), -1;
  if (len > 255) return snprintf(err, errlen, "a name over 255 bytes"), -1;
  if (memchr(ref, '\0', len)) return snprintf(err, errlen, "a name with a NUL byte"), -1;
  if (ref[0] == '/') return snprintf(err, errlen, "an absolute path"), -1;
  for (size_t i = 0; i < len; i++)
    if (!ref_char((unsigned char)ref[i]))
      return snprintf(err, errlen, "the character 0x%02x (names use letters, digits, space, '_', '-', '.' and '/')",
                      (unsigned char)ref[i]), -1;
  for (const char *p = ref, *end = ref + len; p <= end;) {
    const char *slash = memchr(p, '/', (size_t)(end - p));
    size_t n = (size_t)((slash ? slash : end) - p);
    if (n == 0) return snprintf(err, errlen, "an empty part"), -1;
    if (p[0] == '.') return snprintf(err, errlen, "a part that starts with '.'"), -1;
    p += n + 1;
  }
  return 0;
}

int lsr_path_inside(const char *folder, const char *rel, const char *suffix, char *out, size_t outlen,
                    char *err, size_t errlen) {
  char base[PATH_MAX], want[PATH_MAX], real[PATH_MAX];
  if (lsr_ref_check(rel, strlen(rel), err, errlen) != 0) return -1;
  if (!realpath(folder, base)) return snprintf(err, errlen, "no file (no folder %s)", folder), -1;
  if ((size_t)snprintf(want, sizeof want, "%s/%s%s", folder, rel, suffix) >= sizeof want)
    return snprintf(err, errlen, "a name too long"), -1;
  if (!realpath(want, real)) return snprintf(err, errlen, "no file %s", want), -1;
  size_t bl = strlen(base);
  if (strncmp(real, base, bl) != 0 || real[bl] != '/')
    return snprintf(err, errlen, "a file outside %s", folder), -1;
  if (strlen(want) >= outlen) return snprintf(err, errlen, "a name too long"), -1;
  strcpy(out, want); /* the path as named (messages, caches); it was checked */
  return 0;
}

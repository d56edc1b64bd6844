/* replay_main.h: a main() that runs a harness without libFuzzer, over files
 * or folders given as arguments (default: the harness's seed corpus,
 * spec/fuzz/corpus/FUZZ_HARNESS, from the source folder).  Included after a
 * harness by spec/c/test_fuzz_<name>.c, so ctest keeps every harness
 * compiling and its seeds passing in the ordinary build; the same program
 * replays a crash input in a build without sanitizers.
 * Define FUZZ_HARNESS ("name") and FUZZ_HAS_INIT (1 if the harness has
 * LLVMFuzzerInitialize) before including it. */
#include <dirent.h>
#include <sys/stat.h>

static int replay_file(const char *path) {
  char *text, err[512];
  size_t len;
  if (lsr_read_file(path, &text, &len, 1u << 24, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  LLVMFuzzerTestOneInput((const uint8_t *)text, len);
  free(text);
  return 0;
}

static int replay(const char *path, int *count) {
  struct stat st;
  if (stat(path, &st) != 0) { fprintf(stderr, "%s: no such file or folder\n", path); return 1; }
  if (!S_ISDIR(st.st_mode)) { ++*count; return replay_file(path); }
  DIR *d = opendir(path);
  if (!d) return 1;
  int bad = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
    bad |= replay(sub, count);
  }
  closedir(d);
  return bad;
}

int main(int argc, char **argv) {
#if FUZZ_HAS_INIT
  LLVMFuzzerInitialize(&argc, &argv);
#endif
  int bad = 0, count = 0;
  if (argc > 1)
    for (int i = 1; i < argc; i++) bad |= replay(argv[i], &count);
  else
    bad = replay("spec/fuzz/corpus/" FUZZ_HARNESS, &count);
  printf("fuzz_%s: %d inputs replayed%s\n", FUZZ_HARNESS, count, bad ? ", some could not be read" : ", all checks passed");
  return bad || count == 0;
}

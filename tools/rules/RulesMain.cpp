// mvedsua-rules: checks and compiles rewrite-rule files (docs/rules.md).
//
//   mvedsua-rules check [--no-compile] [--cache DIR] FILE
//   mvedsua-rules compile [--cache DIR] FILE     prints the object's path
//   mvedsua-rules emit-c FILE                    prints the generated C
#include "Rules.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace mvedsua::rules;

namespace {

int Usage() {
  fprintf(stderr,
          "usage: mvedsua-rules check [--no-compile] [--cache DIR] FILE\n"
          "       mvedsua-rules compile [--cache DIR] FILE\n"
          "       mvedsua-rules emit-c FILE\n");
  return 2;
}

void Print(const Diagnostics &d) {
  for (const Diagnostic &x : d.list)
    fprintf(stderr, "%s\n", x.Format().c_str());
}

// Installed, rules_abi.h is in P/include beside P/bin; in the build tree the
// compiler's default (the source tree's include/) applies.
std::string InstalledInclude() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return "";
  exe[n] = 0;
  std::string dir(exe);
  dir = dir.substr(0, dir.rfind('/'));
  std::string inc = dir + "/../include";
  struct stat st;
  return stat((inc + "/mvedsua/rules_abi.h").c_str(), &st) == 0 ? inc : "";
}

struct Counts {
  int forward = 0, reverse = 0;
};

Counts Count(const RuleFile &f) {
  Counts c;
  for (const Rule &r : f.rules)
    (r.direction ? c.reverse : c.forward)++;
  return c;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 3)
    return Usage();
  std::string cmd = argv[1], path;
  bool compile = true;
  CompileOptions opts;
  opts.include_dir = InstalledInclude();
  for (int i = 2; i < argc; ++i) {
    if (!strcmp(argv[i], "--no-compile"))
      compile = false;
    else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
      opts.cache_dir = argv[++i];
    else if (argv[i][0] == '-' || !path.empty())
      return Usage();
    else
      path = argv[i];
  }
  if (path.empty() || (cmd != "check" && cmd != "compile" && cmd != "emit-c"))
    return Usage();
  Diagnostics diags;
  RuleFile file;
  bool ok = ParseFile(path, file, diags) && Check(file, diags);
  if (ok && cmd == "emit-c") {
    fputs(GenerateC(file).c_str(), stdout);
    return 0;
  }
  CompileResult res;
  if (ok && (cmd == "compile" || compile)) {
    Diagnostics again; // CompileFile parses and checks again: report once
    ok = CompileFile(path, opts, res, again);
    for (const Diagnostic &d : again.list)
      if (d.message.compare(0, 3, "C: ") == 0 || d.loc.line == 0)
        diags.list.push_back(d);
  }
  Print(diags);
  if (!ok)
    return 1;
  if (cmd == "compile") {
    printf("%s\n", res.so_path.c_str());
    return 0;
  }
  Counts c = Count(file);
  printf("%s: %d rule%s (%d outdated-leader, %d updated-leader), %zu group%s: "
         "ok%s\n",
         path.c_str(), c.forward + c.reverse,
         c.forward + c.reverse == 1 ? "" : "s", c.forward, c.reverse,
         file.groups.size(), file.groups.size() == 1 ? "" : "s",
         !compile ? "" : res.cached ? " (compiled: cached)" : " (compiled)");
  return 0;
}

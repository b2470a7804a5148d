// Rules.h: the rewrite-rule language (docs/rules.md): parsing, checking and
// compiling a rules file into the shared object the follower loads.
//
// Errors never throw: every stage appends Diagnostics (file:line:col) and
// says whether it succeeded.
#ifndef MVEDSUA_RULES_RULES_H
#define MVEDSUA_RULES_RULES_H

#include <string>
#include <vector>

namespace mvedsua {
namespace rules {

struct Loc {
  unsigned line = 0, col = 0;
};

struct Diagnostic {
  enum Severity { kError, kWarning } severity;
  std::string file;
  Loc loc;
  std::string message;
  std::string Format() const; // "file:line:col: error: message"
};

struct Diagnostics {
  std::vector<Diagnostic> list;
  void Error(const std::string &file, Loc at, std::string msg);
  void Warning(const std::string &file, Loc at, std::string msg);
  bool HasErrors() const;
};

// A C fragment of the rule file with where it starts (the column of its
// first character), so the compiled code's diagnostics point into the file.
struct Code {
  std::string text;
  Loc at;
  bool present = false;
};

struct Arg {
  enum Kind { kWild, kVar, kInt, kStr } kind = kWild;
  std::string name;   // kVar
  long long value = 0; // kInt
  std::string bytes;  // kStr, escapes decoded
  Loc at;
};

struct Call {
  std::string name; // syscall, libc alias or group
  Loc at;
  bool has_args = false;
  std::vector<Arg> args;
  Code pred;
  std::string label; // `as label` (left side)
  Loc label_at;
  Code callback;
  std::string result_name; // `-> (name)`
  Loc result_at;
  bool star = false;
  bool is_label_ref = false; // right side: a bare name that is a label
};

struct Rule {
  enum Kind { kRewrite, kNothing, kBegin } kind = kRewrite;
  int direction = 0; // 0 outdated-leader (forward), 1 updated-leader (reverse)
  std::vector<Call> lhs;
  std::vector<Call> rhs; // empty: `=> nothing`
  Loc at;
  std::string text; // as written, on one line
};

struct Group {
  std::string name;
  Loc at;
  std::vector<Call> members;
};

struct RuleFile {
  std::string path;
  std::vector<std::pair<std::string, Loc>> includes; // C headers
  std::vector<Code> decls;                            // %{ ... %}
  std::vector<Group> groups;
  std::vector<Rule> rules;
};

// Reads and parses `path`. Syntax errors go to `diags`; the rules parsed
// before the first error are kept (the parser stops there).
bool ParseFile(const std::string &path, RuleFile &out, Diagnostics &diags);
bool ParseText(const std::string &path, const std::string &text, RuleFile &out,
               Diagnostics &diags);

// Names, arities, argument types, labels, variables ($(x) included), groups.
bool Check(const RuleFile &file, Diagnostics &diags);

// The generated C source that defines `mvr_table` (rules_abi.h). Check must
// have passed.
std::string GenerateC(const RuleFile &file);

struct CompileOptions {
  std::string clang;     // the compiler (default: the one mvedsua was built with)
  std::string cache_dir; // default: $MVEDSUA_RULES_CACHE, else ~/.cache/mvedsua/rules
  std::string include_dir; // where mvedsua/rules_abi.h is
};

struct CompileResult {
  std::string so_path;
  bool cached = false; // the object was there already
};

// Parses, checks and compiles `path` into `cache_dir/<hash>.so`, the hash
// being that of the rules file, the headers it includes, the compiler and
// the table's ABI: a second compile of the same file reuses the object.
bool CompileFile(const std::string &path, const CompileOptions &o,
                 CompileResult &out, Diagnostics &diags);

// The schema's view of a syscall for the checker.
struct SyscallInfo {
  const char *name;
  long nr;
  int arity;          // arguments up to the last one the schema describes
  unsigned char kinds[6]; // mve::ArgKind values
  unsigned char len_arg[6]; // the length/count argument of a buffer kind
};
const SyscallInfo *FindSyscall(const std::string &name);
const SyscallInfo *SyscallByNr(long nr);
// A libc name (open, recv, send) for a syscall the shim records under
// another: sets `target` and the argument positions (-1: none there).
bool FindAlias(const std::string &name, std::string &target, int map[6],
               int &arity);
std::string ClosestSyscall(const std::string &name);

} // namespace rules
} // namespace mvedsua

#endif // MVEDSUA_RULES_RULES_H

// Resolve.h: what the checker and the compiler share about one call of a
// rule: which kernel call it names, where its arguments go, what each is.
#ifndef MVEDSUA_RULES_RESOLVE_H
#define MVEDSUA_RULES_RESOLVE_H

#include "../runtime/mve/Schema.h"
#include "Rules.h"

#include <map>
#include <string>

namespace mvedsua {
namespace rules {

// A pattern's argument as the rules see it.
enum ArgClass {
  kScalar, // a number: compared value (fds, sizes, flags)
  kBytes,  // a buffer: the bytes sent or received
  kLength, // the length argument of a received buffer: the length received
  kOpaque, // nothing a pattern can say (pointers, arrays, iovecs): only _
};

struct Resolved {
  const SyscallInfo *sys = nullptr;
  int map[6];    // pattern argument -> kernel argument
  int arity = 0; // pattern arguments
  ArgClass cls[6];
};

// A syscall or a libc alias; false if neither.
bool Resolve(const std::string &name, Resolved &r);

const char *ClassName(ArgClass c);

// The variables of one rule: name -> class (kBytes or a number) and
// where each was first seen.
struct VarInfo {
  int index;
  bool bytes;
  Loc first;
  int uses;
};
using VarTable = std::map<std::string, VarInfo>;

// `$(name)` and `$len(name)` references in a C fragment, with their
// position in the file.
struct CodeRef {
  std::string name;
  bool len;
  Loc at;
};
std::vector<CodeRef> CodeRefs(const Code &code);

// Expands group references: each rule becomes one rule per combination of
// group members (a rule without groups stays as it is).
std::vector<Rule> ExpandGroups(const RuleFile &file, const Rule &rule);

} // namespace rules
} // namespace mvedsua

#endif // MVEDSUA_RULES_RESOLVE_H

//===- Spec.h - Kitsune's .xf transformation spec language ----------------===//
//
//   spec  ::= (rule | block)*                   a block between rules is
//                                               C code for the whole file
//   rule  ::= paths '->' paths [':' block]      transform / rename
//           | 'INIT' paths ':' block            initialise something new
//           | 'ALLOCATOR' NAME NAME             the new version's allocation
//                                               and free functions
//   paths ::= path (',' path)*                  pairs are formed by position
//   path  ::= ('struct'|'union'|'typedef'|'enum') NAME ['.' FIELD]
//           | [FILE '/'] [FUNC '#'] NAME        variables, statics, locals
//   block ::= '{' C code with balanced braces '}'
//
// Comments (// and /* */) may appear between rules.
//
//===----------------------------------------------------------------------===//
#ifndef MVEDSUA_XFGEN_SPEC_H
#define MVEDSUA_XFGEN_SPEC_H

#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <vector>

namespace mvedsua {

/// Where something is in a spec file, for messages (file:line:col).
struct SpecLoc {
  std::string File;
  unsigned Line = 0, Col = 0;
  std::string str() const {
    return File + ":" + std::to_string(Line) + ":" + std::to_string(Col);
  }
};

struct SpecPath {
  enum Kind { Struct, Union, Typedef, Enum, Var } What = Var;
  std::string Name;  // tag / typedef name, or the variable's spelling
  std::string Field; // "struct X.f": f (empty for the type itself)
  SpecLoc Loc;
  /// As written, for messages ("struct entry.hits", "kvd.c/counter").
  std::string spelling() const;
};

/// One rule after splitting `a, b -> c, d` into pairs (a -> c, b -> d).
struct SpecRule {
  bool Init = false;     // INIT path : { ... }; From is then unused
  SpecPath From, To;
  bool HasCode = false;  // false: a plain rename, default transform
  std::string Code;      // the block's contents, without the braces
  SpecLoc CodeLoc;       // where the block starts, for #line
};

/// `ALLOCATOR alloc_fn free_fn`: new heap objects come from alloc_fn (a
/// `void *(size_t)` of the new version), replaced old ones go to free_fn (a
/// `void (void *)`); without it, calloc and free.
struct SpecAllocator {
  std::string Alloc, Free;
  SpecLoc Loc, AllocLoc, FreeLoc; // the directive, and each name
};

/// A C block between rules (Kitsune's leading `{ ... }`): functions and
/// declarations the rules' blocks use (XF_LIFT's transformer functions).
struct SpecCode {
  std::string Code;
  SpecLoc CodeLoc;
};

struct Spec {
  std::vector<SpecRule> Rules;
  std::vector<SpecCode> TopCode;
  std::optional<SpecAllocator> Allocator;
};

/// Parses a spec; errors are "file:line:col: message".
llvm::Expected<Spec> parseSpec(llvm::StringRef Text, llvm::StringRef File);

} // namespace mvedsua

#endif

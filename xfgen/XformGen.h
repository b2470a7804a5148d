//===- XformGen.h - state transformers from two versions' state models ----===//
//
// Compares the state of an old and a new version (StateModel, built from
// debug info exactly as the plugin builds the registry), guided by a .xf spec,
// and produces
//   - C source implementing include/mvedsua/xform.h for the update old -> new,
//   - the readable summary of every change and how it is handled (--explain),
//   - or refusals, for whatever cannot be transformed safely.
// Planning and code generation are one walk over (old type, new type) pairs,
// so the summary always describes the code that is generated.
//
//===----------------------------------------------------------------------===//
#ifndef MVEDSUA_XFGEN_XFORMGEN_H
#define MVEDSUA_XFGEN_XFORMGEN_H

#include "Spec.h"
#include "StateModel.h"

#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

namespace mvedsua {

struct XformOptions {
  std::string OldName, NewName; // the bitcode, for messages and the summary
  std::string OutputName;       // the C file, for #line directives
  /// The spec is in Kitsune's dialect (--kitsune): $in, $out and $base are
  /// the objects themselves, not pointers to them, and XF_ASSIGN takes
  /// (target, source).
  bool KitsuneSpec = false;
};

class XformGenerator {
public:
  XformGenerator(const StateModel &Old, const StateModel &New, const Spec &S,
                 XformOptions Opts);
  ~XformGenerator();

  /// Plans and generates. False when the spec names something that does not
  /// exist or something must be refused; errors() says what and why.
  bool run();
  const std::vector<std::string> &errors() const;
  /// The generated C file (after a successful run()).
  std::string code() const;
  /// The summary users read before an update.
  void explain(llvm::raw_ostream &OS) const;

  class Impl;

private:
  std::unique_ptr<Impl> P;
};

} // namespace mvedsua

#endif

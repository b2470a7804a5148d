//===- UpdatePoints.h - lowering of mvedsua_update_point() ----------------===//
#ifndef MVEDSUA_PASSES_UPDATEPOINTS_H
#define MVEDSUA_PASSES_UPDATEPOINTS_H

#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/Error.h"

namespace mvedsua {

/// Functions the program opted out with MVEDSUA_NO_INSTRUMENT.
llvm::SmallPtrSet<const llvm::Function *, 8>
optedOutFunctions(const llvm::Module &M);

/// Replaces every `mvedsua_update_point("x")` outside opted-out functions by
///   if (__mvedsua_update_pending) __mvedsua_update_point."x"();
/// where the out-of-line, cold `__mvedsua_update_point."x"` passes the
/// interned name to the runtime. Fails (naming file:line) on a name that is
/// not a string literal. Returns how many points were lowered.
llvm::Expected<unsigned> lowerUpdatePoints(
    llvm::Module &M,
    const llvm::SmallPtrSetImpl<const llvm::Function *> &OptedOut);

} // namespace mvedsua

#endif

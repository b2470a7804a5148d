//===- LLVMCompat.h - the LLVM-version-specific bits of mvedsua -----------===//
//
// Everything that depends on the LLVM release lives here, so moving to a newer
// LLVM means editing this one file. Written against LLVM 19.1.
//
//===----------------------------------------------------------------------===//
#ifndef MVEDSUA_PASSES_LLVMCOMPAT_H
#define MVEDSUA_PASSES_LLVMCOMPAT_H

#include "llvm/Config/llvm-config.h"
#include "llvm/IR/DebugInfo.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/MDBuilder.h"

#if LLVM_VERSION_MAJOR != 19
#error "mvedsua is written against LLVM 19; port passes/LLVMCompat.h first"
#endif

namespace mvedsua::compat {

/// The DILocalVariable that describes an alloca, from any of LLVM 19's
/// spellings: a declare as a DbgVariableRecord ("RemoveDIs", the in-memory
/// default) or as llvm.dbg.declare (older bitcode), or, where clang enables
/// assignment tracking (-O1 and up), the alloca's dbg.assign markers.
inline llvm::DILocalVariable *localVariableOf(llvm::AllocaInst *AI) {
  for (llvm::DbgVariableRecord *DVR : llvm::findDVRDeclares(AI))
    return DVR->getVariable();
  for (llvm::DbgDeclareInst *DDI : llvm::findDbgDeclares(AI))
    return DDI->getVariable();
  for (llvm::DbgVariableRecord *DVR : llvm::at::getDVRAssignmentMarkers(AI))
    return DVR->getVariable();
  for (llvm::DbgAssignIntrinsic *DAI : llvm::at::getAssignmentMarkers(AI))
    return DAI->getVariable();
  return nullptr;
}

/// Branch weights for a branch that is almost never taken.
inline llvm::MDNode *unlikelyBranchWeights(llvm::LLVMContext &Ctx) {
  return llvm::MDBuilder(Ctx).createUnlikelyBranchWeights();
}

} // namespace mvedsua::compat

#endif

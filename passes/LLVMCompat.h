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

/// The DILocalVariable that describes an alloca, from any
/// of LLVM 19's spellings: a declare as a DbgVariableRecord ("RemoveDIs", the
/// in-memory default) or as llvm.dbg.declare (older bitcode); where clang
/// enables assignment tracking (-O1 and up), the alloca's dbg.assign markers;
/// in optimised bitcode (read by xfgen), the value records instcombine lowered
/// a declare into. `Accept` rules out variables that also name the alloca
/// but are not it (the parameter of an inlined helper that takes its address).
template <typename Pred>
llvm::DILocalVariable *localVariableOf(llvm::AllocaInst *AI, Pred Accept) {
  auto Own = [&](llvm::DILocalVariable *V) {
    return V && Accept(V) ? V : nullptr;
  };
  for (llvm::DbgVariableRecord *DVR : llvm::findDVRDeclares(AI))
    if (auto *V = Own(DVR->getVariable()))
      return V;
  for (llvm::DbgDeclareInst *DDI : llvm::findDbgDeclares(AI))
    if (auto *V = Own(DDI->getVariable()))
      return V;
  for (llvm::DbgVariableRecord *DVR : llvm::at::getDVRAssignmentMarkers(AI))
    if (auto *V = Own(DVR->getVariable()))
      return V;
  for (llvm::DbgAssignIntrinsic *DAI : llvm::at::getAssignmentMarkers(AI))
    if (auto *V = Own(DAI->getVariable()))
      return V;
  llvm::SmallVector<llvm::DbgVariableIntrinsic *, 2> Intrinsics;
  llvm::SmallVector<llvm::DbgVariableRecord *, 2> Records;
  llvm::findDbgUsers(Intrinsics, AI, &Records);
  for (llvm::DbgVariableRecord *DVR : Records)
    if (auto *V = Own(DVR->getVariable()))
      return V;
  for (llvm::DbgVariableIntrinsic *DVI : Intrinsics)
    if (auto *V = Own(DVI->getVariable()))
      return V;
  return nullptr;
}

/// Branch weights for a branch that is almost never taken.
inline llvm::MDNode *unlikelyBranchWeights(llvm::LLVMContext &Ctx) {
  return llvm::MDBuilder(Ctx).createUnlikelyBranchWeights();
}

} // namespace mvedsua::compat

#endif

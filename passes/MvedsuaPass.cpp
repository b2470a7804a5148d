//===- MvedsuaPass.cpp - makes a C program updatable ----------------------===//
//
// The plugin's single module pass. It runs at the start of every pipeline
// (clang -O0 through -O3, ThinLTO pre-link) and as `opt -passes=mvedsua`:
//   1. builds the module's state model from debug info (StateModel),
//   2. lowers update points to a flag check (UpdatePoints),
//   3. emits the state registry and lowers migrated locals (RegistryEmitter).
// Everything is collected before anything changes, and a module that already
// carries a registry is left alone, so running the pass twice is harmless.
//
//===----------------------------------------------------------------------===//

#include "RegistryEmitter.h"
#include "StateModel.h"
#include "UpdatePoints.h"

#include "llvm/IR/DiagnosticInfo.h"
#include "llvm/IR/PassManager.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"

using namespace llvm;

namespace {

struct MvedsuaPass : PassInfoMixin<MvedsuaPass> {
  PreservedAnalyses run(Module &M, ModuleAnalysisManager &);
  static bool isRequired() { return true; } // -O0 and optnone included
};

/// One diagnostic per line of a (possibly joined) error.
void report(Module &M, Error Err) {
  handleAllErrors(std::move(Err), [&](const ErrorInfoBase &EI) {
    std::string Text = EI.message();
    SmallVector<StringRef, 4> Lines;
    StringRef(Text).split(Lines, '\n', -1, false);
    for (StringRef Line : Lines)
      M.getContext().emitError(Twine("mvedsua: ") + Line);
  });
}

/// The header's inline wrappers are dead once their calls are lowered.
void dropDeadWrappers(Module &M) {
  for (StringRef Name : {mvedsua::UpdatePointFn, mvedsua::MigrateLocalFn})
    if (Function *F = M.getFunction(Name))
      if (F->use_empty() && F->hasLocalLinkage())
        F->eraseFromParent();
}

PreservedAnalyses MvedsuaPass::run(Module &M, ModuleAnalysisManager &) {
  if (M.getNamedGlobal(mvedsua::ModuleDescriptorName))
    return PreservedAnalyses::all(); // already instrumented

  Expected<mvedsua::StateModel> Model = mvedsua::StateModel::build(M);
  if (!Model) {
    report(M, Model.takeError());
    return PreservedAnalyses::all();
  }
  auto OptedOut = mvedsua::optedOutFunctions(M);
  Expected<unsigned> Points = mvedsua::lowerUpdatePoints(M, OptedOut);
  if (!Points) {
    report(M, Points.takeError());
    return PreservedAnalyses::none();
  }
  mvedsua::emitRegistry(M, *Model);
  dropDeadWrappers(M);
  return PreservedAnalyses::none();
}

} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo llvmGetPassPluginInfo() {
  return {LLVM_PLUGIN_API_VERSION, "MvedsuaPass", "0.1", [](PassBuilder &PB) {
            PB.registerPipelineStartEPCallback(
                [](ModulePassManager &MPM, OptimizationLevel) {
                  MPM.addPass(MvedsuaPass());
                });
            PB.registerPipelineParsingCallback(
                [](StringRef Name, ModulePassManager &MPM,
                   ArrayRef<PassBuilder::PipelineElement>) {
                  if (Name != "mvedsua")
                    return false;
                  MPM.addPass(MvedsuaPass());
                  return true;
                });
          }};
}

//===- mvedsua-xfgen.cpp - compare two versions' state --------------------===//
//
// A thin driver, in the manner of llvm-diff: read the bitcode of each version
// (one llvm-linked file, or several joined with commas), build each one's
// state model exactly as the plugin does, and report what changed.
//
//===----------------------------------------------------------------------===//

#include "StateDiff.h"
#include "StateModel.h"

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/IRReader/IRReader.h"
#include "llvm/Linker/Linker.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"

using namespace llvm;

static cl::opt<std::string> OldPath(cl::Positional, cl::Required,
                                    cl::desc("<old.bc[,more.bc...]>"));
static cl::opt<std::string> NewPath(cl::Positional, cl::Required,
                                    cl::desc("<new.bc[,more.bc...]>"));
static cl::opt<bool> Explain("explain",
                             cl::desc("Print what changed and how each change "
                                      "is handled (the default output)"));
static cl::opt<std::string> Output("o", cl::desc("Output transformer (C)"),
                                   cl::value_desc("file"));

/// Loads one version: a single bitcode file or several linked together.
static std::unique_ptr<Module> loadVersion(StringRef Paths, LLVMContext &Ctx) {
  SmallVector<StringRef, 4> Files;
  Paths.split(Files, ',', -1, false);
  std::unique_ptr<Module> Whole;
  for (StringRef File : Files) {
    SMDiagnostic Err;
    std::unique_ptr<Module> M = parseIRFile(File, Err, Ctx);
    if (!M) {
      Err.print("mvedsua-xfgen", errs());
      return nullptr;
    }
    if (!Whole) {
      Whole = std::move(M);
    } else if (Linker::linkModules(*Whole, std::move(M))) {
      WithColor::error(errs(), "mvedsua-xfgen")
          << File << ": cannot be linked with the other files of " << Paths
          << "\n";
      return nullptr;
    }
  }
  return Whole;
}

static Expected<mvedsua::StateModel> modelOf(Module &M, StringRef Paths) {
  Expected<mvedsua::StateModel> Model = mvedsua::StateModel::build(M);
  if (!Model)
    return createStringError(inconvertibleErrorCode(),
                             Paths + ": " + toString(Model.takeError()));
  return Model;
}

int main(int argc, char **argv) {
  InitLLVM X(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "mvedsua-xfgen: compare the state of two versions of a program\n");
  if (!Output.empty()) {
    WithColor::error(errs(), "mvedsua-xfgen")
        << "-o " << Output
        << ": generating transformer code is not available in this release; "
           "use --explain to see what changed\n";
    return 2;
  }
  LLVMContext OldCtx, NewCtx;
  std::unique_ptr<Module> OldM = loadVersion(OldPath, OldCtx);
  std::unique_ptr<Module> NewM = OldM ? loadVersion(NewPath, NewCtx) : nullptr;
  if (!OldM || !NewM)
    return 1;
  Expected<mvedsua::StateModel> Old = modelOf(*OldM, OldPath);
  if (!Old) {
    WithColor::error(errs(), "mvedsua-xfgen") << toString(Old.takeError()) << "\n";
    return 1;
  }
  Expected<mvedsua::StateModel> New = modelOf(*NewM, NewPath);
  if (!New) {
    WithColor::error(errs(), "mvedsua-xfgen") << toString(New.takeError()) << "\n";
    return 1;
  }
  auto Changes = mvedsua::diffState(*Old, *New);
  mvedsua::explainDiff(Changes, outs());
  return 0;
}

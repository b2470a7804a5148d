//===- mvedsua-xfgen.cpp - state transformers between two versions --------===//
//
//   mvedsua-xfgen OLD.bc NEW.bc [-x SPEC.xf] [-o XFORM.c] [--explain]
//   mvedsua-xfgen --old a.bc b.bc --new c.bc d.bc ...
//
// Reads the bitcode of each version (one llvm-linked file, several joined
// with commas, or several after --old/--new), builds each one's state model
// exactly as the plugin does, and generates the C state transformer for the
// update old -> new (XformGen). Whatever cannot be transformed safely stops
// it with exit status 1 and no output file.
//
//===----------------------------------------------------------------------===//

#include "Spec.h"
#include "StateModel.h"
#include "XformGen.h"

#include "llvm/IR/Function.h"
#include "llvm/IR/GlobalAlias.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/IRReader/IRReader.h"
#include "llvm/Linker/Linker.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace llvm;

// xfgen's own options; --help hides the hundreds LLVM's libraries register.
static cl::OptionCategory XfgenCategory("mvedsua-xfgen options");

static cl::list<std::string> Positional(
    cl::Positional,
    cl::desc("<old.bc[,more.bc...]> <new.bc[,more.bc...]> | --old <old.bc...> "
             "--new <new.bc...>"),
    cl::cat(XfgenCategory));
// --old FILE... / --new FILE... take every following argument up to the next
// option; cl::opt has no such list, so they are taken out of argv first.
static std::vector<std::string> OldFiles, NewFiles;

static std::vector<char *> takeVersionLists(int argc, char **argv) {
  std::vector<char *> Rest;
  std::vector<std::string> *Into = nullptr;
  for (int I = 0; I < argc; ++I) {
    StringRef A = argv[I];
    if (A == "--old" || A == "-old" || A == "--new" || A == "-new") {
      Into = A.ends_with("old") ? &OldFiles : &NewFiles;
      continue;
    }
    if (Into && !A.starts_with("-")) {
      Into->push_back(A.str());
      continue;
    }
    Into = nullptr;
    Rest.push_back(argv[I]);
  }
  return Rest;
}
static cl::opt<bool> Explain("explain",
                             cl::desc("Print what changed and how each change "
                                      "is handled (the default without -o)"),
                             cl::cat(XfgenCategory));
static cl::opt<std::string> Output("o", cl::desc("Write the transformer (C)"),
                                   cl::value_desc("file"),
                                   cl::cat(XfgenCategory));
static cl::opt<bool> KitsuneSpec(
    "kitsune",
    cl::desc("The spec is Kitsune's: in its C blocks $in, $out and $base are "
             "the objects, not pointers to them ($out = $in + 5), and "
             "XF_ASSIGN takes (target, source)"),
    cl::cat(XfgenCategory));
static cl::opt<std::string> SpecPath("x", cl::desc("Transformation spec (.xf)"),
                                     cl::value_desc("file"),
                                     cl::cat(XfgenCategory));

static void fail(const Twine &Msg) {
  WithColor::error(errs(), "mvedsua-xfgen") << Msg << "\n";
}

/// Loads one version: bitcode files linked together.
static std::unique_ptr<Module> loadVersion(ArrayRef<std::string> Files,
                                           StringRef Label, LLVMContext &Ctx) {
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
      fail(File + ": cannot be linked with the other files of " + Label);
      return nullptr;
    }
  }
  return Whole;
}

static std::vector<std::string> splitList(StringRef Paths) {
  SmallVector<StringRef, 4> Parts;
  Paths.split(Parts, ',', -1, false);
  return std::vector<std::string>(Parts.begin(), Parts.end());
}

static std::string joined(ArrayRef<std::string> Files) {
  std::string S;
  for (const std::string &F : Files)
    S += (S.empty() ? "" : ",") + F;
  return S;
}

static bool modelOf(ArrayRef<std::string> Files, LLVMContext &Ctx,
                    std::unique_ptr<Module> &M,
                    std::optional<mvedsua::StateModel> &Model) {
  std::string Label = joined(Files);
  M = loadVersion(Files, Label, Ctx);
  if (!M)
    return false;
  Expected<mvedsua::StateModel> Built = mvedsua::StateModel::buildForBitcode(*M);
  if (!Built) {
    fail(Label + ": " + toString(Built.takeError()));
    return false;
  }
  Model.emplace(std::move(*Built));
  return true;
}

/// ALLOCATOR's functions are called by the transformer, which is compiled
/// into the new version: each must be a function the new version defines,
/// with external linkage and the signature of malloc (resp. free).
static std::vector<std::string> checkAllocator(const mvedsua::Spec &S,
                                               const Module &NewM,
                                               StringRef NewName) {
  std::vector<std::string> Errors;
  if (!S.Allocator)
    return Errors;
  const mvedsua::SpecAllocator &A = *S.Allocator;
  unsigned SizeBits = NewM.getDataLayout().getPointerSizeInBits();
  for (bool IsAlloc : {true, false}) {
    const std::string &Name = IsAlloc ? A.Alloc : A.Free;
    std::string At = (IsAlloc ? A.AllocLoc : A.FreeLoc).str() + ": error: ";
    const char *Proto = IsAlloc ? "void *(size_t)" : "void (void *)";
    std::string Which = IsAlloc ? "allocation" : "free";
    const GlobalValue *GV = NewM.getNamedValue(Name);
    if (const auto *GA = dyn_cast_or_null<GlobalAlias>(GV))
      GV = GA->getAliaseeObject();
    const auto *F = dyn_cast_or_null<Function>(GV);
    if (!GV) {
      Errors.push_back(At + "ALLOCATOR: the new version (" + NewName.str() +
                       ") has no function '" + Name + "'; the " + Which +
                       " function must be one the new program defines");
      continue;
    }
    if (!F) {
      Errors.push_back(At + "ALLOCATOR: '" + Name + "' is not a function in "
                       "the new version (" + NewName.str() + ")");
      continue;
    }
    if (F->isDeclaration()) {
      Errors.push_back(At + "ALLOCATOR: '" + Name + "' is only declared in the "
                       "new version (" + NewName.str() + "), not defined; the " +
                       Which + " function must be one the new program defines "
                       "(without ALLOCATOR, the C library's calloc and free "
                       "are used)");
      continue;
    }
    if (F->hasLocalLinkage()) {
      Errors.push_back(At + "ALLOCATOR: '" + Name + "' is static in the new "
                       "version (" + NewName.str() + "); the transformer, "
                       "another source file, cannot call it: give it external "
                       "linkage");
      continue;
    }
    FunctionType *T = F->getFunctionType();
    bool Ok = T->getNumParams() == 1 && !T->isVarArg();
    if (Ok && IsAlloc)
      Ok = T->getReturnType()->isPointerTy() &&
           T->getParamType(0)->isIntegerTy(SizeBits);
    else if (Ok)
      Ok = T->getReturnType()->isVoidTy() && T->getParamType(0)->isPointerTy();
    if (!Ok) {
      std::string Have;
      raw_string_ostream OS(Have);
      T->print(OS);
      Errors.push_back(At + "ALLOCATOR: '" + Name + "' has type " + OS.str() +
                       " in the new version; the " + Which +
                       " function must be " + Proto);
    }
  }
  return Errors;
}

static bool readSpec(mvedsua::Spec &S) {
  if (SpecPath.empty())
    return true;
  ErrorOr<std::unique_ptr<MemoryBuffer>> Buf = MemoryBuffer::getFile(SpecPath);
  if (!Buf) {
    fail(SpecPath + ": " + Buf.getError().message());
    return false;
  }
  Expected<mvedsua::Spec> Parsed =
      mvedsua::parseSpec((*Buf)->getBuffer(), SpecPath);
  if (!Parsed) {
    errs() << toString(Parsed.takeError()) << "\n";
    return false;
  }
  S = std::move(*Parsed);
  return true;
}

int main(int argc, char **argv) {
  InitLLVM X(argc, argv);
  std::vector<char *> Args = takeVersionLists(argc, argv);
  cl::HideUnrelatedOptions(XfgenCategory);
  cl::ParseCommandLineOptions(
      int(Args.size()), Args.data(),
      "mvedsua-xfgen: the state transformer between two versions of a "
      "program\n\n"
      "  mvedsua-xfgen OLD.bc NEW.bc [-x SPEC.xf] [-o XFORM.c] [--explain]\n"
      "  mvedsua-xfgen --old OLD.bc... --new NEW.bc... [options]\n\n"
      "Each version is its whole program's bitcode: one llvm-linked file,\n"
      "several joined with commas, or several after --old / --new.\n"
      "Exit status: 0 done, 1 refused or a wrong spec (no file written),\n"
      "2 bad usage. See docs/xfgen.md.\n");
  std::vector<std::string> OldList(OldFiles.begin(), OldFiles.end());
  std::vector<std::string> NewList(NewFiles.begin(), NewFiles.end());
  if (OldList.empty() && NewList.empty() && Positional.size() == 2) {
    OldList = splitList(Positional[0]);
    NewList = splitList(Positional[1]);
  } else if (OldList.empty() || NewList.empty() || !Positional.empty()) {
    fail("expected OLD.bc NEW.bc (comma-separated lists allowed) or "
         "--old FILE... --new FILE...");
    return 2;
  }

  mvedsua::Spec S;
  if (!readSpec(S))
    return 1;
  LLVMContext OldCtx, NewCtx;
  std::unique_ptr<Module> OldM, NewM;
  std::optional<mvedsua::StateModel> Old, New;
  if (!modelOf(OldList, OldCtx, OldM, Old) || !modelOf(NewList, NewCtx, NewM, New))
    return 1;

  mvedsua::XformOptions Opts{joined(OldList), joined(NewList),
                             Output.empty() ? "-" : Output.getValue(),
                             KitsuneSpec};
  std::vector<std::string> Errors = checkAllocator(S, *NewM, Opts.NewName);
  mvedsua::XformGenerator Gen(*Old, *New, S, Opts);
  bool Ok = Gen.run() && Errors.empty();
  if (Explain || Output.empty())
    Gen.explain(outs());
  outs().flush();
  Errors.insert(Errors.end(), Gen.errors().begin(), Gen.errors().end());
  for (const std::string &E : Errors)
    errs() << (StringRef(E).contains(": error: ") ? "" : "mvedsua-xfgen: error: ")
           << E << "\n";
  if (!Ok) {
    errs() << "mvedsua-xfgen: no transformer written\n";
    return 1;
  }
  if (Output.empty())
    return 0;
  std::error_code EC;
  ToolOutputFile Out(Output, EC, sys::fs::OF_Text);
  if (EC) {
    fail(Output + ": " + EC.message());
    return 1;
  }
  Out.os() << Gen.code();
  Out.keep();
  return 0;
}

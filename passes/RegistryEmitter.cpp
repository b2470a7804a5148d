//===- RegistryEmitter.cpp - the state registry as constant data ----------===//
//
// The registry is plain constant data laid out exactly as the C structs of
// mvedsua/registry.h. Referencing every global from it is deliberate: the
// pass runs before any optimisation, and a global whose address is in the
// registry keeps its declared layout through -O2 (no folding into constants,
// no scalar replacement, no localisation into main), which is what lets the
// runtime find and overwrite it at an update.
//
//===----------------------------------------------------------------------===//

#include "RegistryEmitter.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

using namespace llvm;

namespace mvedsua {
namespace {

class Emitter {
public:
  Emitter(Module &M, const StateModel &Model)
      : M(M), Model(Model), C(M.getContext()), Ptr(PointerType::get(C, 0)),
        I32(Type::getInt32Ty(C)), I64(Type::getInt64Ty(C)) {
    FieldTy = StructType::create(C, {Ptr, I64, I64, Ptr, I32, I32, Ptr},
                                 "struct.mvedsua_field");
    TypeTy = StructType::create(C, {I32, I32, I64, I64, I64, Ptr, Ptr, Ptr},
                                "struct.mvedsua_type");
    EntryTy = StructType::create(C, {Ptr, Ptr, I64, Ptr, I32, I32, I32, I32, Ptr},
                                 "struct.mvedsua_entry");
    ModuleTy = StructType::create(C, {I32, I32, Ptr, I64, I64, Ptr},
                                  "struct.mvedsua_module");
  }
  void emit();

private:
  Constant *str(StringRef S);
  Constant *type(const TypeDesc *T);
  void defineType(const TypeDesc *T, GlobalVariable *GV);
  Constant *entry(const StateEntry &E);
  void registerConstructor(GlobalVariable *ModuleGV);
  void lowerLocal(const StateEntry &E, Constant *EntryPtr);

  Module &M;
  const StateModel &Model;
  LLVMContext &C;
  PointerType *Ptr;
  IntegerType *I32, *I64;
  StructType *FieldTy, *TypeTy, *EntryTy, *ModuleTy;
  StringMap<Constant *> Strings;
  DenseMap<const TypeDesc *, GlobalVariable *> Types;
  SmallVector<const TypeDesc *, 32> Pending; // declared, not yet defined
};

} // namespace

Constant *Emitter::str(StringRef S) {
  Constant *&G = Strings[S];
  if (!G) {
    Constant *Init = ConstantDataArray::getString(C, S);
    auto *GV = new GlobalVariable(M, Init->getType(), true,
                                  GlobalValue::PrivateLinkage, Init,
                                  "__mvedsua.str");
    GV->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    GV->setAlignment(Align(1));
    G = GV;
  }
  return G;
}

Constant *Emitter::type(const TypeDesc *T) {
  if (!T)
    return ConstantPointerNull::get(Ptr);
  GlobalVariable *&GV = Types[T];
  if (!GV) {
    GV = new GlobalVariable(M, TypeTy, true, GlobalValue::PrivateLinkage,
                            nullptr, "__mvedsua.type");
    Pending.push_back(T); // defined later: types may refer to themselves
  }
  return GV;
}

void Emitter::defineType(const TypeDesc *T, GlobalVariable *GV) {
  Constant *Fields = ConstantPointerNull::get(Ptr);
  if (!T->Fields.empty()) {
    SmallVector<Constant *, 8> Items;
    for (const FieldDesc &F : T->Fields)
      Items.push_back(ConstantStruct::get(
          FieldTy, {str(F.Name), ConstantInt::get(I64, F.OffsetBits),
                    ConstantInt::get(I64, F.SizeBits), type(F.Type),
                    ConstantInt::get(I32, F.Annotations),
                    ConstantInt::get(I32, 0),
                    F.AnnotArg.empty() ? ConstantPointerNull::get(Ptr)
                                       : str(F.AnnotArg)}));
    auto *ArrTy = ArrayType::get(FieldTy, Items.size());
    Fields = new GlobalVariable(M, ArrTy, true, GlobalValue::PrivateLinkage,
                                ConstantArray::get(ArrTy, Items),
                                "__mvedsua.fields");
  }
  GV->setInitializer(ConstantStruct::get(
      TypeTy, {ConstantInt::get(I32, T->Kind), ConstantInt::get(I32, T->Flags),
               ConstantInt::get(I64, T->Size), ConstantInt::get(I64, T->Count),
               ConstantInt::get(I64, T->Hash), str(T->Name), type(T->Target),
               Fields}));
}

Constant *Emitter::entry(const StateEntry &E) {
  Constant *Addr = E.Value ? static_cast<Constant *>(E.Value)
                           : ConstantPointerNull::get(Ptr);
  return ConstantStruct::get(
      EntryTy,
      {str(E.Key), Addr, ConstantInt::get(I64, E.Size), type(E.Type),
       ConstantInt::get(I32, E.Kind), ConstantInt::get(I32, E.Flags),
       ConstantInt::get(I32, E.Annotations), ConstantInt::get(I32, E.Line),
       E.AnnotArg.empty() ? ConstantPointerNull::get(Ptr) : str(E.AnnotArg)});
}

void Emitter::registerConstructor(GlobalVariable *ModuleGV) {
  FunctionCallee Rt = M.getOrInsertFunction("__mvedsua_rt_register_module",
                                            Type::getVoidTy(C), Ptr);
  Function *Ctor = Function::Create(FunctionType::get(Type::getVoidTy(C), false),
                                    GlobalValue::InternalLinkage,
                                    "__mvedsua.register", M);
  IRBuilder<> B(BasicBlock::Create(C, "entry", Ctor));
  B.CreateCall(Rt, {ModuleGV});
  B.CreateRetVoid();
  // Before the program's own constructors, which may reach update points.
  appendToGlobalCtors(M, Ctor, /*Priority=*/0);
}

void Emitter::lowerLocal(const StateEntry &E, Constant *EntryPtr) {
  Function *F = E.LocalMarker->getFunction();
  FunctionCallee Enter = M.getOrInsertFunction(
      "__mvedsua_rt_local_enter", Type::getVoidTy(C), Ptr, Ptr);
  FunctionCallee Leave = M.getOrInsertFunction("__mvedsua_rt_local_leave",
                                               Type::getVoidTy(C), Ptr);
  Value *Args[] = {EntryPtr, E.LocalAlloca};
  CallInst *In =
      CallInst::Create(Enter, Args, "", E.LocalMarker->getIterator());
  In->setDebugLoc(E.LocalMarker->getDebugLoc());
  E.LocalMarker->eraseFromParent();
  // The frame dies at every return: the runtime must not read it afterwards.
  for (BasicBlock &BB : *F)
    if (auto *Ret = dyn_cast<ReturnInst>(BB.getTerminator()))
      CallInst::Create(Leave, {EntryPtr}, "", Ret->getIterator())
          ->setDebugLoc(Ret->getDebugLoc());
}

void Emitter::emit() {
  SmallVector<Constant *, 64> Items;
  for (const StateEntry &E : Model.Entries)
    Items.push_back(entry(E));
  while (!Pending.empty()) {
    const TypeDesc *T = Pending.pop_back_val();
    defineType(T, Types[T]);
  }
  auto *ArrTy = ArrayType::get(EntryTy, Items.size());
  auto *Entries = new GlobalVariable(M, ArrTy, true,
                                     GlobalValue::PrivateLinkage,
                                     ConstantArray::get(ArrTy, Items),
                                     "__mvedsua.entries");
  auto *ModuleGV = new GlobalVariable(
      M, ModuleTy, true, GlobalValue::PrivateLinkage,
      ConstantStruct::get(
          ModuleTy, {ConstantInt::get(I32, MVEDSUA_REGISTRY_MAGIC),
                     ConstantInt::get(I32, MVEDSUA_REGISTRY_ABI),
                     str(M.getSourceFileName()),
                     ConstantInt::get(I64, Model.stateHash()),
                     ConstantInt::get(I64, Items.size()), Entries}),
      ModuleDescriptorName);
  registerConstructor(ModuleGV);

  for (size_t I = 0; I < Model.Entries.size(); ++I)
    if (Model.Entries[I].Kind == MVEDSUA_ENTRY_LOCAL &&
        Model.Entries[I].LocalMarker)
      lowerLocal(Model.Entries[I],
                 ConstantExpr::getInBoundsGetElementPtr(
                     ArrTy, Entries,
                     ArrayRef<Constant *>{ConstantInt::get(I64, 0),
                                          ConstantInt::get(I64, I)}));
}

void emitRegistry(Module &M, const StateModel &Model) {
  Emitter(M, Model).emit();
}

} // namespace mvedsua

//===- UpdatePoints.cpp - lowering of mvedsua_update_point() --------------===//
//
// An update point is on the hot path of every server loop, so it must cost a
// load and a never-taken branch. The flag lives in libmvedsua (one GOT load
// plus one flag load in -fPIC code); the call with its argument set-up is
// moved out of line into a cold function per point name, so the hot block
// holds no call at all.
//
//===----------------------------------------------------------------------===//

#include "UpdatePoints.h"
#include "LLVMCompat.h"
#include "StateModel.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Analysis/ValueTracking.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/Transforms/Utils/BasicBlockUtils.h"

using namespace llvm;

namespace mvedsua {

SmallPtrSet<const Function *, 8> optedOutFunctions(const Module &M) {
  SmallPtrSet<const Function *, 8> Out;
  const GlobalVariable *GA = M.getNamedGlobal("llvm.global.annotations");
  auto *Arr = GA ? dyn_cast<ConstantArray>(GA->getInitializer()) : nullptr;
  if (!Arr)
    return Out;
  for (const Use &Op : Arr->operands()) {
    auto *Item = dyn_cast<ConstantStruct>(Op.get());
    if (!Item || Item->getNumOperands() < 2)
      continue;
    auto *F = dyn_cast<Function>(Item->getOperand(0)->stripPointerCasts());
    StringRef Text;
    if (F && getConstantStringInfo(Item->getOperand(1), Text) &&
        Text == NoInstrumentAnnotation)
      Out.insert(F);
  }
  return Out;
}

namespace {

class Lowering {
public:
  explicit Lowering(Module &M) : M(M), C(M.getContext()) {}
  Error lower(CallInst *CI);

private:
  GlobalVariable *flag();
  Function *slowPath(StringRef Name);

  Module &M;
  LLVMContext &C;
  GlobalVariable *Flag = nullptr;
  StringMap<Function *> SlowPaths;
};

} // namespace

GlobalVariable *Lowering::flag() {
  if (Flag)
    return Flag;
  Flag = M.getNamedGlobal("__mvedsua_update_pending");
  if (!Flag)
    Flag = new GlobalVariable(M, Type::getInt32Ty(C), /*isConstant=*/false,
                              GlobalValue::ExternalLinkage, nullptr,
                              "__mvedsua_update_pending");
  return Flag;
}

Function *Lowering::slowPath(StringRef Name) {
  Function *&F = SlowPaths[Name];
  if (F)
    return F;
  // The interned name: one constant per distinct point per module.
  Constant *Text = ConstantDataArray::getString(C, Name);
  auto *Str = new GlobalVariable(M, Text->getType(), true,
                                 GlobalValue::PrivateLinkage, Text,
                                 "__mvedsua.point." + Name);
  Str->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
  Str->setAlignment(Align(1));

  FunctionCallee Rt = M.getOrInsertFunction(
      "__mvedsua_rt_update_point_slow", Type::getVoidTy(C), PointerType::get(C, 0));
  F = Function::Create(FunctionType::get(Type::getVoidTy(C), false),
                       GlobalValue::InternalLinkage,
                       "__mvedsua_update_point." + Name, M);
  F->addFnAttr(Attribute::NoInline);
  F->addFnAttr(Attribute::Cold);
  F->addFnAttr(Attribute::OptimizeForSize);
  IRBuilder<> B(BasicBlock::Create(C, "entry", F));
  B.CreateCall(Rt, {Str});
  B.CreateRetVoid();
  return F;
}

Error Lowering::lower(CallInst *CI) {
  StringRef Name;
  if (!getConstantStringInfo(CI->getArgOperand(0), Name)) {
    std::string Where = CI->getFunction()->getName().str();
    if (const DILocation *L = CI->getDebugLoc())
      Where = (L->getFilename() + ":" + Twine(L->getLine()) + ":" +
               Twine(L->getColumn()) + ": in '" + Where + "'")
                  .str();
    return createStringError(inconvertibleErrorCode(),
                             Where + ": mvedsua_update_point needs a string "
                                     "literal as its name (names must be "
                                     "known at compile time)");
  }
  IRBuilder<> B(CI);
  LoadInst *Pending = B.CreateLoad(Type::getInt32Ty(C), flag(),
                                   /*isVolatile=*/true, "mvedsua.pending");
  Pending->setAlignment(Align(4));
  Value *Stop = B.CreateICmpNE(Pending, B.getInt32(0), "mvedsua.stop");
  Instruction *Then = SplitBlockAndInsertIfThen(
      Stop, CI, /*Unreachable=*/false, compat::unlikelyBranchWeights(C));
  Then->getParent()->setName("mvedsua.update");
  CallInst *Slow = CallInst::Create(slowPath(Name), {}, "", Then->getIterator());
  Slow->setDebugLoc(CI->getDebugLoc());
  CI->eraseFromParent();
  return Error::success();
}

Expected<unsigned>
lowerUpdatePoints(Module &M,
                  const SmallPtrSetImpl<const Function *> &OptedOut) {
  // Collect first, then change: lowering splits blocks.
  SmallVector<CallInst *, 16> Points;
  for (Function &F : M) {
    if (F.isDeclaration() || isMvedsuaInternal(F.getName()) ||
        OptedOut.count(&F))
      continue;
    for (Instruction &I : instructions(F))
      if (auto *CI = dyn_cast<CallInst>(&I))
        if (Function *Callee = CI->getCalledFunction())
          if (Callee->getName() == UpdatePointFn)
            Points.push_back(CI);
  }
  Lowering L(M);
  Error All = Error::success();
  for (CallInst *CI : Points)
    All = joinErrors(std::move(All), L.lower(CI));
  if (All)
    return All;
  return Points.size();
}

} // namespace mvedsua

//===- StateModel.cpp - a module's updatable state, from debug info -------===//

#include "StateModel.h"
#include "LLVMCompat.h"

#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/BinaryFormat/Dwarf.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DataLayout.h"
#include "llvm/IR/DebugInfo.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/Instructions.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

using namespace llvm;

namespace mvedsua {

bool isMvedsuaInternal(StringRef Name) {
  return Name.starts_with("__mvedsua") || Name == UpdatePointFn ||
         Name.starts_with("mvedsua_") || Name.starts_with("llvm.");
}

uint64_t fnv1a(StringRef Bytes, uint64_t Seed) {
  uint64_t H = Seed;
  for (unsigned char C : Bytes) {
    H ^= C;
    H *= 0x100000001b3ULL;
  }
  return H;
}

static uint64_t fnvU64(uint64_t V, uint64_t Seed) {
  char Buf[8];
  for (int I = 0; I < 8; ++I)
    Buf[I] = char((V >> (8 * I)) & 0xff);
  return fnv1a(StringRef(Buf, 8), Seed);
}

static bool isIntegerLike(const TypeDesc *T) {
  return T && (T->Kind == MVEDSUA_TYPE_INT || T->Kind == MVEDSUA_TYPE_UINT ||
               T->Kind == MVEDSUA_TYPE_BOOL || T->Kind == MVEDSUA_TYPE_ENUM);
}

static bool isDecimal(StringRef S) {
  return !S.empty() && llvm::all_of(S, [](char C) { return isdigit(C); });
}

std::string typeName(const TypeDesc *T) {
  if (!T)
    return "void";
  switch (T->Kind) {
  case MVEDSUA_TYPE_POINTER: {
    std::string To = typeName(T->Target);
    return To + (!To.empty() && To.back() == '*' ? "*" : " *"); // char **
  }
  case MVEDSUA_TYPE_ARRAY: {
    // As C spells it: the element once, then the dimensions outermost first
    // (int grid[3][4] is "int[3][4]", an array of 3 int[4]).
    const TypeDesc *Elem = T;
    while (Elem && Elem->Kind == MVEDSUA_TYPE_ARRAY)
      Elem = Elem->Target;
    std::string S = typeName(Elem);
    for (; T && T->Kind == MVEDSUA_TYPE_ARRAY; T = T->Target)
      S += "[" +
           ((T->Flags & MVEDSUA_TYPE_FLEXIBLE) ? std::string()
                                               : std::to_string(T->Count)) +
           "]";
    return S;
  }
  case MVEDSUA_TYPE_FUNCTION:
    return "function";
  default:
    return T->Name;
  }
}

//===----------------------------------------------------------------------===//
// The builder: debug info in, entries and type descriptors out.
//===----------------------------------------------------------------------===//

class StateModelBuilder {
public:
  StateModelBuilder(Module &M, StateModel &Out, bool Deleted = false)
      : M(M), Out(Out), WithDeleted(Deleted) {}
  Error run();

private:
  // Types.
  const TypeDesc *typeOf(const DIType *T);
  const TypeDesc *typeOfStripped(const DIType *T);
  TypeDesc *newType() { return &Out.TypeStorage.emplace_back(); }
  void buildComposite(TypeDesc *D, const DICompositeType *CT);
  const TypeDesc *buildArray(const DICompositeType *CT, unsigned Dim);
  void buildFields(TypeDesc *D, const DICompositeType *CT);
  void hashAll();
  uint64_t shapeOf(const TypeDesc *T);
  uint64_t hashOf(const TypeDesc *T);

  // Annotations.
  void readAnnotations(Metadata *Raw, uint32_t &Annots, std::string &Arg,
                       const Twine &Where, StringRef File, unsigned Line);
  void checkFieldAnnotations(const TypeDesc *D, StringRef File);
  void readEntryGenerics(Metadata *Raw, StateEntry &E, StringRef Name);
  void typedefGenerics(const DIDerivedType *DT, const TypeDesc *D);
  void checkGenerics();
  void checkInstance(StringRef Args, const TypeDesc *T,
                     const std::vector<std::string> &Scope, const Twine &Where,
                     StringRef File, unsigned Line);
  bool checkTypeArg(StringRef Arg, const std::vector<std::string> &Scope,
                    std::string &Why);
  const TypeDesc *genericNamed(StringRef Name) const;
  void buildGenericPayloads();
  void collectArgNames(StringRef Args, std::set<std::string> &Names);
  void checkEntryAnnotations(const StateEntry &E);

  // Entries.
  void indexCompileUnits();
  void collectGlobals();
  void collectDeletedGlobals();
  void collectFunctions();
  void collectLocals();
  bool hasUserData() const;
  std::string unitName(const DICompileUnit *CU) const;

  void error(StringRef File, unsigned Line, const Twine &Msg) {
    std::string Loc = File.empty() ? std::string(M.getSourceFileName())
                                   : std::string(File);
    if (Line)
      Loc += ":" + std::to_string(Line);
    Errors.push_back(Loc + ": " + Msg.str());
  }

  Module &M;
  StateModel &Out;
  DenseMap<const DIType *, TypeDesc *> TypeMemo;
  DenseMap<const DIGlobalVariable *, const DICompileUnit *> UnitOf;
  DenseMap<const TypeDesc *, uint64_t> ShapeMemo;
  SmallPtrSet<const TypeDesc *, 16> CheckedFields;
  const TypeDesc *Void = nullptr;
  bool WithDeleted = false;
  std::vector<std::string> Errors;
};

static const DIType *stripTransparent(const DIType *T) {
  while (auto *DT = dyn_cast_or_null<DIDerivedType>(T)) {
    switch (DT->getTag()) {
    case dwarf::DW_TAG_typedef:
    case dwarf::DW_TAG_const_type:
    case dwarf::DW_TAG_volatile_type:
    case dwarf::DW_TAG_restrict_type:
    case dwarf::DW_TAG_atomic_type:
      T = DT->getBaseType();
      continue;
    default:
      return T;
    }
  }
  return T;
}

// Kitsune's generic annotations on a field, variable, struct or typedef.
namespace {
struct KitsuneTags {
  std::string T, G, Generic;
};
} // namespace

static KitsuneTags kitsuneTags(Metadata *Raw) {
  KitsuneTags K;
  auto *Tuple = dyn_cast_or_null<MDTuple>(Raw);
  if (!Tuple)
    return K;
  for (const MDOperand &Op : Tuple->operands()) {
    auto *Pair = dyn_cast_or_null<MDTuple>(Op.get());
    if (!Pair || Pair->getNumOperands() != 2)
      continue;
    auto *Kind = dyn_cast<MDString>(Pair->getOperand(0));
    auto *Text = dyn_cast<MDString>(Pair->getOperand(1));
    if (!Kind || !Text || Kind->getString() != "btf_decl_tag")
      continue;
    StringRef S = Text->getString();
    if (S.consume_front("kitsune:t:"))
      K.T = S.trim().str();
    else if (S.consume_front("kitsune:g:"))
      K.G = S.trim().str();
    else if (S.consume_front("kitsune:generic:"))
      K.Generic = S.trim().str();
  }
  return K;
}

const TypeDesc *StateModelBuilder::typeOf(const DIType *Raw) {
  const TypeDesc *D = typeOfStripped(stripTransparent(Raw));
  // Remember the typedef names on the way (only xfgen uses them).
  for (auto *DT = dyn_cast_or_null<DIDerivedType>(Raw); DT;
       DT = dyn_cast_or_null<DIDerivedType>(DT->getBaseType())) {
    if (DT->getTag() == dwarf::DW_TAG_typedef) {
      Out.Typedefs.try_emplace(std::string(DT->getName()), D);
      typedefGenerics(DT, D);
    } else if (stripTransparent(DT) != DT)
      continue; // a qualifier: keep walking
    else
      break;
  }
  return D;
}

const TypeDesc *StateModelBuilder::typeOfStripped(const DIType *T) {
  if (!T)
    return Void;
  if (auto It = TypeMemo.find(T); It != TypeMemo.end())
    return It->second;
  TypeDesc *D = newType();
  TypeMemo[T] = D; // before recursing: types may refer to themselves
  D->Size = T->getSizeInBits() / 8;
  D->Name = std::string(T->getName());
  if (auto *BT = dyn_cast<DIBasicType>(T)) {
    switch (BT->getEncoding()) {
    case dwarf::DW_ATE_signed:
    case dwarf::DW_ATE_signed_char:
      D->Kind = MVEDSUA_TYPE_INT;
      break;
    case dwarf::DW_ATE_unsigned:
    case dwarf::DW_ATE_unsigned_char:
      D->Kind = MVEDSUA_TYPE_UINT;
      break;
    case dwarf::DW_ATE_boolean:
      D->Kind = MVEDSUA_TYPE_BOOL;
      break;
    case dwarf::DW_ATE_float:
      D->Kind = MVEDSUA_TYPE_FLOAT;
      break;
    default: // complex, decimal float...: bytes we do not interpret
      D->Kind = MVEDSUA_TYPE_OPAQUE;
    }
  } else if (auto *DT = dyn_cast<DIDerivedType>(T)) {
    unsigned Tag = DT->getTag();
    if (Tag == dwarf::DW_TAG_pointer_type ||
        Tag == dwarf::DW_TAG_reference_type ||
        Tag == dwarf::DW_TAG_rvalue_reference_type) {
      D->Kind = MVEDSUA_TYPE_POINTER;
      if (!D->Size)
        D->Size = M.getDataLayout().getPointerSize();
      const DIType *Base = stripTransparent(DT->getBaseType());
      // Unstripped, so typeOf() sees the typedef names on the way.
      D->Target = Base ? typeOf(DT->getBaseType()) : nullptr;
      D->Name = typeName(D);
    } else {
      D->Kind = MVEDSUA_TYPE_OPAQUE; // member pointers and the like
    }
  } else if (auto *CT = dyn_cast<DICompositeType>(T)) {
    buildComposite(D, CT);
  } else if (isa<DISubroutineType>(T)) {
    D->Kind = MVEDSUA_TYPE_FUNCTION;
    D->Name = "function";
  } else {
    D->Kind = MVEDSUA_TYPE_OPAQUE;
  }
  return D;
}

void StateModelBuilder::buildComposite(TypeDesc *D, const DICompositeType *CT) {
  StringRef Tag = CT->getName();
  auto Named = [&](StringRef Kw) {
    if (Tag.empty())
      D->Flags |= MVEDSUA_TYPE_ANONYMOUS;
    return (Kw + " " + (Tag.empty() ? StringRef("<anonymous>") : Tag)).str();
  };
  switch (CT->getTag()) {
  case dwarf::DW_TAG_array_type: {
    const TypeDesc *A = buildArray(CT, 0);
    *D = *A; // the outermost dimension stands for the DI type
    return;
  }
  case dwarf::DW_TAG_enumeration_type: {
    D->Kind = MVEDSUA_TYPE_ENUM;
    D->Name = Named("enum");
    const DIType *Base = stripTransparent(CT->getBaseType());
    D->Target = Base ? typeOf(CT->getBaseType()) : nullptr;
    for (DINode *N : CT->getElements())
      if (auto *En = dyn_cast<DIEnumerator>(N))
        D->Enumerators.emplace_back(std::string(En->getName()),
                                    En->getValue().getSExtValue());
    return;
  }
  case dwarf::DW_TAG_union_type:
    D->Kind = MVEDSUA_TYPE_UNION;
    D->Name = Named("union");
    break;
  default: // struct, class
    D->Kind = MVEDSUA_TYPE_STRUCT;
    D->Name = Named("struct");
    break;
  }
  if (CT->isForwardDecl()) {
    D->Kind = MVEDSUA_TYPE_OPAQUE; // declared, never defined here
    return;
  }
  D->DeclFile = std::string(CT->getFilename());
  std::string Params = kitsuneTags(CT->getRawAnnotations()).Generic;
  D->GenericParams = splitGenericArgs(Params);
  buildFields(D, CT);
}

const TypeDesc *StateModelBuilder::buildArray(const DICompositeType *CT,
                                              unsigned Dim) {
  DINodeArray Subs = CT->getElements();
  if (Dim >= Subs.size())
    return typeOf(CT->getBaseType());
  const TypeDesc *Elem = buildArray(CT, Dim + 1);
  TypeDesc *A = newType();
  A->Kind = MVEDSUA_TYPE_ARRAY;
  A->Target = Elem;
  A->Flags |= MVEDSUA_TYPE_FLEXIBLE;
  if (auto *SR = dyn_cast<DISubrange>(Subs[Dim])) {
    if (auto *CI = dyn_cast_if_present<ConstantInt *>(SR->getCount())) {
      if (CI->getSExtValue() >= 0) {
        A->Count = CI->getZExtValue();
        A->Flags &= ~MVEDSUA_TYPE_FLEXIBLE;
      }
    }
  }
  A->Size = Elem ? Elem->Size * A->Count : 0;
  A->Name = typeName(A);
  return A;
}

void StateModelBuilder::buildFields(TypeDesc *D, const DICompositeType *CT) {
  for (DINode *N : CT->getElements()) {
    auto *Mem = dyn_cast<DIDerivedType>(N);
    if (!Mem || Mem->isStaticMember())
      continue;
    if (Mem->getTag() != dwarf::DW_TAG_member &&
        Mem->getTag() != dwarf::DW_TAG_inheritance)
      continue;
    FieldDesc F;
    F.Name = std::string(Mem->getName());
    F.OffsetBits = Mem->getOffsetInBits();
    F.Type = typeOf(Mem->getBaseType());
    F.SizeBits = Mem->isBitField() ? Mem->getSizeInBits()
                                   : (F.Type ? F.Type->Size * 8 : 0);
    readAnnotations(Mem->getRawAnnotations(), F.Annotations, F.AnnotArg,
                    "field '" + F.Name + "' of " + D->Name, CT->getFilename(),
                    Mem->getLine());
    KitsuneTags K = kitsuneTags(Mem->getRawAnnotations());
    F.GenericParam = K.T;
    F.GenericArgs = K.G;
    F.Line = Mem->getLine();
    if (!K.Generic.empty())
      error(CT->getFilename(), Mem->getLine(),
            "E_GENERIC(" + K.Generic + ") on field '" + F.Name + "' of " +
                D->Name + ": it declares a struct's parameters; put it after "
                "the struct's closing brace or on its typedef");
    D->Fields.push_back(std::move(F));
  }
  D->Count = D->Fields.size();
}

//===----------------------------------------------------------------------===//
// Structural hashes. A type's hash covers everything reachable from it through
// fields and pointers, so a global's hash changes when any type it reaches
// changes. It must also be canonical: the same type graph gives the same hash
// whatever else the module holds and wherever a walk starts. So each type has
// a finite *shape* in which named structs, unions and enums are referred to by
// name (cycles can only close through them), and its hash combines its shape
// with the shapes of every named aggregate it reaches, sorted.
//===----------------------------------------------------------------------===//

static bool isNamedAggregate(const TypeDesc *T) {
  return T && !(T->Flags & MVEDSUA_TYPE_ANONYMOUS) &&
         (T->Kind == MVEDSUA_TYPE_STRUCT || T->Kind == MVEDSUA_TYPE_UNION ||
          T->Kind == MVEDSUA_TYPE_ENUM || T->Kind == MVEDSUA_TYPE_OPAQUE);
}

uint64_t StateModelBuilder::shapeOf(const TypeDesc *T) {
  if (!T)
    return fnv1a("void");
  if (auto It = ShapeMemo.find(T); It != ShapeMemo.end())
    return It->second;
  auto Ref = [&](const TypeDesc *Sub) {
    return isNamedAggregate(Sub) ? fnv1a(Sub->Name, fnv1a("ref")) : shapeOf(Sub);
  };
  uint64_t H = fnvU64(T->Kind, fnv1a("T"));
  H = fnvU64(T->Size, H);
  H = fnvU64(T->Count, H);
  H = fnvU64(T->Flags, H);
  if (T->Kind == MVEDSUA_TYPE_STRUCT || T->Kind == MVEDSUA_TYPE_UNION ||
      T->Kind == MVEDSUA_TYPE_ENUM || T->Kind == MVEDSUA_TYPE_OPAQUE)
    H = fnv1a(T->Name, H);
  if (T->Kind == MVEDSUA_TYPE_POINTER || T->Kind == MVEDSUA_TYPE_ARRAY)
    H = fnvU64(Ref(T->Target), H);
  for (const FieldDesc &F : T->Fields) {
    H = fnv1a(F.Name, H);
    H = fnvU64(F.OffsetBits, H);
    H = fnvU64(F.SizeBits, H);
    H = fnvU64(F.Annotations, H);
    H = fnv1a(F.AnnotArg, H);
    H = fnvU64(Ref(F.Type), H);
  }
  for (auto &[Name, Value] : T->Enumerators) {
    H = fnv1a(Name, H);
    H = fnvU64(uint64_t(Value), H);
  }
  ShapeMemo[T] = H;
  return H;
}

uint64_t StateModelBuilder::hashOf(const TypeDesc *T) {
  SmallVector<const TypeDesc *, 32> Work{T};
  SmallPtrSet<const TypeDesc *, 32> Seen;
  std::vector<std::pair<StringRef, uint64_t>> Reached;
  while (!Work.empty()) {
    const TypeDesc *D = Work.pop_back_val();
    if (!D || !Seen.insert(D).second)
      continue;
    if (isNamedAggregate(D))
      Reached.emplace_back(D->Name, shapeOf(D));
    Work.push_back(D->Target);
    for (const FieldDesc &F : D->Fields)
      Work.push_back(F.Type);
  }
  llvm::sort(Reached);
  uint64_t H = shapeOf(T);
  for (auto &[Name, Shape] : Reached)
    H = fnvU64(Shape, H);
  return H;
}

void StateModelBuilder::hashAll() {
  for (TypeDesc &T : Out.TypeStorage)
    T.Hash = hashOf(&T);
}

//===----------------------------------------------------------------------===//
// Annotations: btf_decl_tag("mvedsua:...") in debug info.
//===----------------------------------------------------------------------===//

/// A length argument: a constant or a sibling field, which Kitsune's
/// E_ARRAY(self.n) spells with `self.`.
static std::string lengthArg(StringRef S) {
  S = S.trim();
  if (S.consume_front("self."))
    S = S.ltrim();
  return S.str();
}

void StateModelBuilder::readAnnotations(Metadata *Raw, uint32_t &Annots,
                                        std::string &Arg, const Twine &Where,
                                        StringRef File, unsigned Line) {
  auto *Tuple = dyn_cast_or_null<MDTuple>(Raw);
  if (!Tuple)
    return;
  for (const MDOperand &Op : Tuple->operands()) {
    auto *Pair = dyn_cast_or_null<MDTuple>(Op.get());
    if (!Pair || Pair->getNumOperands() != 2)
      continue;
    auto *Kind = dyn_cast<MDString>(Pair->getOperand(0));
    auto *Text = dyn_cast<MDString>(Pair->getOperand(1));
    if (!Kind || !Text || Kind->getString() != "btf_decl_tag")
      continue;
    StringRef S = Text->getString();
    if (!S.consume_front("mvedsua:"))
      continue; // somebody else's tag
    if (S == "no_migrate")
      Annots |= MVEDSUA_ANNOT_NO_MIGRATE;
    else if (S == "opaque")
      Annots |= MVEDSUA_ANNOT_OPAQUE;
    else if (S.consume_front("ptrarray:")) {
      Annots |= MVEDSUA_ANNOT_PTRARRAY;
      Arg = lengthArg(S);
    } else if (S.consume_front("array:")) {
      Annots |= MVEDSUA_ANNOT_ARRAY;
      Arg = lengthArg(S);
    } else
      error(File, Line,
            "unknown annotation 'mvedsua:" + S + "' on " + Where +
                " (known: MVEDSUA_NO_MIGRATE, MVEDSUA_OPAQUE, "
                "MVEDSUA_PTRARRAY(n), MVEDSUA_ARRAY(n))");
  }
}

//===----------------------------------------------------------------------===//
// Kitsune's generics: btf_decl_tag("kitsune:generic:@t,..."), on a struct or
// its typedef, declares its parameters; ("kitsune:t:@t") on a pointer field
// says its payload has the parameter's type; ("kitsune:g:args") on a field or
// variable of a generic struct type binds the parameters. An argument is
// [opaque], a parameter of the enclosing struct, or a C type that may itself
// be an instance (list<redisClient*>*).
//===----------------------------------------------------------------------===//

std::vector<std::string> splitGenericArgs(StringRef Args) {
  std::vector<std::string> Out;
  if (Args.trim().empty())
    return Out;
  int Depth = 0;
  size_t Start = 0;
  for (size_t I = 0; I <= Args.size(); ++I) {
    char C = I < Args.size() ? Args[I] : ',';
    Depth += (C == '<') - (C == '>');
    if (C == ',' && Depth == 0) {
      Out.push_back(Args.slice(Start, I).trim().str());
      Start = I + 1;
    }
  }
  return Out;
}

void StateModelBuilder::readEntryGenerics(Metadata *Raw, StateEntry &E,
                                          StringRef Name) {
  KitsuneTags K = kitsuneTags(Raw);
  E.GenericArgs = K.G;
  if (!K.T.empty() || !K.Generic.empty())
    error(E.File, E.Line,
          std::string(K.T.empty() ? "E_GENERIC" : "E_T") + " on '" + Name +
              "': it belongs on a struct's field (E_T) or on the struct "
              "(E_GENERIC); a variable takes E_G(type, ...)");
}

void StateModelBuilder::typedefGenerics(const DIDerivedType *DT,
                                        const TypeDesc *D) {
  std::string Params = kitsuneTags(DT->getRawAnnotations()).Generic;
  if (Params.empty())
    return;
  auto It = TypeMemo.find(stripTransparent(DT));
  if (It == TypeMemo.end() || It->second->Kind != MVEDSUA_TYPE_STRUCT) {
    error(DT->getFilename(), DT->getLine(),
          "E_GENERIC(" + Params + ") on typedef '" + DT->getName() +
              "': only a struct can be generic");
    return;
  }
  if (It->second->GenericParams.empty())
    It->second->GenericParams = splitGenericArgs(Params);
}

/// A generic struct by the name an argument spells ("struct list", "list").
const TypeDesc *StateModelBuilder::genericNamed(StringRef Name) const {
  if (auto It = Out.Typedefs.find(Name.str()); It != Out.Typedefs.end())
    return It->second;
  for (const TypeDesc &T : Out.TypeStorage)
    if (T.Kind == MVEDSUA_TYPE_STRUCT && T.Name == Name)
      return &T;
  return nullptr;
}

bool StateModelBuilder::checkTypeArg(StringRef Arg,
                                     const std::vector<std::string> &Scope,
                                     std::string &Why) {
  Arg = Arg.trim();
  if (Arg == "[opaque]")
    return true;
  if (Arg.starts_with("@")) {
    if (llvm::is_contained(Scope, Arg.str()))
      return true;
    Why = "'" + Arg.str() + "' is not a parameter of the enclosing struct";
    return false;
  }
  StringRef Base = Arg.rtrim("* ");
  if (Base.ends_with(">")) {
    size_t Open = Base.find('<');
    if (Open == StringRef::npos) {
      Why = "unbalanced '>' in '" + Arg.str() + "'";
      return false;
    }
    StringRef Name = Base.take_front(Open).trim();
    std::vector<std::string> Inner =
        splitGenericArgs(Base.drop_front(Open + 1).drop_back());
    const TypeDesc *G = genericNamed(Name);
    if (G && G->GenericParams.size() != Inner.size()) {
      Why = "'" + Name.str() + "' takes " +
            std::to_string(G->GenericParams.size()) + " argument(s), '" +
            Arg.str() + "' gives " + std::to_string(Inner.size());
      return false;
    }
    for (const std::string &I : Inner)
      if (!checkTypeArg(I, Scope, Why))
        return false;
    Base = Name;
  }
  bool Ok = !Base.empty() && llvm::all_of(Base, [](char C) {
    return isalnum((unsigned char)C) || C == '_' || C == ' ';
  });
  if (!Ok)
    Why = "'" + Arg.str() + "' is not a type, a parameter (@t) or [opaque]";
  return Ok;
}

void StateModelBuilder::checkInstance(StringRef Args, const TypeDesc *T,
                                      const std::vector<std::string> &Scope,
                                      const Twine &Where, StringRef File,
                                      unsigned Line) {
  std::string Spelled = "E_G(" + Args.str() + ") on " + Where.str();
  while (T && (T->Kind == MVEDSUA_TYPE_POINTER || T->Kind == MVEDSUA_TYPE_ARRAY))
    T = T->Target;
  if (!T || T->Kind != MVEDSUA_TYPE_STRUCT || T->GenericParams.empty()) {
    error(File, Line,
          Spelled + ": its type " + (T ? T->Name : std::string("void")) +
              " is not generic (declare its parameters with E_GENERIC(@t, "
              "...) after the struct's closing brace)");
    return;
  }
  std::vector<std::string> List = splitGenericArgs(Args);
  if (List.size() != T->GenericParams.size()) {
    error(File, Line,
          Spelled + ": " + T->Name + " takes " +
              std::to_string(T->GenericParams.size()) + " argument(s), " +
              std::to_string(List.size()) + " given");
    return;
  }
  std::string Why;
  for (const std::string &A : List)
    if (!checkTypeArg(A, Scope, Why))
      return error(File, Line, Spelled + ": " + Why);
}

/// The type names an E_G argument list mentions ("struct list", "redisClient"),
/// instances' arguments included.
void StateModelBuilder::collectArgNames(StringRef Args,
                                        std::set<std::string> &Names) {
  for (const std::string &A : splitGenericArgs(Args)) {
    StringRef Base = StringRef(A).rtrim("* ");
    if (Base.empty() || Base.starts_with("@") || Base == "[opaque]")
      continue;
    if (size_t Open = Base.find('<'); Open != StringRef::npos) {
      collectArgNames(Base.drop_front(Open + 1).rtrim("> "), Names);
      Base = Base.take_front(Open).trim();
    }
    Names.insert(Base.str());
  }
}

void StateModelBuilder::buildGenericPayloads() {
  std::set<std::string> Names;
  for (const StateEntry &E : Out.Entries)
    collectArgNames(E.GenericArgs, Names);
  for (const TypeDesc &T : Out.TypeStorage)
    for (const FieldDesc &F : T.Fields)
      collectArgNames(F.GenericArgs, Names);
  if (Names.empty())
    return;
  DebugInfoFinder Finder;
  Finder.processModule(M);
  for (const DIType *T : Finder.types()) {
    std::string Spelled;
    if (auto *CT = dyn_cast<DICompositeType>(T)) {
      if (CT->isForwardDecl() || CT->getName().empty())
        continue;
      StringRef Kw = CT->getTag() == dwarf::DW_TAG_union_type ? "union"
                     : CT->getTag() == dwarf::DW_TAG_enumeration_type
                         ? "enum"
                         : "struct";
      Spelled = (Kw + " " + CT->getName()).str();
    } else if (auto *DT = dyn_cast<DIDerivedType>(T)) {
      if (DT->getTag() != dwarf::DW_TAG_typedef)
        continue;
      Spelled = DT->getName().str();
    } else if (auto *BT = dyn_cast<DIBasicType>(T)) {
      Spelled = BT->getName().str();
    }
    if (Names.erase(Spelled))
      Out.GenericPayloads.push_back(typeOf(T));
  }
}

void StateModelBuilder::checkGenerics() {
  static const std::vector<std::string> NoScope;
  for (const TypeDesc &S : Out.TypeStorage) {
    if (S.Kind != MVEDSUA_TYPE_STRUCT && S.Kind != MVEDSUA_TYPE_UNION)
      continue;
    for (const FieldDesc &F : S.Fields) {
      std::string Where = "field '" + F.Name + "' of " + S.Name;
      if (!F.GenericParam.empty() &&
          !llvm::is_contained(S.GenericParams, F.GenericParam))
        error(S.DeclFile, F.Line,
              "E_T(" + F.GenericParam + ") on " + Where + ": " + S.Name +
                  " declares no parameter " + F.GenericParam +
                  " (E_GENERIC(...) after its closing brace or on its "
                  "typedef)");
      if (!F.GenericParam.empty() &&
          (!F.Type || F.Type->Kind != MVEDSUA_TYPE_POINTER))
        error(S.DeclFile, F.Line,
              "E_T(" + F.GenericParam + ") on " + Where +
                  ": the field is not a pointer");
      if (!F.GenericArgs.empty())
        checkInstance(F.GenericArgs, F.Type, S.GenericParams, Where,
                      S.DeclFile, F.Line);
    }
  }
  for (const StateEntry &E : Out.Entries)
    if (!E.GenericArgs.empty())
      checkInstance(E.GenericArgs, E.Type, NoScope, "'" + E.Key + "'", E.File,
                    E.Line);
}

static const char *annotationSpelling(uint32_t A) {
  return (A & MVEDSUA_ANNOT_PTRARRAY) ? "MVEDSUA_PTRARRAY" : "MVEDSUA_ARRAY";
}

void StateModelBuilder::checkFieldAnnotations(const TypeDesc *D,
                                              StringRef File) {
  if (!CheckedFields.insert(D).second)
    return;
  for (const FieldDesc &F : D->Fields) {
    std::string Where = "field '" + F.Name + "' of " + D->Name;
    if (F.Annotations & MVEDSUA_ANNOT_NO_MIGRATE)
      error(File, 0,
            "MVEDSUA_NO_MIGRATE applies to globals and statics, not to " +
                Where);
    if (!(F.Annotations & (MVEDSUA_ANNOT_PTRARRAY | MVEDSUA_ANNOT_ARRAY)))
      continue;
    std::string Spelled =
        std::string(annotationSpelling(F.Annotations)) + "(" + F.AnnotArg + ")";
    if (!F.Type || F.Type->Kind != MVEDSUA_TYPE_POINTER)
      error(File, 0, Spelled + " on " + Where + ": the field is not a pointer");
    if (isDecimal(F.AnnotArg))
      continue;
    auto Sibling = llvm::find_if(D->Fields, [&](const FieldDesc &G) {
      return G.Name == F.AnnotArg;
    });
    if (Sibling == D->Fields.end() || !isIntegerLike(Sibling->Type))
      error(File, 0,
            Spelled + " on " + Where + ": '" + F.AnnotArg +
                "' is neither an integer constant nor an integer field of " +
                D->Name);
  }
}

void StateModelBuilder::checkEntryAnnotations(const StateEntry &E) {
  // Walk every struct reachable from the entry once for field annotations.
  SmallVector<const TypeDesc *, 16> Work{E.Type};
  SmallPtrSet<const TypeDesc *, 16> Seen;
  while (!Work.empty()) {
    const TypeDesc *T = Work.pop_back_val();
    if (!T || !Seen.insert(T).second)
      continue;
    if (T->Kind == MVEDSUA_TYPE_STRUCT || T->Kind == MVEDSUA_TYPE_UNION)
      checkFieldAnnotations(T, E.File);
    if (T->Target)
      Work.push_back(T->Target);
    for (const FieldDesc &F : T->Fields)
      Work.push_back(F.Type);
  }
  if (!(E.Annotations & (MVEDSUA_ANNOT_PTRARRAY | MVEDSUA_ANNOT_ARRAY)))
    return;
  std::string Spelled =
      std::string(annotationSpelling(E.Annotations)) + "(" + E.AnnotArg + ")";
  if (!E.Type || E.Type->Kind != MVEDSUA_TYPE_POINTER)
    error(E.File, E.Line, Spelled + " on '" + E.Key + "': not a pointer");
  if (isDecimal(E.AnnotArg))
    return;
  auto Other = llvm::find_if(Out.Entries, [&](const StateEntry &G) {
    return G.Kind != MVEDSUA_ENTRY_FUNCTION && G.Value &&
           G.Value->getName() == E.AnnotArg;
  });
  if (Other == Out.Entries.end() || !isIntegerLike(Other->Type))
    error(E.File, E.Line,
          Spelled + " on '" + E.Key + "': '" + E.AnnotArg +
              "' is neither an integer constant nor an integer global of this "
              "file");
}

//===----------------------------------------------------------------------===//
// Entries.
//===----------------------------------------------------------------------===//

std::string StateModelBuilder::unitName(const DICompileUnit *CU) const {
  // Keys use the file's name without its directory so that versions kept in
  // different directories (v1/kvd.c, v2/kvd.c) agree.
  StringRef Name = CU ? CU->getFilename() : StringRef(M.getSourceFileName());
  return std::string(sys::path::filename(Name));
}

void StateModelBuilder::indexCompileUnits() {
  for (DICompileUnit *CU : M.debug_compile_units())
    for (DIGlobalVariableExpression *GVE : CU->getGlobalVariables())
      UnitOf[GVE->getVariable()] = CU;
}

static bool hasFullDebugInfo(const Module &M) {
  for (const DICompileUnit *CU : M.debug_compile_units())
    if (CU->getEmissionKind() == DICompileUnit::FullDebug)
      return true;
  return false;
}

bool StateModelBuilder::hasUserData() const {
  for (const GlobalVariable &GV : M.globals())
    if (!GV.isDeclaration() && !GV.hasPrivateLinkage() &&
        !isMvedsuaInternal(GV.getName()))
      return true;
  return false;
}

void StateModelBuilder::collectGlobals() {
  const DataLayout &DL = M.getDataLayout();
  for (GlobalVariable &GV : M.globals()) {
    // Private globals are the compiler's (string literals, which clang 19
    // describes in debug info too, and compound literals): never state.
    if (GV.isDeclaration() || GV.hasPrivateLinkage() ||
        isMvedsuaInternal(GV.getName()))
      continue;
    SmallVector<DIGlobalVariableExpression *, 1> GVEs;
    GV.getDebugInfo(GVEs);
    if (GVEs.empty())
      continue; // compiler-generated: string literals, compound literals
    const DIGlobalVariable *DV = GVEs.front()->getVariable();
    StateEntry E;
    E.Value = &GV;
    E.File = std::string(DV->getFilename());
    E.Line = DV->getLine();
    E.Size = DL.getTypeAllocSize(GV.getValueType());
    E.Type = typeOf(DV->getType());
    std::string Unit = unitName(UnitOf.lookup(DV));
    readAnnotations(DV->getRawAnnotations(), E.Annotations, E.AnnotArg,
                    "'" + DV->getName() + "'", E.File, E.Line);
    readEntryGenerics(DV->getRawAnnotations(), E, DV->getName());
    if (auto *LS = dyn_cast_or_null<DILocalScope>(DV->getScope())) {
      E.Kind = MVEDSUA_ENTRY_LOCAL_STATIC;
      E.Key = Unit + "/" + LS->getSubprogram()->getName().str() + "#" +
              DV->getName().str();
    } else if (GV.hasLocalLinkage()) {
      E.Kind = MVEDSUA_ENTRY_STATIC;
      E.Key = Unit + "/" + DV->getName().str();
    } else {
      E.Kind = MVEDSUA_ENTRY_GLOBAL;
      E.Key = std::string(DV->getName());
    }
    if (GV.isConstant())
      E.Flags |= MVEDSUA_ENTRY_CONST;
    if (GV.isThreadLocal()) {
      if (!(E.Annotations & MVEDSUA_ANNOT_NO_MIGRATE))
        error(E.File, E.Line,
              "thread-local variable '" + E.Key +
                  "' cannot be migrated (each thread has its own copy); mark "
                  "it MVEDSUA_NO_MIGRATE to start it fresh in every version");
      continue; // not state the runtime can address: never registered
    }
    Out.Entries.push_back(std::move(E));
  }
}

static bool isConstQualified(const DIType *T) {
  for (auto *DT = dyn_cast_or_null<DIDerivedType>(T); DT;
       DT = dyn_cast_or_null<DIDerivedType>(DT->getBaseType())) {
    if (DT->getTag() == dwarf::DW_TAG_const_type)
      return true;
    if (DT->getTag() != dwarf::DW_TAG_typedef &&
        DT->getTag() != dwarf::DW_TAG_volatile_type)
      return false;
  }
  return false;
}

void StateModelBuilder::collectDeletedGlobals() {
  SmallPtrSet<const DIGlobalVariable *, 32> Live;
  for (GlobalVariable &GV : M.globals()) {
    SmallVector<DIGlobalVariableExpression *, 1> GVEs;
    GV.getDebugInfo(GVEs);
    for (DIGlobalVariableExpression *GVE : GVEs)
      Live.insert(GVE->getVariable());
  }
  for (DICompileUnit *CU : M.debug_compile_units()) {
    for (DIGlobalVariableExpression *GVE : CU->getGlobalVariables()) {
      const DIGlobalVariable *DV = GVE->getVariable();
      // Unnamed ones are string literals (clang 19 describes them): never
      // state, whether or not they survived.
      if (!DV || !DV->isDefinition() || Live.count(DV) ||
          DV->getName().empty() || isMvedsuaInternal(DV->getName()))
        continue;
      StateEntry E;
      E.File = std::string(DV->getFilename());
      E.Line = DV->getLine();
      E.Type = typeOf(DV->getType());
      E.Size = E.Type ? E.Type->Size : 0;
      std::string Unit = unitName(CU);
      readAnnotations(DV->getRawAnnotations(), E.Annotations, E.AnnotArg,
                      "'" + DV->getName() + "'", E.File, E.Line);
      readEntryGenerics(DV->getRawAnnotations(), E, DV->getName());
      if (auto *LS = dyn_cast_or_null<DILocalScope>(DV->getScope())) {
        E.Kind = MVEDSUA_ENTRY_LOCAL_STATIC;
        E.Key = Unit + "/" + LS->getSubprogram()->getName().str() + "#" +
                DV->getName().str();
      } else {
        E.Kind = DV->isLocalToUnit() ? MVEDSUA_ENTRY_STATIC
                                     : MVEDSUA_ENTRY_GLOBAL;
        E.Key = DV->isLocalToUnit() ? Unit + "/" + DV->getName().str()
                                    : std::string(DV->getName());
      }
      if (isConstQualified(DV->getType()))
        E.Flags |= MVEDSUA_ENTRY_CONST;
      Out.Entries.push_back(std::move(E));
    }
  }
}

/// True when the program may store F's address somewhere: a use other than
/// a direct call or the annotation/used tables.
static bool isAddressTaken(const Value *V) {
  for (const User *U : V->users()) {
    if (auto *CB = dyn_cast<CallBase>(U)) {
      if (CB->getCalledOperand() != V)
        return true;
      continue;
    }
    if (auto *GV = dyn_cast<GlobalVariable>(U)) {
      if (GV->getName().starts_with("llvm.") ||
          isMvedsuaInternal(GV->getName()))
        continue;
      return true;
    }
    if (isa<Constant>(U)) {
      if (isAddressTaken(U))
        return true;
      continue;
    }
    return true;
  }
  return false;
}

void StateModelBuilder::collectFunctions() {
  for (Function &F : M) {
    if (F.isDeclaration() || F.isIntrinsic() || isMvedsuaInternal(F.getName()))
      continue;
    // Only functions whose address can reach data need a key: registering
    // the rest would stop -O2 from inlining and deleting them.
    if (F.hasLocalLinkage() && !isAddressTaken(&F))
      continue;
    StateEntry E;
    E.Kind = MVEDSUA_ENTRY_FUNCTION;
    E.Value = &F;
    const DISubprogram *SP = F.getSubprogram();
    E.File = SP ? std::string(SP->getFilename()) : M.getSourceFileName();
    E.Line = SP ? SP->getLine() : 0;
    E.Key = F.hasLocalLinkage()
                ? unitName(SP ? SP->getUnit() : nullptr) + "/" +
                      F.getName().str()
                : F.getName().str();
    Out.Entries.push_back(std::move(E));
  }
}

/// The calls that mark a migrated local, with the local's address as their
/// second argument: the header's marker (what the plugin sees, before any
/// optimisation), the runtime call it becomes when -O2 inlines the marker in
/// a build without the plugin, and the plugin's lowered form (bitcode built
/// with the plugin). xfgen reads all three, so its model of a version is the
/// plugin's whatever flags built the bitcode.
static bool isLocalMarker(const Function *Callee) {
  if (!Callee)
    return false;
  StringRef Name = Callee->getName();
  return Name == MigrateLocalFn || Name == "__mvedsua_rt_migrate_local" ||
         Name == "__mvedsua_rt_local_enter";
}

void StateModelBuilder::collectLocals() {
  for (Function &F : M) {
    if (F.isDeclaration() || isMvedsuaInternal(F.getName()))
      continue;
    SmallPtrSet<const AllocaInst *, 4> Seen; // a marker -O2 duplicated
    for (Instruction &I : instructions(F)) {
      auto *CI = dyn_cast<CallInst>(&I);
      if (!CI || !isLocalMarker(CI->getCalledFunction()))
        continue;
      const DILocation *Loc = CI->getDebugLoc();
      StringRef File = Loc ? Loc->getFilename() : StringRef();
      unsigned Line = Loc ? Loc->getLine() : 0;
      auto *AI = dyn_cast<AllocaInst>(CI->getArgOperand(1)->stripPointerCasts());
      if (!AI) {
        error(File, Line,
              "MVEDSUA_MIGRATE_LOCAL in '" + F.getName() +
                  "' does not name a local variable of the function");
        continue;
      }
      if (!Seen.insert(AI).second)
        continue;
      // The variable's own function names the key: in optimised bitcode the
      // marker may have been inlined into a caller, with the header's helper
      // (whose parameter also names the local) inlined around it.
      DILocalVariable *Var =
          compat::localVariableOf(AI, [](const DILocalVariable *V) {
            return !isMvedsuaInternal(V->getScope()->getSubprogram()->getName());
          });
      const DISubprogram *SP = Var ? Var->getScope()->getSubprogram() : nullptr;
      if (!Var || !SP) {
        error(File, Line,
              "MVEDSUA_MIGRATE_LOCAL in '" + F.getName() +
                  "': no debug info for the variable (compile with -g)");
        continue;
      }
      StateEntry E;
      E.Kind = MVEDSUA_ENTRY_LOCAL;
      E.File = std::string(Var->getFilename());
      E.Line = Var->getLine();
      E.Key = unitName(SP->getUnit()) + "/" + SP->getName().str() + "#" +
              Var->getName().str();
      E.Type = typeOf(Var->getType());
      E.Size = M.getDataLayout().getTypeAllocSize(AI->getAllocatedType());
      readAnnotations(Var->getRawAnnotations(), E.Annotations, E.AnnotArg,
                      "'" + E.Key + "'", E.File, E.Line);
      readEntryGenerics(Var->getRawAnnotations(), E, Var->getName());
      // Only the header's marker is left for the plugin to lower.
      if (CI->getCalledFunction()->getName() != "__mvedsua_rt_local_enter")
        E.LocalMarker = CI;
      E.LocalAlloca = AI;
      Out.Entries.push_back(std::move(E));
    }
  }
}

static bool hasMigrateLocalCalls(const Module &M) {
  for (StringRef Name : {StringRef(MigrateLocalFn),
                         StringRef("__mvedsua_rt_migrate_local"),
                         StringRef("__mvedsua_rt_local_enter")})
    if (const Function *F = M.getFunction(Name); F && !F->use_empty())
      return true;
  return false;
}

Error StateModelBuilder::run() {
  Void = nullptr; // void is spelled as a null descriptor everywhere
  if (!hasFullDebugInfo(M) && (hasUserData() || hasMigrateLocalCalls(M)))
    return createStringError(
        inconvertibleErrorCode(),
        M.getSourceFileName() +
            ": no debug info: mvedsua builds the state registry's type "
            "descriptors from it and reads annotations from it; compile with "
            "-g (see docs/building.md)");

  indexCompileUnits();
  collectGlobals();
  if (WithDeleted)
    collectDeletedGlobals();
  collectFunctions();
  collectLocals();
  for (const StateEntry &E : Out.Entries)
    if (E.Kind != MVEDSUA_ENTRY_FUNCTION)
      checkEntryAnnotations(E);
  checkGenerics();
  buildGenericPayloads();

  std::map<std::pair<uint32_t, std::string>, const StateEntry *> Keys;
  for (const StateEntry &E : Out.Entries) {
    auto [It, Fresh] = Keys.try_emplace({E.Kind, E.Key}, &E);
    if (!Fresh)
      error(E.File, E.Line,
            "two pieces of state share the key '" + E.Key +
                "' (first at line " + std::to_string(It->second->Line) +
                "); rename one");
  }
  if (!Errors.empty()) {
    std::string All;
    for (const std::string &Msg : Errors)
      All += (All.empty() ? "" : "\n") + Msg;
    return createStringError(inconvertibleErrorCode(), All);
  }
  hashAll();
  return Error::success();
}

Expected<StateModel> StateModel::build(Module &M) {
  StateModel Model;
  StateModelBuilder B(M, Model);
  if (Error E = B.run())
    return E;
  return Model;
}

Expected<StateModel> StateModel::buildForBitcode(Module &M) {
  StateModel Model;
  StateModelBuilder B(M, Model, /*Deleted=*/true);
  if (Error E = B.run())
    return E;
  return Model;
}

uint64_t StateModel::stateHash() const {
  std::vector<const StateEntry *> Data;
  for (const StateEntry &E : Entries)
    if (E.Kind != MVEDSUA_ENTRY_FUNCTION && !(E.Flags & MVEDSUA_ENTRY_CONST))
      Data.push_back(&E);
  llvm::sort(Data, [](const StateEntry *A, const StateEntry *B) {
    return std::tie(A->Kind, A->Key) < std::tie(B->Kind, B->Key);
  });
  uint64_t H = fnv1a("");
  for (const StateEntry *E : Data) {
    H = fnv1a(E->Key, H);
    H = fnv1a(StringRef("\0", 1), H);
    H = fnvU64(E->Type ? E->Type->Hash : 0, H);
  }
  return H;
}

} // namespace mvedsua

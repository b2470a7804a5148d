//===- XformGen.cpp - state transformers from two versions' state models --===//
//
// One walk over (old type, new type) pairs, starting at every piece of state
// that changed, generates one C function per pair (memoised by the pair's
// structural hashes, so cycles and types shared by many entries cost one
// function), records how each change is handled for --explain, and refuses
// what cannot be transformed safely. Plain transformations access memory by
// byte offset (memcpy), so they depend on no C declaration; spec blocks get
// typed pointers to C declarations rebuilt from the descriptors, each field's
// offset checked by _Static_assert.
//
//===----------------------------------------------------------------------===//

#include "XformGen.h"

#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

#include <map>
#include <set>

using namespace llvm;

namespace mvedsua {

//===----------------------------------------------------------------------===//
// Type helpers.
//===----------------------------------------------------------------------===//

static bool isScalar(const TypeDesc *T) {
  return T && (T->Kind == MVEDSUA_TYPE_INT || T->Kind == MVEDSUA_TYPE_UINT ||
               T->Kind == MVEDSUA_TYPE_BOOL || T->Kind == MVEDSUA_TYPE_FLOAT ||
               T->Kind == MVEDSUA_TYPE_ENUM);
}
static bool isAggregate(const TypeDesc *T) {
  return T && (T->Kind == MVEDSUA_TYPE_STRUCT || T->Kind == MVEDSUA_TYPE_UNION);
}
static uint64_t hashOf(const TypeDesc *T) { return T ? T->Hash : 0; }

/// The integer or floating type a scalar is loaded as.
static const TypeDesc *underlying(const TypeDesc *T) {
  return T->Kind == MVEDSUA_TYPE_ENUM && T->Target ? T->Target : T;
}

static std::string scalarCType(const TypeDesc *T) {
  const TypeDesc *U = underlying(T);
  uint32_t Kind = U->Kind == MVEDSUA_TYPE_ENUM ? uint32_t(MVEDSUA_TYPE_UINT) : U->Kind;
  uint64_t Bits = U->Size * 8;
  switch (Kind) {
  case MVEDSUA_TYPE_BOOL:
    return U->Size == 1 ? "_Bool" : "uint" + std::to_string(Bits) + "_t";
  case MVEDSUA_TYPE_FLOAT:
    return U->Size == 4 ? "float" : U->Size == 8 ? "double" : "long double";
  case MVEDSUA_TYPE_INT:
    return Bits == 128 ? "__int128" : "int" + std::to_string(Bits) + "_t";
  default:
    return Bits == 128 ? "unsigned __int128" : "uint" + std::to_string(Bits) + "_t";
  }
}

static bool isSigned(const TypeDesc *T) {
  return underlying(T)->Kind == MVEDSUA_TYPE_INT;
}

/// Why converting a scalar O to N may change its value ("" if it cannot).
static std::string narrowing(const TypeDesc *O, const TypeDesc *N) {
  const TypeDesc *A = underlying(O), *B = underlying(N);
  bool AF = A->Kind == MVEDSUA_TYPE_FLOAT, BF = B->Kind == MVEDSUA_TYPE_FLOAT;
  if (B->Kind == MVEDSUA_TYPE_BOOL && A->Kind != MVEDSUA_TYPE_BOOL)
    return "every non-zero value becomes 1";
  if (AF && BF)
    return B->Size < A->Size ? "precision and range are reduced" : "";
  if (AF)
    return "the fraction is dropped and values outside " + typeName(N) +
           " are undefined";
  if (BF) {
    unsigned Mantissa = B->Size == 4 ? 24 : B->Size == 8 ? 53 : 64;
    return A->Size * 8 > Mantissa ? "large values are rounded" : "";
  }
  if (A->Kind == MVEDSUA_TYPE_BOOL)
    return "";
  if (B->Size < A->Size)
    return "values outside " + typeName(N) + " are truncated";
  if (isSigned(O) && !isSigned(N))
    return "negative values wrap around";
  if (!isSigned(O) && isSigned(N) && B->Size <= A->Size)
    return "values above the maximum of " + typeName(N) + " wrap around";
  return "";
}

static const FieldDesc *fieldNamed(const TypeDesc *T, StringRef Name) {
  for (const FieldDesc &F : T->Fields)
    if (F.Name == Name)
      return &F;
  return nullptr;
}

static bool isBitField(const FieldDesc &F) {
  return F.Type && (F.SizeBits != F.Type->Size * 8 || F.OffsetBits % 8);
}

static const FieldDesc *matchField(const TypeDesc *O, const TypeDesc *N,
                                   const FieldDesc &G);

static const FieldDesc *flexibleMember(const TypeDesc *T) {
  for (const FieldDesc &F : T->Fields)
    if (F.Type && F.Type->Kind == MVEDSUA_TYPE_ARRAY &&
        (F.Type->Flags & MVEDSUA_TYPE_FLEXIBLE))
      return &F;
  return nullptr;
}

static const char *entryKindName(uint32_t Kind) {
  switch (Kind) {
  case MVEDSUA_ENTRY_GLOBAL:
    return "global";
  case MVEDSUA_ENTRY_STATIC:
    return "static";
  case MVEDSUA_ENTRY_LOCAL_STATIC:
    return "local static";
  case MVEDSUA_ENTRY_LOCAL:
    return "migrated local";
  default:
    return "function";
  }
}

static std::string cString(StringRef S) {
  std::string Out = "\"";
  for (char C : S) {
    if (C == '"' || C == '\\')
      Out += '\\';
    if (C == '\n') {
      Out += "\\n";
      continue;
    }
    Out += C;
  }
  return Out + "\"";
}

static std::string hex(uint64_t V) {
  return "0x" + utohexstr(V, /*LowerCase=*/true, 16) + "ULL";
}

static bool isStateEntry(const StateEntry &E) {
  return E.Kind != MVEDSUA_ENTRY_FUNCTION && !(E.Flags & MVEDSUA_ENTRY_CONST);
}

/// Every descriptor reachable from a model's entries.
static std::vector<const TypeDesc *> reachableTypes(const StateModel &M) {
  std::vector<const TypeDesc *> Out;
  SmallPtrSet<const TypeDesc *, 32> Seen;
  std::vector<const TypeDesc *> Work;
  for (const StateEntry &E : M.Entries)
    Work.push_back(E.Type);
  for (const TypeDesc *T : M.GenericPayloads)
    Work.push_back(T);
  while (!Work.empty()) {
    const TypeDesc *T = Work.back();
    Work.pop_back();
    if (!T || !Seen.insert(T).second)
      continue;
    Out.push_back(T);
    Work.push_back(T->Target);
    for (const FieldDesc &F : T->Fields)
      Work.push_back(F.Type);
  }
  return Out;
}

/// Kitsune's generics: for each generic struct (by name) and parameter, the
/// arguments its uses bind it to: E_G(...) on variables and fields, the
/// instances nested in arguments (list<int, int>), and through a struct's own
/// parameters (struct list E_G(@t) *next binds next's @t to list's).
using GenericBindings = std::map<std::string, std::vector<std::set<std::string>>>;

namespace {
class BindingCollector {
public:
  BindingCollector(const StateModel &M, const std::vector<const TypeDesc *> &Types)
      : M(M), Types(Types) {}

  GenericBindings run() {
    for (const StateEntry &E : M.Entries)
      if (!E.GenericArgs.empty())
        instance(E.Type, E.GenericArgs, nullptr);
    for (const TypeDesc *T : Types)
      for (const FieldDesc &F : T->Fields)
        if (!F.GenericArgs.empty())
          instance(F.Type, F.GenericArgs, T);
    for (bool Changed = true; Changed;) {
      Changed = false;
      for (const Link &L : Links) {
        std::set<std::string> &To = B[L.To][L.ToIdx];
        for (const std::string &A : B[L.From][L.FromIdx])
          Changed |= To.insert(A).second;
      }
    }
    return std::move(B);
  }

private:
  struct Link {
    std::string To;
    size_t ToIdx;
    std::string From;
    size_t FromIdx;
  };

  const TypeDesc *named(StringRef Name) const {
    if (auto It = M.Typedefs.find(Name.str()); It != M.Typedefs.end())
      return It->second;
    for (const TypeDesc *T : Types)
      if (T->Kind == MVEDSUA_TYPE_STRUCT && T->Name == Name)
        return T;
    return nullptr;
  }

  void instance(const TypeDesc *T, StringRef Args, const TypeDesc *Scope) {
    while (T && (T->Kind == MVEDSUA_TYPE_POINTER || T->Kind == MVEDSUA_TYPE_ARRAY))
      T = T->Target;
    std::vector<std::string> List = splitGenericArgs(Args);
    if (!T || T->GenericParams.size() != List.size())
      return; // the builder reported it
    B[T->Name].resize(List.size());
    for (size_t I = 0; I < List.size(); ++I) {
      const std::string &A = List[I];
      if (StringRef(A).starts_with("@")) {
        if (!Scope)
          continue;
        auto P = llvm::find(Scope->GenericParams, A);
        if (P != Scope->GenericParams.end())
          Links.push_back({T->Name, I, Scope->Name,
                           size_t(P - Scope->GenericParams.begin())});
        continue;
      }
      B[T->Name][I].insert(A);
      StringRef Base = StringRef(A).rtrim("* ");
      size_t Open = Base.find('<');
      if (Open != StringRef::npos)
        instance(named(Base.take_front(Open).trim()),
                 Base.drop_front(Open + 1).rtrim("> "), Scope);
    }
  }

  const StateModel &M;
  const std::vector<const TypeDesc *> &Types;
  GenericBindings B;
  std::vector<Link> Links;
};
} // namespace

static bool parenArgs(StringRef Code, size_t From, StringRef &Args,
                      size_t &After);
static SmallVector<StringRef, 4> splitArgs(StringRef Args);
static bool genericXformArgs(const TypeDesc *O, size_t NParts);

/// What a void * marked E_T(@t) points to when @t is bound to Arg: an
/// argument that is a pointer type is the field's own type (list<T>* in a
/// void * val: val is a list *), any other is the pointee (int: the field
/// points to an int). Instance arguments are dropped (struct list<int> ->
/// struct list).
static std::string payloadPointee(StringRef Arg) {
  std::string Base = Arg.trim().str();
  size_t Open = Base.find('<');
  if (Open != std::string::npos) {
    size_t Close = Base.rfind('>');
    Base = Base.substr(0, Open) + Base.substr(Close + 1);
  }
  StringRef B = StringRef(Base).rtrim(" ");
  if (B.ends_with("*"))
    B = B.drop_back().rtrim(" ");
  return B.str();
}

//===----------------------------------------------------------------------===//
// The generator.
//===----------------------------------------------------------------------===//

/// Where the walk is, for messages and for annotation arguments.
struct WalkCtx {
  std::string Root;     // "global 'table'"
  std::string Path;     // "table->next.key"
  bool Deref = false;   // the current object was reached through a pointer
  uint32_t Annots = 0;  // of the old field or entry being converted
  std::string AnnotArg;
  const TypeDesc *Base = nullptr; // the enclosing old struct (sibling counts)
  const StateEntry *Entry = nullptr; // entry-level annotations name globals
  std::string RuleHint; // the spec path that would settle a problem here
  std::string Where;    // for warnings: "struct entry.key", "global 'hits'"

  std::string member(StringRef Name) const {
    return Path + (Deref ? "->" : ".") + Name.str();
  }
};

/// Where a scalar lives: bytes at Base + OffBits / 8, or a bit-field of Bits
/// bits at bit OffBits of Base.
struct Place {
  std::string Base;
  uint64_t OffBits = 0, Bits = 0;
  bool BitField = false;

  static Place bytes(const std::string &At) { return {At, 0, 0, false}; }
  static Place bits(const std::string &Base, uint64_t Off, uint64_t N) {
    return {Base, Off, N, true};
  }
  std::string addr() const {
    return OffBits ? Base + " + " + std::to_string(OffBits / 8) : Base;
  }
  /// Declares Var of C type CT holding the value (signed bit-fields are
  /// sign-extended).
  std::string load(const std::string &CT, bool Signed,
                   const std::string &Var) const {
    if (!BitField)
      return CT + " " + Var + "; memcpy(&" + Var + ", " + addr() + ", sizeof " +
             Var + ");";
    std::string V = "__mvedsua_xf_getbits(" + Base + ", " +
                    std::to_string(OffBits) + ", " + std::to_string(Bits) + ")";
    if (Signed)
      V = "__mvedsua_xf_sext(" + V + ", " + std::to_string(Bits) + ")";
    return CT + " " + Var + " = (" + CT + ")" + V + ";";
  }
  std::string store(const std::string &Var) const {
    if (!BitField)
      return "memcpy(" + addr() + ", &" + Var + ", sizeof " + Var + ");";
    return "__mvedsua_xf_setbits(" + Base + ", " + std::to_string(OffBits) +
           ", " + std::to_string(Bits) + ", (uint64_t)" + Var + ");";
  }
};

/// Everything a spec block is expanded with.
struct BlockEnv {
  const SpecRule *Rule = nullptr;
  std::string In, Out, Base;               // C expressions, "" if absent
  const TypeDesc *OldT = nullptr, *NewT = nullptr, *BaseT = nullptr;
  std::pair<uint64_t, uint64_t> SelfPair{0, 0}; // $xform of it: the default
  bool TopLevel = false; // a C block between rules: no objects
};

class XformGenerator::Impl {
public:
  Impl(const StateModel &Old, const StateModel &New, const Spec &S,
       XformOptions Opts)
      : Old(Old), New(New), S(S), Opts(std::move(Opts)) {}

  bool run();
  std::string code() const;
  void explain(raw_ostream &OS) const;
  std::vector<std::string> Errors;

private:
  const StateModel &Old, &New;
  const Spec &S;
  XformOptions Opts;
  std::vector<const TypeDesc *> OldTypes, NewTypes;
  GenericBindings OldBindings, NewBindings;

  // --- the spec, resolved
  struct FieldRule {
    const SpecRule *Rule;
    std::string OldField; // empty for INIT
  };
  std::map<std::pair<uint64_t, uint64_t>, const SpecRule *> TypeRules;
  std::set<std::pair<std::string, std::string>> TypeRenames;
  std::map<std::pair<uint64_t, std::string>, FieldRule> FieldRules;
  std::set<uint64_t> ForcedOld, ForcedNew;
  struct EntryRule {
    const SpecRule *Rule;
    const StateEntry *Old; // null for INIT
  };
  std::map<const StateEntry *, EntryRule> EntryRules; // by new entry
  std::set<const StateEntry *> RenamedAway;           // old entries
  mutable std::map<std::pair<const TypeDesc *, bool>, bool> ReachMemo;

  // --- generated code
  std::string Protos, Descs, Bodies, EntryTable, InitTable, LocalTable;
  std::string TopCode; // the spec's C blocks between rules, expanded
  std::set<std::string> KitsuneClosures; // descriptors with a closure
  // Kitsune's generic structs (old names) that $xform(S, S, args...) gives
  // closures to, and whether a field of one is being generated for the case
  // without them (a missing binding then fails the update instead).
  std::set<std::string> KGenericArgs;
  bool InKGen = false;
  std::vector<std::string> Keys;
  std::map<std::pair<uint64_t, uint64_t>, std::string> ObjFns, DefaultFns,
      DescNames;
  std::map<uint64_t, std::string> RemapFns, VisitDescs;
  std::map<uint64_t, bool> PointerMemo;
  unsigned NextId = 0, NextVar = 0;

  // --- C declarations for spec blocks
  std::string Forward, Defs;
  std::map<std::pair<bool, uint64_t>, std::string> TagNames;
  std::set<std::pair<bool, uint64_t>> Defined;
  std::set<std::string> UsedTags, Enumerators;

  // --- the summary
  struct TypeNote {
    std::string Header;
    std::vector<std::string> Lines;
  };
  std::vector<TypeNote> TypeNotes;
  std::vector<std::string> EntryLines, Warnings, Lost;
  unsigned Unchanged = 0, Retyped = 0, Added = 0, Removed = 0, Fresh = 0,
           Renamed = 0;

  // spec resolution
  void resolveSpec();
  const StateEntry *resolveVar(const StateModel &M, const SpecPath &P,
                               const char *Side);
  std::vector<const TypeDesc *> resolveType(const std::vector<const TypeDesc *> &Types,
                                            const StateModel &M,
                                            const SpecPath &P);
  void resolveTypeRule(const SpecRule &R);
  std::vector<const TypeDesc *> typesOf(const SpecPath &P, bool NewSide);
  const TypeDesc *resolveSpelling(StringRef Text, bool NewSide);
  bool reaches(const TypeDesc *T, bool NewSide) const;
  bool need(const TypeDesc *O, const TypeDesc *N) const;
  void error(const Twine &Msg) { Errors.push_back(Msg.str()); }
  void refuse(const WalkCtx &C, const Twine &Problem, const Twine &Fix);
  void warn(const WalkCtx &C, const TypeDesc *O, const TypeDesc *N);

  // walk and generate
  std::string convert(std::string &B, const TypeDesc *O, const TypeDesc *N,
                      const std::string &In, const std::string &Out,
                      const WalkCtx &C);
  std::string scalar(std::string &B, const TypeDesc *O, const TypeDesc *N,
                     const Place &From, const Place &To, const WalkCtx &C);
  std::string array(std::string &B, const TypeDesc *O, const TypeDesc *N,
                    const std::string &In, const std::string &Out,
                    const WalkCtx &C);
  std::string pointer(std::string &B, const TypeDesc *O, const TypeDesc *N,
                      const std::string &In, const std::string &Out,
                      const WalkCtx &C);
  std::string countExpr(std::string &B, const WalkCtx &C,
                        const std::string &BaseAt);
  std::string copyUnchanged(std::string &B, const TypeDesc *T,
                            const std::string &In, const std::string &Out);
  bool hasPointers(const TypeDesc *T);
  std::string remapFn(const TypeDesc *T);
  enum RemapMode { InNew, InShared };
  void remapStmts(std::string &B, const TypeDesc *T, const std::string &At,
                  RemapMode M, const FieldDesc *F = nullptr,
                  const TypeDesc *BaseT = nullptr,
                  const std::string &BaseAt = "");
  std::string visitDesc(const TypeDesc *T);
  std::string mapFn(const TypeDesc *O, const TypeDesc *N);
  std::string subMap(const TypeDesc *O, const TypeDesc *N, const std::string &X);
  std::map<std::pair<uint64_t, uint64_t>, std::string> MapFns;
  std::string MapProtos, MapBodies;
  void warnUnions(const TypeDesc *T);
  std::set<std::string> WarnedUnions;
  std::string objFn(const TypeDesc *O, const TypeDesc *N, const WalkCtx &C);
  std::string defaultFn(const TypeDesc *O, const TypeDesc *N, const WalkCtx &C);
  std::string descFor(const TypeDesc *O, const TypeDesc *N, const WalkCtx &C);
  std::string newFunction(StringRef Prefix, StringRef Comment);
  void finishFunction(StringRef Name, StringRef Comment, const std::string &B);
  void structBody(std::string &B, const TypeDesc *O, const TypeDesc *N,
                  const WalkCtx &C);
  void field(std::string &B, TypeNote &Note, const TypeDesc *O,
             const TypeDesc *N, const FieldDesc &G, const WalkCtx &C,
             std::set<std::string> &UsedOld);
  void fieldRule(std::string &B, TypeNote &Note, const TypeDesc *O,
                 const FieldDesc *F, const FieldDesc &G, const SpecRule &R,
                 const WalkCtx &FC);
  void bitField(std::string &B, const FieldDesc &F, const FieldDesc &G,
                const WalkCtx &C, std::string &How);
  const std::set<std::string> *binding(bool NewSide, const TypeDesc *S,
                                       const std::string &Param);
  void forceGenericContainers();
  bool genericField(std::string &B, const TypeDesc *O, const TypeDesc *N,
                    const FieldDesc &F, const FieldDesc &G, WalkCtx &FC,
                    std::string &How);
  void scanGenericArgs();
  void kitsuneGenericField(std::string &B, TypeNote &Note, const TypeDesc *O,
                           const TypeDesc *N, const FieldDesc &F,
                           const FieldDesc &G, const WalkCtx &C,
                           std::set<std::string> &UsedOld);
  std::string genCall(StringRef Args, const BlockEnv &Env, const SpecLoc &L);
  std::string genDefault(const TypeDesc *S, const std::string &Param,
                         const SpecLoc &L);
  std::string fresh(StringRef Stem) { return Stem.str() + std::to_string(NextVar++); }

  // entries
  void planEntries();
  void handleEntry(const StateEntry *O, const StateEntry *N);
  void noteRemoved(const StateEntry *O);
  void warnCopiedVoidPointers();
  std::string voidPointerPath(const TypeDesc *T, const std::string &Path,
                              SmallPtrSetImpl<const TypeDesc *> &Seen);
  std::vector<const StateEntry *> Copied; // unchanged: the runtime copies them
  std::set<std::string> HeapTypes;         // old types given new heap objects
  /// Where objects of an old type are allocated: pointer fields and entries
  /// (Total), of which Arrays may allocate several elements.
  struct Site {
    unsigned Arrays = 0, Total = 0;
    const TypeDesc *Type = nullptr;
  };
  std::map<uint64_t, Site> Sites;
  std::set<uint64_t> TrackHashes;
  std::string trackMacro(const TypeDesc *O);
  std::set<uint64_t> interiorRisks() const;
  std::set<const StateEntry *> Done; // new entries already planned
  void planEntry(const StateEntry *O, const StateEntry *N, const SpecRule *R);
  void planInit(const StateEntry *N, const SpecRule *R);
  std::string entryFn(const StateEntry *O, const StateEntry *N,
                      const SpecRule *R);

  // spec blocks
  std::string expandBlock(const BlockEnv &Env);
  std::string expandCode(const BlockEnv &Env, StringRef Code);
  std::string expandWord(StringRef Word, const BlockEnv &Env, const SpecLoc &L);
  std::string expandCall(StringRef Word, StringRef Args, const BlockEnv &Env,
                         const SpecLoc &L);
  std::string blockStmts(const BlockEnv &Env);
  std::string kitsuneClosure(const std::string &D, const TypeDesc *O,
                             const TypeDesc *N);
  void expandTopCode();
  std::string xformCall(StringRef Args, const BlockEnv &Env, const SpecLoc &L);
  SpecLoc locIn(const SpecRule &R, size_t Offset) const;

  // C declarations
  std::string tagName(const TypeDesc *T, bool NewSide);
  std::string declare(const TypeDesc *T, bool NewSide, const std::string &D);
  void define(const TypeDesc *T, bool NewSide);
  std::string fieldsOf(const TypeDesc *T, bool NewSide, std::string &Asserts,
                       const std::string &Tag);
};

//===----------------------------------------------------------------------===//
// The spec: paths resolved against the two models.
//===----------------------------------------------------------------------===//

const StateEntry *XformGenerator::Impl::resolveVar(const StateModel &M,
                                                   const SpecPath &P,
                                                   const char *Side) {
  std::vector<const StateEntry *> Found;
  for (const StateEntry &E : M.Entries)
    if (isStateEntry(E) && E.Key == P.Name)
      return &E;
  // "name" names a unique static ("file.c/name"), "func#name" a unique local
  // static or migrated local ("file.c/func#name").
  bool Local = StringRef(P.Name).contains('#');
  for (const StateEntry &E : M.Entries)
    if (isStateEntry(E) && (StringRef(E.Key).ends_with("/" + P.Name) ||
                            (!Local && StringRef(E.Key).ends_with("#" + P.Name))))
      Found.push_back(&E);
  if (Found.size() == 1)
    return Found.front();
  if (Found.empty()) {
    error(P.Loc.str() + ": error: no variable '" + P.Name + "' in the " + Side +
          " version");
    return nullptr;
  }
  std::string Which;
  for (const StateEntry *E : Found)
    Which += (Which.empty() ? "" : ", ") + E->Key;
  error(P.Loc.str() + ": error: '" + P.Name + "' is ambiguous in the " + Side +
        " version (" + Which + "): write the full key");
  return nullptr;
}

std::vector<const TypeDesc *>
XformGenerator::Impl::resolveType(const std::vector<const TypeDesc *> &Types,
                                  const StateModel &M, const SpecPath &P) {
  std::vector<const TypeDesc *> Out;
  std::set<uint64_t> Hashes;
  if (P.What == SpecPath::Typedef) {
    auto It = M.Typedefs.find(P.Name);
    if (It != M.Typedefs.end() && It->second)
      Out.push_back(It->second);
    return Out;
  }
  static const char *const Kw[] = {"struct ", "union ", "", "enum "};
  std::string Name = Kw[P.What] + P.Name;
  for (const TypeDesc *T : Types)
    if (T->Name == Name && T->Kind != MVEDSUA_TYPE_OPAQUE &&
        Hashes.insert(T->Hash).second)
      Out.push_back(T);
  return Out;
}

/// The types a type path names on one side (with its field, if it has one),
/// or an error.
std::vector<const TypeDesc *>
XformGenerator::Impl::typesOf(const SpecPath &P, bool NewSide) {
  const char *Side = NewSide ? "new" : "old";
  auto Found = resolveType(NewSide ? NewTypes : OldTypes, NewSide ? New : Old, P);
  if (Found.empty())
    error(P.Loc.str() + ": error: no " +
          P.spelling().substr(0, P.spelling().find('.')) + " in the " + Side +
          " version's state");
  for (const TypeDesc *T : Found)
    if (!P.Field.empty() && !fieldNamed(T, P.Field)) {
      error(P.Loc.str() + ": error: " + T->Name + " has no field '" + P.Field +
            "' in the " + Side + " version");
      return {};
    }
  return Found;
}

void XformGenerator::Impl::resolveTypeRule(const SpecRule &R) {
  const SpecPath &To = R.To;
  std::vector<const TypeDesc *> Os;
  if (!R.Init)
    Os = typesOf(R.From, false);
  std::vector<const TypeDesc *> Ns = typesOf(To, true);
  if (!R.Init) {
    if (R.From.Field.empty() != To.Field.empty()) {
      error(R.From.Loc.str() + ": error: a rule maps a type to a type or a "
                               "field to a field");
      return;
    }
  }
  for (const TypeDesc *N : Ns) {
    if (!To.Field.empty() && N->Kind == MVEDSUA_TYPE_UNION) {
      error(To.Loc.str() + ": error: " + To.spelling() + ": a rule for one "
            "member of a union cannot know which member is live; write one "
            "for the whole union (" + N->Name + " -> " + N->Name +
            ") or for the field that holds it");
      return;
    }
    if (!To.Field.empty()) {
      FieldRules[{N->Hash, To.Field}] = {&R, R.Init ? "" : R.From.Field};
      ForcedNew.insert(N->Hash);
      for (const TypeDesc *O : Os)
        ForcedOld.insert(O->Hash);
      continue;
    }
    if (R.Init) {
      error(To.Loc.str() + ": error: INIT applies to variables and fields, "
                           "not to a whole type");
      return;
    }
    // Typedefs are transparent: a rule through `typedef long money_t`
    // would apply to every long. Only tagged types have an identity.
    bool Tagged = isAggregate(N) || N->Kind == MVEDSUA_TYPE_ENUM;
    if (!Tagged) {
      error(To.Loc.str() + ": error: " + To.spelling() + " is " +
            typeName(N) + ", a type without a tag (typedefs are transparent): "
            "write the rule for the fields or variables of that type");
      return;
    }
    for (const TypeDesc *O : Os) {
      TypeRenames.insert({O->Name, N->Name});
      if (R.HasCode) {
        TypeRules[{O->Hash, N->Hash}] = &R;
        ForcedOld.insert(O->Hash);
        ForcedNew.insert(N->Hash);
      }
    }
  }
}

void XformGenerator::Impl::resolveSpec() {
  for (const SpecRule &R : S.Rules) {
    bool VarTo = R.To.What == SpecPath::Var;
    bool VarFrom = R.Init ? VarTo : R.From.What == SpecPath::Var;
    if (VarTo != VarFrom) {
      error(R.From.Loc.str() + ": error: a rule maps a variable to a variable "
                               "or a type to a type");
      continue;
    }
    if (!VarTo) {
      resolveTypeRule(R);
      continue;
    }
    const StateEntry *N = resolveVar(New, R.To, "new");
    const StateEntry *O = R.Init ? nullptr : resolveVar(Old, R.From, "old");
    if (!N || (!R.Init && !O))
      continue;
    if (!EntryRules.emplace(N, EntryRule{&R, O}).second)
      error(R.To.Loc.str() + ": error: a second rule for '" + N->Key + "'");
    if (O && (O->Kind != N->Kind || O->Key != N->Key))
      RenamedAway.insert(O);
  }
}

/// True when T reaches a type with a spec rule (so it must be walked even
/// if its structure did not change).
bool XformGenerator::Impl::reaches(const TypeDesc *T, bool NewSide) const {
  const std::set<uint64_t> &Forced = NewSide ? ForcedNew : ForcedOld;
  if (!T || Forced.empty())
    return false;
  if (auto It = ReachMemo.find({T, NewSide}); It != ReachMemo.end())
    return It->second;
  SmallPtrSet<const TypeDesc *, 32> Seen;
  std::vector<const TypeDesc *> Work{T};
  bool Found = false;
  while (!Work.empty() && !Found) {
    const TypeDesc *D = Work.back();
    Work.pop_back();
    if (!D || !Seen.insert(D).second)
      continue;
    Found = Forced.count(D->Hash);
    Work.push_back(D->Target);
    for (const FieldDesc &F : D->Fields)
      Work.push_back(F.Type);
  }
  ReachMemo[{T, NewSide}] = Found;
  return Found;
}

bool XformGenerator::Impl::need(const TypeDesc *O, const TypeDesc *N) const {
  return hashOf(O) != hashOf(N) || reaches(O, false) || reaches(N, true);
}

void XformGenerator::Impl::refuse(const WalkCtx &C, const Twine &Problem,
                                  const Twine &Fix) {
  error(C.Root + ": " + C.Path + ": " + Problem + "; " + Fix);
}

void XformGenerator::Impl::warn(const WalkCtx &C, const TypeDesc *O,
                                const TypeDesc *N) {
  std::string Why = narrowing(O, N);
  if (!Why.empty())
    Warnings.push_back(C.Where + ": " + typeName(O) + " -> " + typeName(N) +
                       ": " + Why);
}

//===----------------------------------------------------------------------===//
// Functions: one per (old type, new type) pair.
//===----------------------------------------------------------------------===//

static const char *const FnParams =
    "(struct mvedsua_xf_ctx *__xf_ctx, unsigned char *__xf_in, "
    "unsigned char *__xf_out)";

std::string XformGenerator::Impl::newFunction(StringRef Prefix,
                                              StringRef Comment) {
  std::string Name = "__mvedsua_xf_" + Prefix.str() + std::to_string(NextId++);
  Protos += "static int " + Name + FnParams + "; /* " + Comment.str() + " */\n";
  return Name;
}

void XformGenerator::Impl::finishFunction(StringRef Name, StringRef Comment,
                                          const std::string &B) {
  Bodies += "\n/* " + Comment.str() + " */\nstatic int " + Name.str() +
            FnParams + " {\n  (void)__xf_ctx;\n  (void)__xf_in;\n  (void)__xf_out;\n" +
            B + "  return 0;\n}\n";
}

/// The function that transforms one old O into one new N, honouring a spec
/// rule for the pair.
std::string XformGenerator::Impl::objFn(const TypeDesc *O, const TypeDesc *N,
                                        const WalkCtx &C) {
  std::pair<uint64_t, uint64_t> Key{hashOf(O), hashOf(N)};
  if (auto It = ObjFns.find(Key); It != ObjFns.end())
    return It->second;
  auto Rule = TypeRules.find(Key);
  if (Rule == TypeRules.end())
    return ObjFns[Key] = defaultFn(O, N, C);
  std::string Comment = typeName(O) + " -> " + typeName(N) + ": spec " +
                        Rule->second->To.Loc.str();
  std::string Name = newFunction("s", Comment);
  ObjFns[Key] = Name;
  BlockEnv Env;
  Env.Rule = Rule->second;
  Env.In = "__xf_in";
  Env.Out = "__xf_out";
  Env.OldT = O;
  Env.NewT = N;
  Env.SelfPair = Key;
  std::string B = blockStmts(Env);
  finishFunction(Name, Comment, B);
  return Name;
}

/// The transformer xfgen derives itself: field by field, element by element.
std::string XformGenerator::Impl::defaultFn(const TypeDesc *O,
                                            const TypeDesc *N,
                                            const WalkCtx &C) {
  std::pair<uint64_t, uint64_t> Key{hashOf(O), hashOf(N)};
  if (auto It = DefaultFns.find(Key); It != DefaultFns.end())
    return It->second;
  std::string Comment = typeName(O) + " -> " + typeName(N);
  std::string Name = newFunction("t", Comment);
  DefaultFns[Key] = Name; // before the body: the types may be recursive
  std::string B;
  if (isAggregate(O) && O->Kind == N->Kind && TypeRules.count(Key) &&
      O->Kind == MVEDSUA_TYPE_UNION) {
    // A changed union's default, reachable only from its own rule ($xform):
    // the bytes both layouts share.
    B += "  memcpy(__xf_out, __xf_in, " +
         std::to_string(std::min(O->Size, N->Size)) + ");\n";
  } else if (isAggregate(O) && O->Kind == N->Kind) {
    structBody(B, O, N, C);
  } else {
    WalkCtx E = C;
    E.Annots = 0;
    E.AnnotArg.clear();
    convert(B, O, N, "__xf_in", "__xf_out", E);
  }
  finishFunction(Name, Comment, B);
  return Name;
}

std::string XformGenerator::Impl::descFor(const TypeDesc *O, const TypeDesc *N,
                                          const WalkCtx &C) {
  std::pair<uint64_t, uint64_t> Key{hashOf(O), hashOf(N)};
  if (auto It = DescNames.find(Key); It != DescNames.end())
    return It->second;
  std::string Name = "__mvedsua_xf_d" + std::to_string(NextId++);
  DescNames[Key] = Name;
  std::string Fn = objFn(O, N, C);
  Descs += "static const struct __mvedsua_xf_type " + Name + " = {" + Fn +
           ", " + std::to_string(O ? O->Size : 0) + ", " +
           std::to_string(N ? N->Size : 0) + ", " + trackMacro(O) + "}; /* " +
           typeName(O) + " -> " + typeName(N) + " */\n";
  return Name;
}

/// Whether allocations of O are tracked for overlaps is decided once every
/// site is known: the descriptor names a macro defined before it.
std::string XformGenerator::Impl::trackMacro(const TypeDesc *O) {
  TrackHashes.insert(hashOf(O));
  return "__mvedsua_xf_track_" + utohexstr(hashOf(O), true);
}

/// True when U holds a T by value (Arrays: an array of at least two T), in a
/// field or an array element, at any depth.
static bool holdsByValue(const TypeDesc *U, uint64_t T, bool Arrays) {
  if (!U || U->Kind == MVEDSUA_TYPE_POINTER)
    return false;
  if (U->Kind == MVEDSUA_TYPE_ARRAY) {
    bool Direct = hashOf(U->Target) == T && (!Arrays || U->Count >= 2);
    return Direct || holdsByValue(U->Target, T, Arrays);
  }
  for (const FieldDesc &F : U->Fields)
    if ((!Arrays && hashOf(F.Type) == T) || holdsByValue(F.Type, T, Arrays))
      return true;
  return false;
}

/// Old types whose heap objects a pointer could reach in the middle: one
/// allocated as arrays at one site and reached from another; one held by
/// value in another heap type and reached by a single-object pointer (or
/// held as an array and reached by an array pointer), then both. Such a
/// pointer would be taken for an object of its own and its address freed:
/// the transformer tracks these allocations and fails the update if two old
/// objects overlap. (kvd's entries are not at risk, and cost nothing.)
std::set<uint64_t> XformGenerator::Impl::interiorRisks() const {
  std::set<uint64_t> Risk;
  for (auto &[H, St] : Sites) {
    if (St.Arrays && St.Total >= 2)
      Risk.insert(H);
    bool Singles = St.Total > St.Arrays;
    for (auto &[H2, Other] : Sites) {
      if (H2 == H)
        continue;
      if ((Singles && holdsByValue(Other.Type, H, false)) ||
          (St.Arrays && holdsByValue(Other.Type, H, true))) {
        Risk.insert(H);
        Risk.insert(H2);
      }
    }
  }
  return Risk;
}

//===----------------------------------------------------------------------===//
// Converting one object: dispatch on the pair of kinds.
//===----------------------------------------------------------------------===//

std::string XformGenerator::Impl::convert(std::string &B, const TypeDesc *O,
                                          const TypeDesc *N,
                                          const std::string &In,
                                          const std::string &Out,
                                          const WalkCtx &C) {
  if (C.Annots & MVEDSUA_ANNOT_OPAQUE) {
    if (hashOf(O) != hashOf(N) && (!O || !N || O->Size != N->Size)) {
      refuse(C, "MVEDSUA_OPAQUE data changed size (" + typeName(O) + " -> " +
                    typeName(N) + ")",
             "its bytes cannot be copied; transform it in a spec rule `" +
                 C.RuleHint + " -> " + C.RuleHint + " : { ... }`");
      return "refused";
    }
    B += "  memcpy(" + Out + ", " + In + ", " + std::to_string(N->Size) +
         "); /* MVEDSUA_OPAQUE */\n";
    return "copied as bytes (MVEDSUA_OPAQUE)";
  }
  if (!need(O, N))
    return copyUnchanged(B, O, In, Out);
  if (O && N && TypeRules.count({O->Hash, N->Hash}) && !isAggregate(O)) {
    B += "  if (" + objFn(O, N, C) + "(__xf_ctx, " + In + ", " + Out +
         ")) return -1;\n";
    return "by its spec rule";
  }
  if (isScalar(O) && isScalar(N))
    return scalar(B, O, N, Place::bytes(In), Place::bytes(Out), C);
  if (O && N && O->Kind == MVEDSUA_TYPE_ARRAY && N->Kind == MVEDSUA_TYPE_ARRAY)
    return array(B, O, N, In, Out, C);
  if (O && N && O->Kind == MVEDSUA_TYPE_POINTER &&
      N->Kind == MVEDSUA_TYPE_POINTER)
    return pointer(B, O, N, In, Out, C);
  if (isAggregate(O) && isAggregate(N) && O->Kind == N->Kind) {
    bool Same = O->Name == N->Name || TypeRenames.count({O->Name, N->Name});
    if (!Same) {
      refuse(C, typeName(O) + " became " + typeName(N) + ", an unrelated type",
             "map them with a spec rule `" + typeName(O) + " -> " +
                 typeName(N) + "` or transform `" + C.RuleHint + "` in one");
      return "refused";
    }
    if (O->Kind == MVEDSUA_TYPE_UNION && !TypeRules.count({O->Hash, N->Hash})) {
      refuse(C, typeName(O) + " changed and which member is active is unknown",
             "write a spec rule `" + typeName(O) + " -> " + typeName(N) +
                 " : { ... }`");
      return "refused";
    }
    B += "  if (" + objFn(O, N, C) + "(__xf_ctx, " + In + ", " + Out +
         ")) return -1;\n";
    return TypeRules.count({O->Hash, N->Hash}) ? "by its spec rule"
                                                : "field by field";
  }
  refuse(C, typeName(O) + " cannot become " + typeName(N),
         "transform it in a spec rule `" + C.RuleHint + " -> " + C.RuleHint +
             " : { ... }`");
  return "refused";
}

/// One scalar converted: loaded as the old C type, converted by C (enums:
/// by enumerator name), stored as the new one.
std::string XformGenerator::Impl::scalar(std::string &B, const TypeDesc *O,
                                         const TypeDesc *N, const Place &From,
                                         const Place &To, const WalkCtx &C) {
  std::string V = fresh("__v"), W = fresh("__w");
  B += "  { " + From.load(scalarCType(O), isSigned(O), V) + " " +
       scalarCType(N) + " " + W + " = (" + scalarCType(N) + ")" + V + ";\n";
  std::string How = "converted";
  bool Enums = O->Kind == MVEDSUA_TYPE_ENUM && N->Kind == MVEDSUA_TYPE_ENUM;
  if (Enums && O->Enumerators != N->Enumerators) {
    // Enumerators are matched by name: a renumbered constant keeps meaning.
    std::string Cases;
    std::set<int64_t> Seen;
    for (auto &[Name, Value] : O->Enumerators) {
      if (!Seen.insert(Value).second)
        continue;
      auto It = llvm::find_if(N->Enumerators,
                              [&](auto &P) { return P.first == Name; });
      if (It == N->Enumerators.end()) {
        Cases += "    case " + std::to_string(Value) +
                 ": return __mvedsua_xf_fail(__xf_ctx, " +
                 cString(C.Root + ": " + C.Path + ": " + Name +
                         " does not exist in the new " + typeName(N)) +
                 ");\n";
        Warnings.push_back(C.Where + ": " + Name + " no longer exists in " +
                           typeName(N) + ": the update fails if it is in use");
      } else if (It->second != Value) {
        Cases += "    case " + std::to_string(Value) + ": " + W + " = (" +
                 scalarCType(N) + ")" + std::to_string(It->second) +
                 "; break; /* " + Name + " */\n";
      }
    }
    if (!Cases.empty())
      B += "    switch ((int64_t)" + V + ") {\n" + Cases +
           "    default: break;\n    }\n";
    How = "enumerators mapped by name";
  } else {
    warn(C, O, N);
    if (!narrowing(O, N).empty())
      How = "converted (warning: " + narrowing(O, N) + ")";
  }
  B += "    " + To.store(W) + "\n  }\n";
  return How;
}

std::string XformGenerator::Impl::array(std::string &B, const TypeDesc *O,
                                        const TypeDesc *N,
                                        const std::string &In,
                                        const std::string &Out,
                                        const WalkCtx &C) {
  if ((O->Flags | N->Flags) & MVEDSUA_TYPE_FLEXIBLE) {
    refuse(C, "an array of unknown length of a changed type (" + typeName(O) +
                  " -> " + typeName(N) + ")",
           "transform it in a spec rule `" + C.RuleHint + " -> " + C.RuleHint +
               " : { ... }`");
    return "refused";
  }
  uint64_t Count = std::min(O->Count, N->Count);
  std::string How = O->Count == N->Count
                        ? "element by element"
                        : "resized " + std::to_string(O->Count) + " -> " +
                              std::to_string(N->Count) + " elements";
  if (O->Count > N->Count) {
    Lost.push_back(C.Where + ": elements " + std::to_string(N->Count) + ".." +
                   std::to_string(O->Count - 1) + " of " + typeName(O));
    Warnings.push_back(C.Where + ": " + typeName(O) + " -> " + typeName(N) +
                       ": elements from " + std::to_string(N->Count) +
                       " on are dropped");
  }
  std::string I = fresh("__i");
  std::string Os = std::to_string(O->Target ? O->Target->Size : 0);
  std::string Ns = std::to_string(N->Target ? N->Target->Size : 0);
  WalkCtx E = C;
  E.Path += "[" + I + "]";
  E.Deref = false;
  E.Annots = 0;
  B += "  for (uint64_t " + I + " = 0; " + I + " < " + std::to_string(Count) +
       "; " + I + "++) {\n";
  convert(B, O->Target, N->Target, In + " + " + I + " * " + Os,
          Out + " + " + I + " * " + Ns, E);
  B += "  }\n";
  return How;
}

/// The element count of the pointer being converted, into __n: 1, or its
/// MVEDSUA_ARRAY/PTRARRAY(n) with n a constant, a sibling field of the old
/// enclosing struct, or (on an entry) an integer global.
std::string XformGenerator::Impl::countExpr(std::string &B, const WalkCtx &C,
                                            const std::string &BaseAt) {
  std::string Nv = fresh("__n");
  B += "  uint64_t " + Nv + " = 1;\n";
  if (!(C.Annots & (MVEDSUA_ANNOT_ARRAY | MVEDSUA_ANNOT_PTRARRAY)))
    return Nv;
  StringRef Arg = C.AnnotArg;
  uint64_t Const;
  if (!Arg.getAsInteger(10, Const)) {
    B += "  " + Nv + " = " + std::to_string(Const) + ";\n";
    return Nv;
  }
  const TypeDesc *T = nullptr;
  std::string From;
  if (C.Base) {
    if (const FieldDesc *F = fieldNamed(C.Base, Arg)) {
      T = F->Type;
      if (isBitField(*F)) {
        B += "  " + Nv + " = __mvedsua_xf_getbits(" + BaseAt + ", " +
             std::to_string(F->OffsetBits) + ", " +
             std::to_string(F->SizeBits) + ");\n";
        return Nv;
      }
      From = BaseAt + " + " + std::to_string(F->OffsetBits / 8);
    }
  } else if (C.Entry) {
    for (const StateEntry &G : Old.Entries)
      if (G.Value && G.Kind != MVEDSUA_ENTRY_FUNCTION &&
          G.Value->getName() == Arg) {
        T = G.Type;
        std::string Gv = fresh("__g");
        B += "  unsigned char *" + Gv + " = __mvedsua_xf_old(__xf_ctx, " +
             std::to_string(G.Kind) + ", " + cString(G.Key) + ");\n";
        From = Gv;
        break;
      }
  }
  if (!T || !isScalar(T)) {
    refuse(C, "the length '" + Arg.str() + "' names no integer", 
           "fix the MVEDSUA_ARRAY/MVEDSUA_PTRARRAY annotation");
    return Nv;
  }
  std::string V = fresh("__c");
  // A global may be absent from the old version's .so (optimised away).
  B += std::string(C.Base ? "  " : "  if (" + From + ") ") + "{ " + scalarCType(T) + " " + V + "; memcpy(&" + V +
       ", " + From + ", sizeof " + V + ");";
  if (isSigned(T))
    B += " if (" + V + " < 0) return __mvedsua_xf_fail(__xf_ctx, " +
         cString(C.Root + ": " + C.Path + ": negative length '" + Arg.str() +
                 "'") +
         ");";
  B += " " + Nv + " = (uint64_t)" + V + "; }\n";
  return Nv;
}

std::string XformGenerator::Impl::pointer(std::string &B, const TypeDesc *O,
                                          const TypeDesc *N,
                                          const std::string &In,
                                          const std::string &Out,
                                          const WalkCtx &C) {
  const TypeDesc *Po = O->Target, *Pn = N->Target;
  std::string Fix = "mark it MVEDSUA_OPAQUE to keep the pointer as is, or "
                    "transform it in a spec rule `" +
                    C.RuleHint + " -> " + C.RuleHint + " : { ... }`";
  if (!Po || !Pn) {
    refuse(C, "a void * (" + typeName(O) + " -> " + typeName(N) +
                  ") may reach a changed type",
           Fix);
    return "refused";
  }
  if (Po->Kind == MVEDSUA_TYPE_OPAQUE || Pn->Kind == MVEDSUA_TYPE_OPAQUE) {
    refuse(C, "a pointer to an incomplete type (" + typeName(O) + " -> " +
                  typeName(N) + ") reaches a changed type",
           Fix);
    return "refused";
  }
  if (Po->Kind == MVEDSUA_TYPE_FUNCTION) {
    B += "  memcpy(" + Out + ", " + In + ", sizeof(void *));\n  if (__mvedsua_xf_remap_at(__xf_ctx, " + Out + ")) return -1;\n";
    return "remapped";
  }
  if ((Po->Kind == MVEDSUA_TYPE_ARRAY && (Po->Flags & MVEDSUA_TYPE_FLEXIBLE))) {
    refuse(C, "a pointer to an array of unknown length of a changed type (" +
                  typeName(O) + ")",
           Fix);
    return "refused";
  }
  bool Many = C.Annots & (MVEDSUA_ANNOT_ARRAY | MVEDSUA_ANNOT_PTRARRAY);
  WalkCtx E = C;
  E.Path += Many ? "[]" : "";
  E.Deref = true;
  E.Annots = 0;
  E.AnnotArg.clear();
  E.Base = nullptr;
  E.Entry = nullptr;
  E.Where = typeName(Po);
  std::string Block;
  std::string Nv = countExpr(Block, C, "__xf_in");
  std::string D = descFor(Po, Pn, E);
  HeapTypes.insert(typeName(Po));
  Site &St = Sites[Po->Hash];
  St.Arrays += Many;
  St.Total++;
  St.Type = Po;
  B += "  {\n" + Block + "  if (__mvedsua_xf_ptr(__xf_ctx, " + In + ", " + Out +
       ", " + Nv + ", &" + D + ")) return -1;\n  }\n";
  if (Many)
    return "new arrays of '" + C.AnnotArg + "' " + typeName(Pn) +
           " (old ones freed)";
  return "new " + typeName(Pn) + " objects (old ones freed)";
}

/// How an offset into a field's old type becomes one into its new type, as
/// a C expression of X.
std::string XformGenerator::Impl::subMap(const TypeDesc *O, const TypeDesc *N,
                                         const std::string &X) {
  if (!need(O, N))
    return "(int64_t)(" + X + ")";
  bool Arrays = O->Kind == MVEDSUA_TYPE_ARRAY && N->Kind == MVEDSUA_TYPE_ARRAY;
  bool Structs = O->Kind == MVEDSUA_TYPE_STRUCT && N->Kind == O->Kind;
  if (Arrays || Structs)
    return mapFn(O, N) + "(" + X + ")";
  return "((" + X + ") == 0 ? 0 : -1)"; // a converted scalar or pointer
}

/// The offset map of a pair: where a byte of an old O lives in a new N (-1:
/// nowhere), for pointers into the middle of transformed globals.
std::string XformGenerator::Impl::mapFn(const TypeDesc *O, const TypeDesc *N) {
  std::pair<uint64_t, uint64_t> Key{hashOf(O), hashOf(N)};
  if (auto It = MapFns.find(Key); It != MapFns.end())
    return It->second;
  std::string Name = "__mvedsua_xf_m" + std::to_string(NextId++);
  MapFns[Key] = Name;
  MapProtos += "static int64_t " + Name + "(uint64_t off); /* " +
               typeName(O) + " -> " + typeName(N) + " */\n";
  std::string B;
  bool Arrays = O && N && O->Kind == MVEDSUA_TYPE_ARRAY &&
                N->Kind == MVEDSUA_TYPE_ARRAY &&
                !((O->Flags | N->Flags) & MVEDSUA_TYPE_FLEXIBLE) &&
                O->Target && N->Target && O->Target->Size;
  if (!need(O, N)) {
    B = "  return (int64_t)off;\n";
  } else if (Arrays) {
    std::string Os = std::to_string(O->Target->Size);
    B = "  uint64_t i = off / " + Os + ", r = off % " + Os + ";\n  if (i >= " +
        std::to_string(std::min(O->Count, N->Count)) + ") return -1;\n" +
        "  int64_t s = " + subMap(O->Target, N->Target, "r") + ";\n" +
        "  return s < 0 ? -1 : (int64_t)(i * " +
        std::to_string(N->Target->Size) + ") + s;\n";
  } else if (O && N && O->Kind == MVEDSUA_TYPE_STRUCT && N->Kind == O->Kind &&
             !TypeRules.count(Key)) {
    for (const FieldDesc &G : N->Fields) {
      auto Rule = FieldRules.find({N->Hash, G.Name});
      if (Rule != FieldRules.end() && Rule->second.Rule->HasCode)
        continue; // written by code: no byte of the old field maps here
      const FieldDesc *F = Rule != FieldRules.end()
                               ? fieldNamed(O, Rule->second.OldField)
                               : matchField(O, N, G);
      if (!F || !F->Type || !G.Type || isBitField(*F) || isBitField(G))
        continue;
      std::string Lo = std::to_string(F->OffsetBits / 8);
      B += "  if (off >= " + Lo + " && off < " + Lo + " + " +
           std::to_string(F->Type->Size) + ") {\n    int64_t s = " +
           subMap(F->Type, G.Type, "off - " + Lo) +
           ";\n    return s < 0 ? -1 : " + std::to_string(G.OffsetBits / 8) +
           " + s;\n  }\n";
    }
    B += "  return -1;\n";
  } else {
    B = "  return off == 0 ? 0 : -1;\n";
  }
  MapBodies += "static int64_t " + Name + "(uint64_t off) {\n" + B + "}\n";
  return Name;
}

//===----------------------------------------------------------------------===//
// Unchanged types: bytes, and their pointers remapped.
//===----------------------------------------------------------------------===//

bool XformGenerator::Impl::hasPointers(const TypeDesc *T) {
  if (!T)
    return false;
  if (auto It = PointerMemo.find(T->Hash); It != PointerMemo.end())
    return It->second;
  PointerMemo[T->Hash] = false; // by-value nesting is acyclic
  bool Has = T->Kind == MVEDSUA_TYPE_POINTER;
  if (T->Kind == MVEDSUA_TYPE_ARRAY && !(T->Flags & MVEDSUA_TYPE_FLEXIBLE))
    Has = hasPointers(T->Target);
  if (T->Kind == MVEDSUA_TYPE_STRUCT)
    for (const FieldDesc &F : T->Fields)
      Has |= !(F.Annotations & MVEDSUA_ANNOT_OPAQUE) && !isBitField(F) &&
             hasPointers(F.Type);
  // Unions: which member holds a pointer is unknown; their bytes are kept.
  return PointerMemo[T->Hash] = Has;
}

/// Pointers inside an unchanged object at At: remapped in place, directly in
/// a new object (InNew) or deferred in an old one the new version shares
/// (InShared); the unchanged heap objects they reach are visited likewise.
void XformGenerator::Impl::remapStmts(std::string &B, const TypeDesc *T,
                                      const std::string &At, RemapMode M,
                                      const FieldDesc *F, const TypeDesc *BaseT,
                                      const std::string &BaseAt) {
  if (!hasPointers(T))
    return;
  if (T->Kind == MVEDSUA_TYPE_POINTER) {
    const TypeDesc *P = T->Target;
    // Visit before remapping: the visit follows the old value.
    if (P && P->Kind != MVEDSUA_TYPE_FUNCTION && P->Kind != MVEDSUA_TYPE_OPAQUE &&
        hasPointers(P)) {
      WalkCtx C;
      C.Base = BaseT;
      C.Annots = F ? F->Annotations : 0;
      C.AnnotArg = F ? F->AnnotArg : "";
      C.Root = "unchanged " + typeName(T);
      C.Path = F ? F->Name : "";
      std::string Count;
      std::string Nv = countExpr(Count, C, BaseAt);
      B += "  {\n" + Count + "  if (__mvedsua_xf_visit(__xf_ctx, " + At +
           ", " + Nv + ", &" + visitDesc(P) + ")) return -1;\n  }\n";
    }
    if (M == InNew)
      B += "  if (__mvedsua_xf_remap_at(__xf_ctx, " + At + ")) return -1;\n";
    else
      B += "  if (__mvedsua_xf_remap_later(__xf_ctx, " + At + ")) return -1;\n";
  } else if (T->Kind == MVEDSUA_TYPE_ARRAY) {
    std::string I = fresh("__i");
    B += "  for (uint64_t " + I + " = 0; " + I + " < " +
         std::to_string(T->Count) + "; " + I + "++) {\n";
    remapStmts(B, T->Target,
               At + " + " + I + " * " + std::to_string(T->Target->Size), M);
    B += "  }\n";
  } else {
    for (const FieldDesc &G : T->Fields)
      if (!(G.Annotations & MVEDSUA_ANNOT_OPAQUE) && !isBitField(G))
        remapStmts(B, G.Type, At + " + " + std::to_string(G.OffsetBits / 8), M,
                   &G, T, At);
  }
}

std::string XformGenerator::Impl::remapFn(const TypeDesc *T) {
  if (auto It = RemapFns.find(T->Hash); It != RemapFns.end())
    return It->second;
  std::string Comment = "remap the pointers of an unchanged " + typeName(T);
  std::string Name = newFunction("r", Comment);
  RemapFns[T->Hash] = Name;
  std::string B;
  remapStmts(B, T, "__xf_out", InNew);
  finishFunction(Name, Comment, B);
  return Name;
}

/// The descriptor of the in-place visit of an unchanged heap object of T.
std::string XformGenerator::Impl::visitDesc(const TypeDesc *T) {
  if (auto It = VisitDescs.find(T->Hash); It != VisitDescs.end())
    return It->second;
  std::string Comment = "visit an unchanged " + typeName(T) + " in place";
  std::string Name = newFunction("v", Comment);
  std::string D = "__mvedsua_xf_d" + std::to_string(NextId++);
  VisitDescs[T->Hash] = D;
  Descs += "static const struct __mvedsua_xf_type " + D + " = {" + Name + ", " +
           std::to_string(T->Size) + ", " + std::to_string(T->Size) +
           ", 0};\n";
  std::string B;
  remapStmts(B, T, "__xf_in", InShared);
  finishFunction(Name, Comment, B);
  return D;
}

/// Unions with pointer members, held by value in T: their bytes are copied
/// and their pointers not remapped (which member is live is unknown), as the
/// runtime does for unchanged state; the summary says so, once per union.
void XformGenerator::Impl::warnUnions(const TypeDesc *T) {
  if (!T || T->Kind == MVEDSUA_TYPE_POINTER)
    return;
  if (T->Kind == MVEDSUA_TYPE_ARRAY)
    return warnUnions(T->Target);
  for (const FieldDesc &F : T->Fields) {
    if (F.Annotations & MVEDSUA_ANNOT_OPAQUE)
      continue;
    if (T->Kind == MVEDSUA_TYPE_UNION && hasPointers(F.Type) &&
        WarnedUnions.insert(T->Name).second)
      Warnings.push_back(T->Name + " holds pointers: its bytes are copied and "
                         "they are not remapped (mark the members "
                         "MVEDSUA_OPAQUE to say that is intended, or transform "
                         "it in a spec rule)");
    warnUnions(F.Type);
  }
}

std::string XformGenerator::Impl::copyUnchanged(std::string &B,
                                                const TypeDesc *T,
                                                const std::string &In,
                                                const std::string &Out) {
  if (!T || !T->Size)
    return "unchanged";
  warnUnions(T);
  B += "  memcpy(" + Out + ", " + In + ", " + std::to_string(T->Size) + ");\n";
  if (!hasPointers(T))
    return "copied";
  if (T->Kind == MVEDSUA_TYPE_POINTER) {
    remapStmts(B, T, Out, InNew);
    return "pointer remapped";
  }
  B += "  if (" + remapFn(T) + "(__xf_ctx, " + Out + ", " + Out +
       ")) return -1;\n";
  return "copied, pointers remapped";
}

//===----------------------------------------------------------------------===//
// Structs: field by field, matched by name.
//===----------------------------------------------------------------------===//

/// The old field that becomes the new field G (same name; anonymous members
/// by position among the anonymous ones).
static const FieldDesc *matchField(const TypeDesc *O, const TypeDesc *N,
                                   const FieldDesc &G) {
  if (!G.Name.empty())
    return fieldNamed(O, G.Name);
  unsigned Ordinal = 0;
  for (const FieldDesc &F : N->Fields) {
    if (&F == &G)
      break;
    Ordinal += F.Name.empty();
  }
  for (const FieldDesc &F : O->Fields)
    if (F.Name.empty() && Ordinal-- == 0)
      return &F;
  return nullptr;
}

void XformGenerator::Impl::structBody(std::string &B, const TypeDesc *O,
                                      const TypeDesc *N, const WalkCtx &C) {
  TypeNote Note;
  Note.Header = "changed " + O->Name +
                (O->Name != N->Name ? " -> " + N->Name : std::string()) + ":";
  if (const FieldDesc *Flex = flexibleMember(O) ? flexibleMember(O) : flexibleMember(N)) {
    refuse(C, O->Name + " has a flexible array member '" + Flex->Name +
                  "' of unknown length",
           "mark pointers to it MVEDSUA_OPAQUE to keep them, or transform `" +
               C.RuleHint + "` in a spec rule");
    return;
  }
  if (O->Size != N->Size)
    Note.Lines.push_back("size " + std::to_string(O->Size) + " -> " +
                         std::to_string(N->Size) + " bytes");
  std::set<std::string> UsedOld;
  for (const FieldDesc &G : N->Fields)
    field(B, Note, O, N, G, C, UsedOld);
  for (const FieldDesc &F : O->Fields) {
    if (UsedOld.count(F.Name) || F.Name.empty())
      continue;
    Note.Lines.push_back("field '" + F.Name + "' removed (" + typeName(F.Type) +
                         "): its value is dropped");
    Lost.push_back("field '" + F.Name + "' of " + O->Name + " (" +
                   typeName(F.Type) + ")");
  }
  if (Note.Lines.empty())
    Note.Lines.push_back("same fields; types they reach changed");
  TypeNotes.push_back(std::move(Note));
}

/// The summary line of a matched field: what changed and how it is handled
/// ("" when nothing about it changed).
static std::string fieldLine(const FieldDesc &F, const FieldDesc &G,
                             bool Transformed, const std::string &How) {
  bool Retyped = typeName(F.Type) != typeName(G.Type);
  bool Moved = F.OffsetBits != G.OffsetBits;
  if (F.Name == G.Name && !Moved && !Transformed)
    return "";
  std::string Line = "field '" + G.Name + "'";
  if (F.Name != G.Name)
    Line += " (was '" + F.Name + "')";
  Line += Retyped ? " retyped: " + typeName(F.Type) + " -> " + typeName(G.Type)
                  : " (" + typeName(G.Type) + ")";
  if (Moved)
    Line += (Retyped ? ", moved " : " moved: offset ") +
            std::to_string(F.OffsetBits / 8) + " -> " +
            std::to_string(G.OffsetBits / 8);
  return Line + ": " + How;
}

/// The arguments E_G(...) binds parameter Param of generic struct S to, in
/// one version; null when nothing binds it.
const std::set<std::string> *
XformGenerator::Impl::binding(bool NewSide, const TypeDesc *S,
                              const std::string &Param) {
  auto P = llvm::find(S->GenericParams, Param);
  const GenericBindings &All = NewSide ? NewBindings : OldBindings;
  auto It = All.find(S->Name);
  if (P == S->GenericParams.end() || It == All.end())
    return nullptr;
  const std::set<std::string> &Set = It->second[P - S->GenericParams.begin()];
  return Set.empty() ? nullptr : &Set;
}

/// A generic struct whose payload type changed is transformed even though its
/// own layout did not: its E_T void * fields hide the change from the hashes.
void XformGenerator::Impl::forceGenericContainers() {
  for (bool Changed = true; Changed;) {
    Changed = false;
    for (const TypeDesc *S : OldTypes) {
      const TypeDesc *SN = S->GenericParams.empty()
                               ? nullptr
                               : resolveSpelling(S->Name, true);
      if (!SN || ForcedOld.count(S->Hash))
        continue;
      for (const std::string &P : S->GenericParams) {
        const std::set<std::string> *OB = binding(false, S, P);
        const std::set<std::string> *NB = binding(true, SN, P);
        if (!OB || !NB)
          continue;
        // Any payload that changed (or bindings that differ: genericField
        // then refuses, naming them) makes the container a transformed type.
        bool Payload = *OB != *NB;
        for (const std::string &A : *OB) {
          const TypeDesc *Po = resolveSpelling(payloadPointee(A), false);
          const TypeDesc *Pn = resolveSpelling(payloadPointee(A), true);
          Payload |= Po && Pn && need(Po, Pn);
        }
        if (Payload) {
          ForcedOld.insert(S->Hash);
          ForcedNew.insert(SN->Hash);
          ReachMemo.clear();
          Changed = true;
          break;
        }
      }
    }
  }
}

/// A void * field marked E_T(@t) of a transformed generic struct: its payload
/// is the type E_G(...) binds @t to, the same in every use. [opaque] copies
/// the pointer (FC becomes OPAQUE and the caller goes on, false); a payload
/// type that did not change is remapped; one that changed gets new objects,
/// like a typed pointer. True when handled (or refused).
bool XformGenerator::Impl::genericField(std::string &B, const TypeDesc *O,
                                        const TypeDesc *N, const FieldDesc &F,
                                        const FieldDesc &G, WalkCtx &FC,
                                        std::string &How) {
  std::string Spelled = "E_T(" + F.GenericParam + ")";
  std::string Fix = "bind it with E_G(...) where the container is used, or "
                    "transform it in a spec rule `" +
                    FC.RuleHint + " -> " + FC.RuleHint +
                    " : { XF_PTR($xform(struct T, struct T), $in, $out); }`";
  // Where $xform(S, S, args...) may give the closure, the case without one
  // fails the update when it happens instead.
  auto refuse = [&](const WalkCtx &C, const std::string &Problem,
                    const std::string &Fx) {
    if (!InKGen)
      return Impl::refuse(C, Problem, Fx);
    B += "  return __mvedsua_xf_kfail(" +
         cString("xfgen: " + C.Root + ": " + C.Path + ": " + Problem +
                 ", and no $xform(" + O->Name + ", " + N->Name +
                 ", ...) gave a closure for " + F.GenericParam) +
         ");\n";
    How = "fails the update unless $xform(" + O->Name + ", " + N->Name +
          ", ...) gives it: " + Problem;
  };
  const std::set<std::string> *OldB = binding(false, O, F.GenericParam);
  const std::string &NewParam = G.GenericParam.empty() ? F.GenericParam
                                                       : G.GenericParam;
  const std::set<std::string> *NewB = binding(true, N, NewParam);
  if (!OldB || !NewB) {
    refuse(FC, "a void * marked " + Spelled + " in a transformed " + O->Name +
                   ", but no E_G(...) in the " + (OldB ? "new" : "old") +
                   " version's state binds " + F.GenericParam,
           Fix);
    return true;
  }
  auto Join = [](const std::set<std::string> &S) {
    std::string J;
    for (const std::string &A : S)
      J += (J.empty() ? "" : ", ") + A;
    return J;
  };
  if (OldB->size() != 1 || NewB->size() != 1) {
    refuse(FC, "a void * marked " + Spelled + " whose uses bind " +
                   F.GenericParam + " to different types (" +
                   Join(OldB->size() != 1 ? *OldB : *NewB) + ")",
           "one transformer per struct cannot tell them apart; " + Fix);
    return true;
  }
  if (*OldB->begin() == "[opaque]" && *NewB->begin() == "[opaque]") {
    FC.Annots |= MVEDSUA_ANNOT_OPAQUE;
    return false;
  }
  std::string OldP = payloadPointee(*OldB->begin());
  std::string NewP = payloadPointee(*NewB->begin());
  const TypeDesc *Po = resolveSpelling(OldP, false);
  const TypeDesc *Pn = resolveSpelling(NewP, true);
  if (!Po || !Pn) {
    refuse(FC, "a void * marked " + Spelled + " bound to '" +
                   (Po ? NewP : OldP) + "', a type the " +
                   (Po ? "new" : "old") + " version's debug info does not have",
           Fix);
    return true;
  }
  std::string In = "__xf_in + " + std::to_string(F.OffsetBits / 8);
  std::string Out = "__xf_out + " + std::to_string(G.OffsetBits / 8);
  if (!need(Po, Pn)) {
    B += "  memcpy(" + Out + ", " + In +
         ", sizeof(void *));\n  if (__mvedsua_xf_remap_at(__xf_ctx, " + Out +
         ")) return -1;\n";
    How = "payload " + typeName(Po) + " unchanged (E_G): the pointer is kept";
    return true;
  }
  WalkCtx E = FC;
  E.Deref = true;
  E.Annots = 0;
  E.AnnotArg.clear();
  E.Base = nullptr;
  E.Entry = nullptr;
  E.Where = typeName(Po);
  std::string D = descFor(Po, Pn, E);
  HeapTypes.insert(typeName(Po));
  Site &St = Sites[Po->Hash];
  St.Total++;
  St.Type = Po;
  B += "  if (__mvedsua_xf_ptr(__xf_ctx, " + In + ", " + Out + ", 1, &" + D +
       ")) return -1;\n";
  How = "payload " + typeName(Po) + " -> " + typeName(Pn) +
        " (E_G): new objects (old ones freed)";
  return true;
}

/// With --kitsune, the generic structs that some $xform(S, S, args...) of
/// the spec gives closures to: they are transformed (their E_T fields use
/// the closures when given).
void XformGenerator::Impl::scanGenericArgs() {
  auto Scan = [&](StringRef Code) {
    for (size_t I = Code.find("$xform"); I != StringRef::npos;
         I = Code.find("$xform", I + 1)) {
      StringRef Args;
      size_t After;
      if (!parenArgs(Code, I + 6, Args, After))
        continue;
      SmallVector<StringRef, 4> Parts = splitArgs(Args);
      const TypeDesc *O = resolveSpelling(Parts[0], false);
      if (!genericXformArgs(O, Parts.size()))
        continue;
      KGenericArgs.insert(O->Name);
      ForcedOld.insert(O->Hash);
      if (const TypeDesc *N = resolveSpelling(Parts[1], true))
        ForcedNew.insert(N->Hash);
      ReachMemo.clear();
    }
  };
  for (const SpecRule &R : S.Rules)
    Scan(R.Code);
  for (const SpecCode &C : S.TopCode)
    Scan(C.Code);
}

/// An E_T field of a generic struct that $xform(S, S, args...) may give a
/// closure: applied to the field when the running transformer got one,
/// otherwise what the E_G bindings say (or the update fails, naming it).
void XformGenerator::Impl::kitsuneGenericField(
    std::string &B, TypeNote &Note, const TypeDesc *O, const TypeDesc *N,
    const FieldDesc &F, const FieldDesc &G, const WalkCtx &C,
    std::set<std::string> &UsedOld) {
  size_t Index = llvm::find(O->GenericParams, F.GenericParam) -
                 O->GenericParams.begin();
  std::string Otherwise;
  InKGen = true;
  field(Otherwise, Note, O, N, G, C, UsedOld);
  InKGen = false;
  B += "  {\n    closure *__xf_g = __mvedsua_xf_kgen_arg(" + cString(O->Name) +
       ", " + std::to_string(Index) + ");\n    if (__xf_g) {\n" +
       "      if (__mvedsua_xf_kinvoke(__xf_g, __xf_in + " +
       std::to_string(F.OffsetBits / 8) + ", __xf_out + " +
       std::to_string(G.OffsetBits / 8) + "))\n        return -1;\n" +
       "    } else {\n" + Otherwise + "    }\n  }\n";
  Note.Lines.push_back("field '" + G.Name + "' (" + F.GenericParam +
                       "): the closure $xform(" + O->Name + ", " + N->Name +
                       ", ...) gives, when given");
}

/// Kitsune's $gen(t): in a rule for a generic struct or one of its fields,
/// the closure for parameter @t the running transformer got, else the one
/// the E_G bindings make.
std::string XformGenerator::Impl::genCall(StringRef Args, const BlockEnv &Env,
                                          const SpecLoc &L) {
  const TypeDesc *S = Env.BaseT ? Env.BaseT
                      : Env.SelfPair.first ? Env.OldT
                                           : nullptr;
  std::string Param = Args.trim().str();
  if (!Param.empty() && Param[0] != '@')
    Param = "@" + Param;
  if (!Opts.KitsuneSpec || !S || S->GenericParams.empty()) {
    error(L.str() + ": error: $gen(" + Args.trim() + ") is Kitsune's (--kitsune) "
          "and only in a rule for a generic struct (E_GENERIC) or its fields");
    return "0";
  }
  auto P = llvm::find(S->GenericParams, Param);
  if (P == S->GenericParams.end()) {
    std::string Known;
    for (const std::string &G : S->GenericParams)
      Known += (Known.empty() ? "" : ", ") + G;
    error(L.str() + ": error: $gen(" + Args.trim() + "): " + S->Name +
          " has no parameter " + Param + " (E_GENERIC(" + Known + "))");
    return "0";
  }
  return "__XF_K_GEN(" + cString(S->Name) + ", " +
         std::to_string(P - S->GenericParams.begin()) + ", " +
         genDefault(S, Param, L) + ")";
}

/// The closure E_G's bindings make for parameter Param of S: of the one
/// payload type both versions bind it to; else one that fails the update.
std::string XformGenerator::Impl::genDefault(const TypeDesc *S,
                                             const std::string &Param,
                                             const SpecLoc &L) {
  const TypeDesc *SN = resolveSpelling(S->Name, true);
  const std::set<std::string> *OB = binding(false, S, Param);
  const std::set<std::string> *NB = SN ? binding(true, SN, Param) : nullptr;
  std::string Why = "E_G binds it to different types";
  if (!OB || !NB)
    Why = "no E_G binds it";
  else if (OB->size() == 1 && NB->size() == 1) {
    if (*OB->begin() == "[opaque]" && *NB->begin() == "[opaque]")
      return "XF_RAW(sizeof(void *))";
    const TypeDesc *Po = resolveSpelling(payloadPointee(*OB->begin()), false);
    const TypeDesc *Pn = resolveSpelling(payloadPointee(*NB->begin()), true);
    if (Po && Pn) {
      WalkCtx C;
      C.Root = "spec rule at " + L.str();
      C.Path = "$gen(" + Param + ")";
      C.RuleHint = typeName(Po);
      C.Where = C.Path;
      std::string D = descFor(Po, Pn, C);
      HeapTypes.insert(typeName(Po));
      Sites[Po->Hash].Total++;
      Sites[Po->Hash].Type = Po;
      return "XF_PTR((&" + kitsuneClosure(D, Po, Pn) + "))";
    }
    Why = "its E_G type is not in both versions";
  }
  return "__mvedsua_xf_kgen_none(" +
         cString("xfgen: " + L.str() + ": $gen(" + Param + ") of " + S->Name +
                 ": no $xform(" + S->Name + ", ...) argument gave it, and " +
                 Why) +
         ")";
}

/// A field rule's block, inline in the struct's transformer: $in/$out are
/// the fields, $base the old struct.
void XformGenerator::Impl::fieldRule(std::string &B, TypeNote &Note,
                                     const TypeDesc *O, const FieldDesc *F,
                                     const FieldDesc &G, const SpecRule &R,
                                     const WalkCtx &FC) {
  if (isBitField(G) || (F && isBitField(*F))) {
    error(R.To.Loc.str() + ": error: " + FC.Where +
          " is a bit-field: a rule needs an addressable field");
    return;
  }
  BlockEnv Env;
  Env.Rule = &R;
  Env.Out = "__xf_out + " + std::to_string(G.OffsetBits / 8);
  Env.NewT = G.Type;
  Env.Base = "__xf_in";
  Env.BaseT = O;
  if (F) {
    Env.In = "__xf_in + " + std::to_string(F->OffsetBits / 8);
    Env.OldT = F->Type;
  }
  B += "  {\n" + blockStmts(Env) + "  }\n";
  std::string Was = F && F->Name != G.Name ? " (was '" + F->Name + "')" : "";
  Note.Lines.push_back("field '" + G.Name + "'" + Was + ": " +
                       (R.Init ? "INIT" : "spec") + " rule " + R.To.Loc.str());
}

/// The new field G of N, from the old struct O: by its rule, or from the old
/// field of the same name (or the rule's), or left as allocated (added).
void XformGenerator::Impl::field(std::string &B, TypeNote &Note,
                                 const TypeDesc *O, const TypeDesc *N,
                                 const FieldDesc &G, const WalkCtx &C,
                                 std::set<std::string> &UsedOld) {
  const FieldRule *FR = nullptr;
  if (auto It = FieldRules.find({N->Hash, G.Name}); It != FieldRules.end())
    FR = &It->second;
  const FieldDesc *F = FR ? (FR->OldField.empty() ? nullptr
                                                  : fieldNamed(O, FR->OldField))
                          : matchField(O, N, G);
  if (F)
    UsedOld.insert(F->Name);
  WalkCtx FC = C;
  FC.Path = C.member(G.Name);
  FC.Deref = false;
  FC.Annots = F ? F->Annotations : 0;
  FC.AnnotArg = F ? F->AnnotArg : "";
  FC.Base = O;
  FC.Entry = nullptr;
  FC.RuleHint = O->Name + "." + G.Name;
  FC.Where = N->Name + "." + G.Name;
  if (FR && FR->Rule->HasCode)
    return fieldRule(B, Note, O, F, G, *FR->Rule, FC);
  if (!F) {
    Note.Lines.push_back("field '" + G.Name + "' added (" + typeName(G.Type) +
                         "): starts zeroed (a global keeps its initialiser)");
    return;
  }
  bool VoidPtr = F->Type && F->Type->Kind == MVEDSUA_TYPE_POINTER &&
                 !F->Type->Target && !(F->Annotations & MVEDSUA_ANNOT_OPAQUE);
  if (VoidPtr && !InKGen && !F->GenericParam.empty() &&
      KGenericArgs.count(O->Name))
    return kitsuneGenericField(B, Note, O, N, *F, G, C, UsedOld);
  std::string GenericHow;
  if (VoidPtr && need(O, N) && !F->GenericParam.empty() &&
      genericField(B, O, N, *F, G, FC, GenericHow)) {
    if (!GenericHow.empty())
      Note.Lines.push_back("field '" + G.Name + "' (" + F->GenericParam +
                           "): " + GenericHow);
    return;
  }
  VoidPtr &= !(FC.Annots & MVEDSUA_ANNOT_OPAQUE);
  if (VoidPtr && need(O, N)) {
    // What a void * inside a transformed struct points to is unknown, and
    // may be one of the changed types: never guessed.
    refuse(FC, "a void * in a transformed " + O->Name +
                   " may point to a changed type",
           "mark the field MVEDSUA_OPAQUE to keep the pointer as is, or name "
           "its payload in a spec rule `" +
               FC.RuleHint + " -> " + FC.RuleHint +
               " : { XF_PTR($xform(struct T, struct T), $in, $out); }`");
    return;
  }
  std::string How;
  if (isBitField(*F) || isBitField(G))
    bitField(B, *F, G, FC, How);
  else
    How = convert(B, F->Type, G.Type,
                  "__xf_in + " + std::to_string(F->OffsetBits / 8),
                  "__xf_out + " + std::to_string(G.OffsetBits / 8), FC);
  std::string Line = fieldLine(*F, G, need(F->Type, G.Type), How);
  if (!Line.empty())
    Note.Lines.push_back(Line);
}

void XformGenerator::Impl::bitField(std::string &B, const FieldDesc &F,
                                    const FieldDesc &G, const WalkCtx &C,
                                    std::string &How) {
  if (!isScalar(F.Type) || !isScalar(G.Type)) {
    refuse(C, "a bit-field of " + typeName(F.Type) + " -> " + typeName(G.Type),
           "transform it in a spec rule");
    return;
  }
  auto PlaceOf = [](const FieldDesc &D, const std::string &Base) {
    return isBitField(D) ? Place::bits(Base, D.OffsetBits, D.SizeBits)
                         : Place::bytes(Base + " + " +
                                        std::to_string(D.OffsetBits / 8));
  };
  How = scalar(B, F.Type, G.Type, PlaceOf(F, "__xf_in"), PlaceOf(G, "__xf_out"),
               C);
  if (G.SizeBits < F.SizeBits && isBitField(G))
    Warnings.push_back(C.Where + ": bit-field narrowed from " +
                       std::to_string(F.SizeBits) + " to " +
                       std::to_string(G.SizeBits) + " bits");
}

//===----------------------------------------------------------------------===//
// Entries.
//===----------------------------------------------------------------------===//

std::string XformGenerator::Impl::entryFn(const StateEntry *O,
                                          const StateEntry *N,
                                          const SpecRule *R) {
  std::string Comment = std::string(entryKindName(N->Kind)) + " '" + N->Key + "'";
  std::string Name = newFunction("e", Comment);
  std::string B;
  if (R && R->HasCode) {
    BlockEnv Env;
    Env.Rule = R;
    Env.In = O ? "__xf_in" : "";
    Env.Out = "__xf_out";
    Env.OldT = O ? O->Type : nullptr;
    Env.NewT = N->Type;
    B = blockStmts(Env);
  } else {
    WalkCtx C;
    C.Root = std::string(entryKindName(N->Kind)) + " '" + N->Key + "'";
    C.Path = O->Key.substr(O->Key.find_last_of("/#") + 1);
    C.Annots = O->Annotations;
    C.AnnotArg = O->AnnotArg;
    C.Entry = O;
    C.RuleHint = O->Key;
    C.Where = C.Root;
    std::string How = convert(B, O->Type, N->Type, "__xf_in", "__xf_out", C);
    EntryLines.back() += ": " + How;
  }
  finishFunction(Name, Comment, B);
  return Name;
}

void XformGenerator::Impl::planEntry(const StateEntry *O, const StateEntry *N,
                                     const SpecRule *R) {
  std::string Kind = entryKindName(N->Kind);
  std::string TypeChange = typeName(O->Type) + " -> " + typeName(N->Type);
  bool Changed = need(O->Type, N->Type);
  if (O->Kind != N->Kind || O->Key != N->Key) {
    ++Renamed;
    EntryLines.push_back("renamed " + Kind + " '" + O->Key + "' -> '" + N->Key +
                         "' (" + R->To.Loc.str() + ")" +
                         (typeName(O->Type) != typeName(N->Type)
                              ? ", " + TypeChange
                              : std::string()));
  } else if (R && R->HasCode) {
    ++Retyped;
    EntryLines.push_back("spec    " + Kind + " '" + N->Key + "' (" +
                         TypeChange + ")");
  } else if (Changed) {
    ++Retyped;
    EntryLines.push_back("retyped " + Kind + " '" + N->Key + "': " + TypeChange);
  } else {
    ++Unchanged;
    Copied.push_back(O);
    return;
  }
  if (R && R->HasCode)
    EntryLines.back() += ": by the spec rule at " + R->CodeLoc.str();
  if (N->Kind == MVEDSUA_ENTRY_LOCAL || O->Kind == MVEDSUA_ENTRY_LOCAL) {
    // The runtime saves each live frame's copy of a local by its key and
    // restores the new one by the new entry's key: both must be the same
    // local.
    if (O->Kind != N->Kind || O->Key != N->Key) {
      EntryLines.back() += ": refused";
      error((R ? R->To.Loc.str() + ": error: " : std::string()) +
            entryKindName(O->Kind) + " '" + O->Key + "' cannot become " +
            entryKindName(N->Kind) + " '" + N->Key + "': a migrated local is "
            "saved and restored frame by frame under its own key; transform it "
            "under its own name (" + N->Key + " -> " + N->Key + ")");
      return;
    }
    std::string Fn = entryFn(O, N, R);
    Keys.push_back(std::to_string(N->Kind) + ":" + N->Key);
    LocalTable += "    {" + cString(N->Key) + ", " + Fn + "},\n";
    if (!StringRef(EntryLines.back()).ends_with("refused"))
      EntryLines.back() += " (each saved frame's copy)";
    return;
  }
  std::string Fn = entryFn(O, N, R);
  Keys.push_back(std::to_string(N->Kind) + ":" + N->Key);
  EntryTable += "    {" + std::to_string(O->Kind) + ", " + cString(O->Key) +
                ", " + std::to_string(N->Kind) + ", " + cString(N->Key) + ", " +
                Fn + ", " + std::to_string(O->Size) + ", " +
                mapFn(O->Type, N->Type) + "},\n";
}

void XformGenerator::Impl::planInit(const StateEntry *N, const SpecRule *R) {
  ++Added;
  EntryLines.push_back("added   " + std::string(entryKindName(N->Kind)) + " '" +
                       N->Key + "' (" + typeName(N->Type) +
                       "): INIT rule at " + R->To.Loc.str());
  if (N->Kind == MVEDSUA_ENTRY_LOCAL) {
    // Only saved copies are transformed; a new local has none.
    EntryLines.back() += ": refused";
    error(R->To.Loc.str() + ": error: INIT of migrated local '" + N->Key +
          "': the old version has no such local, so no frame has a value to "
          "give it; initialise it in its function");
    return;
  }
  std::string Fn = entryFn(nullptr, N, R);
  Keys.push_back(std::to_string(N->Kind) + ":" + N->Key);
  InitTable += "    {0, 0, " + std::to_string(N->Kind) + ", " + cString(N->Key) +
               ", " + Fn + ", 0, 0},\n";
}

/// One new entry, from its old counterpart (or none).
void XformGenerator::Impl::handleEntry(const StateEntry *O, const StateEntry *N) {
  Done.insert(N);
  auto Rule = EntryRules.find(N);
  const SpecRule *R = Rule == EntryRules.end() ? nullptr : Rule->second.Rule;
  if (N->Annotations & MVEDSUA_ANNOT_NO_MIGRATE) {
    ++Fresh;
    EntryLines.push_back("fresh   " + std::string(entryKindName(N->Kind)) +
                         " '" + N->Key +
                         "': MVEDSUA_NO_MIGRATE, starts from its initialiser");
    if (R)
      error(R->To.Loc.str() + ": error: '" + N->Key +
            "' is MVEDSUA_NO_MIGRATE: no rule applies to it");
    return;
  }
  if (R && R->Init)
    return planInit(N, R);
  if (!O) {
    ++Added;
    EntryLines.push_back("added   " + std::string(entryKindName(N->Kind)) +
                         " '" + N->Key + "' (" + typeName(N->Type) +
                         "): keeps its initialiser");
    return;
  }
  planEntry(O, N, R);
}

void XformGenerator::Impl::noteRemoved(const StateEntry *O) {
  std::string What = std::string(entryKindName(O->Kind)) + " '" + O->Key +
                     "' (" + typeName(O->Type) + ")";
  ++Removed;
  EntryLines.push_back("removed " + What + ": its value is dropped");
  Lost.push_back(What);
}

/// Old entries in (kind, key) order, then renames in the spec's order, then
/// additions: the summary reads like a diff.
void XformGenerator::Impl::planEntries() {
  using Key = std::pair<uint32_t, std::string>;
  std::map<Key, const StateEntry *> OldBy, NewBy;
  for (const StateEntry &E : Old.Entries)
    if (isStateEntry(E))
      OldBy[{E.Kind, E.Key}] = &E;
  for (const StateEntry &E : New.Entries)
    if (isStateEntry(E))
      NewBy[{E.Kind, E.Key}] = &E;
  for (auto &[K, O] : OldBy) {
    if (RenamedAway.count(O))
      continue; // reported under its new name
    auto It = NewBy.find(K);
    const StateEntry *N = It == NewBy.end() ? nullptr : It->second;
    auto Rule = N ? EntryRules.find(N) : EntryRules.end();
    // The new entry of this key may take another old entry's value (a
    // rename onto it, e.g. two swapped variables): this value is dropped.
    bool Taken = Rule != EntryRules.end() && Rule->second.Old &&
                 Rule->second.Old != O;
    if (N && !Taken)
      handleEntry(O, N);
    else
      noteRemoved(O);
  }
  for (const SpecRule &R : S.Rules)
    for (auto &[N, ER] : EntryRules)
      if (ER.Rule == &R && ER.Old && !Done.count(N))
        handleEntry(ER.Old, N);
  for (auto &[K, N] : NewBy)
    if (!Done.count(N))
      handleEntry(nullptr, N);
}

//===----------------------------------------------------------------------===//
// Spec blocks: $in, $out, $base, $oldtype, $newtype, $xform(...).
//===----------------------------------------------------------------------===//

SpecLoc XformGenerator::Impl::locIn(const SpecRule &R, size_t Offset) const {
  SpecLoc L = R.CodeLoc;
  for (size_t I = 0; I < Offset && I < R.Code.size(); ++I) {
    if (R.Code[I] == '\n') {
      ++L.Line;
      L.Col = 1;
    } else {
      ++L.Col;
    }
  }
  return L;
}

/// A type as spec code spells it ("struct entry", "struct entry *", "int",
/// "typedef entry_t", "entry_t"), in the old or the new version.
const TypeDesc *XformGenerator::Impl::resolveSpelling(StringRef Text,
                                                      bool NewSide) {
  std::string Norm;
  for (char C : Text.trim()) {
    if (C == '*') {
      while (!Norm.empty() && Norm.back() == ' ')
        Norm.pop_back();
      Norm += Norm.empty() || Norm.back() == '*' ? "*" : " *";
    } else if (isspace((unsigned char)C)) {
      if (!Norm.empty() && Norm.back() != ' ')
        Norm += ' ';
    } else {
      Norm += C;
    }
  }
  StringRef N = StringRef(Norm).trim();
  StringRef Base = N.rtrim("* ");
  const StateModel &M = NewSide ? New : Old;
  const std::vector<const TypeDesc *> &Types = NewSide ? NewTypes : OldTypes;
  StringRef Td = Base;
  Td.consume_front("typedef ");
  const TypeDesc *T = nullptr;
  if (auto It = M.Typedefs.find(Td.str()); It != M.Typedefs.end())
    T = It->second;
  for (const TypeDesc *D : Types)
    if (!T && typeName(D) == Base)
      T = D;
  if (!T)
    return nullptr;
  for (size_t I = 0; I < (size_t)N.count('*'); ++I) {
    const TypeDesc *P = nullptr;
    for (const TypeDesc *D : Types)
      if (D->Kind == MVEDSUA_TYPE_POINTER && D->Target &&
          D->Target->Hash == T->Hash)
        P = D;
    if (!P)
      return nullptr;
    T = P;
  }
  return T;
}

/// Kitsune's $xform(old, new) is a closure (KitsunePrelude.inc): one static
/// closure per descriptor, deep when the pair needs transforming; a shallow
/// one keeps its objects and remaps their pointers (their visit).
std::string XformGenerator::Impl::kitsuneClosure(const std::string &D,
                                                 const TypeDesc *O,
                                                 const TypeDesc *N) {
  std::string K = D + "_k";
  if (!KitsuneClosures.insert(D).second)
    return K;
  bool Deep = need(O, N);
  std::string Visit = !Deep && hasPointers(O) ? "&" + visitDesc(O) : "0";
  Descs += "static const struct __mvedsua_xf_closure " + K +
           " = {.kind = __MVEDSUA_XF_K_DESC, .deep = " + (Deep ? "1" : "0") +
           ", .size_old = " + std::to_string(O->Size) +
           ", .size_new = " + std::to_string(N->Size) + ", .type = &" + D +
           ", .visit = " + Visit +
           (O->GenericParams.empty() ? ""
                                     : ", .generic = " + cString(O->Name)) +
           "};\n";
  return K;
}

/// Args split at its top-level commas (slices of Args).
static SmallVector<StringRef, 4> splitArgs(StringRef Args) {
  SmallVector<StringRef, 4> Parts;
  int Depth = 0;
  size_t Start = 0;
  for (size_t I = 0; I < Args.size(); ++I) {
    Depth += (Args[I] == '(') - (Args[I] == ')');
    if (Args[I] == ',' && Depth == 0) {
      Parts.push_back(Args.slice(Start, I));
      Start = I + 1;
    }
  }
  Parts.push_back(Args.substr(Start));
  return Parts;
}

/// With --kitsune, whether $xform's arguments are Kitsune's generic form
/// $xform(S, S, closure...): one closure per parameter of generic struct O.
static bool genericXformArgs(const TypeDesc *O, size_t NParts) {
  return O && !O->GenericParams.empty() &&
         NParts == 2 + O->GenericParams.size();
}

std::string XformGenerator::Impl::xformCall(StringRef Args, const BlockEnv &Env,
                                            const SpecLoc &L) {
  SmallVector<StringRef, 4> Parts = splitArgs(Args);
  const TypeDesc *O = Parts.size() >= 2 ? resolveSpelling(Parts[0], false)
                                        : nullptr;
  bool Generic = Opts.KitsuneSpec && genericXformArgs(O, Parts.size());
  if (!Generic && Parts.size() != 2 && Parts.size() != 4) {
    std::string Takes = "(old type, new type) or (old type, new type, in, out)";
    if (Opts.KitsuneSpec && O && !O->GenericParams.empty())
      Takes += ", or for " + O->Name + " (old type, new type) and " +
               std::to_string(O->GenericParams.size()) +
               " closure(s), one per E_GENERIC parameter";
    error(L.str() + ": error: $xform takes " + Takes);
    return "0";
  }
  const TypeDesc *N = resolveSpelling(Parts[1], true);
  if (!O || !N) {
    error(L.str() + ": error: $xform: no type '" +
          Parts[O ? 1 : 0].trim() + "' in the " + (O ? "new" : "old") +
          " version's state");
    return "0";
  }
  WalkCtx C;
  C.Root = "spec rule at " + L.str();
  C.Path = "$xform(" + typeName(O) + ", " + typeName(N) + ")";
  C.RuleHint = typeName(O);
  C.Where = C.Path;
  std::string D;
  if (std::make_pair(O->Hash, N->Hash) == Env.SelfPair) {
    // Inside the rule for this very pair: the default transformer.
    std::string Fn = defaultFn(O, N, C);
    D = "__mvedsua_xf_dd" + std::to_string(NextId++);
    Descs += "static const struct __mvedsua_xf_type " + D + " = {" + Fn + ", " +
             std::to_string(O->Size) + ", " + std::to_string(N->Size) + ", " +
             trackMacro(O) + "};\n";
  } else {
    D = descFor(O, N, C);
  }
  // Spec code may allocate any number of these (XF_ARRAY): an array site.
  Sites[O->Hash].Arrays++;
  Sites[O->Hash].Total++;
  Sites[O->Hash].Type = O;
  if (Generic) {
    std::string List;
    for (size_t I = 2; I < Parts.size(); ++I)
      List += (I > 2 ? ", " : "") + expandCode(Env, Parts[I]);
    return "__mvedsua_xf_kgeneric(&" + kitsuneClosure(D, O, N) + ", " +
           std::to_string(Parts.size() - 2) + ", (const void *[]){" + List +
           "})";
  }
  if (Parts.size() == 2 && Opts.KitsuneSpec)
    return "(&" + kitsuneClosure(D, O, N) + ")";
  if (Parts.size() == 2)
    return "(&" + D + ")";
  return "__mvedsua_xf_invoke(__xf_ctx, &" + D + ", (" + Parts[2].str() +
         "), (" + Parts[3].str() + "))";
}

/// The parenthesised arguments of a $word at Code[From...]: their text and
/// the index after ')'; false when there are none.
static bool parenArgs(StringRef Code, size_t From, StringRef &Args,
                      size_t &After) {
  size_t Open = From;
  while (Open < Code.size() && isspace((unsigned char)Code[Open]))
    ++Open;
  if (Open >= Code.size() || Code[Open] != '(')
    return false;
  int Depth = 0;
  for (size_t Close = Open; Close < Code.size(); ++Close) {
    Depth += (Code[Close] == '(') - (Code[Close] == ')');
    if (Depth == 0) {
      Args = Code.slice(Open + 1, Close);
      After = Close + 1;
      return true;
    }
  }
  return false;
}

/// $old(T), $new(T), $xform(...): their expansion.
std::string XformGenerator::Impl::expandCall(StringRef Word, StringRef Args,
                                             const BlockEnv &Env,
                                             const SpecLoc &L) {
  if (Word == "xform")
    return xformCall(Args, Env, L);
  if (Word == "gen")
    return genCall(Args, Env, L);
  bool NewSide = Word == "new";
  if (const TypeDesc *T = resolveSpelling(Args, NewSide)) {
    define(T, NewSide);
    return declare(T, NewSide, "");
  }
  error(L.str() + ": error: $" + Word + ": no type '" + Args.trim() +
        "' in the " + Word + " version's state");
  return "void";
}

/// One $word (without its arguments).
std::string XformGenerator::Impl::expandWord(StringRef Word,
                                             const BlockEnv &Env,
                                             const SpecLoc &L) {
  auto Typed = [&](const std::string &Expr, const char *Var,
                   StringRef Where) -> std::string {
    if (!Expr.empty())
      return Var;
    error(L.str() + ": error: $" + Word + " is not available in " + Where);
    return "0";
  };
  if (Env.TopLevel && (Word == "in" || Word == "out" || Word == "base" ||
                       Word == "oldtype" || Word == "newtype")) {
    error(L.str() + ": error: $" + Word +
          " is not available in a C block outside a rule");
    return "0";
  }
  // Kitsune's blocks use the objects themselves ($out = $in + 5).
  auto Obj = [&](const char *Ptr) {
    return Opts.KitsuneSpec ? "(*" + std::string(Ptr) + ")" : std::string(Ptr);
  };
  if (Word == "in")
    return Typed(Env.In, Obj("__xf_tin").c_str(),
                 "an INIT rule (nothing is old)");
  if (Word == "out")
    return Obj("__xf_tout");
  if (Word == "base")
    return Typed(Env.Base, Obj("__xf_tbase").c_str(),
                 "a rule that is not about a field");
  if (Word == "oldtype")
    return Env.OldT ? declare(Env.OldT, false, "") : "void";
  if (Word == "newtype")
    return declare(Env.NewT, true, "");
  error(L.str() + ": error: unknown '$" + Word +
        "' (known: $in, $out, $base, $oldtype, $newtype, $old(T), $new(T), "
        "$xform(...)" + (Opts.KitsuneSpec ? ", $gen(t))" : ")"));
  return "0";
}

std::string XformGenerator::Impl::expandBlock(const BlockEnv &Env) {
  return expandCode(Env, Env.Rule->Code);
}

/// Code: the rule's block, or a part of it (a $xform argument).
std::string XformGenerator::Impl::expandCode(const BlockEnv &Env,
                                             StringRef Code) {
  const SpecRule &R = *Env.Rule;
  size_t Base = Code.data() - R.Code.data();
  std::string Out;
  for (size_t I = 0; I < Code.size();) {
    if (Code[I] != '$') {
      Out += Code[I++];
      continue;
    }
    size_t J = I + 1;
    while (J < Code.size() && (isalnum((unsigned char)Code[J]) || Code[J] == '_'))
      ++J;
    StringRef Word = Code.slice(I + 1, J);
    SpecLoc L = locIn(R, Base + I);
    if (Word == "old" || Word == "new" || Word == "xform" || Word == "gen") {
      StringRef Args;
      if (parenArgs(Code, J, Args, J))
        Out += expandCall(Word, Args, Env, L);
      else
        error(L.str() + ": error: $" + Word +
              " needs its arguments in parentheses");
    } else {
      Out += expandWord(Word, Env, L);
    }
    I = J;
  }
  return Out;
}

/// A spec block with its typed pointers, between #line directives so that a
/// compile error in it names the .xf file.
std::string XformGenerator::Impl::blockStmts(const BlockEnv &Env) {
  std::string B;
  if (!Env.In.empty() && Env.OldT) {
    define(Env.OldT, false);
    B += "  " + declare(Env.OldT, false, "*__xf_tin") + " = (void *)(" +
         Env.In + ");\n  (void)__xf_tin;\n";
  }
  define(Env.NewT, true);
  B += "  " + declare(Env.NewT, true, "*__xf_tout") + " = (void *)(" + Env.Out +
       ");\n  (void)__xf_tout;\n";
  if (!Env.Base.empty()) {
    define(Env.BaseT, false);
    B += "  " + declare(Env.BaseT, false, "*__xf_tbase") + " = (void *)(" +
         Env.Base + ");\n  (void)__xf_tbase;\n";
  }
  std::string Code = expandBlock(Env);
  B += "#line " + std::to_string(Env.Rule->CodeLoc.Line) + " " +
       cString(Env.Rule->CodeLoc.File) + "\n" + std::string(Env.Rule->CodeLoc.Col - 1, ' ') +
       "{" + Code + "}\n#line __MVEDSUA_XF_HERE__\n";
  return B;
}

//===----------------------------------------------------------------------===//
// C declarations of the old and new types, for spec blocks.
//===----------------------------------------------------------------------===//

std::string XformGenerator::Impl::tagName(const TypeDesc *T, bool NewSide) {
  auto Key = std::make_pair(NewSide, T->Hash);
  if (auto It = TagNames.find(Key); It != TagNames.end())
    return It->second;
  StringRef Kw = T->Kind == MVEDSUA_TYPE_UNION ||
                         StringRef(T->Name).starts_with("union ")
                     ? "union"
                     : "struct";
  StringRef Tag = StringRef(T->Name).split(' ').second;
  std::string Base;
  if (T->Flags & MVEDSUA_TYPE_ANONYMOUS)
    Base = NewSide ? "__mvedsua_xf_new_anon" : "__mvedsua_xf_old_anon";
  else
    Base = (NewSide ? "" : "__mvedsua_xf_old_") + Tag.str();
  // The new version's types keep their own names, so spec code reads like
  // the program; two different types of one name are told apart.
  std::string Name = Base;
  for (unsigned I = 2; !UsedTags.insert(Kw.str() + " " + Name).second || Name.empty(); ++I)
    Name = Base + "_" + std::to_string(I);
  Forward += Kw.str() + " " + Name + ";\n";
  return TagNames[Key] = Kw.str() + " " + Name;
}

std::string XformGenerator::Impl::declare(const TypeDesc *T, bool NewSide,
                                          const std::string &D) {
  auto Join = [](const std::string &A, const std::string &B) {
    return B.empty() ? A : A + " " + B;
  };
  if (!T)
    return Join("void", D);
  switch (T->Kind) {
  case MVEDSUA_TYPE_INT:
  case MVEDSUA_TYPE_UINT:
  case MVEDSUA_TYPE_BOOL:
  case MVEDSUA_TYPE_FLOAT:
    return Join(T->Name.empty() ? scalarCType(T) : T->Name, D);
  case MVEDSUA_TYPE_ENUM:
    if (NewSide && !(T->Flags & MVEDSUA_TYPE_ANONYMOUS) &&
        Defined.count({true, T->Hash}))
      return Join(T->Name, D);
    return Join(T->Target ? declare(T->Target, NewSide, "") : scalarCType(T), D);
  case MVEDSUA_TYPE_POINTER: {
    const TypeDesc *P = T->Target;
    return declare(P, NewSide, "*" + D);
  }
  case MVEDSUA_TYPE_ARRAY: {
    std::string Dim = (T->Flags & MVEDSUA_TYPE_FLEXIBLE) ? "" : std::to_string(T->Count);
    // A pointer to an array: (*p)[n], as C binds [] tighter than *.
    std::string Inner = !D.empty() && D[0] == '*' ? "(" + D + ")" : D;
    return declare(T->Target, NewSide, Inner + "[" + Dim + "]");
  }
  case MVEDSUA_TYPE_FUNCTION:
    return "void " + (!D.empty() && D[0] == '*' ? "(" + D + ")" : D) + "(void)";
  case MVEDSUA_TYPE_STRUCT:
  case MVEDSUA_TYPE_UNION:
    return Join(tagName(T, NewSide), D);
  default: // declared-only structs: a tag; other opaque bytes: an array
    if (StringRef(T->Name).starts_with("struct ") ||
        StringRef(T->Name).starts_with("union "))
      return Join(tagName(T, NewSide), D);
    return "unsigned char " + D + "[" + std::to_string(T->Size) + "]";
  }
}

std::string XformGenerator::Impl::fieldsOf(const TypeDesc *T, bool NewSide,
                                           std::string &Asserts,
                                           const std::string &Tag) {
  std::string B;
  for (const FieldDesc &F : T->Fields) {
    if (F.Name.empty() && isAggregate(F.Type)) {
      // An anonymous member: inline, so its fields stay reachable by name.
      std::string Kw = F.Type->Kind == MVEDSUA_TYPE_UNION ? "union" : "struct";
      B += "  " + Kw + " {\n" + fieldsOf(F.Type, NewSide, Asserts, Tag) + "  };\n";
      continue;
    }
    std::string Name = F.Name.empty() ? fresh("__mvedsua_xf_pad") : F.Name;
    if (isBitField(F)) {
      B += "  " + declare(F.Type, NewSide, Name) + " : " +
           std::to_string(F.SizeBits) + ";\n";
      continue;
    }
    B += "  " + declare(F.Type, NewSide, Name) + ";\n";
    Asserts += "_Static_assert(offsetof(" + Tag + ", " + Name +
               ") == " + std::to_string(F.OffsetBits / 8) + ", " +
               cString("xfgen: " + T->Name + "." + Name +
                       " is not where debug info puts it") +
               ");\n";
  }
  return B;
}

/// Defines T (for a spec block) after everything it holds by value.
void XformGenerator::Impl::define(const TypeDesc *T, bool NewSide) {
  if (!T || !Defined.insert({NewSide, T->Hash}).second)
    return;
  if (T->Kind == MVEDSUA_TYPE_POINTER || T->Kind == MVEDSUA_TYPE_ARRAY) {
    define(T->Target, NewSide);
    return;
  }
  if (T->Kind == MVEDSUA_TYPE_ENUM) {
    if (!NewSide || (T->Flags & MVEDSUA_TYPE_ANONYMOUS)) {
      Defined.erase({NewSide, T->Hash}); // declared as its integer type
      return;
    }
    std::string B = T->Name + " {";
    for (auto &[Name, Value] : T->Enumerators) {
      if (!Enumerators.insert(Name).second) {
        Defined.erase({NewSide, T->Hash}); // a clash: use the integer type
        return;
      }
      B += " " + Name + " = " + std::to_string(Value) + ",";
    }
    Defs += B + " };\n_Static_assert(sizeof(" + T->Name + ") == " +
            std::to_string(T->Size) + ", \"xfgen: " + T->Name + " size\");\n";
    return;
  }
  if (!isAggregate(T))
    return;
  for (const FieldDesc &F : T->Fields)
    define(F.Type, NewSide); // by value first; pointers need only the tag
  std::string Tag = tagName(T, NewSide), Asserts;
  std::string Body = fieldsOf(T, NewSide, Asserts, Tag);
  Defs += "/* " + std::string(NewSide ? "new" : "old") + " " + T->Name + " */\n" +
          Tag + " {\n" + Body + "};\n_Static_assert(sizeof(" + Tag + ") == " +
          std::to_string(T->Size) + ", " +
          cString("xfgen: " + T->Name + " is not as large as debug info says") +
          ");\n" + Asserts;
}

//===----------------------------------------------------------------------===//
// The whole file, and the summary.
//===----------------------------------------------------------------------===//

bool XformGenerator::Impl::run() {
  OldTypes = reachableTypes(Old);
  NewTypes = reachableTypes(New);
  OldBindings = BindingCollector(Old, OldTypes).run();
  NewBindings = BindingCollector(New, NewTypes).run();
  resolveSpec();
  if (!Errors.empty())
    return false;
  if (Opts.KitsuneSpec)
    scanGenericArgs();
  forceGenericContainers();
  planEntries();
  expandTopCode();
  warnCopiedVoidPointers();
  return Errors.empty();
}

/// The spec's C blocks between rules, in order, for the code after the
/// descriptors. In Kitsune's dialect their functions (XF_LIFT's) return
/// nothing, so there XF_INVOKE records a failure instead of returning it.
void XformGenerator::Impl::expandTopCode() {
  for (const SpecCode &C : S.TopCode) {
    SpecRule R;
    R.Code = C.Code;
    R.CodeLoc = C.CodeLoc;
    BlockEnv Env;
    Env.Rule = &R;
    Env.TopLevel = true;
    std::string Code = expandBlock(Env);
    TopCode += "#line " + std::to_string(C.CodeLoc.Line) + " " +
               cString(C.CodeLoc.File) + "\n" +
               std::string(C.CodeLoc.Col - 1, ' ') + Code +
               "\n#line __MVEDSUA_XF_HERE__\n";
  }
  if (Opts.KitsuneSpec && !TopCode.empty())
    TopCode = "#undef XF_INVOKE\n#define XF_INVOKE(c, in, out) "
              "((void)__mvedsua_xf_kinvoke((c), (in), (out)))\n" +
              TopCode +
              "#undef XF_INVOKE\n#define XF_INVOKE(c, in, out) "
              "do { if (__mvedsua_xf_kinvoke((c), (in), (out))) return -1; "
              "} while (0)\n";
}

/// The first path from T to a void * that is not MVEDSUA_OPAQUE ("" if none),
/// through fields, array elements and pointers.
std::string XformGenerator::Impl::voidPointerPath(
    const TypeDesc *T, const std::string &Path,
    SmallPtrSetImpl<const TypeDesc *> &Seen) {
  if (!T || !Seen.insert(T).second)
    return "";
  if (T->Kind == MVEDSUA_TYPE_POINTER)
    return T->Target ? voidPointerPath(T->Target, "(*" + Path + ")", Seen)
                     : Path;
  if (T->Kind == MVEDSUA_TYPE_ARRAY)
    return voidPointerPath(T->Target, Path + "[]", Seen);
  for (const FieldDesc &F : T->Fields) {
    if (F.Annotations & MVEDSUA_ANNOT_OPAQUE)
      continue;
    std::string Found = voidPointerPath(F.Type, Path + "." + F.Name, Seen);
    if (!Found.empty())
      return Found;
  }
  return "";
}

/// State the runtime copies as it is keeps its void * pointers as they are:
/// one that points to an object this update replaces would dangle, and
/// neither the runtime nor the transformer can tell. Said before the update.
void XformGenerator::Impl::warnCopiedVoidPointers() {
  if (HeapTypes.empty())
    return;
  std::string Types;
  for (const std::string &T : HeapTypes)
    Types += (Types.empty() ? "" : ", ") + T;
  for (const StateEntry *E : Copied) {
    if (E->Annotations & MVEDSUA_ANNOT_OPAQUE)
      continue;
    SmallPtrSet<const TypeDesc *, 16> Seen;
    std::string Path = voidPointerPath(
        E->Type, E->Key.substr(E->Key.find_last_of("/#") + 1), Seen);
    if (!Path.empty())
      Warnings.push_back(std::string(entryKindName(E->Kind)) + " '" + E->Key +
                         "': " + Path + " is a void * copied as it is; if it "
                         "points to an object this update replaces (" + Types +
                         "), it dangles: give it a spec rule, or mark it "
                         "MVEDSUA_OPAQUE to say it does not");
  }
}

std::string XformGenerator::Impl::code() const {
  std::string S;
  raw_string_ostream OS(S);
  OS << "/* Generated by mvedsua-xfgen: the state transformer for the update\n"
     << " *   " << Opts.OldName << " (version " << format_hex_no_prefix(Old.stateHash(), 16)
     << ")\n *   -> " << Opts.NewName << " (version "
     << format_hex_no_prefix(New.stateHash(), 16) << ").\n"
     << " * Compile it into the new version with its other sources. */\n";
  OS << StringRef(
#include "Prelude.inc"
  );
  if (Opts.KitsuneSpec)
    OS << StringRef(
#include "KitsunePrelude.inc"
    );
  OS << "\n/* Types, for spec blocks. */\n" << Forward << Defs;
  OS << "\n/* Transformers. */\n" << Protos << MapProtos << "\n";
  std::set<uint64_t> Risk = interiorRisks();
  OS << "/* 1: heap objects of this old type may be reached in their middle;\n"
        " * their allocations are checked for overlaps. */\n";
  for (uint64_t H : TrackHashes)
    OS << "#define __mvedsua_xf_track_" << utohexstr(H, true) << " "
       << (Risk.count(H) ? 1 : 0) << "\n";
  OS << Descs;
  if (!TopCode.empty())
    OS << "\n/* The spec's C code outside rules. */\n" << TopCode;
  OS << Bodies;
  OS << "\n/* Offset maps, for pointers into transformed globals. */\n"
     << MapBodies;
  OS << "\nstruct __mvedsua_xf_entry {\n  uint32_t old_kind;\n  const char "
        "*old_key;\n  uint32_t new_kind;\n  const char *new_key;\n  "
        "__mvedsua_xf_fn fn;\n  uint64_t old_size;\n  __mvedsua_xf_map map;\n};\n";
  OS << "static const struct __mvedsua_xf_entry __mvedsua_xf_entries[] = {\n"
     << EntryTable << "    {0, 0, 0, 0, 0, 0, 0}};\n";
  OS << "static const struct __mvedsua_xf_entry __mvedsua_xf_inits[] = {\n"
     << InitTable << "    {0, 0, 0, 0, 0, 0, 0}};\n";
  OS << "/* Migrated locals whose type changed: every saved frame's copy. */\n"
        "struct __mvedsua_xf_local {\n  const char *key;\n  __mvedsua_xf_fn fn;\n};\n"
        "static const struct __mvedsua_xf_local __mvedsua_xf_locals[] = {\n"
     << LocalTable << "    {0, 0}};\n";
  OS << R"XF(
static int __mvedsua_xf_run(struct mvedsua_xf_ctx *ctx) {
  const struct __mvedsua_xf_entry *e;
  size_t n = 1;
  for (e = __mvedsua_xf_entries; e->fn; e++)
    n++;
  __mvedsua_xf_statics.items = calloc(n, sizeof *__mvedsua_xf_statics.items);
  if (!__mvedsua_xf_statics.items)
    return __mvedsua_xf_fail(ctx, "xfgen: out of memory");
  /* Old entries map to new ones first, so pointers to them (and into them)
   * lead to the new ones. */
  for (e = __mvedsua_xf_entries; e->fn; e++) {
    unsigned char *in = __mvedsua_xf_old(ctx, e->old_kind, e->old_key);
    unsigned char *out = __mvedsua_xf_new(ctx, e->new_kind, e->new_key);
    if (!in || !out)
      continue;
    __mvedsua_xf_record(ctx, in, out);
    struct __mvedsua_xf_static s = {(uintptr_t)in, out, e->old_size, e->map};
    __mvedsua_xf_statics.items[__mvedsua_xf_statics.len++] = s;
  }
  /* An entry absent from either side (an optimised-away static, a local
   * whose function is not on the stack) is left alone. */
  for (e = __mvedsua_xf_entries; e->fn; e++) {
    unsigned char *in = __mvedsua_xf_old(ctx, e->old_kind, e->old_key);
    unsigned char *out = __mvedsua_xf_new(ctx, e->new_kind, e->new_key);
    if (in && out && e->fn(ctx, in, out))
      return -1;
  }
  /* Each live frame's saved copy of a retyped migrated local. */
  for (const struct __mvedsua_xf_local *l = __mvedsua_xf_locals; l->fn; l++) {
    unsigned char *in;
    for (uint64_t i = 0; (in = __mvedsua_xf_old_local(ctx, l->key, i)); i++) {
      unsigned char *out = __mvedsua_xf_new_local(ctx, l->key, i);
      if (out && l->fn(ctx, in, out))
        return -1;
    }
  }
  if (__mvedsua_xf_drain(ctx))
    return -1;
  /* INIT rules run last: they may read the transformed state. */
  for (e = __mvedsua_xf_inits; e->fn; e++) {
    unsigned char *out = __mvedsua_xf_new(ctx, e->new_kind, e->new_key);
    if (out && e->fn(ctx, 0, out))
      return -1;
  }
  if (__mvedsua_xf_drain(ctx))
    return -1;
  return __mvedsua_xf_check_overlaps(ctx);
}

static int __mvedsua_xf_transform(struct mvedsua_xf_ctx *ctx) {
  __MVEDSUA_XF_BEGIN(ctx);
  int rc = __mvedsua_xf_run(ctx);
  if (rc == 0) /* nothing can fail any more: shared objects may change */
    __mvedsua_xf_apply_fixups();
  __mvedsua_xf_reset();
  __MVEDSUA_XF_END();
  return rc;
}
)XF";
  OS << "\nstatic const char *const __mvedsua_xf_keys[] = {\n";
  for (const std::string &K : Keys)
    OS << "    " << cString(K) << ",\n";
  OS << "    0};\n";
  std::string Alloc = "0", Dealloc = "0";
  if (const std::optional<SpecAllocator> &A = this->S.Allocator) {
    // The new version's own functions (xfgen checked that it defines them).
    OS << "\n/* The program's allocator (ALLOCATOR at " << A->Loc.str()
       << "). */\n"
       << "extern void *" << A->Alloc << "(size_t);\n"
       << "extern void " << A->Free << "(void *);\n";
    Alloc = A->Alloc;
    Dealloc = A->Free;
  }
  OS << "static const struct mvedsua_xform __mvedsua_xf_descriptor = {\n"
     << "    MVEDSUA_XFORM_MAGIC, MVEDSUA_XFORM_ABI,\n"
     << "    " << hex(Old.stateHash()) << ", /* from */\n"
     << "    " << hex(New.stateHash()) << ", /* to */\n"
     << "    " << cString(Opts.OldName) << ", " << cString(Opts.NewName) << ",\n"
     << "    " << Keys.size() << ", __mvedsua_xf_keys, __mvedsua_xf_transform,\n"
     << "    " << Alloc << ", " << Dealloc << " /* alloc, dealloc */};\n"
     << "\n__attribute__((constructor)) static void __mvedsua_xf_register(void) {\n"
     << "  __mvedsua_rt_register_transformer(&__mvedsua_xf_descriptor);\n}\n";
  OS.flush();
  // #line directives back into this file after each spec block.
  std::string Final;
  unsigned Line = 1;
  StringRef Rest = S;
  while (!Rest.empty()) {
    auto [L, Tail] = Rest.split('\n');
    if (L == "#line __MVEDSUA_XF_HERE__")
      Final += "#line " + std::to_string(Line + 1) + " " + cString(Opts.OutputName);
    else
      Final += L.str();
    Final += "\n";
    ++Line;
    Rest = Tail;
  }
  return Final;
}

void XformGenerator::Impl::explain(raw_ostream &OS) const {
  OS << "version " << format_hex_no_prefix(Old.stateHash(), 16) << " -> "
     << format_hex_no_prefix(New.stateHash(), 16) << "\n";
  OS << "state: " << Unchanged << " unchanged, " << Retyped << " retyped, "
     << Added << " added, " << Removed << " removed, " << Fresh
     << " not migrated, " << Renamed << " renamed\n";
  if (S.Allocator)
    OS << "allocator: new objects from " << S.Allocator->Alloc
       << ", replaced old objects freed with " << S.Allocator->Free << " ("
       << S.Allocator->Loc.str() << ")\n";
  for (const std::string &L : EntryLines)
    OS << L << "\n";
  std::set<std::string> Printed;
  for (const TypeNote &N : TypeNotes) {
    if (!Printed.insert(N.Header).second)
      continue; // the same pair reached twice (typedef twins, per-unit copies)
    OS << N.Header << "\n";
    for (const std::string &L : N.Lines)
      OS << "    " << L << "\n";
  }
  for (const std::string &W : Warnings)
    OS << "warning: " << W << "\n";
  if (Lost.empty())
    OS << "lost: nothing; the reverse update can restore all of it\n";
  for (const std::string &L : Lost)
    OS << "lost: " << L << "\n";
}

//===----------------------------------------------------------------------===//

XformGenerator::XformGenerator(const StateModel &Old, const StateModel &New,
                               const Spec &S, XformOptions Opts)
    : P(std::make_unique<Impl>(Old, New, S, std::move(Opts))) {}
XformGenerator::~XformGenerator() = default;
bool XformGenerator::run() { return P->run(); }
const std::vector<std::string> &XformGenerator::errors() const {
  return P->Errors;
}
std::string XformGenerator::code() const { return P->code(); }
void XformGenerator::explain(raw_ostream &OS) const { P->explain(OS); }

} // namespace mvedsua

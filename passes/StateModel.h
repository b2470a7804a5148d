//===- StateModel.h - a module's updatable state, from debug info ---------===//
//
// The state model is what the registry describes: every global, static,
// function-local static and migrated local of a module, and every function
// whose address may end up in data, each under a key that is stable across
// versions, with a type descriptor built from debug info. The plugin emits it
// as the registry; mvedsua-xfgen builds it for two versions and diffs them.
// Both go through this one builder so they can never disagree.
//
//===----------------------------------------------------------------------===//
#ifndef MVEDSUA_PASSES_STATEMODEL_H
#define MVEDSUA_PASSES_STATEMODEL_H

#include "mvedsua/registry.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/Error.h"

#include <deque>
#include <map>
#include <string>
#include <vector>

namespace mvedsua {

/// The names of the header's entry points the plugin recognises.
inline constexpr llvm::StringLiteral UpdatePointFn = "mvedsua_update_point";
inline constexpr llvm::StringLiteral MigrateLocalFn = "__mvedsua_migrate_local";
inline constexpr llvm::StringLiteral NoInstrumentAnnotation =
    "mvedsua:no_instrument";

/// The arguments of Kitsune's E_G(a, b<c, d>, e) split at top-level commas,
/// trimmed ("a", "b<c, d>", "e").
std::vector<std::string> splitGenericArgs(llvm::StringRef Args);

/// True for functions and globals that belong to mvedsua itself (the
/// runtime's entry points, the header's wrappers, emitted registries and
/// generated transformers): never state, never instrumented.
bool isMvedsuaInternal(llvm::StringRef Name);

struct TypeDesc;

struct FieldDesc {
  std::string Name;
  uint64_t OffsetBits = 0;
  uint64_t SizeBits = 0;
  const TypeDesc *Type = nullptr;
  uint32_t Annotations = MVEDSUA_ANNOT_NONE;
  std::string AnnotArg;
  /// Kitsune's generics (kitsune/annotations.h): E_T(@t) on a void * field
  /// names the parameter its payload's type is; E_G(args) on a field whose
  /// type is a generic struct gives that struct's arguments. Checked by the
  /// builder; not part of the hash (they do not change the layout).
  std::string GenericParam;
  std::string GenericArgs;
  unsigned Line = 0;
};

/// A type, structurally. Typedefs and qualifiers are transparent; struct,
/// union and enum tags are part of the identity.
struct TypeDesc {
  uint32_t Kind = MVEDSUA_TYPE_VOID;
  uint32_t Flags = 0;
  uint64_t Size = 0;
  uint64_t Count = 0;
  uint64_t Hash = 0;
  std::string Name;
  const TypeDesc *Target = nullptr;
  std::vector<FieldDesc> Fields;
  std::vector<std::pair<std::string, int64_t>> Enumerators;
  /// E_GENERIC(@t, ...) on the struct or on a typedef of it.
  std::vector<std::string> GenericParams;
  std::string DeclFile; // structs and unions: where, for messages
};

struct StateEntry {
  std::string Key;
  uint32_t Kind = MVEDSUA_ENTRY_GLOBAL;
  uint32_t Flags = 0;
  uint32_t Annotations = MVEDSUA_ANNOT_NONE;
  std::string AnnotArg;
  std::string GenericArgs; // Kitsune's E_G(args) on the variable
  uint64_t Size = 0;
  const TypeDesc *Type = nullptr;
  unsigned Line = 0;
  std::string File;
  llvm::GlobalValue *Value = nullptr;     // globals, statics, functions
  llvm::CallInst *LocalMarker = nullptr;  // LOCAL: the MIGRATE_LOCAL call
  llvm::AllocaInst *LocalAlloca = nullptr;
};

/// The state of one module (or of an llvm-linked whole program).
class StateModel {
public:
  /// Builds the model; fails with every problem found (file:line: message),
  /// e.g. missing debug info, a thread-local that cannot migrate, or an
  /// annotation with an argument that names nothing.
  static llvm::Expected<StateModel> build(llvm::Module &M);
  /// For mvedsua-xfgen, which may read bitcode optimised without the plugin:
  /// also the variables that optimisation deleted but debug info still
  /// describes (a static only ever read, folded into its uses). The plugin
  /// runs before any optimisation and registers them, so the version id
  /// counts them. Such entries have no Value.
  static llvm::Expected<StateModel> buildForBitcode(llvm::Module &M);

  std::vector<StateEntry> Entries;
  /// Typedef names met on the way to the entries' types, to the descriptor
  /// they stand for (typedefs are transparent in descriptors; xfgen's specs
  /// may still name them).
  std::map<std::string, const TypeDesc *> Typedefs;
  /// Types that Kitsune's E_G(...) arguments name as the payloads of generic
  /// containers (void * fields marked E_T): built from debug info even when
  /// no entry reaches them, so xfgen can transform payloads.
  std::vector<const TypeDesc *> GenericPayloads;
  /// Hash of the non-const data entries (kind, key, type hash), the same
  /// function the runtime computes the version id with.
  uint64_t stateHash() const;

  StateModel() = default;
  StateModel(StateModel &&) = default;
  StateModel &operator=(StateModel &&) = default;

private:
  std::deque<TypeDesc> TypeStorage; // stable addresses
  friend class StateModelBuilder;
};

/// A readable one-line spelling of a type ("struct entry *", "int[16]").
std::string typeName(const TypeDesc *T);

/// FNV-1a, the hash of every id and type descriptor mvedsua computes.
uint64_t fnv1a(llvm::StringRef Bytes, uint64_t Seed = 0xcbf29ce484222325ULL);

} // namespace mvedsua

#endif

//===- RegistryEmitter.h - the state registry as constant data ------------===//
#ifndef MVEDSUA_PASSES_REGISTRYEMITTER_H
#define MVEDSUA_PASSES_REGISTRYEMITTER_H

#include "StateModel.h"

namespace mvedsua {

/// Name of the module descriptor; its presence marks an instrumented module.
inline constexpr llvm::StringLiteral ModuleDescriptorName = "__mvedsua.module";

/// Emits the model as a struct mvedsua_module (see mvedsua/registry.h) with
/// its entries and type descriptors, plus a constructor that hands it to the
/// runtime; lowers each MVEDSUA_MIGRATE_LOCAL to __mvedsua_rt_local_enter on
/// its registry entry, with __mvedsua_rt_local_leave before every return.
void emitRegistry(llvm::Module &M, const StateModel &Model);

} // namespace mvedsua

#endif

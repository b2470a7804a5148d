// Startup.cpp: the runtime's life cycle as a small state machine.
//
//   Uninitialized -> Initialized   libmvedsua's constructor, or the first
//                                  registration if a module's constructor
//                                  happens to run first
//   Initialized   -> Loading       a tool dlopens a version (Loader.cpp); its
//                                  registration errors are then the tool's to
//                                  report
//   Loading       -> (previous)    the object is loaded
//   Initialized   -> Running       the version's main is called
#include "Runtime.h"

namespace mvedsua {
namespace {

Stage g_stage = kStageUninitialized;

// The runtime's own state is static zero-initialised data, so nothing here
// allocates; this is the place later stages hook in (supervisor channel).
void Initialize() {}

} // namespace

Stage GetStage() { return __atomic_load_n(&g_stage, __ATOMIC_ACQUIRE); }

void SetStage(Stage s) { __atomic_store_n(&g_stage, s, __ATOMIC_RELEASE); }

void EnsureInitialized() {
  if (GetStage() != kStageUninitialized)
    return;
  Initialize();
  SetStage(kStageInitialized);
}

} // namespace mvedsua

// Before the constructors of the objects that depend on libmvedsua, which the
// loader runs after this library's own.
__attribute__((constructor(101))) static void MvedsuaStartup() {
  mvedsua::EnsureInitialized();
}

// StateTransfer.h: moving a running version's state into a newly loaded one
// (Kitsune's model). Plain functions with no dependence on the supervisor, so
// the same code runs in the program process and, later, in a forked follower.
//
// An update calls, in order:
//   SnapshotLocals()   while the old frames are still live
//   PlanTransfer()     read-only: matches entries, checks types, walks the old
//                      state and its heap to compute every pointer fix-up;
//                      refuses (writing nothing) when anything cannot move
//   CommitTransfer()   writes the new version's data, the heap fix-ups, and
//                      arms the restore of migrated locals
//   FinishTransfer()   once the new version reached its update point
// AbandonTransfer() drops a plan that was refused or whose commit failed.
#ifndef MVEDSUA_RUNTIME_STATE_TRANSFER_H
#define MVEDSUA_RUNTIME_STATE_TRANSFER_H

#include "Runtime.h"

#include <string>

namespace mvedsua {

struct TransferStats {
  uint64_t entries = 0;      // data entries written (copied or transformed)
  uint64_t bytes = 0;        // bytes of those entries
  uint64_t transformed = 0;  // entries written by a state transformer
  uint64_t remapped = 0;     // pointers rewritten to the new version
  uint64_t visited = 0;      // heap objects the walk went through
  uint64_t locals = 0;       // migrated locals saved from the old frames
};

// Copies the bytes of the calling thread's live migrated locals (plugin and
// noted ones) so they survive the unwinding of the old frames, with the
// locals the managed threads staged.
void SnapshotLocals(int from);

// A managed thread stopping for an update saves its own frames' locals
// (slot `thread`, Threads.h) before the plan exists; the next
// SnapshotLocals takes them, DropStagedLocals forgets them (no update).
void StageThreadLocals(int thread);
void DropStagedLocals();

// Between PlanTransfer and FinishTransfer: where an old version's pointer
// goes in the new one (a function to its counterpart, a global to the new
// global). *out = the new pointer; returns 1 when remapped, 0 when it does
// not point into an old version (kept), -1 for a function the new version
// lacks.
int RemapOldPointer(void *old_ptr, void **out);

// The registry key of a registered function ("file.c/name" for a static
// one), or null.
const char *RegisteredFunctionKey(const void *fn);

// 0 when the state of version `from` can move into version `to` (named
// `to_name` in messages); -1 with the refusal in *reason. Entries whose type
// changed need the new version's mvedsua-xfgen transformer (Transformers.h).
int PlanTransfer(int from, int to, const char *to_name, std::string *reason);

// Applies the plan. -1 with *reason when the state transformer failed; then
// no state of the old version was modified.
int CommitTransfer(TransferStats *stats, std::string *reason);

void FinishTransfer();
void AbandonTransfer();

// For the state transformer (xform.h), while it runs: the index-th saved copy
// (outermost frame first) of the old version's migrated local `key`, or
// nullptr past the last; and the buffer that receives its transformed value
// (zeroed, the new type's size), or nullptr unless the plan has the
// transformer write that local. A new frame of the local then receives the
// transformed value instead of the old bytes.
void *SavedLocalOld(const char *key, uint64_t index);
void *SavedLocalNew(const char *key, uint64_t index);

// While an update runs (between CommitTransfer and FinishTransfer), a new
// frame's migrated local receives its saved value. Called from Locals.cpp on
// the enter paths; true when a value was restored.
extern int g_restoring_locals;
bool RestoreLocal(const struct mvedsua_entry *e, void *addr);
bool RestoreNotedLocal(const char *name, void *addr, unsigned long size);

} // namespace mvedsua

#endif // MVEDSUA_RUNTIME_STATE_TRANSFER_H

//===- StateDiff.h - what changed between two versions' state -------------===//
#ifndef MVEDSUA_XFGEN_STATEDIFF_H
#define MVEDSUA_XFGEN_STATEDIFF_H

#include "StateModel.h"

#include "llvm/Support/raw_ostream.h"

#include <vector>

namespace mvedsua {

/// One piece of state as it compares across the two versions.
struct EntryChange {
  enum Kind { Added, Removed, Unchanged, Retyped, Fresh } What;
  const StateEntry *Old = nullptr;
  const StateEntry *New = nullptr;
};

/// Matches the entries of two state models by (kind, key). Functions and
/// const data are not state; MVEDSUA_NO_MIGRATE entries start Fresh.
std::vector<EntryChange> diffState(const StateModel &Old, const StateModel &New);

/// Prints the readable summary users read before an update (--explain):
/// added, removed and retyped state, and for every struct or union whose
/// layout changed, field by field, what changed.
void explainDiff(const std::vector<EntryChange> &Changes,
                 llvm::raw_ostream &OS);

} // namespace mvedsua

#endif

//===- StateDiff.cpp - what changed between two versions' state -----------===//

#include "StateDiff.h"

#include "llvm/ADT/SmallPtrSet.h"

#include <map>
#include <set>

using namespace llvm;

namespace mvedsua {

std::vector<EntryChange> diffState(const StateModel &Old,
                                   const StateModel &New) {
  using Key = std::pair<uint32_t, std::string>;
  std::map<Key, const StateEntry *> OldByKey, NewByKey;
  auto IsState = [](const StateEntry &E) {
    return E.Kind != MVEDSUA_ENTRY_FUNCTION && !(E.Flags & MVEDSUA_ENTRY_CONST);
  };
  for (const StateEntry &E : Old.Entries)
    if (IsState(E))
      OldByKey[{E.Kind, E.Key}] = &E;
  for (const StateEntry &E : New.Entries)
    if (IsState(E))
      NewByKey[{E.Kind, E.Key}] = &E;

  std::vector<EntryChange> Out;
  for (auto &[K, O] : OldByKey) {
    auto It = NewByKey.find(K);
    if (It == NewByKey.end()) {
      Out.push_back({EntryChange::Removed, O, nullptr});
      continue;
    }
    const StateEntry *N = It->second;
    if (N->Annotations & MVEDSUA_ANNOT_NO_MIGRATE) {
      Out.push_back({EntryChange::Fresh, O, N});
      continue;
    }
    bool Same = (O->Type ? O->Type->Hash : 0) == (N->Type ? N->Type->Hash : 0);
    Out.push_back({Same ? EntryChange::Unchanged : EntryChange::Retyped, O, N});
  }
  for (auto &[K, N] : NewByKey)
    if (!OldByKey.count(K))
      Out.push_back({EntryChange::Added, nullptr, N});
  return Out;
}

static const char *kindName(uint32_t Kind) {
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

/// Structs and unions reachable from T, by name.
static void collectAggregates(const TypeDesc *T,
                              std::map<std::string, const TypeDesc *> &Out) {
  SmallVector<const TypeDesc *, 16> Work{T};
  SmallPtrSet<const TypeDesc *, 16> Seen;
  while (!Work.empty()) {
    const TypeDesc *D = Work.pop_back_val();
    if (!D || !Seen.insert(D).second)
      continue;
    if (D->Kind == MVEDSUA_TYPE_STRUCT || D->Kind == MVEDSUA_TYPE_UNION)
      Out.emplace(D->Name, D);
    if (D->Target)
      Work.push_back(D->Target);
    for (const FieldDesc &F : D->Fields)
      Work.push_back(F.Type);
  }
}

static void explainFields(const TypeDesc *O, const TypeDesc *N,
                          raw_ostream &OS) {
  auto Find = [](const TypeDesc *T, StringRef Name) -> const FieldDesc * {
    for (const FieldDesc &F : T->Fields)
      if (F.Name == Name)
        return &F;
    return nullptr;
  };
  if (O->Size != N->Size)
    OS << "    size " << O->Size << " -> " << N->Size << " bytes\n";
  for (const FieldDesc &F : O->Fields) {
    const FieldDesc *G = Find(N, F.Name);
    if (!G)
      OS << "    field '" << F.Name << "' removed (" << typeName(F.Type)
         << "): its value is dropped\n";
    else if (typeName(F.Type) != typeName(G->Type))
      OS << "    field '" << F.Name << "' retyped: " << typeName(F.Type)
         << " -> " << typeName(G->Type) << "\n";
    else if (F.OffsetBits != G->OffsetBits)
      OS << "    field '" << F.Name << "' moved: offset " << F.OffsetBits / 8
         << " -> " << G->OffsetBits / 8 << "\n";
  }
  for (const FieldDesc &G : N->Fields)
    if (!Find(O, G.Name))
      OS << "    field '" << G.Name << "' added (" << typeName(G.Type)
         << "): starts zeroed\n";
}

void explainDiff(const std::vector<EntryChange> &Changes, raw_ostream &OS) {
  unsigned Counts[5] = {0, 0, 0, 0, 0};
  std::map<std::string, const TypeDesc *> OldAggs, NewAggs;
  for (const EntryChange &C : Changes) {
    ++Counts[C.What];
    if (C.Old)
      collectAggregates(C.Old->Type, OldAggs);
    if (C.New)
      collectAggregates(C.New->Type, NewAggs);
  }
  OS << "state: " << Counts[EntryChange::Unchanged] << " unchanged, "
     << Counts[EntryChange::Retyped] << " retyped, "
     << Counts[EntryChange::Added] << " added, "
     << Counts[EntryChange::Removed] << " removed, "
     << Counts[EntryChange::Fresh] << " not migrated\n";
  for (const EntryChange &C : Changes) {
    switch (C.What) {
    case EntryChange::Unchanged:
      break;
    case EntryChange::Fresh:
      OS << "fresh   " << kindName(C.New->Kind) << " '" << C.New->Key
         << "': MVEDSUA_NO_MIGRATE, starts from its initialiser\n";
      break;
    case EntryChange::Added:
      OS << "added   " << kindName(C.New->Kind) << " '" << C.New->Key << "' ("
         << typeName(C.New->Type) << "): keeps its initialiser\n";
      break;
    case EntryChange::Removed:
      OS << "removed " << kindName(C.Old->Kind) << " '" << C.Old->Key << "' ("
         << typeName(C.Old->Type) << "): its value is dropped\n";
      break;
    case EntryChange::Retyped:
      OS << "retyped " << kindName(C.Old->Kind) << " '" << C.Old->Key
         << "': " << typeName(C.Old->Type) << " -> " << typeName(C.New->Type)
         << "\n";
      break;
    }
  }
  for (auto &[Name, O] : OldAggs) {
    auto It = NewAggs.find(Name);
    if (It == NewAggs.end() || It->second->Hash == O->Hash)
      continue;
    OS << "changed " << Name << ":\n";
    explainFields(O, It->second, OS);
  }
}

} // namespace mvedsua

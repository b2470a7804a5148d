// Rules.h: expected differences in the follower (docs/rules.md). A compiled
// rules file (rules_abi.h) rewrites the leader's records into what the
// follower must do: the calls it must make, with which arguments, and the
// results it gets.
#ifndef MVEDSUA_MVE_RULES_H
#define MVEDSUA_MVE_RULES_H

#include "Schema.h"

#include <stddef.h>
#include <stdint.h>

namespace mvedsua {
namespace mve {

struct Matcher;
// Non-null in a follower that replays with rules: the only thing the
// replay path looks at when there are none.
extern Matcher *g_rules;

// Leader: the compiled rules (a shared object) the next follower loads; an
// empty path for none. The path is kept for retries.
void RulesSetPending(const char *so_path);
const char *RulesPending();
// Leader: the next follower learns the noise: it notes every difference in
// what is sent (one report per difference, appended to `path`) and goes on
// with the leader's result instead of stopping; "" for a normal follower.
void RulesSetLearn(const char *path);

// Follower, before it starts replaying (pass-through, SUD off): loads the
// pending rules of `direction` (MVR_FORWARD in the outdated-leader stage,
// MVR_REVERSE in the old version demoted to follow the new one), indexes
// them and preallocates everything the replay needs. Rules an earlier update
// left in the process (it followed then) are dropped first. A rules file
// that cannot be loaded ends the follower with a rule error.
void RulesActivate(int direction);

// The follower's call, replayed through the rules (Shim's ReplayRaw) by
// the calling thread's matcher: each lane has its own (the records it
// holds, what its thread must do next, what its reports show); the rules
// themselves are shared.
long RulesReplay(CallView &c);
// A follower thread about to replay lane `lane` (a relaunched thread, or
// one started during the update): its matcher from an empty state, its
// arena mapped. RulesActivate gives lane 0's to the calling thread.
void RulesJoinLane(int lane);
// The calling thread's matcher holds a leader's record its thread has not
// made yet (*nr: its call): the follower's thread cannot start a thread
// here, the leader's started it after that call.
bool RulesHoldsRecord(uint32_t *nr);
// A follower's child that follows a child of the leader (Children.h): the
// same rules, from an empty matcher (what the parent held was its own
// stream's).
void RulesForkedChild();

// Follower at its end: leader calls still held by the matcher are calls
// the follower did not make (a divergence).
void RulesFinish();
// The matcher holds nothing (no record read ahead, no item expected): a
// signal's handler can run now, its calls matched afresh (Signals.h).
bool RulesIdle();

// Appends the rules' view of a divergence (the rule that expected the call
// or almost matched, the calls around it) to a report's text.
void RulesAnnotate(char *text, size_t size);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_RULES_H

// Check.cpp: what mvedsua-rules check reports before any update starts:
// unknown calls (against runtime/mve/Schema.def), arities, argument types,
// labels, variables (unused ones too) and $(x) references in C code.
#include "Resolve.h"

#include <set>

namespace mvedsua {
namespace rules {

using namespace mve;

bool Resolve(const std::string &name, Resolved &r) {
  std::string target = name;
  int map[6];
  int arity = -1;
  bool alias = FindAlias(name, target, map, arity);
  r.sys = FindSyscall(target);
  if (!r.sys)
    return false;
  r.arity = alias ? arity : r.sys->arity;
  for (int i = 0; i < 6; ++i)
    r.map[i] = alias ? map[i] : i;
  for (int i = 0; i < r.arity; ++i) {
    int k = r.map[i];
    switch (ArgKind(r.sys->kinds[k])) {
    case kS: case kFcntlArg: case kIoctlArg: r.cls[i] = kScalar; break;
    case kStr: case kIn: case kInF: case kInOutF: case kOutR: case kOutF:
    case kLenBuf:
      r.cls[i] = kBytes;
      break;
    default: r.cls[i] = kOpaque; break;
    }
  }
  // The length of a received buffer is the length received (the result).
  for (int i = 0; i < r.arity; ++i)
    if (r.sys->kinds[r.map[i]] == kOutR)
      for (int j = 0; j < r.arity; ++j)
        if (r.map[j] == r.sys->len_arg[r.map[i]])
          r.cls[j] = kLength;
  return true;
}

const char *ClassName(ArgClass c) {
  switch (c) {
  case kScalar: return "a number";
  case kBytes: return "a buffer";
  case kLength: return "the length received";
  default: return "not matched by content";
  }
}

std::vector<CodeRef> CodeRefs(const Code &code) {
  std::vector<CodeRef> refs;
  Loc at = code.at;
  const std::string &t = code.text;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '$') {
      bool len = t.compare(i, 5, "$len(") == 0;
      size_t open = len ? i + 4 : i + 1;
      if (open < t.size() && t[open] == '(') {
        size_t close = t.find(')', open);
        if (close != std::string::npos) {
          std::string name = t.substr(open + 1, close - open - 1);
          while (!name.empty() && name.front() == ' ')
            name.erase(0, 1);
          while (!name.empty() && name.back() == ' ')
            name.pop_back();
          refs.push_back({name, len, at});
        }
      }
    }
    if (t[i] == '\n') {
      at.line++;
      at.col = 1;
    } else {
      at.col++;
    }
  }
  return refs;
}

namespace {

class Checker {
public:
  Checker(const RuleFile &f, Diagnostics &d) : f_(f), d_(d) {}

  bool Run() {
    CheckGroups();
    for (const Rule &r : f_.rules)
      CheckRule(r);
    return !d_.HasErrors();
  }

private:
  void Error(Loc at, const std::string &m) { d_.Error(f_.path, at, m); }
  void Warning(Loc at, const std::string &m) { d_.Warning(f_.path, at, m); }

  const Group *FindGroup(const std::string &name) const {
    for (const Group &g : f_.groups)
      if (g.name == name)
        return &g;
    return nullptr;
  }

  void UnknownCall(const Call &c) {
    std::string m = "unknown system call '" + c.name + "'";
    std::string near = ClosestSyscall(c.name);
    if (!near.empty())
      m += "; did you mean '" + near + "'?";
    else
      m += " (the follower compares only the calls of runtime/mve/Schema.def)";
    Error(c.at, m);
  }

  void CheckGroups() {
    std::set<std::string> seen;
    for (const Group &g : f_.groups) {
      if (!seen.insert(g.name).second)
        Error(g.at, "group '" + g.name + "' is defined twice");
      Resolved r;
      if (Resolve(g.name, r))
        Error(g.at, "group '" + g.name + "' has the name of a system call");
      if (g.members.empty())
        Error(g.at, "group '" + g.name + "' has no members");
      for (const Call &m : g.members) {
        VarTable vars;
        CheckCall(m, vars, /*left=*/true);
      }
    }
  }

  // Returns false if the call could not be resolved (no argument checks).
  bool CheckCall(const Call &c, VarTable &vars, bool left) {
    Resolved r;
    const Group *g = Resolve(c.name, r) ? nullptr : FindGroup(c.name);
    if (g) {
      if (c.has_args)
        Error(c.at, "group '" + g->name +
                        "' takes no arguments here: its members give them");
      // The members' variables are the rule's (its C code may use them).
      for (const Call &m : g->members) {
        Resolved r;
        if (Resolve(m.name, r) && m.args.size() == size_t(r.arity))
          for (size_t i = 0; i < m.args.size(); ++i)
            CheckArg(m, int(i), r.cls[i], vars);
      }
      return false;
    }
    if (!r.sys) {
      UnknownCall(c);
      return false;
    }
    if (c.has_args && int(c.args.size()) != r.arity) {
      Error(c.at, c.name + " takes " + std::to_string(r.arity) +
                      " argument" + (r.arity == 1 ? "" : "s") + ", " +
                      std::to_string(c.args.size()) + " given");
      return false;
    }
    for (size_t i = 0; i < c.args.size(); ++i)
      CheckArg(c, int(i), r.cls[i], vars);
    return true;
  }

  void CheckArg(const Call &c, int i, ArgClass cls, VarTable &vars) {
    const Arg &a = c.args[i];
    std::string what = "argument " + std::to_string(i + 1) + " of " + c.name;
    if (a.kind == Arg::kWild)
      return;
    if (cls == kOpaque) {
      Error(a.at, what + " is " + ClassName(cls) + "; write _");
      return;
    }
    bool bytes = cls == kBytes;
    if (a.kind == Arg::kInt && bytes)
      Error(a.at, what + " is a buffer; a number cannot match it");
    if (a.kind == Arg::kStr && !bytes)
      Error(a.at, what + " is " + ClassName(cls) + "; a string cannot match it");
    if (a.kind != Arg::kVar)
      return;
    auto it = vars.find(a.name);
    if (it == vars.end()) {
      int index = int(vars.size());
      vars[a.name] = {index, bytes, a.at, 1};
      return;
    }
    it->second.uses++;
    if (it->second.bytes != bytes)
      Error(a.at, "variable '" + a.name + "' is " +
                      (bytes ? "a buffer" : "a number") + " here but " +
                      (it->second.bytes ? "a buffer" : "a number") + " at " +
                      std::to_string(it->second.first.line) + ":" +
                      std::to_string(it->second.first.col));
  }

  void CheckCode(const Code &code, VarTable &vars,
                 const std::set<std::string> &results) {
    if (!code.present)
      return;
    for (const CodeRef &ref : CodeRefs(code)) {
      auto it = vars.find(ref.name);
      if (it != vars.end()) {
        it->second.uses++;
        if (ref.len && !it->second.bytes)
          Error(ref.at, "$len(" + ref.name + "): '" + ref.name +
                            "' is a number, not a buffer");
        continue;
      }
      if (results.count(ref.name) && !ref.len)
        continue;
      Error(ref.at, "'" + ref.name + "' in $(" + ref.name +
                        ") is not a variable of this rule" +
                        (results.empty() ? "" : " nor its result"));
    }
  }

  void CheckLabels(const Rule &r) {
    std::map<std::string, Loc> labels;
    for (const Call &c : r.lhs) {
      if (c.label.empty())
        continue;
      if (!labels.emplace(c.label, c.label_at).second)
        Error(c.label_at, "label '" + c.label + "' is defined twice");
    }
    std::set<std::string> used;
    for (const Call &c : r.rhs) {
      if (!c.is_label_ref || FindGroup(c.name) || r.kind != Rule::kRewrite)
        continue;
      if (!labels.count(c.name)) {
        Error(c.at, "'" + c.name + "' is not a label of this rule" +
                        (FindSyscall(c.name) ? " (a call needs its arguments: " +
                                                   c.name + "(...))"
                                             : ""));
        continue;
      }
      if (!used.insert(c.name).second)
        Error(c.at, "label '" + c.name + "' is used twice");
      if (c.pred.present)
        Error(c.pred.at, "a label stands for the leader's call as it is; it "
                         "takes no predicate");
    }
    for (auto &l : labels)
      if (!used.count(l.first))
        Warning(l.second, "label '" + l.first + "' is never used");
  }

  void CheckRule(const Rule &r) {
    if (r.kind != Rule::kRewrite && r.rhs.empty())
      Error(r.at, std::string(r.kind == Rule::kBegin ? "begin" : "nothing") +
                      " => nothing says nothing");
    CheckLabels(r);
    VarTable vars;
    std::set<std::string> results = {"ret"};
    for (const Call &c : r.lhs)
      CheckCall(c, vars, true);
    for (const Call &c : r.rhs) {
      if (c.is_label_ref && !FindGroup(c.name)) {
        if (r.kind != Rule::kRewrite)
          Error(c.at, "a '" + std::string(r.kind == Rule::kBegin ? "begin" : "nothing") +
                          "' rule has no leader's call to refer to");
        continue;
      }
      CheckCall(c, vars, false);
      if (c.star && (c.callback.present || c.pred.present))
        Error(c.at, "a repeated call (scall *) takes no predicate or callback");
    }
    for (const Call &c : r.lhs)
      CheckCode(c.pred, vars, results);
    for (const Call &c : r.rhs) {
      CheckCode(c.pred, vars, results);
      std::set<std::string> cb_results = results;
      if (!c.result_name.empty()) {
        if (vars.count(c.result_name))
          Error(c.result_at, "the result's name '" + c.result_name +
                                 "' is a variable of this rule");
        cb_results.insert(c.result_name);
      }
      CheckCode(c.callback, vars, cb_results);
    }
    if (vars.size() > 32)
      Error(r.at, "a rule has at most 32 variables");
    for (auto &v : vars)
      if (v.second.uses == 1)
        Warning(v.second.first, "variable '" + v.first +
                                    "' is bound but never used (write _)");
  }

  const RuleFile &f_;
  Diagnostics &d_;
};

} // namespace

bool Check(const RuleFile &file, Diagnostics &diags) {
  Checker c(file, diags);
  return c.Run();
}

std::vector<Rule> ExpandGroups(const RuleFile &file, const Rule &rule) {
  std::vector<Rule> out = {rule};
  auto expand_side = [&](bool left) {
    for (size_t i = 0;; ++i) {
      if (i >= (left ? rule.lhs.size() : rule.rhs.size()))
        break;
      std::vector<Rule> next;
      for (Rule &r : out) {
        Call &use = left ? r.lhs[i] : r.rhs[i];
        const Group *g = nullptr;
        for (const Group &grp : file.groups)
          if (grp.name == use.name)
            g = &grp;
        if (!g) {
          next.push_back(r);
          continue;
        }
        for (const Call &m : g->members) {
          Rule copy = r;
          Call &c = left ? copy.lhs[i] : copy.rhs[i];
          c.name = m.name;
          c.has_args = m.has_args;
          c.args = m.args;
          c.is_label_ref = false;
          if (!m.pred.present || c.pred.present)
            ; // the use's predicate wins; a member's applies otherwise
          else
            c.pred = m.pred;
          copy.text += " [" + g->name + ": " + m.name + "]";
          next.push_back(std::move(copy));
        }
      }
      out.swap(next);
    }
  };
  expand_side(true);
  expand_side(false);
  return out;
}

} // namespace rules
} // namespace mvedsua

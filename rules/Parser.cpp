// Parser.cpp: the rules language (the grammar of Pina et al., as MVEDSUa
// used it, plus %{ %} declarations and %forward/%reverse sections):
//
//   file  ::= { #include "h" | %{ C %} | %forward | %reverse | group | rule }
//   group ::= group NAME = { call {, call} }
//   rule  ::= lhs => rhs
//   lhs   ::= nothing | begin | lcall {, lcall}
//   lcall ::= NAME [( args )] [{ C }] [as LABEL]
//   rhs   ::= nothing | ritem {, ritem}
//   ritem ::= NAME [( args )] [{ C }] ( * | [-> [( NAME )] { C }] ) | LABEL
//   arg   ::= _ | NAME | INT | "string"
#include "Lexer.h"
#include "Rules.h"

#include <fstream>
#include <sstream>

namespace mvedsua {
namespace rules {
namespace {

class Parser {
public:
  Parser(const std::string &path, const std::string &src, RuleFile &out,
         Diagnostics &diags)
      : path_(path), lex_(src), out_(out), diags_(diags) {}

  bool Run() {
    out_.path = path_;
    Next();
    while (tok_.kind != Tok::kEof)
      if (!TopLevel())
        return false;
    return true;
  }

private:
  void Next() {
    last_end_ = tok_.end;
    tok_ = lex_.Lex();
  }

  bool Fail(const std::string &msg) { return Fail(tok_.at, msg); }
  bool Fail(Loc at, const std::string &msg) {
    diags_.Error(path_, at, msg);
    return false;
  }
  bool Expect(Tok kind, const char *what) {
    if (tok_.kind == Tok::kError)
      return Fail(tok_.text);
    if (tok_.kind != kind)
      return Fail(std::string("expected ") + what + Found());
    Next();
    return true;
  }
  std::string Found() const {
    switch (tok_.kind) {
    case Tok::kEof: return ", found the end of the file";
    case Tok::kIdent: return ", found '" + tok_.text + "'";
    case Tok::kError: return " (" + tok_.text + ")";
    default:
      return ", found '" +
             lex_.Source().substr(tok_.begin, tok_.end - tok_.begin) + "'";
    }
  }
  bool IsWord(const char *w) const {
    return tok_.kind == Tok::kIdent && tok_.text == w;
  }

  bool TopLevel() {
    switch (tok_.kind) {
    case Tok::kError: return Fail(tok_.text);
    case Tok::kInclude: return Include();
    case Tok::kDecls: {
      Code c;
      c.text = tok_.text;
      c.at = {unsigned(tok_.value >> 32), unsigned(tok_.value & 0xffffffff)};
      c.present = true;
      out_.decls.push_back(c);
      Next();
      return true;
    }
    case Tok::kSection:
      direction_ = tok_.text == "reverse";
      Next();
      return true;
    case Tok::kIdent:
      return IsWord("group") ? GroupDef() : RuleDef();
    default:
      return Fail("expected a rule, a group, #include or %{" + Found());
    }
  }

  bool Include() {
    Next();
    if (tok_.kind != Tok::kStr)
      return Fail("expected a \"file\" after #include" + Found());
    out_.includes.push_back({tok_.text, tok_.at});
    Next();
    return true;
  }

  bool GroupDef() {
    Group g;
    g.at = tok_.at;
    Next();
    if (tok_.kind != Tok::kIdent)
      return Fail("expected the group's name" + Found());
    g.name = tok_.text;
    Next();
    if (!Expect(Tok::kEquals, "'=' after the group's name") ||
        !Expect(Tok::kLBrace, "'{' opening the group"))
      return false;
    while (tok_.kind != Tok::kRBrace) {
      Call c;
      if (!CallPattern(c, kMember))
        return false;
      g.members.push_back(std::move(c));
      if (tok_.kind == Tok::kComma)
        Next();
      else if (tok_.kind != Tok::kRBrace)
        return Fail("expected ',' or '}' in the group" + Found());
    }
    Next();
    out_.groups.push_back(std::move(g));
    return true;
  }

  bool RuleDef() {
    Rule r;
    r.at = tok_.at;
    r.direction = direction_;
    size_t begin = tok_.begin;
    if (IsWord("nothing") || IsWord("begin")) {
      r.kind = IsWord("nothing") ? Rule::kNothing : Rule::kBegin;
      Next();
    } else if (!CallList(r.lhs, kLeft)) {
      return false;
    }
    if (!Expect(Tok::kFatArrow, "'=>'"))
      return false;
    if (IsWord("nothing")) {
      Next();
    } else if (!CallList(r.rhs, kRight)) {
      return false;
    }
    r.text = OneLine(lex_.Source().substr(begin, last_end_ - begin));
    out_.rules.push_back(std::move(r));
    return true;
  }

  static std::string OneLine(const std::string &s) {
    std::string out;
    bool space = false;
    for (char c : s) {
      if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
        space = !out.empty();
        continue;
      }
      if (space)
        out += ' ';
      space = false;
      out += c;
    }
    return out;
  }

  enum Side { kLeft, kRight, kMember };

  bool CallList(std::vector<Call> &calls, Side side) {
    for (;;) {
      Call c;
      if (!CallPattern(c, side))
        return false;
      calls.push_back(std::move(c));
      if (tok_.kind != Tok::kComma)
        return true;
      Next();
    }
  }

  bool CallPattern(Call &c, Side side) {
    if (tok_.kind == Tok::kError)
      return Fail(tok_.text);
    if (tok_.kind != Tok::kIdent || IsWord("nothing") || IsWord("begin"))
      return Fail(std::string(side == kLeft ? "expected a system call"
                                            : "expected a system call or a label") +
                  Found());
    c.name = tok_.text;
    c.at = tok_.at;
    Next();
    if (tok_.kind == Tok::kLParen) {
      c.has_args = true;
      Next();
      if (!Args(c))
        return false;
    } else if (side == kRight) {
      c.is_label_ref = true; // or a group: the checker tells
    }
    if (tok_.kind == Tok::kLBrace && !CodeBlock(c.pred))
      return false;
    if (side == kLeft && IsWord("as")) {
      Next();
      if (tok_.kind != Tok::kIdent)
        return Fail("expected a label after 'as'" + Found());
      c.label = tok_.text;
      c.label_at = tok_.at;
      Next();
    }
    if (side != kRight)
      return true;
    if (tok_.kind == Tok::kStar) {
      c.star = true;
      c.is_label_ref = false; // `name *`: the call, any arguments
      Next();
      return true;
    }
    if (tok_.kind != Tok::kArrow)
      return true;
    Next();
    if (tok_.kind == Tok::kLParen) {
      Next();
      if (tok_.kind != Tok::kIdent)
        return Fail("expected the result's name in '-> (name)'" + Found());
      c.result_name = tok_.text;
      c.result_at = tok_.at;
      Next();
      if (!Expect(Tok::kRParen, "')'"))
        return false;
    }
    if (tok_.kind != Tok::kLBrace)
      return Fail("expected '{' opening the callback's C code" + Found());
    return CodeBlock(c.callback);
  }

  bool CodeBlock(Code &code) {
    Loc open = tok_.at;
    Token close;
    if (!lex_.ReadCode(code, close))
      return Fail(open, "this '{' is never closed");
    tok_ = close;
    Next();
    return true;
  }

  bool Args(Call &c) {
    if (tok_.kind == Tok::kRParen) {
      Next();
      return true;
    }
    for (;;) {
      Arg a;
      a.at = tok_.at;
      switch (tok_.kind) {
      case Tok::kIdent:
        a.kind = tok_.text == "_" ? Arg::kWild : Arg::kVar;
        a.name = tok_.text;
        break;
      case Tok::kInt:
        a.kind = Arg::kInt;
        a.value = tok_.value;
        break;
      case Tok::kStr:
        a.kind = Arg::kStr;
        a.bytes = tok_.text;
        break;
      case Tok::kError:
        return Fail(tok_.text);
      default:
        return Fail("expected an argument (_, a variable, a number or a "
                    "string)" + Found());
      }
      c.args.push_back(std::move(a));
      Next();
      if (tok_.kind == Tok::kRParen) {
        Next();
        return true;
      }
      if (!Expect(Tok::kComma, "',' or ')' after an argument"))
        return false;
    }
  }

  const std::string &path_;
  Lexer lex_;
  RuleFile &out_;
  Diagnostics &diags_;
  Token tok_;
  size_t last_end_ = 0;
  int direction_ = 0;
};

} // namespace

bool ParseText(const std::string &path, const std::string &text, RuleFile &out,
               Diagnostics &diags) {
  Parser p(path, text, out, diags);
  return p.Run();
}

bool ParseFile(const std::string &path, RuleFile &out, Diagnostics &diags) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.Error(path, {}, "cannot read the file");
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseText(path, ss.str(), out, diags);
}

std::string Diagnostic::Format() const {
  std::string s = file;
  if (loc.line)
    s += ":" + std::to_string(loc.line) + ":" + std::to_string(loc.col);
  s += severity == kError ? ": error: " : ": warning: ";
  return s + message;
}

void Diagnostics::Error(const std::string &file, Loc at, std::string msg) {
  list.push_back({Diagnostic::kError, file, at, std::move(msg)});
}
void Diagnostics::Warning(const std::string &file, Loc at, std::string msg) {
  list.push_back({Diagnostic::kWarning, file, at, std::move(msg)});
}
bool Diagnostics::HasErrors() const {
  for (const Diagnostic &d : list)
    if (d.severity == Diagnostic::kError)
      return true;
  return false;
}

} // namespace rules
} // namespace mvedsua

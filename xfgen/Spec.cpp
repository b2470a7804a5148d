//===- Spec.cpp - parser of the .xf transformation spec language ----------===//

#include "Spec.h"

#include <cctype>
#include <tuple>

using namespace llvm;

namespace mvedsua {

std::string SpecPath::spelling() const {
  static const char *const Kw[] = {"struct ", "union ", "typedef ", "enum ", ""};
  return Kw[What] + Name + (Field.empty() ? "" : "." + Field);
}

namespace {

/// A hand-written recursive-descent parser; the language is tiny and the C
/// blocks are taken verbatim (only their braces, strings and comments are
/// understood, to find where a block ends).
class Parser {
public:
  Parser(StringRef Text, StringRef File) : Text(Text), File(File) {}
  Expected<Spec> run();

private:
  StringRef Text, File;
  size_t Pos = 0;
  unsigned Line = 1, Col = 1;
  std::string Err;

  bool atEnd() const { return Pos >= Text.size(); }
  char peek(size_t Ahead = 0) const {
    return Pos + Ahead < Text.size() ? Text[Pos + Ahead] : '\0';
  }
  void advance() {
    if (Text[Pos++] == '\n') {
      ++Line;
      Col = 1;
    } else {
      ++Col;
    }
  }
  SpecLoc loc() const { return {File.str(), Line, Col}; }
  bool fail(const SpecLoc &L, const Twine &Msg) {
    if (Err.empty())
      Err = L.str() + ": error: " + Msg.str();
    return false;
  }
  bool skipSpaceAndComments();
  bool expect(StringRef Tok, StringRef What);
  bool word(std::string &Out);
  bool parsePath(SpecPath &P);
  bool parsePaths(std::vector<SpecPath> &Out);
  bool parseBlock(std::string &Code, SpecLoc &Where);
  bool skipCLiteral(char Quote);
  bool parseRule(Spec &S);
  bool pairUp(const SpecLoc &Start, const std::vector<SpecPath> &From,
              const std::vector<SpecPath> &To,
              std::vector<std::pair<SpecPath, SpecPath>> &Pairs);
  bool parseAllocator(Spec &S);
  bool atKeyword(StringRef Kw) const;
};

bool Parser::skipSpaceAndComments() {
  while (!atEnd()) {
    if (isspace((unsigned char)peek())) {
      advance();
    } else if (peek() == '/' && peek(1) == '/') {
      while (!atEnd() && peek() != '\n')
        advance();
    } else if (peek() == '/' && peek(1) == '*') {
      SpecLoc Start = loc();
      advance();
      advance();
      while (!atEnd() && !(peek() == '*' && peek(1) == '/'))
        advance();
      if (atEnd())
        return fail(Start, "unterminated comment");
      advance();
      advance();
    } else {
      break;
    }
  }
  return true;
}

bool Parser::expect(StringRef Tok, StringRef What) {
  if (!skipSpaceAndComments())
    return false;
  if (!Text.substr(Pos).starts_with(Tok))
    return fail(loc(), "expected '" + Tok + "' " + What);
  for (size_t I = 0; I < Tok.size(); ++I)
    advance();
  return true;
}

static bool isPathChar(char C) {
  return isalnum((unsigned char)C) || C == '_' || C == '.' || C == '/' ||
         C == '#' || C == '-' || C == '$';
}

/// A run of path characters. '-' belongs to file names (my-file.c) but not
/// to the arrow that may follow a path without a space.
bool Parser::word(std::string &Out) {
  Out.clear();
  while (!atEnd() && isPathChar(peek()) && !(peek() == '-' && peek(1) == '>')) {
    Out += peek();
    advance();
  }
  return !Out.empty();
}

static bool isIdent(StringRef S) {
  if (S.empty() || isdigit((unsigned char)S[0]))
    return false;
  for (char C : S)
    if (!isalnum((unsigned char)C) && C != '_')
      return false;
  return true;
}

bool Parser::parsePath(SpecPath &P) {
  if (!skipSpaceAndComments())
    return false;
  P.Loc = loc();
  std::string W;
  if (!word(W))
    return fail(P.Loc, "expected a path (struct X, struct X.field, union X, "
                       "typedef X, enum X, name, file.c/name or func#name)");
  static const std::pair<const char *, SpecPath::Kind> Kws[] = {
      {"struct", SpecPath::Struct},
      {"union", SpecPath::Union},
      {"typedef", SpecPath::Typedef},
      {"enum", SpecPath::Enum}};
  for (auto &[Kw, Kind] : Kws) {
    if (W != Kw)
      continue;
    P.What = Kind;
    if (!skipSpaceAndComments())
      return false;
    SpecLoc NameLoc = loc();
    std::string Name;
    if (!word(Name))
      return fail(NameLoc, "expected a name after '" + W + "'");
    StringRef N = Name;
    auto [Tag, Field] = N.split('.');
    if (!isIdent(Tag) || (N.contains('.') && !isIdent(Field)))
      return fail(NameLoc, "'" + Name + "' is not a " + W +
                               " name, optionally followed by .field");
    if (Kind == SpecPath::Enum && !Field.empty())
      return fail(NameLoc, "an enum has no fields");
    P.Name = Tag.str();
    P.Field = Field.str();
    return true;
  }
  // A variable: [file/][func#]name.
  StringRef V = W;
  StringRef Name = V.rsplit('#').second.empty() ? V : V.rsplit('#').second;
  Name = Name.rsplit('/').second.empty() ? Name : Name.rsplit('/').second;
  if (!isIdent(Name))
    return fail(P.Loc, "'" + W + "' is not a variable path (name, file.c/name, "
                                 "func#name or file.c/func#name)");
  P.What = SpecPath::Var;
  P.Name = W;
  return true;
}

bool Parser::parsePaths(std::vector<SpecPath> &Out) {
  do {
    SpecPath P;
    if (!parsePath(P))
      return false;
    Out.push_back(std::move(P));
    if (!skipSpaceAndComments())
      return false;
  } while (peek() == ',' && (advance(), true));
  return true;
}

bool Parser::skipCLiteral(char Quote) {
  SpecLoc Start = loc();
  advance();
  while (!atEnd() && peek() != Quote && peek() != '\n') {
    if (peek() == '\\')
      advance();
    if (!atEnd())
      advance();
  }
  if (atEnd() || peek() != Quote)
    return fail(Start, "unterminated literal in C block");
  advance();
  return true;
}

bool Parser::parseBlock(std::string &Code, SpecLoc &Where) {
  if (!skipSpaceAndComments())
    return false;
  SpecLoc Open = loc();
  if (peek() != '{')
    return fail(Open, "expected '{' to start a C block");
  advance();
  Where = loc();
  size_t Start = Pos;
  unsigned Depth = 1;
  while (!atEnd()) {
    char C = peek();
    if (C == '"' || C == '\'') {
      if (!skipCLiteral(C))
        return false;
      continue;
    }
    if (C == '/' && (peek(1) == '/' || peek(1) == '*')) {
      if (!skipSpaceAndComments())
        return false;
      continue;
    }
    if (C == '{')
      ++Depth;
    if (C == '}' && --Depth == 0) {
      Code = Text.substr(Start, Pos - Start).str();
      advance();
      return true;
    }
    advance();
  }
  return fail(Open, "unterminated C block: no matching '}'");
}

/// A keyword (INIT, ALLOCATOR) at Pos: the word itself, not the start of a
/// longer name, and not a variable of that name starting a rename
/// (`INIT -> init`).
bool Parser::atKeyword(StringRef Kw) const {
  StringRef Rest = Text.substr(Pos);
  if (!Rest.starts_with(Kw) ||
      (Rest.size() > Kw.size() && isPathChar(Rest[Kw.size()])))
    return false;
  StringRef After = Rest.substr(Kw.size()).ltrim();
  return !After.starts_with("->") && !After.starts_with(",");
}

/// ALLOCATOR alloc_fn free_fn
bool Parser::parseAllocator(Spec &S) {
  SpecAllocator A;
  A.Loc = loc();
  for (int I = 0; I < 9; ++I)
    advance();
  for (auto [Name, Where, What] :
       {std::tuple(&A.Alloc, &A.AllocLoc, "allocation function"),
        std::tuple(&A.Free, &A.FreeLoc, "free function")}) {
    if (!skipSpaceAndComments())
      return false;
    *Where = loc();
    std::string W;
    if (!word(W))
      return fail(*Where, Twine("expected the name of the new version's ") +
                              What + " (ALLOCATOR alloc_fn free_fn)");
    if (!isIdent(W))
      return fail(*Where, "'" + W + "' is not a function name (ALLOCATOR "
                                    "alloc_fn free_fn)");
    *Name = W;
  }
  if (S.Allocator)
    return fail(A.Loc, "a second ALLOCATOR directive (the first is at " +
                           S.Allocator->Loc.str() + ")");
  S.Allocator = std::move(A);
  return true;
}

bool Parser::parseRule(Spec &S) {
  SpecLoc Start = loc();
  if (peek() == '{') {
    SpecCode C;
    if (!parseBlock(C.Code, C.CodeLoc))
      return false;
    S.TopCode.push_back(std::move(C));
    return true;
  }
  if (atKeyword("ALLOCATOR"))
    return parseAllocator(S);
  bool Init = atKeyword("INIT");
  if (Init)
    for (int I = 0; I < 4; ++I)
      advance();
  std::vector<SpecPath> From, To;
  std::vector<std::pair<SpecPath, SpecPath>> Pairs;
  if (!parsePaths(Init ? To : From))
    return false;
  if (!Init) {
    if (!expect("->", "after the old path(s)") || !parsePaths(To))
      return false;
    // Kitsune's `a -> a, b -> b : { ... }`: several rules sharing a block.
    // The path before each further '->' was not a new path but the next
    // rule's old one.
    while (Text.substr(Pos).starts_with("->") && To.size() > 1) {
      SpecPath Next = To.back();
      To.pop_back();
      if (!pairUp(Start, From, To, Pairs))
        return false;
      From = {Next};
      Start = Next.Loc;
      To.clear();
      if (!expect("->", "after the old path(s)") || !parsePaths(To))
        return false;
    }
  }
  if (!Init && !pairUp(Start, From, To, Pairs))
    return false;
  SpecRule R;
  R.Init = Init;
  if (!skipSpaceAndComments())
    return false;
  if (peek() == ':') {
    advance();
    R.HasCode = true;
    if (!parseBlock(R.Code, R.CodeLoc))
      return false;
  } else if (Init) {
    return fail(loc(), "expected ':' and a C block after INIT path(s)");
  }
  if (Init)
    for (const SpecPath &P : To)
      Pairs.push_back({SpecPath(), P});
  for (auto &[Old, New] : Pairs) {
    SpecRule One = R;
    One.From = Old;
    One.To = New;
    S.Rules.push_back(std::move(One));
  }
  return true;
}

/// Old and new paths pair up by position.
bool Parser::pairUp(const SpecLoc &Start, const std::vector<SpecPath> &From,
                    const std::vector<SpecPath> &To,
                    std::vector<std::pair<SpecPath, SpecPath>> &Pairs) {
  if (From.size() != To.size())
    return fail(Start, std::to_string(From.size()) + " old path(s) but " +
                           std::to_string(To.size()) +
                           " new path(s): they pair up by position");
  for (size_t I = 0; I < To.size(); ++I)
    Pairs.push_back({From[I], To[I]});
  return true;
}

Expected<Spec> Parser::run() {
  Spec S;
  while (skipSpaceAndComments() && !atEnd())
    if (!parseRule(S))
      break;
  if (!Err.empty())
    return createStringError(inconvertibleErrorCode(), Err);
  return S;
}

} // namespace

Expected<Spec> parseSpec(StringRef Text, StringRef File) {
  return Parser(Text, File).run();
}

} // namespace mvedsua

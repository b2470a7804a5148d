// Lexer.h: tokens of the rules language. C fragments ({ ... } after a call)
// are read raw, on the parser's request, since only the parser knows where
// a brace opens C code and where it opens a group.
#ifndef MVEDSUA_RULES_LEXER_H
#define MVEDSUA_RULES_LEXER_H

#include "Rules.h"

#include <string>

namespace mvedsua {
namespace rules {

enum class Tok {
  kEof, kError, kIdent, kInt, kStr, kLParen, kRParen, kComma, kFatArrow,
  kArrow, kEquals, kLBrace, kRBrace, kStar, kInclude, kDecls, kSection,
};

struct Token {
  Tok kind = Tok::kEof;
  std::string text; // identifier, decoded string, section name, error text
  long long value = 0;
  Loc at;
  size_t begin = 0, end = 0; // offsets in the source
};

class Lexer {
public:
  explicit Lexer(const std::string &src) : src_(src) {}
  Token Lex();
  // Reads C code up to the brace matching an already lexed `{` (strings,
  // character constants and comments respected). False at end of input.
  bool ReadCode(Code &out, Token &close);
  const std::string &Source() const { return src_; }

private:
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0';
  }
  void Advance();
  bool SkipSpaceAndComments(Token &err);
  Token Make(Tok kind, Loc at, size_t begin);
  Token LexString(Loc at, size_t begin);
  Token LexNumber(Loc at, size_t begin);
  Token LexDirective(Loc at, size_t begin);

  const std::string &src_;
  size_t pos_ = 0;
  Loc loc_{1, 1};
};

} // namespace rules
} // namespace mvedsua

#endif // MVEDSUA_RULES_LEXER_H

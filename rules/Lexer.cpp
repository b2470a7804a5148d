// Lexer.cpp: tokens of the rules language (docs/rules.md).
#include "Lexer.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

namespace mvedsua {
namespace rules {

void Lexer::Advance() {
  if (pos_ >= src_.size())
    return;
  if (src_[pos_] == '\n') {
    loc_.line++;
    loc_.col = 1;
  } else {
    loc_.col++;
  }
  pos_++;
}

Token Lexer::Make(Tok kind, Loc at, size_t begin) {
  Token t;
  t.kind = kind;
  t.at = at;
  t.begin = begin;
  t.end = pos_;
  return t;
}

// False (with `err` set) on a comment that never ends.
bool Lexer::SkipSpaceAndComments(Token &err) {
  for (;;) {
    char c = Peek();
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      Advance();
    } else if (c == '/' && Peek(1) == '/') {
      while (Peek() && Peek() != '\n')
        Advance();
    } else if (c == '/' && Peek(1) == '*') {
      Loc at = loc_;
      Advance(), Advance();
      while (Peek() && !(Peek() == '*' && Peek(1) == '/'))
        Advance();
      if (!Peek()) {
        err = Make(Tok::kError, at, pos_);
        err.text = "unterminated comment";
        return false;
      }
      Advance(), Advance();
    } else {
      return true;
    }
  }
}

// Decodes C escapes: \n \r \t \0 \\ \" \' \xHH.
Token Lexer::LexString(Loc at, size_t begin) {
  Advance(); // "
  std::string bytes;
  for (;;) {
    char c = Peek();
    if (c == '\0' || c == '\n') {
      Token t = Make(Tok::kError, at, begin);
      t.text = "unterminated string";
      return t;
    }
    Advance();
    if (c == '"')
      break;
    if (c != '\\') {
      bytes += c;
      continue;
    }
    Loc esc = loc_;
    char e = Peek();
    Advance();
    switch (e) {
    case 'n': bytes += '\n'; break;
    case 'r': bytes += '\r'; break;
    case 't': bytes += '\t'; break;
    case '0': bytes += '\0'; break;
    case '\\': case '"': case '\'': bytes += e; break;
    case 'x': {
      int v = 0, n = 0;
      while (n < 2 && isxdigit(static_cast<unsigned char>(Peek()))) {
        char h = Peek();
        v = v * 16 + (isdigit(static_cast<unsigned char>(h)) ? h - '0' : (tolower(h) - 'a' + 10));
        Advance();
        n++;
      }
      if (n == 0) {
        Token t = Make(Tok::kError, esc, begin);
        t.text = "\\x needs hexadecimal digits";
        return t;
      }
      bytes += char(v);
      break;
    }
    default: {
      Token t = Make(Tok::kError, esc, begin);
      t.text = std::string("unknown escape \\") + e;
      return t;
    }
    }
  }
  Token t = Make(Tok::kStr, at, begin);
  t.text = bytes;
  return t;
}

Token Lexer::LexNumber(Loc at, size_t begin) {
  size_t start = pos_;
  if (Peek() == '-')
    Advance();
  while (isalnum(static_cast<unsigned char>(Peek())))
    Advance();
  std::string text = src_.substr(start, pos_ - start);
  char *end = nullptr;
  errno = 0;
  long long v = strtoll(text.c_str(), &end, 0);
  if (*end || errno) {
    Token t = Make(Tok::kError, at, begin);
    t.text = "bad number '" + text + "'";
    return t;
  }
  Token t = Make(Tok::kInt, at, begin);
  t.value = v;
  t.text = text;
  return t;
}

// #include "file", %{ C declarations %}, %reverse, %forward.
Token Lexer::LexDirective(Loc at, size_t begin) {
  if (Peek() == '%' && Peek(1) == '{') {
    Advance(), Advance();
    Token t = Make(Tok::kDecls, at, begin);
    size_t start = pos_;
    Loc code_at = loc_;
    while (Peek() && !(Peek() == '%' && Peek(1) == '}'))
      Advance();
    if (!Peek()) {
      t.kind = Tok::kError;
      t.text = "unterminated %{ block";
      return t;
    }
    t.text = src_.substr(start, pos_ - start);
    t.value = (long long)code_at.line << 32 | code_at.col;
    Advance(), Advance();
    t.end = pos_;
    return t;
  }
  char lead = Peek();
  Advance();
  size_t start = pos_;
  while (isalnum(static_cast<unsigned char>(Peek())) || Peek() == '_' || Peek() == '-')
    Advance();
  std::string word = src_.substr(start, pos_ - start);
  if (lead == '#' && word == "include") {
    Token t = Make(Tok::kInclude, at, begin);
    return t;
  }
  if (lead == '%' && (word == "reverse" || word == "forward")) {
    Token t = Make(Tok::kSection, at, begin);
    t.text = word;
    return t;
  }
  Token t = Make(Tok::kError, at, begin);
  t.text = std::string("unknown directive '") + lead + word +
           "' (expected #include, %{, %forward or %reverse)";
  return t;
}

Token Lexer::Lex() {
  Token err;
  if (!SkipSpaceAndComments(err))
    return err;
  Loc at = loc_;
  size_t begin = pos_;
  char c = Peek();
  if (!c)
    return Make(Tok::kEof, at, begin);
  if (isalpha(static_cast<unsigned char>(c)) || c == '_') {
    while (isalnum(static_cast<unsigned char>(Peek())) || Peek() == '_')
      Advance();
    Token t = Make(Tok::kIdent, at, begin);
    t.text = src_.substr(begin, pos_ - begin);
    return t;
  }
  if (isdigit(static_cast<unsigned char>(c)) ||
      (c == '-' && isdigit(static_cast<unsigned char>(Peek(1)))))
    return LexNumber(at, begin);
  if (c == '"')
    return LexString(at, begin);
  if (c == '#' || c == '%')
    return LexDirective(at, begin);
  Advance();
  switch (c) {
  case '(': return Make(Tok::kLParen, at, begin);
  case ')': return Make(Tok::kRParen, at, begin);
  case ',': return Make(Tok::kComma, at, begin);
  case '{': return Make(Tok::kLBrace, at, begin);
  case '}': return Make(Tok::kRBrace, at, begin);
  case '*': return Make(Tok::kStar, at, begin);
  case '=':
    if (Peek() == '>') {
      Advance();
      return Make(Tok::kFatArrow, at, begin);
    }
    return Make(Tok::kEquals, at, begin);
  case '-':
    if (Peek() == '>') {
      Advance();
      return Make(Tok::kArrow, at, begin);
    }
    break;
  default:
    break;
  }
  Token t = Make(Tok::kError, at, begin);
  t.text = std::string("unexpected character '") + c + "'";
  return t;
}

bool Lexer::ReadCode(Code &out, Token &close) {
  out.at = loc_;
  out.present = true;
  size_t start = pos_;
  int depth = 0;
  for (;;) {
    char c = Peek();
    if (!c)
      return false;
    if (c == '"' || c == '\'') {
      Advance();
      while (Peek() && Peek() != c && Peek() != '\n') {
        if (Peek() == '\\')
          Advance();
        Advance();
      }
      Advance();
      continue;
    }
    if (c == '/' && Peek(1) == '/') {
      while (Peek() && Peek() != '\n')
        Advance();
      continue;
    }
    if (c == '/' && Peek(1) == '*') {
      Advance(), Advance();
      while (Peek() && !(Peek() == '*' && Peek(1) == '/'))
        Advance();
      Advance(), Advance();
      continue;
    }
    if (c == '{')
      depth++;
    if (c == '}' && depth-- == 0) {
      out.text = src_.substr(start, pos_ - start);
      close = Make(Tok::kRBrace, loc_, pos_);
      Advance();
      close.end = pos_;
      return true;
    }
    Advance();
  }
}

} // namespace rules
} // namespace mvedsua

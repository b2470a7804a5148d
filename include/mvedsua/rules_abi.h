/* rules_abi.h: the table a compiled rules file exports (mvedsua-rules
 * compiles a rules file into a shared object defining `mvr_table`), read by
 * the follower's matcher in libmvedsua (docs/rules.md).
 *
 * Everything here is plain C data: the object is produced by generated C
 * and read by the runtime without any parsing. Groups and libc aliases
 * (open, recv, send) are expanded by the compiler; the runtime only sees
 * kernel syscall numbers. */
#ifndef MVEDSUA_RULES_ABI_H
#define MVEDSUA_RULES_ABI_H

#define MVR_ABI_VERSION 1
#define MVR_MAX_VARS 32

/* One variable of a rule, as C code sees it through $(x) and $len(x):
 * a scalar argument (v), or a buffer (p, len). */
struct mvr_val {
  long long v;
  char *p;
  long long len;
};

/* What a predicate or callback receives: the rule's variables and the
 * result of the call it is attached to ($(ret) or the name given by
 * `-> (name)`). */
struct mvr_ctx {
  struct mvr_val vars[MVR_MAX_VARS];
  long long ret;
};

enum mvr_arg_kind { MVR_WILD = 0, MVR_VAR = 1, MVR_INT = 2, MVR_STR = 3 };

struct mvr_arg {
  int kind;          /* enum mvr_arg_kind */
  int var;           /* MVR_VAR: index into mvr_ctx.vars */
  long long ival;    /* MVR_INT */
  const char *str;   /* MVR_STR: bytes (not necessarily NUL-free) */
  unsigned len;      /* MVR_STR: length */
};

/* One call of a rule. On the left: a pattern of a leader's record. On the
 * right: a pattern of the follower's call, or (nr == -1) a label: the
 * leader's record `from` as it is. */
struct mvr_call {
  int nr;            /* kernel syscall number, -1 for a label */
  int star;          /* `scall *`: any number of such calls */
  int from;          /* right side: the left call whose result it takes, -1 none */
  int nargs;
  struct mvr_arg args[6];
  int (*pred)(struct mvr_ctx *);
  void (*cb)(struct mvr_ctx *);
  unsigned line, col;
};

enum mvr_rule_kind { MVR_REWRITE = 0, MVR_NOTHING = 1, MVR_BEGIN = 2 };
enum mvr_direction { MVR_FORWARD = 0, MVR_REVERSE = 1 };

struct mvr_rule {
  int kind;          /* enum mvr_rule_kind */
  int direction;     /* enum mvr_direction */
  int nlhs, nrhs;
  const struct mvr_call *lhs, *rhs;
  int nvars;
  const char *name;  /* "FILE:LINE" (a group's expansion adds "[member]") */
  const char *text;  /* the rule as written, on one line */
};

struct mvr_table {
  int abi;           /* MVR_ABI_VERSION */
  int nrules;
  const struct mvr_rule *rules;
  const char *source; /* the rules file */
};

#endif /* MVEDSUA_RULES_ABI_H */

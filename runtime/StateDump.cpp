// StateDump.cpp: a version's registry as people and scripts read it
// (mvedsua-run --list-state [--json]). Modules come in registration order,
// entries in (kind, key) order, so a listing does not depend on the order the
// plugin emitted them in. Types are printed recursively from
// their descriptors; a struct or union already being printed further up the
// same path is printed by name only, which cuts self-referential types.
#include "Runtime.h"

#include <stdlib.h>
#include <string.h>

namespace mvedsua {
namespace {

// Calls fn on each entry of mod in (kind, key) order. Listing is not a hot
// path; without memory the entries come in registry order.
template <typename Fn> void ForEachSorted(const struct mvedsua_module *mod, Fn fn) {
  size_t n = mod->n_entries;
  auto **list = static_cast<const struct mvedsua_entry **>(
      malloc((n ? n : 1) * sizeof(const struct mvedsua_entry *)));
  for (size_t i = 0; list && i < n; ++i)
    list[i] = &mod->entries[i];
  if (list)
    SortEntries(list, n);
  for (size_t i = 0; i < n; ++i)
    fn(list ? *list[i] : mod->entries[i], i);
  free(list);
}

constexpr int kMaxDepth = 32;

// The struct/union bodies being printed, outermost first.
struct Path {
  const struct mvedsua_type *open[kMaxDepth];
  int depth = 0;
  bool Contains(const struct mvedsua_type *t) const {
    for (int i = 0; i < depth; ++i)
      if (open[i] == t)
        return true;
    return false;
  }
};

// A bounded string builder: names longer than the buffer are truncated.
struct Text {
  char buf[1024];
  size_t len = 0;
  Text() { buf[0] = '\0'; }
  void Add(const char *s, size_t n) {
    if (n > sizeof buf - 1 - len)
      n = sizeof buf - 1 - len;
    memcpy(buf + len, s, n);
    len += n;
    buf[len] = '\0';
  }
  void Add(const char *s) { Add(s, strlen(s)); }
};

const char *KindName(uint32_t kind) {
  static const char *const names[] = {
      "void",    "int",   "uint",   "bool",  "float",    "enum",
      "pointer", "array", "struct", "union", "function", "opaque"};
  return kind < sizeof names / sizeof *names ? names[kind] : "unknown";
}

const char *EntryKindName(uint32_t kind) {
  static const char *const names[] = {"global", "static", "local_static",
                                      "local", "function"};
  return kind < sizeof names / sizeof *names ? names[kind] : "unknown";
}

// The name a program wrote: "entry_t" of "entry_t -> struct entry".
void AddShortName(Text &out, const struct mvedsua_type *t) {
  const char *name = t->name ? t->name : "";
  if (!*name) {
    out.Add(t->kind == MVEDSUA_TYPE_VOID ? "void" : KindName(t->kind));
    if (t->kind == MVEDSUA_TYPE_STRUCT || t->kind == MVEDSUA_TYPE_UNION ||
        t->kind == MVEDSUA_TYPE_ENUM)
      out.Add(" <anonymous>");
    return;
  }
  const char *arrow = strstr(name, " -> ");
  out.Add(name, arrow ? size_t(arrow - name) : strlen(name));
}

void Spell(Text &out, const struct mvedsua_type *t);

// T[a][b]: the element type once, then every dimension outermost first.
void SpellArray(Text &out, const struct mvedsua_type *t) {
  const struct mvedsua_type *elem = t;
  while (elem && elem->kind == MVEDSUA_TYPE_ARRAY)
    elem = elem->target;
  Spell(out, elem);
  for (; t && t->kind == MVEDSUA_TYPE_ARRAY; t = t->target) {
    char dim[32];
    if (t->flags & MVEDSUA_TYPE_FLEXIBLE)
      snprintf(dim, sizeof dim, "[]");
    else
      snprintf(dim, sizeof dim, "[%llu]", (unsigned long long)t->count);
    out.Add(dim);
  }
}

// A pointer to "int (int, char *)" reads "int (*)(int, char *)".
void SpellPointer(Text &out, const struct mvedsua_type *t) {
  const struct mvedsua_type *to = t->target;
  if (to && to->kind == MVEDSUA_TYPE_FUNCTION) {
    Text fn;
    Spell(fn, to);
    const char *paren = strchr(fn.buf, '(');
    if (paren) {
      out.Add(fn.buf, paren - fn.buf);
      out.Add("(*)");
      out.Add(paren);
      return;
    }
  }
  if (to)
    Spell(out, to);
  else
    out.Add("void");
  out.Add(out.len && out.buf[out.len - 1] == '*' ? "*" : " *"); // char **
}

void Spell(Text &out, const struct mvedsua_type *t) {
  if (!t)
    return out.Add("void");
  if (t->kind == MVEDSUA_TYPE_POINTER)
    return SpellPointer(out, t);
  if (t->kind == MVEDSUA_TYPE_ARRAY)
    return SpellArray(out, t);
  AddShortName(out, t);
}

// The struct or union a declaration of type t leads to through pointers and
// arrays, whose body is worth printing; NULL when there is none.
const struct mvedsua_type *Aggregate(const struct mvedsua_type *t) {
  while (t && (t->kind == MVEDSUA_TYPE_POINTER || t->kind == MVEDSUA_TYPE_ARRAY))
    t = t->target;
  if (t && (t->kind == MVEDSUA_TYPE_STRUCT || t->kind == MVEDSUA_TYPE_UNION))
    return t;
  return nullptr;
}

void PrintAnnotations(FILE *out, uint32_t annot, const char *arg,
                      uint32_t entry_flags) {
  const char *a = arg ? arg : "?";
  if (annot & MVEDSUA_ANNOT_NO_MIGRATE)
    fprintf(out, " no_migrate");
  if (annot & MVEDSUA_ANNOT_OPAQUE)
    fprintf(out, " opaque");
  if (annot & MVEDSUA_ANNOT_PTRARRAY)
    fprintf(out, " ptrarray(%s)", a);
  if (annot & MVEDSUA_ANNOT_ARRAY)
    fprintf(out, " array(%s)", a);
  if (entry_flags & MVEDSUA_ENTRY_CONST)
    fprintf(out, " const");
  if (entry_flags & MVEDSUA_ENTRY_THREAD_LOCAL)
    fprintf(out, " thread_local");
}

void PrintBody(FILE *out, const struct mvedsua_type *agg, int indent,
               Path &path);

// Below a declaration: the body of the aggregate it leads to, unless that is
// opaque to migration or already open further up.
void PrintExpansion(FILE *out, const struct mvedsua_type *t, uint32_t annot,
                    int indent, Path &path) {
  const struct mvedsua_type *agg = Aggregate(t);
  if (!agg || (annot & MVEDSUA_ANNOT_OPAQUE) || path.Contains(agg) ||
      path.depth == kMaxDepth)
    return;
  PrintBody(out, agg, indent, path);
}

void PrintField(FILE *out, const struct mvedsua_field &f, int indent,
                Path &path) {
  Text type;
  Spell(type, f.type);
  uint64_t type_bits = f.type ? f.type->size * 8 : 0;
  bool bitfield = f.size_bits != type_bits || f.offset_bits % 8 != 0;
  if (bitfield)
    fprintf(out, "%*s@bit %llu %s: %s : %llu", indent, "",
            (unsigned long long)f.offset_bits, f.name ? f.name : "", type.buf,
            (unsigned long long)f.size_bits);
  else
    fprintf(out, "%*s@%llu %s: %s", indent, "",
            (unsigned long long)(f.offset_bits / 8), f.name ? f.name : "",
            type.buf);
  PrintAnnotations(out, f.annotations, f.annot_arg, 0);
  fputc('\n', out);
  PrintExpansion(out, f.type, f.annotations, indent + 2, path);
}

void PrintBody(FILE *out, const struct mvedsua_type *agg, int indent,
               Path &path) {
  Text name;
  AddShortName(name, agg);
  const char *full = agg->name && strstr(agg->name, " -> ") ? agg->name : name.buf;
  fprintf(out, "%*s%s {  # %llu bytes\n", indent, "", full,
          (unsigned long long)agg->size);
  path.open[path.depth++] = agg;
  for (uint64_t i = 0; agg->fields && i < agg->count; ++i)
    PrintField(out, agg->fields[i], indent + 2, path);
  path.depth--;
  fprintf(out, "%*s}\n", indent, "");
}

void PrintEntry(FILE *out, const struct mvedsua_entry &e) {
  fprintf(out, "  %s %s", EntryKindName(e.kind), e.key ? e.key : "");
  if (e.kind != MVEDSUA_ENTRY_FUNCTION) {
    Text type;
    Spell(type, e.type);
    fprintf(out, ": %s  size %llu", type.buf, (unsigned long long)e.size);
  }
  fprintf(out, "  line %u", e.line);
  PrintAnnotations(out, e.annotations, e.annot_arg, e.flags);
  fputc('\n', out);
  Path path;
  PrintExpansion(out, e.type, e.annotations, 4, path);
}

} // namespace

void DumpVersionText(int v, FILE *out) {
  char id[17];
  FormatVersionId(ComputeVersionId(v), id);
  fprintf(out, "version %s %s\n", id, GetVersion(v)->path);
  for (int m = 0; m < ModuleCount(); ++m) {
    if (ModuleVersion(m) != v)
      continue;
    const struct mvedsua_module *mod = GetModule(m);
    fprintf(out, "module %s  %llu entries\n", mod->source ? mod->source : "?",
            (unsigned long long)mod->n_entries);
    ForEachSorted(mod, [out](const struct mvedsua_entry &e, size_t) {
      PrintEntry(out, e);
    });
  }
}

// ---- JSON -------------------------------------------------------------------

namespace {

void JsonString(FILE *out, const char *s) {
  if (!s) {
    fputs("null", out);
    return;
  }
  fputc('"', out);
  for (; *s; ++s) {
    unsigned char c = *s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20)
      fprintf(out, "\\u%04x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

void JsonAnnotations(FILE *out, uint32_t annot, const char *arg) {
  static const struct {
    uint32_t bit;
    const char *name;
  } names[] = {{MVEDSUA_ANNOT_NO_MIGRATE, "no_migrate"},
               {MVEDSUA_ANNOT_OPAQUE, "opaque"},
               {MVEDSUA_ANNOT_PTRARRAY, "ptrarray"},
               {MVEDSUA_ANNOT_ARRAY, "array"}};
  fputs("\"annotations\":[", out);
  const char *sep = "";
  for (const auto &n : names)
    if (annot & n.bit) {
      fprintf(out, "%s\"%s\"", sep, n.name);
      sep = ",";
    }
  fputs("],\"annot_arg\":", out);
  JsonString(out, annot & (MVEDSUA_ANNOT_PTRARRAY | MVEDSUA_ANNOT_ARRAY) ? arg
                                                                       : nullptr);
}

void JsonType(FILE *out, const struct mvedsua_type *t, Path &path);

void JsonField(FILE *out, const struct mvedsua_field &f, Path &path) {
  fputs("{\"name\":", out);
  JsonString(out, f.name ? f.name : "");
  fprintf(out, ",\"offset_bits\":%llu,\"size_bits\":%llu,",
          (unsigned long long)f.offset_bits, (unsigned long long)f.size_bits);
  JsonAnnotations(out, f.annotations, f.annot_arg);
  fputs(",\"type\":", out);
  JsonType(out, f.type, path);
  fputc('}', out);
}

void JsonFields(FILE *out, const struct mvedsua_type *t, Path &path) {
  fputs(",\"fields\":[", out);
  path.open[path.depth++] = t;
  for (uint64_t i = 0; t->fields && i < t->count; ++i) {
    if (i)
      fputc(',', out);
    JsonField(out, t->fields[i], path);
  }
  path.depth--;
  fputc(']', out);
}

void JsonType(FILE *out, const struct mvedsua_type *t, Path &path) {
  if (!t) {
    fputs("null", out);
    return;
  }
  fprintf(out, "{\"kind\":\"%s\",\"name\":", KindName(t->kind));
  JsonString(out, t->name ? t->name : "");
  bool aggregate =
      t->kind == MVEDSUA_TYPE_STRUCT || t->kind == MVEDSUA_TYPE_UNION;
  if (aggregate && (path.Contains(t) || path.depth == kMaxDepth)) {
    fputs(",\"ref\":true}", out); // printed further up: cut the recursion
    return;
  }
  fprintf(out, ",\"size\":%llu,\"hash\":\"%016llx\"", (unsigned long long)t->size,
          (unsigned long long)t->hash);
  if (t->kind == MVEDSUA_TYPE_ARRAY)
    fprintf(out, ",\"count\":%llu,\"flexible\":%s", (unsigned long long)t->count,
            t->flags & MVEDSUA_TYPE_FLEXIBLE ? "true" : "false");
  if (t->kind == MVEDSUA_TYPE_POINTER || t->kind == MVEDSUA_TYPE_ARRAY ||
      t->kind == MVEDSUA_TYPE_ENUM) {
    fputs(",\"target\":", out);
    JsonType(out, t->target, path);
  }
  if (aggregate)
    JsonFields(out, t, path);
  fputc('}', out);
}

void JsonEntry(FILE *out, const struct mvedsua_entry &e) {
  fprintf(out, "{\"kind\":\"%s\",\"key\":", EntryKindName(e.kind));
  JsonString(out, e.key ? e.key : "");
  fprintf(out, ",\"size\":%llu,\"line\":%u,\"flags\":[%s%s%s],",
          (unsigned long long)e.size, e.line,
          e.flags & MVEDSUA_ENTRY_CONST ? "\"const\"" : "",
          (e.flags & MVEDSUA_ENTRY_CONST) && (e.flags & MVEDSUA_ENTRY_THREAD_LOCAL)
              ? ","
              : "",
          e.flags & MVEDSUA_ENTRY_THREAD_LOCAL ? "\"thread_local\"" : "");
  JsonAnnotations(out, e.annotations, e.annot_arg);
  fputs(",\"type\":", out);
  Path path;
  JsonType(out, e.type, path);
  fputc('}', out);
}

void JsonModule(FILE *out, const struct mvedsua_module *mod) {
  fputs("{\"source\":", out);
  JsonString(out, mod->source ? mod->source : "");
  fputs(",\"entries\":[", out);
  ForEachSorted(mod, [out](const struct mvedsua_entry &e, size_t i) {
    if (i)
      fputs(",\n", out);
    JsonEntry(out, e);
  });
  fputs("]}", out);
}

} // namespace

void DumpVersionJson(int v, FILE *out) {
  char id[17];
  FormatVersionId(ComputeVersionId(v), id);
  fprintf(out, "{\"version\":\"%s\",\"path\":", id);
  JsonString(out, GetVersion(v)->path);
  fputs(",\"modules\":[\n", out);
  const char *sep = "";
  for (int m = 0; m < ModuleCount(); ++m)
    if (ModuleVersion(m) == v) {
      fputs(sep, out);
      JsonModule(out, GetModule(m));
      sep = ",\n";
    }
  fputs("]}\n", out);
}

} // namespace mvedsua

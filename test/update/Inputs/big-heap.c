/* A version holding a large heap: a ring of N nodes, each with a function
 * pointer and a pointer into a shared global array. It updates to argv[2]
 * (usually its own file) and checks every node afterwards. Also the program
 * behind the pause measurement in docs/updates.md. */
#include <mvedsua.h>
#include <stdio.h>
#include <stdlib.h>

struct kind {
  int id;
  const char *(*name)(void);
};

struct node {
  long value;
  struct node *next;
  struct kind *kind;
  int (*op)(long);
  char tag[16];
};

struct kind kinds[4];
struct node *ring;
long n_nodes;
int generations;

static const char *kind_name(void) { return "kind"; }
static int op(long v) { return v >= 0; }

static void build(long n) {
  for (int i = 0; i < 4; ++i)
    kinds[i] = (struct kind){i, kind_name};
  struct node *first = NULL, *last = NULL;
  for (long i = 0; i < n; ++i) {
    struct node *p = malloc(sizeof *p);
    *p = (struct node){i, NULL, &kinds[i % 4], op, "node"};
    if (last)
      last->next = p;
    else
      first = p;
    last = p;
  }
  last->next = first; /* a cycle: the walk must terminate */
  ring = first;
  n_nodes = n;
}

static void check(int generation) {
  long sum = 0, ops = 0, in_kinds = 0;
  struct node *p = ring;
  for (long i = 0; i < n_nodes; ++i, p = p->next) {
    sum += p->value;
    ops += p->op == op;
    in_kinds += p->kind >= kinds && p->kind < kinds + 4 &&
                p->kind->name == kind_name;
  }
  if (generation == 0)
    printf("generation 0: %ld nodes, sum %ld\n", n_nodes, sum);
  else
    printf("generation %d: %ld nodes, sum %ld, ops in this copy %ld, kinds in "
           "this copy %ld\n",
           generation, n_nodes, sum, ops, in_kinds);
  fflush(stdout);
}

int main(int argc, char **argv) {
  int generation = generations++;
  if (argc < 3)
    return 2;
  if (!mvedsua_is_updating())
    build(atol(argv[1]));
  mvedsua_update_point("loop");
  check(generation);
  if (generation > 0)
    return 0;
  if (mvedsua_request_update(argv[2]) != 0) {
    perror("request");
    return 1;
  }
  mvedsua_update_point("loop");
  return 1;
}

#include <mvedsua.h>
#include <stdio.h>
int served = 41;
int main(int argc, char **argv) {
  mvedsua_update_point("main");
  printf("app-1 served=%d argc=%d arg1=%s\n", served + 1, argc, argc > 1 ? argv[1] : "-");
  return 0;
}

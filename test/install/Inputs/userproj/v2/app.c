#include <mvedsua.h>
#include <stdio.h>
int served = 0;
int main(int argc, char **argv) {
  mvedsua_update_point("main");
  printf("%s served=%d\n", GREETING, served);
  return 0;
}

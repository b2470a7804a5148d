/* A program built without MvedsuaPass.so: it runs, but has no registry. */
#include <stdio.h>
int main(int argc, char **argv) {
  printf("plain main argc=%d argv[0]=%s\n", argc, argv[0]);
  return 7;
}

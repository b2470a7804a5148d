/* A shared object with no main: not a program mvedsua-run can run. */
int not_main(void) { return 0; }

/* A static `true`: the program fork_bench spawns. */
int main(void) { return 0; }

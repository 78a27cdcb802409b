/* strace_segv: a store to an unmapped address; strace shows the signal and the kill. */
int main(void)
{
    *(volatile int *)0x10 = 1;
    return 0;
}

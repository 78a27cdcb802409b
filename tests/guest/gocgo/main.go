// A cgo-enabled (dynamically linked) Go program: C's getpid and strlen through cgo.
package main

/*
#include <string.h>
#include <unistd.h>
static int twice(int x) { return 2 * x; }
*/
import "C"

import "fmt"

func main() {
	s := C.CString("hello from cgo")
	fmt.Println("strlen", C.strlen(s), "twice", C.twice(21), "pid > 0:", C.getpid() > 0)
}

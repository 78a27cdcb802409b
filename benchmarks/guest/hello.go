// hello.go: a tiny Go program (built static with CGO_ENABLED=0) whose whole run,
// runtime start-up included (threads, signal handlers, heap), is timed.
package main

import "fmt"

func main() {
	fmt.Println("hello, world")
}

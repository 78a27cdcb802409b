// A Go program for umiak's tests: goroutines and channels, timers and
// time.Sleep, a garbage collector under load (200 MB allocated in total),
// runtime.NumCPU, a mutex, and an exit status / panic chosen by argv.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "panic" {
		panic("deliberate panic")
	}
	var wg sync.WaitGroup
	ch := make(chan int, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				ch <- i * j
			}
		}(i)
	}
	go func() { wg.Wait(); close(ch) }()
	sum := 0
	for v := range ch {
		sum += v
	}
	fmt.Println("channel sum", sum)

	start := time.Now()
	time.Sleep(30 * time.Millisecond)
	fmt.Println("slept at least 30ms:", time.Since(start) >= 30*time.Millisecond)
	timer := time.NewTimer(10 * time.Millisecond)
	<-timer.C
	ticker := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 3; i++ {
		<-ticker.C
	}
	ticker.Stop()
	fmt.Println("timers fired")

	var keep [][]byte
	total := 0
	for i := 0; i < 200; i++ {
		b := make([]byte, 1<<20)
		b[i%len(b)] = byte(i)
		total += len(b)
		keep = append(keep, b)
		if len(keep) > 8 {
			keep = keep[1:]
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Println("allocated MB", total>>20, "gc cycles > 0:", ms.NumGC > 0)

	var mu sync.Mutex
	counter := 0
	var wg2 sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for j := 0; j < 10000; j++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg2.Wait()
	fmt.Println("mutex counter", counter)
	xs := []int{5, 3, 9, 1, 7}
	sort.Ints(xs)
	fmt.Println("sorted", xs, "cpus > 0:", runtime.NumCPU() > 0)
	if len(os.Args) > 1 && os.Args[1] == "exit3" {
		os.Exit(3)
	}
}

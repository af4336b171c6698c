// benches/peers/suite.go - the Go peer of libslp's side-by-side benchmark suite (issue 10): the
// workloads of benches/suite.c written with goroutines and channels, with the same command
// line, result lines and exit statuses, for the suite's runner (scripts/bench-suite.sh) to put
// side by side.
//
// Usage: suite WORKLOAD N
// Prints "RESULT <workload> <metric> <value>" lines on stdout and exits 0; anything else goes
// to stderr. A failure (a value received out of order, a count that does not add up, a sleep
// that woke early) exits 1; bad arguments exit 2; a workload this program does not have
// exits 3 with "unsupported workload".
//
// Build and run (Debian's golang-go, Go 1.19+, standard library only, no go.mod needed):
//
//	go build -o suite benches/peers/suite.go
//	taskset -c 1 ./suite pingpong 1000000
//
// Single-thread workloads set runtime.GOMAXPROCS(1): every goroutine runs on one P, so on one
// OS thread at a time (the Go runtime keeps helper threads - sysmon, an idle M or two - but
// they do not run these goroutines in parallel). Times are wall clock (time.Now, monotonic).
//
//	yield           two goroutines, each calls runtime.Gosched N times.
//	                ns_per_switch = elapsed / (2N).
//	spawn_batch     N goroutines in total, 1000 at a time: start 1000 (go f()), wait on a
//	                sync.WaitGroup until all 1000 ended, repeat (the last batch holds the
//	                remainder when N is not a multiple of 1000). The body only calls
//	                wg.Done() - the join needs it. ns_per_tasklet = elapsed / N.
//	spawn_one       start one goroutine, wait until it ended (WaitGroup); N times.
//	                ns_per_tasklet = elapsed / N.
//	pingpong        two unbuffered channels, ping and pong; goroutine A sends i on ping and
//	                receives on pong, B receives on ping and sends the value back on pong; N
//	                round trips, both sides check every value. ns_per_message = elapsed / (2N).
//	ring            503 goroutines, goroutine k receives on unbuffered channel k and sends the
//	                token minus one on channel (k+1)%503. The token N is sent into channel 0;
//	                the goroutine that receives 0 checks that it is goroutine N%503 and closes
//	                every channel, which ends the others (each is receiving, or on its way back
//	                to it, and a receive from a closed channel returns at once). Each goroutine
//	                counts its hops, the total must be N. Timed from the injection to
//	                the end of all 503 (created before the clock starts).
//	                ns_per_hop = elapsed / N.
//	xthread_parked  GOMAXPROCS(2); A is the main goroutine, B another goroutine, and each calls
//	                runtime.LockOSThread, so they are two OS threads and the blocked party's
//	                thread sleeps (futex) until the other wakes it. Two unbuffered channels,
//	                one untimed warm-up round trip, then N timed round trips (values checked).
//	                ns_per_round_trip = elapsed / N.
//	xthread_busy    as xthread_parked plus two goroutines that keep calling runtime.Gosched
//	                until the exchange is over, so neither of the 2 Ps ever idles and no
//	                thread running Go code ever sleeps. A locked goroutine owns its thread
//	                (no other goroutine can run there) and a locked goroutine that blocks puts
//	                its thread to sleep (stoplockedm), the opposite of what this variant is
//	                for, so here NOTHING calls LockOSThread: A, B and the two spinners float
//	                over the 2 Ps. This is the nearest Go gets to "two threads that never
//	                sleep", and it is not a cross-thread exchange: Go readies a goroutine
//	                woken by a channel operation on the waker's own P (runnext), so A and B
//	                end up on the same thread, handing over locally, while the other P runs a
//	                spinner (a check with gettid found them on the same thread in every round
//	                trip; one spinner may not run at all, starved behind A and B). Read the
//	                figure as Go's hand-off in a busy runtime, not as a thread-to-thread one.
//	                ns_per_round_trip.
//	many            N goroutines, each blocked receiving on ONE shared unbuffered channel. The
//	                clock starts, N goroutines are started, and the N-th to arrive closes a
//	                'ready' channel the main goroutine waits on just before it blocks too
//	                (with GOMAXPROCS(1) nothing runs between); VmRSS (/proc/self/status) is
//	                read then, the 'before' sample being taken after runtime.GC() before the
//	                clock started. Then the main goroutine sends 0..N-1 on the channel, waits
//	                (WaitGroup) until all ended, and the clock stops; the sum of the received
//	                values is checked. ns_per_tasklet = whole thing / N,
//	                kib_rss_per_tasklet = (RSS when all blocked - RSS before) / N (Go's stacks
//	                start at 2 KiB and grow; no guard pages).
//	sleep           1000 goroutines each sleep N times with time.Sleep for a random 0.1-5 ms;
//	                lateness = time.Since(t0) - d, t0 read just before the sleep and d the
//	                duration asked, over all 1000*N wakes: lateness_median_us,
//	                lateness_p99_us. The durations are those of benches/time.c and
//	                benches/peers/suite_fiber.cpp: splitmix64 seeded with
//	                20240611 ^ (i * 0xD1B54A32D192ED03) for sleeper i. (When every goroutine
//	                sleeps, Go 1.19 waits for the next timer in epoll_wait, whose timeout is in
//	                whole milliseconds, so up to a millisecond of lateness is Go's own.)
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "suite.go: "+format+"\n", args...)
	os.Exit(1)
}

func result(workload, metric string, value float64) {
	fmt.Printf("RESULT %s %s %.3f\n", workload, metric, value)
}

func perOp(d time.Duration, ops int64) float64 {
	return float64(d.Nanoseconds()) / float64(ops)
}

// ---- single-thread workloads --------------------------------------------------------------

func benchYield(n int64) {
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	counts := make([]int64, 2)
	t0 := time.Now()
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			var i int64
			for i = 0; i < n; i++ {
				runtime.Gosched()
			}
			counts[p] = i
		}(p)
	}
	wg.Wait()
	el := time.Since(t0)
	if counts[0] != n || counts[1] != n {
		fail("yield: counts %d %d, want %d", counts[0], counts[1], n)
	}
	result("yield", "ns_per_switch", perOp(el, 2*n))
}

func emptyBody(wg *sync.WaitGroup) { wg.Done() }

func benchSpawnBatch(n int64) {
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	var started int64
	t0 := time.Now()
	for started < n {
		batch := n - started
		if batch > 1000 {
			batch = 1000
		}
		wg.Add(int(batch))
		for i := int64(0); i < batch; i++ {
			go emptyBody(&wg)
		}
		wg.Wait()
		started += batch
	}
	el := time.Since(t0)
	result("spawn_batch", "ns_per_tasklet", perOp(el, n))
}

func benchSpawnOne(n int64) {
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		wg.Add(1)
		go emptyBody(&wg)
		wg.Wait()
	}
	el := time.Since(t0)
	result("spawn_one", "ns_per_tasklet", perOp(el, n))
}

// pingpongA / pingpongB: the two parties of every ping-pong here (one-thread and cross-thread).
func pingpongA(who string, ping chan<- int64, pong <-chan int64, from, to int64) {
	for i := from; i < to; i++ {
		ping <- i
		if v := <-pong; v != i {
			fail("%s: A received %d on pong, want %d", who, v, i)
		}
	}
}

func pingpongB(who string, ping <-chan int64, pong chan<- int64, from, to int64) {
	for i := from; i < to; i++ {
		v := <-ping
		if v != i {
			fail("%s: B received %d on ping, want %d", who, v, i)
		}
		pong <- v
	}
}

func benchPingpong(n int64) {
	runtime.GOMAXPROCS(1)
	ping, pong := make(chan int64), make(chan int64)
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() { defer wg.Done(); pingpongA("pingpong", ping, pong, 0, n) }()
	go func() { defer wg.Done(); pingpongB("pingpong", ping, pong, 0, n) }()
	wg.Wait()
	el := time.Since(t0)
	result("pingpong", "ns_per_message", perOp(el, 2*n))
}

const ringSize = 503

func benchRing(n int64) {
	runtime.GOMAXPROCS(1)
	chans := make([]chan int64, ringSize)
	for k := range chans {
		chans[k] = make(chan int64)
	}
	hops := make([]int64, ringSize)
	finisher := int64(-1)
	var wg sync.WaitGroup
	wg.Add(ringSize)
	for k := 0; k < ringSize; k++ {
		go func(k int) {
			defer wg.Done()
			in, out := chans[k], chans[(k+1)%ringSize]
			var h int64
			for {
				v, ok := <-in
				if !ok {
					break // the ring is over
				}
				if v == 0 {
					// No other goroutine holds a token: closing the channels ends them all.
					finisher = int64(k)
					for _, c := range chans {
						close(c)
					}
					break
				}
				out <- v - 1
				h++
			}
			hops[k] = h
		}(k)
	}
	t0 := time.Now()
	chans[0] <- n
	wg.Wait()
	el := time.Since(t0)
	var total int64
	for _, h := range hops {
		total += h
	}
	if total != n || finisher != n%ringSize {
		fail("ring: %d hops ended at goroutine %d, want %d hops ending at %d", total, finisher,
			n, n%ringSize)
	}
	result("ring", "ns_per_hop", perOp(el, n))
}

// ---- cross-thread workloads ---------------------------------------------------------------

func benchXthread(workload string, n int64, busy bool) {
	runtime.GOMAXPROCS(2)
	ping, pong := make(chan int64), make(chan int64)
	var wg sync.WaitGroup
	var stop int32
	var spins [2]int64
	if busy {
		// See the file comment: no LockOSThread here; the spinners keep both Ps busy.
		for s := 0; s < 2; s++ {
			wg.Add(1)
			go func(s int) {
				defer wg.Done()
				var c int64
				for atomic.LoadInt32(&stop) == 0 {
					runtime.Gosched()
					c++
				}
				spins[s] = c
			}(s)
		}
	} else {
		runtime.LockOSThread() // A: the main goroutine, on the main thread
		defer runtime.UnlockOSThread()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !busy {
			runtime.LockOSThread() // B: a thread of its own; it exits with the goroutine
		}
		pingpongB(workload, ping, pong, -1, n)
	}()
	pingpongA(workload, ping, pong, -1, 0) // warm-up round trip: both parties are running
	t0 := time.Now()
	pingpongA(workload, ping, pong, 0, n)
	el := time.Since(t0)
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	if busy {
		fmt.Fprintf(os.Stderr, "%s: the spinners yielded %d and %d times\n", workload,
			spins[0], spins[1])
	}
	result(workload, "ns_per_round_trip", perOp(el, n))
}

// ---- many ---------------------------------------------------------------------------------

func vmRSSKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fail("many: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line[len("VmRSS:"):])
			if len(fields) == 2 && fields[1] == "kB" {
				v, err := strconv.ParseInt(fields[0], 10, 64)
				if err == nil {
					return v
				}
			}
			fail("many: cannot parse %q", line)
		}
	}
	fail("many: no VmRSS line in /proc/self/status")
	return 0
}

type manyState struct {
	ch      chan int64
	ready   chan struct{}
	arrived int64
	n       int64
	sum     int64
	wg      sync.WaitGroup
}

func manyBody(s *manyState) {
	if atomic.AddInt64(&s.arrived, 1) == s.n {
		close(s.ready) // the last to arrive; it blocks on the next line before anyone runs
	}
	v := <-s.ch
	atomic.AddInt64(&s.sum, v)
	s.wg.Done()
}

func benchMany(n int64) {
	runtime.GOMAXPROCS(1)
	s := &manyState{ch: make(chan int64), ready: make(chan struct{}), n: n}
	runtime.GC()
	rss0 := vmRSSKiB()
	t0 := time.Now()
	s.wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go manyBody(s)
	}
	<-s.ready
	rss1 := vmRSSKiB()
	for i := int64(0); i < n; i++ {
		s.ch <- i
	}
	s.wg.Wait()
	el := time.Since(t0)
	if want := n * (n - 1) / 2; s.sum != want {
		fail("many: received values sum to %d, want %d", s.sum, want)
	}
	fmt.Fprintf(os.Stderr, "many: VmRSS %d KiB before, %d KiB with %d goroutines blocked\n",
		rss0, rss1, n)
	result("many", "ns_per_tasklet", perOp(el, n))
	result("many", "kib_rss_per_tasklet", float64(rss1-rss0)/float64(n))
}

// ---- sleep --------------------------------------------------------------------------------

const (
	sleepers  = 1000
	sleepSeed = 20240611
)

// splitmix64, seeded per sleeper exactly as in benches/time.c.
func nextRand(s *uint64) uint64 {
	*s += 0x9E3779B97F4A7C15
	z := *s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func percentile(v []time.Duration, pct int) time.Duration {
	i := len(v) * pct / 100
	if i >= len(v) {
		i = len(v) - 1
	}
	return v[i]
}

func benchSleep(n int64) {
	runtime.GOMAXPROCS(1)
	late := make([]time.Duration, sleepers*n)
	var early int64
	var wg sync.WaitGroup
	wg.Add(sleepers)
	for i := int64(0); i < sleepers; i++ {
		go func(i int64) {
			defer wg.Done()
			s := uint64(sleepSeed) ^ (uint64(i) * 0xD1B54A32D192ED03)
			for k := int64(0); k < n; k++ {
				d := time.Duration(100000 + nextRand(&s)%4900001) // 0.1 .. 5 ms
				t0 := time.Now()
				time.Sleep(d)
				l := time.Since(t0) - d
				if l < 0 {
					atomic.AddInt64(&early, 1)
				}
				late[i*n+k] = l
			}
		}(i)
	}
	wg.Wait()
	if early != 0 {
		fail("sleep: %d wakes came before the duration asked", early)
	}
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	result("sleep", "lateness_median_us", float64(percentile(late, 50).Nanoseconds())/1000)
	result("sleep", "lateness_p99_us", float64(percentile(late, 99).Nanoseconds())/1000)
}

// ---- main ---------------------------------------------------------------------------------

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: suite WORKLOAD N")
		os.Exit(2)
	}
	n, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "suite.go: N must be a positive integer, not %q\n", os.Args[2])
		os.Exit(2)
	}
	switch w := os.Args[1]; w {
	case "yield":
		benchYield(n)
	case "spawn_batch":
		benchSpawnBatch(n)
	case "spawn_one":
		benchSpawnOne(n)
	case "pingpong":
		benchPingpong(n)
	case "ring":
		benchRing(n)
	case "xthread_parked":
		benchXthread(w, n, false)
	case "xthread_busy":
		benchXthread(w, n, true)
	case "many":
		benchMany(n)
	case "sleep":
		benchSleep(n)
	default:
		fmt.Fprintf(os.Stderr, "suite.go: %s: unsupported workload\n", w)
		os.Exit(3)
	}
}

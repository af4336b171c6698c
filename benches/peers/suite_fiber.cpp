// benches/peers/suite_fiber.cpp - the Boost.Fiber peer of libslp's side-by-side benchmark
// suite (issue 10): the workloads of benches/suite.c written with fibers and Boost.Fiber
// channels, with the same command line, result lines and exit statuses, for the suite's runner
// (scripts/bench-suite.sh) to put side by side.
//
// Usage: suite_fiber WORKLOAD N
// Prints "RESULT <workload> <metric> <value>" lines on stdout and exits 0; anything else goes
// to stderr. A failure (a channel operation that does not return success, a value received out
// of order, a count that does not add up, a sleep that woke early, a stack that cannot be
// allocated) exits 1; bad arguments exit 2; a workload this program does not have exits 3
// with "unsupported workload".
//
// Build and run (Debian's libboost-fiber-dev, Boost 1.74):
//
//   g++ -O2 -std=c++17 -o suite_fiber benches/peers/suite_fiber.cpp -lboost_fiber -lboost_context -lpthread
//   taskset -c 1 ./suite_fiber pingpong 1000000
//
// Single-thread workloads run on the main thread's scheduler (Boost.Fiber's default,
// round_robin, which parks the thread in a condition variable when nothing is ready); the
// main fiber starts the fibers and joins them. Channels are boost::fibers::unbuffered_channel
// (a rendezvous: push returns once the value was taken). Times are wall clock
// (std::chrono::steady_clock). Stacks are Boost's default size, stack_traits::default_size()
// = 128 KiB (libslp's default is 256 KiB; only touched pages cost memory either way).
//
//   yield           two fibers, each calls boost::this_fiber::yield N times.
//                   ns_per_switch = elapsed / (2N).
//   spawn_batch     N fibers in total, 1000 at a time: create 1000 (launch::post: they only
//                   become ready), join all 1000, destroy them, repeat (the last batch holds
//                   the remainder when N is not a multiple of 1000). The body is empty.
//                   Stacks from ONE boost::fibers::pooled_fixedsize_stack (a boost::pool of
//                   128 KiB chunks, reused from batch to batch: no mmap once warm, no guard
//                   page). ns_per_tasklet = elapsed / N.
//   spawn_one       create one fiber, join it, destroy it; N times; same pooled stacks.
//                   ns_per_tasklet = elapsed / N.
//   pingpong        two unbuffered channels, ping and pong; fiber A pushes i on ping and pops
//                   from pong, B pops from ping and pushes the value back on pong; N round
//                   trips, both sides check every value. ns_per_message = elapsed / (2N).
//   ring            503 fibers, fiber k pops from unbuffered channel k and pushes the token
//                   minus one on channel (k+1)%503. The token N is pushed into channel 0; the
//                   fiber that pops 0 checks that it is fiber N%503 and closes every channel,
//                   which ends the others (each is in pop, or on its way back to it, and pop
//                   on a closed channel returns channel_op_status::closed). Each fiber counts
//                   its hops, the total must be N. Timed from the injection until all 503 are joined (created before the
//                   clock starts). ns_per_hop = elapsed / N.
//   xthread_parked  two std::threads, A and B, each with its own scheduler running one party
//                   fiber that its thread's main fiber joins; two unbuffered channels shared
//                   by the threads (Boost.Fiber channels are thread-safe; a fiber woken from
//                   the other thread goes to its scheduler's remote ready queue and the
//                   thread's condition variable is notified). The waiting side's thread sleeps
//                   in that condition variable. One untimed warm-up round trip, then N timed
//                   round trips (values checked). ns_per_round_trip = elapsed / N.
//   xthread_busy    as xthread_parked plus one fiber per thread that keeps calling
//                   boost::this_fiber::yield until the exchange is over, so neither thread
//                   ever sleeps. ns_per_round_trip.
//   many            N fibers, each blocked popping from ONE shared unbuffered channel. The
//                   clock starts, N fibers are created, the main fiber yields once (round
//                   robin: every new fiber runs to its pop before the main fiber runs again)
//                   and checks that all N arrived; VmRSS (/proc/self/status) is read then (the
//                   'before' sample was read before the clock started). Then the main fiber
//                   pushes 0..N-1, joins and destroys all N fibers, and the clock stops; the
//                   sum of the popped values is checked. ns_per_tasklet = whole thing / N,
//                   kib_rss_per_tasklet = (RSS when all blocked - RSS before) / N (the
//                   std::vector of N fiber handles included; each fiber touches one more
//                   stack page on its way to its end, so the peak is about twice as much).
//                   Stacks WITH A GUARD PAGE, like libslp's: the stack allocator
//                   guarded_stack below has the layout of protected_fixedsize_stack (one mmap
//                   per stack, a guard page below 128 KiB) but installs the guard page with
//                   madvise(MADV_GUARD_INSTALL) where the kernel has it (Linux 6.13+), as
//                   libslp does, and with mprotect otherwise. protected_fixedsize_stack itself
//                   always uses mprotect, which splits every stack into two VMAs, so with the
//                   default vm.max_map_count (65530) it stops near 32k live fibers (its
//                   mprotect fails and a BOOST_ASSERT aborts the process): it cannot hold
//                   the 1,000,000 of the full run. With the mprotect fallback guarded_stack
//                   has that limit too (it throws, and the run fails), and so has libslp.
//   many_pooled     (not in the protocol: for comparison by hand) many with one
//                   pooled_fixedsize_stack instead, no guard pages, same metric names. Note
//                   that boost::pool threads its free list through every chunk of a new
//                   block, so each pooled stack costs a touched page of its own besides the
//                   one the fiber uses.
//   sleep           1000 fibers each sleep N times with boost::this_fiber::sleep_for for a
//                   random 0.1-5 ms; lateness = (steady_clock after the sleep) - (before) -
//                   (duration asked), over all 1000*N wakes: lateness_median_us,
//                   lateness_p99_us. The durations are those of benches/time.c and
//                   benches/peers/sleep_storm_fiber.cpp: splitmix64 seeded with
//                   20240611 ^ (i * 0xD1B54A32D192ED03) for sleeper i.
#include <boost/fiber/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace fibers = boost::fibers;
using chan = fibers::unbuffered_channel<int64_t>;
using clk = std::chrono::steady_clock;

// Any failure: message, exit 1, at once (no unwinding through fibers that are still joinable).
[[noreturn]] static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::fputs("suite_fiber: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
    std::fflush(stdout);
    std::_Exit(1);
}

static void result(const char *workload, const char *metric, double value)
{
    std::printf("RESULT %s %s %.3f\n", workload, metric, value);
}

static double elapsed_ns(clk::time_point t0, clk::time_point t1)
{
    return double(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

static void check(fibers::channel_op_status st, const char *who, const char *op)
{
    if (st != fibers::channel_op_status::success)
        die("%s: %s returned channel_op_status %d", who, op, int(st));
}

// Starts a fiber with stacks from salloc; a failure to allocate is fatal.
template <typename Alloc, typename Fn>
static fibers::fiber spawn(const char *who, Alloc &&salloc, Fn &&fn)
{
    try {
        return fibers::fiber(std::allocator_arg, std::forward<Alloc>(salloc),
                             std::forward<Fn>(fn));
    } catch (const std::exception &e) {
        die("%s: cannot create a fiber: %s", who, e.what());
    }
}

// ---- single-thread workloads ---------------------------------------------------------------

static void bench_yield(int64_t n)
{
    int64_t counts[2] = {0, 0};
    auto t0 = clk::now();
    fibers::fiber a([&] {
        for (int64_t i = 0; i < n; i++, counts[0]++)
            boost::this_fiber::yield();
    });
    fibers::fiber b([&] {
        for (int64_t i = 0; i < n; i++, counts[1]++)
            boost::this_fiber::yield();
    });
    a.join();
    b.join();
    auto t1 = clk::now();
    if (counts[0] != n || counts[1] != n)
        die("yield: counts %" PRId64 " %" PRId64 ", want %" PRId64, counts[0], counts[1], n);
    result("yield", "ns_per_switch", elapsed_ns(t0, t1) / double(2 * n));
}

static void bench_spawn_batch(int64_t n)
{
    fibers::pooled_fixedsize_stack pool; // 128 KiB stacks, shared by every batch
    std::vector<fibers::fiber> batch;
    batch.reserve(1000);
    int64_t ended = 0;
    auto t0 = clk::now();
    for (int64_t started = 0; started < n;) {
        int64_t k = std::min<int64_t>(1000, n - started);
        for (int64_t i = 0; i < k; i++)
            batch.push_back(spawn("spawn_batch", pool, [] {}));
        for (auto &f : batch)
            f.join();
        ended += int64_t(batch.size());
        batch.clear();
        started += k;
    }
    auto t1 = clk::now();
    if (ended != n)
        die("spawn_batch: %" PRId64 " fibers joined, want %" PRId64, ended, n);
    result("spawn_batch", "ns_per_tasklet", elapsed_ns(t0, t1) / double(n));
}

static void bench_spawn_one(int64_t n)
{
    fibers::pooled_fixedsize_stack pool;
    int64_t ran = 0;
    auto t0 = clk::now();
    for (int64_t i = 0; i < n; i++) {
        fibers::fiber f = spawn("spawn_one", pool, [&ran] { ran++; });
        f.join();
    }
    auto t1 = clk::now();
    if (ran != n)
        die("spawn_one: %" PRId64 " fibers ran, want %" PRId64, ran, n);
    result("spawn_one", "ns_per_tasklet", elapsed_ns(t0, t1) / double(n));
}

// The two parties of every ping-pong here (one thread and cross-thread): values from..to-1.
static void pingpong_a(const char *who, chan &ping, chan &pong, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        check(ping.push(i), who, "A: push on ping");
        int64_t v = -2;
        check(pong.pop(v), who, "A: pop from pong");
        if (v != i)
            die("%s: A popped %" PRId64 " from pong, want %" PRId64, who, v, i);
    }
}

static void pingpong_b(const char *who, chan &ping, chan &pong, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        int64_t v = -2;
        check(ping.pop(v), who, "B: pop from ping");
        if (v != i)
            die("%s: B popped %" PRId64 " from ping, want %" PRId64, who, v, i);
        check(pong.push(v), who, "B: push on pong");
    }
}

static void bench_pingpong(int64_t n)
{
    chan ping, pong;
    auto t0 = clk::now();
    fibers::fiber a([&] { pingpong_a("pingpong", ping, pong, 0, n); });
    fibers::fiber b([&] { pingpong_b("pingpong", ping, pong, 0, n); });
    a.join();
    b.join();
    auto t1 = clk::now();
    result("pingpong", "ns_per_message", elapsed_ns(t0, t1) / double(2 * n));
}

static const int RING = 503;

static void bench_ring(int64_t n)
{
    std::unique_ptr<chan[]> chans(new chan[RING]);
    std::vector<int64_t> hops(RING, 0);
    int finisher = -1;
    std::vector<fibers::fiber> ring;
    ring.reserve(RING);
    for (int k = 0; k < RING; k++)
        ring.emplace_back([k, &chans, &hops, &finisher] {
            chan &in = chans[k], &out = chans[(k + 1) % RING];
            int64_t h = 0, v = -1;
            for (;;) {
                fibers::channel_op_status st = in.pop(v);
                if (st == fibers::channel_op_status::closed)
                    break; // the ring is over
                check(st, "ring", "pop");
                if (v == 0) {
                    // No other fiber holds a token: closing the channels ends them all.
                    finisher = k;
                    for (int c = 0; c < RING; c++)
                        chans[c].close();
                    break;
                }
                check(out.push(v - 1), "ring", "push");
                h++;
            }
            hops[size_t(k)] = h;
        });
    auto t0 = clk::now();
    check(chans[0].push(n), "ring", "injecting the token");
    for (auto &f : ring)
        f.join();
    auto t1 = clk::now();
    int64_t total = 0;
    for (int64_t h : hops)
        total += h;
    if (total != n || finisher != int(n % RING))
        die("ring: %" PRId64 " hops ended at fiber %d, want %" PRId64 " hops ending at %d", total,
            finisher, n, int(n % RING));
    result("ring", "ns_per_hop", elapsed_ns(t0, t1) / double(n));
}

// ---- cross-thread workloads ----------------------------------------------------------------

static void bench_xthread(const char *workload, int64_t n, bool busy)
{
    chan ping, pong;
    std::atomic<bool> stop{false};
    int64_t spins[2] = {0, 0};
    double el = 0;

    // One thread: its party fiber, a spinner fiber if busy; the thread's main fiber joins them.
    auto thread_body = [&](int side) {
        fibers::fiber spinner;
        if (busy)
            spinner = fibers::fiber([&stop, &spins, side] {
                int64_t c = 0;
                while (!stop.load(std::memory_order_relaxed)) {
                    boost::this_fiber::yield();
                    c++;
                }
                spins[side] = c;
            });
        fibers::fiber party([&, side] {
            if (side == 0) {
                pingpong_a(workload, ping, pong, -1, 0); // warm-up: both threads are running
                auto t0 = clk::now();
                pingpong_a(workload, ping, pong, 0, n);
                el = elapsed_ns(t0, clk::now());
                stop.store(true, std::memory_order_relaxed);
            } else {
                pingpong_b(workload, ping, pong, -1, n);
            }
        });
        party.join();
        if (spinner.joinable())
            spinner.join();
    };
    std::thread a(thread_body, 0), b(thread_body, 1);
    a.join();
    b.join();
    if (busy)
        std::fprintf(stderr, "%s: the spinners yielded %" PRId64 " and %" PRId64 " times\n",
                     workload, spins[0], spins[1]);
    result(workload, "ns_per_round_trip", el / double(n));
}

// ---- many ----------------------------------------------------------------------------------

// Stacks with a guard page, laid out like boost::context::protected_fixedsize_stack:
// [guard page][size rounded up to pages], one anonymous mapping per stack, unmapped when the
// fiber is gone. The guard is installed with MADV_GUARD_INSTALL (Linux 6.13+: no extra VMA)
// and with mprotect(PROT_NONE) when the kernel refuses it (two VMAs per stack).
class guarded_stack {
public:
    explicit guarded_stack(std::size_t size = boost::context::stack_traits::default_size())
        : size_(size)
    {
    }

    boost::context::stack_context allocate()
    {
        const std::size_t page = boost::context::stack_traits::page_size();
        const std::size_t len = (size_ + page - 1) / page * page + page;
        void *vp = ::mmap(nullptr, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (vp == MAP_FAILED)
            throw std::bad_alloc();
        bool guarded = false;
        if (!no_madvise.load(std::memory_order_relaxed)) {
            if (::madvise(vp, page, MADV_GUARD_INSTALL_) == 0)
                guarded = true;
            else
                no_madvise.store(true, std::memory_order_relaxed);
        }
        if (!guarded && ::mprotect(vp, page, PROT_NONE) != 0) {
            ::munmap(vp, len);
            throw std::bad_alloc();
        }
        boost::context::stack_context sctx;
        sctx.size = len;
        sctx.sp = static_cast<char *>(vp) + len;
        return sctx;
    }

    void deallocate(boost::context::stack_context &sctx) noexcept
    {
        ::munmap(static_cast<char *>(sctx.sp) - sctx.size, sctx.size);
    }

    static std::atomic<bool> no_madvise; // set once MADV_GUARD_INSTALL was refused

private:
    static const int MADV_GUARD_INSTALL_ = 102;
    std::size_t size_;
};
std::atomic<bool> guarded_stack::no_madvise{false};

static int64_t vm_rss_kib()
{
    FILE *f = std::fopen("/proc/self/status", "r");
    if (!f)
        die("many: cannot open /proc/self/status");
    char line[256];
    long long kib = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "VmRSS:", 6) == 0) {
            if (std::sscanf(line + 6, "%lld kB", &kib) != 1)
                kib = -1;
            break;
        }
    std::fclose(f);
    if (kib < 0)
        die("many: no VmRSS in /proc/self/status");
    return kib;
}

template <typename Alloc> static void bench_many(const char *workload, int64_t n, Alloc salloc)
{
    chan ch;
    int64_t arrived = 0, woken = 0, sum = 0;
    std::vector<fibers::fiber> fs;
    int64_t rss0 = vm_rss_kib();
    auto t0 = clk::now();
    fs.reserve(size_t(n));
    for (int64_t i = 0; i < n; i++)
        fs.push_back(spawn(workload, salloc, [&] {
            arrived++;
            int64_t v = -1;
            check(ch.pop(v), workload, "pop");
            sum += v;
            woken++;
        }));
    boost::this_fiber::yield(); // every new fiber runs to its pop first
    if (arrived != n)
        die("%s: %" PRId64 " fibers blocked after a yield, want %" PRId64, workload, arrived, n);
    int64_t rss1 = vm_rss_kib();
    for (int64_t i = 0; i < n; i++)
        check(ch.push(i), workload, "push");
    for (auto &f : fs)
        f.join();
    fs.clear();
    fs.shrink_to_fit();
    auto t1 = clk::now();
    if (woken != n || sum != n * (n - 1) / 2)
        die("%s: %" PRId64 " fibers popped values summing to %" PRId64 ", want %" PRId64
            " summing to %" PRId64,
            workload, woken, sum, n, n * (n - 1) / 2);
    std::fprintf(stderr, "%s: VmRSS %" PRId64 " KiB before, %" PRId64
                         " KiB with %" PRId64 " fibers blocked%s\n",
                 workload, rss0, rss1, n,
                 std::is_same<Alloc, guarded_stack>::value
                     ? (guarded_stack::no_madvise ? " (guard pages: mprotect)"
                                                  : " (guard pages: MADV_GUARD_INSTALL)")
                     : "");
    result(workload, "ns_per_tasklet", elapsed_ns(t0, t1) / double(n));
    result(workload, "kib_rss_per_tasklet", double(rss1 - rss0) / double(n));
}

// ---- sleep ---------------------------------------------------------------------------------

static const int SLEEPERS = 1000;
static const uint64_t SLEEP_SEED = 20240611;

// splitmix64, seeded per sleeper exactly as in benches/time.c.
static uint64_t next_rand(uint64_t &s)
{
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int64_t percentile(std::vector<int64_t> &v, int pct)
{
    size_t i = v.size() * size_t(pct) / 100;
    return v[i < v.size() ? i : v.size() - 1];
}

static void bench_sleep(int64_t n)
{
    std::vector<int64_t> late(size_t(SLEEPERS * n));
    int64_t early = 0;
    std::vector<fibers::fiber> fs;
    fs.reserve(SLEEPERS);
    for (int64_t i = 0; i < SLEEPERS; i++)
        fs.emplace_back([i, n, &late, &early] {
            uint64_t s = SLEEP_SEED ^ (uint64_t(i) * 0xD1B54A32D192ED03ull);
            for (int64_t k = 0; k < n; k++) {
                auto d = std::chrono::nanoseconds(100000 + int64_t(next_rand(s) % 4900001));
                auto t0 = clk::now();
                boost::this_fiber::sleep_for(d);
                int64_t l = int64_t(elapsed_ns(t0, clk::now())) - int64_t(d.count());
                if (l < 0)
                    early++;
                late[size_t(i * n + k)] = l;
            }
        });
    for (auto &f : fs)
        f.join();
    if (early)
        die("sleep: %" PRId64 " wakes came before the duration asked", early);
    std::sort(late.begin(), late.end());
    result("sleep", "lateness_median_us", double(percentile(late, 50)) / 1000);
    result("sleep", "lateness_p99_us", double(percentile(late, 99)) / 1000);
}

// ---- main ----------------------------------------------------------------------------------

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: suite_fiber WORKLOAD N\n");
        return 2;
    }
    char *end = nullptr;
    errno = 0;
    long long nn = std::strtoll(argv[2], &end, 10);
    if (errno || end == argv[2] || *end || nn <= 0) {
        std::fprintf(stderr, "suite_fiber: N must be a positive integer, not \"%s\"\n", argv[2]);
        return 2;
    }
    const int64_t n = nn;
    const std::string w = argv[1];
    if (w == "yield")
        bench_yield(n);
    else if (w == "spawn_batch")
        bench_spawn_batch(n);
    else if (w == "spawn_one")
        bench_spawn_one(n);
    else if (w == "pingpong")
        bench_pingpong(n);
    else if (w == "ring")
        bench_ring(n);
    else if (w == "xthread_parked")
        bench_xthread("xthread_parked", n, false);
    else if (w == "xthread_busy")
        bench_xthread("xthread_busy", n, true);
    else if (w == "many")
        bench_many("many", n, guarded_stack());
    else if (w == "many_pooled")
        // chunks of at most 1024 stacks (128 MiB) per pool block: boost::pool doubles its
        // blocks otherwise, and a 64 GiB one is more than the kernel lets it reserve
        bench_many("many_pooled", n,
                   fibers::pooled_fixedsize_stack(boost::context::stack_traits::default_size(),
                                                  32, 1024));
    else if (w == "sleep")
        bench_sleep(n);
    else {
        std::fprintf(stderr, "suite_fiber: %s: unsupported workload\n", w.c_str());
        return 3;
    }
    return 0;
}

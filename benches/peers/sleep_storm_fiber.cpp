// benches/peers/sleep_storm_fiber.cpp - the sleep storm of benches/time.c written with
// Boost.Fiber, the peer libslp's timers are compared with (scripts/bench-time.sh builds it
// against Debian's libboost-fiber-dev and benches/time.c runs it, interleaved with its own
// runs).
//
// Same shape as libslp's storm: one OS thread, Boost.Fiber's default scheduler (round_robin,
// which parks the thread in a condition variable until the earliest sleeper is due when
// nothing is ready). FIBERS fibers each sleep ROUNDS times for durations drawn from the same
// generator, with the same seeds, as benches/time.c (uniform in 0.1-5 ms), with
// boost::this_fiber::sleep_for; each wake's lateness is (CLOCK_MONOTONIC after the sleep) -
// (CLOCK_MONOTONIC before it) - (the duration asked for). Then the main fiber sleeps 1 ms
// ALONE times by itself.
//
// Usage: sleep_storm_fiber FIBERS ROUNDS ALONE SEED
// Prints one line: storm_median_ns storm_p99_ns alone_median_ns alone_p99_ns early_wakes
//                  storm_cpu_ns alone_cpu_ns (CPU time, user + system, of each part)
#include <boost/fiber/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/resource.h>
#include <vector>

static int64_t now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// splitmix64, seeded per sleeper exactly as in benches/time.c.
// CPU time (user + system) of the process so far, ns.
static int64_t cpu_ns()
{
    rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (int64_t(u.ru_utime.tv_sec) + u.ru_stime.tv_sec) * 1000000000 +
           (int64_t(u.ru_utime.tv_usec) + u.ru_stime.tv_usec) * 1000;
}

static uint64_t next_rand(uint64_t &s)
{
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int64_t storm_duration(uint64_t &s)
{
    return 100000 + int64_t(next_rand(s) % 4900001); // 0.1 .. 5 ms
}

static int64_t percentile(std::vector<int64_t> &v, int pct)
{
    std::sort(v.begin(), v.end());
    size_t i = v.size() * size_t(pct) / 100;
    return v[i < v.size() ? i : v.size() - 1];
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        std::fprintf(stderr, "usage: sleep_storm_fiber FIBERS ROUNDS ALONE SEED\n");
        return 1;
    }
    const long fibers = std::atol(argv[1]), rounds = std::atol(argv[2]), alone = std::atol(argv[3]);
    const uint64_t seed = std::strtoull(argv[4], nullptr, 10);
    if (fibers <= 0 || rounds <= 0 || alone <= 0) {
        std::fprintf(stderr, "sleep_storm_fiber: sizes must be > 0\n");
        return 1;
    }
    std::vector<int64_t> storm(static_cast<size_t>(fibers * rounds));
    std::vector<int64_t> solo(static_cast<size_t>(alone));
    long early = 0;

    int64_t c0 = cpu_ns();
    std::vector<boost::fibers::fiber> fs;
    fs.reserve(size_t(fibers));
    for (long i = 0; i < fibers; i++)
        fs.emplace_back([i, rounds, seed, &storm, &early] {
            uint64_t s = seed ^ (uint64_t(i) * 0xD1B54A32D192ED03ull);
            for (long k = 0; k < rounds; k++) {
                int64_t d = storm_duration(s);
                int64_t t0 = now_ns();
                boost::this_fiber::sleep_for(std::chrono::nanoseconds(d));
                int64_t late = now_ns() - t0 - d;
                if (late < 0)
                    early++;
                storm[size_t(i * rounds + k)] = late;
            }
        });
    for (auto &f : fs)
        f.join();
    int64_t storm_cpu = cpu_ns() - c0;
    c0 = cpu_ns();

    for (long k = 0; k < alone; k++) {
        int64_t t0 = now_ns();
        boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
        int64_t late = now_ns() - t0 - 1000000;
        if (late < 0)
            early++;
        solo[size_t(k)] = late;
    }

    int64_t alone_cpu = cpu_ns() - c0;
    int64_t sm = percentile(storm, 50), sp = percentile(storm, 99);
    int64_t am = percentile(solo, 50), ap = percentile(solo, 99);
    std::printf("%lld %lld %lld %lld %ld %lld %lld\n", (long long)sm, (long long)sp, (long long)am,
                (long long)ap, early, (long long)storm_cpu, (long long)alone_cpu);
    return 0;
}

// Compiles include/slp.h as C++17 (-std=c++17 -Wall -Wextra -Werror): the extern "C" guard,
// the typedefs and the constants must be usable from C++; links a few symbols.
#include <slp.h>

#include <cstdio>
#include <cstring>
#include <type_traits>

static_assert(SLP_OK == 0, "SLP_OK");
static_assert(SLP_E_INVALID == -1, "SLP_E_INVALID");
static_assert(SLP_E_PANIC == -12, "SLP_E_PANIC");
static_assert(std::is_same<slp_status, int32_t>::value, "slp_status is int32_t");
static_assert(SLP_VERSION_NUMBER == SLP_VERSION_MAJOR * 10000 + SLP_VERSION_MINOR * 100 + SLP_VERSION_PATCH,
              "SLP_VERSION_NUMBER");

namespace {

int failures = 0;

void check(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "check failed: %s\n", what);
        ++failures;
    }
}

// Tasklet functions are plain C-compatible function pointers; they must not throw.
int32_t count(void *arg) noexcept {
    ++*static_cast<int *>(arg);
    return SLP_OK;
}

}  // namespace

int main() {
    check(slp_version() == SLP_VERSION_NUMBER, "slp_version() == SLP_VERSION_NUMBER");
    check(slp_status_str(SLP_E_DEADLOCK) != nullptr, "slp_status_str");
    check(slp_last_error() != nullptr, "slp_last_error");

    slp_tasklet_options opts;
    slp_tasklet_options_init(&opts);
    check(opts.struct_size == sizeof opts, "slp_tasklet_options_init sets struct_size");

    int n = 0;
    slp_tasklet_fn fn = count;
    check(slp_tasklet_new(fn, &n, nullptr) == SLP_OK, "slp_tasklet_new");
    check(slp_tasklet_new(fn, &n, nullptr) == SLP_OK, "slp_tasklet_new");
    check(slp_run() == SLP_OK, "slp_run");
    check(n == 2, "both tasklets ran");

    slp_channel *ch = nullptr;
    check(slp_channel_new(&ch) == SLP_OK, "slp_channel_new");
    slp_channel_release(ch);

    std::printf("header_cxx17: libslp %s: %d passed, %d failed\n", SLP_VERSION_STRING,
                failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}

// test_cxx.cpp - the public header and the harness compile as C++17; a C++ host drives
// tasklets and channels (captureless lambdas as tasklet functions, RAII release).
#include "harness.h"

#include <memory>
#include <string>
#include <vector>

namespace {

struct TaskletDeleter {
    void operator()(slp_tasklet *t) const { slp_tasklet_release(t); }
};
struct ChannelDeleter {
    void operator()(slp_channel *c) const { slp_channel_release(c); }
};
using TaskletPtr = std::unique_ptr<slp_tasklet, TaskletDeleter>;
using ChannelPtr = std::unique_ptr<slp_channel, ChannelDeleter>;

struct Producer {
    slp_channel *ch;
    int n;
};

std::vector<int> g_got;

}  // namespace

TEST(cxx_producer_consumer) {
    g_got.clear();
    slp_channel *raw = nullptr;
    CHECK_ST(slp_channel_new(&raw), SLP_OK);
    ChannelPtr ch(raw);
    Producer p{ch.get(), 5};
    slp_tasklet *tp = nullptr;
    CHECK_ST(slp_tasklet_new(
                 [](void *arg) -> int32_t {
                     auto *pr = static_cast<Producer *>(arg);
                     for (int i = 0; i < pr->n; i++)
                         if (slp_channel_send(pr->ch, reinterpret_cast<void *>(static_cast<intptr_t>(i))) != SLP_OK)
                             return 1;
                     return slp_channel_shutdown(pr->ch);
                 },
                 &p, &tp),
             SLP_OK);
    TaskletPtr producer(tp);
    slp_tasklet *tc = nullptr;
    CHECK_ST(slp_tasklet_new(
                 [](void *arg) -> int32_t {
                     auto *c = static_cast<slp_channel *>(arg);
                     void *v = nullptr;
                     while (slp_channel_receive(c, &v) == SLP_OK)
                         g_got.push_back(static_cast<int>(reinterpret_cast<intptr_t>(v)));
                     return 0;
                 },
                 ch.get(), &tc),
             SLP_OK);
    TaskletPtr consumer(tc);
    CHECK_ST(slp_run(), SLP_OK);
    CHECK_EQ_INT(g_got.size(), 5);
    for (size_t i = 0; i < g_got.size(); i++) CHECK_EQ_INT(g_got[i], i);
    CHECK(!slp_tasklet_alive(producer.get()));
    CHECK(!slp_tasklet_alive(consumer.get()));
}

TEST(cxx_options_and_names) {
    slp_tasklet_options o;
    slp_tasklet_options_init(&o);
    std::string name = "cxx-worker";
    o.name = name.c_str();
    o.flags = SLP_TASKLET_PAUSED;
    slp_tasklet *t = nullptr;
    CHECK_ST(slp_tasklet_new_ex([](void *) -> int32_t { return 0; }, nullptr, &o, &t), SLP_OK);
    name = "changed";
    CHECK_EQ_STR(slp_tasklet_name(t), "cxx-worker");
    CHECK(slp_tasklet_paused(t));
    slp_tasklet_release(t);
    CHECK_EQ_INT(slp_version(), SLP_VERSION_NUMBER);
    CHECK(std::string(slp_status_str(SLP_OK)).size() > 0);
}

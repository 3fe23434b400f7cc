// The object store shared by several processes (a shm or file heap with
// shared writers): four client processes create, seal, get, release and
// delete objects of one key space at once, checking every byte they get;
// clients are SIGKILLed at random instants of any operation while the others
// go on. After each run the store checks clean (store::check: index,
// reference counts against every client's rows, the LRU order), every
// sealed object holds the bytes its creator wrote, and no reference a dead
// client held survives it.
#include "../client_processes.hpp"
#include "../runtime_test_util.hpp"

#include <larder/heap.hpp>
#include <larder/store.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using larder::backing;
using larder::object_id;
using larder::store;

constexpr std::uint64_t kKeys = 512;

// An object's bytes follow from its id and size.
std::byte pattern(std::uint64_t key, std::size_t i) { return static_cast<std::byte>((key * 131 + i * 7) & 0xff); }

larder::store_options options_for(backing kind, const std::string& name) {
  larder::store_options o;
  o.heap.kind = kind;
  o.heap.name = name;
  o.heap.reserve = std::size_t{4} << 30;
  return o;
}

// Exit codes name the first thing that went wrong.
[[noreturn]] void client_main(backing kind, const std::string& name, std::uint64_t seed, std::size_t steps) {
  store s;
  larder::status st = store::open(options_for(kind, name), &s);
  if (!st.ok()) {
    std::fprintf(stderr, "client %d: open: %s\n", getpid(), st.to_string().c_str());
    std::_Exit(2);
  }
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> held;  // keys this client has a reference to
  for (std::size_t step = 0; steps == 0 || step < steps; ++step) {
    std::uint64_t key = rng() % kKeys;
    object_id id(key);
    switch (rng() % 5) {
      case 0:
      case 1: {  // create and seal
        std::size_t size = 64 + rng() % 2048;
        larder::object_buffer b;
        st = s.create(id, size, 0, &b);
        if (!st.ok()) break;  // exists, or full: both are answers a client sees
        for (std::size_t i = 0; i < size; ++i) b.data[i] = pattern(key, i);
        if (!s.seal(id).ok()) std::_Exit(3);
        break;
      }
      case 2: {  // get and check
        larder::object_view v;
        if (!s.get(id, 0, &v).ok()) break;
        for (std::size_t i = 0; i < v.data.size(); ++i)
          if (v.data[i] != pattern(key, i)) {
            std::fprintf(stderr, "client %d: object %llu byte %zu is wrong\n", getpid(),
                         static_cast<unsigned long long>(key), i);
            std::_Exit(5);
          }
        held.push_back(key);
        break;
      }
      case 3:  // release one held reference
        if (!held.empty()) {
          std::size_t at = rng() % held.size();
          if (!s.release(object_id(held[at])).ok()) std::_Exit(6);
          held.erase(held.begin() + static_cast<std::ptrdiff_t>(at));
        }
        break;
      default:
        (void)s.remove(id);
        break;
    }
    if (held.size() > 16) {
      if (!s.release(object_id(held.front())).ok()) std::_Exit(7);
      held.erase(held.begin());
    }
  }
  for (std::uint64_t key : held)
    if (!s.release(object_id(key)).ok()) std::_Exit(8);
  std::_Exit(s.close().ok() ? 0 : 9);
}

pid_t start_client(backing kind, const std::string& name, std::uint64_t seed, std::size_t steps) {
  pid_t pid = fork();
  if (pid == 0) client_main(kind, name, seed, steps);
  return pid;
}

class StoreProcesses : public ::testing::TestWithParam<backing> {
 protected:
  void SetUp() override {
    name_ = GetParam() == backing::shm ? larder_test::unique_shm_name("store") : dir_.file("store.heap");
    store s;
    ASSERT_TRUE(store::open(options_for(GetParam(), name_), &s).ok());
    ASSERT_TRUE(s.close().ok());
  }
  void TearDown() override {
    if (GetParam() == backing::shm) (void)larder::heap::remove(backing::shm, name_);
  }

  // Opens the store as one more client: it recovers whoever died, checks
  // (which also finds bytes in the object pod that no object holds), and
  // reads every sealed object back.
  void check_store() {
    store s;
    ASSERT_TRUE(store::open(options_for(GetParam(), name_), &s).ok());
    larder::status st = s.check();
    EXPECT_TRUE(st.ok()) << st.to_string();
    std::vector<larder::object_info> all;
    ASSERT_TRUE(s.list(&all).ok());
    std::size_t sealed = 0;
    for (const larder::object_info& info : all) {
      EXPECT_EQ(info.refcount, 0u) << "a reference outlived every client: " << info.id.text();
      if (info.state != larder::object_state::sealed) continue;
      ++sealed;
      larder::object_view v;
      ASSERT_TRUE(s.get(info.id, 0, &v).ok());
      std::uint64_t key = 0;
      std::memcpy(&key, info.id.data(), sizeof(key));
      for (std::size_t i = 0; i < v.data.size(); ++i) {
        if (v.data[i] != pattern(key, i)) {
          ADD_FAILURE() << "object " << key << " byte " << i << " is wrong";
          break;
        }
      }
      EXPECT_TRUE(s.release(info.id).ok());
    }
    EXPECT_GT(sealed, 0u);
    EXPECT_EQ(s.stats().clients, 1u);
    EXPECT_TRUE(s.close().ok());
  }

  larder_test::temp_dir dir_{true};
  std::string name_;
};

TEST_P(StoreProcesses, FourClientsShareOneStore) {
  larder_test::client_processes clients;
  for (int c = 0; c < 4; ++c) clients.add(start_client(GetParam(), name_, 100 + c, 4000));
  ASSERT_NO_FATAL_FAILURE(clients.expect_clean_exits());
  check_store();
}

TEST_P(StoreProcesses, KilledClientsLeaveTheStoreWhole) {
  const char* many = std::getenv("LARDER_TEST_KILLS");
  const int kills = many != nullptr ? std::atoi(many) : 100;
  std::mt19937_64 rng(11);
  larder_test::client_processes clients;
  std::uint64_t seed = 1;
  for (int c = 0; c < 4; ++c) clients.add(start_client(GetParam(), name_, seed++, 0));
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(std::chrono::microseconds(300 + rng() % 8000));
    std::size_t victim = rng() % clients.size();
    ASSERT_NO_FATAL_FAILURE(clients.kill_one(victim));
    clients[victim] = start_client(GetParam(), name_, seed++, 0);
  }
  clients.kill_all();
  check_store();
}

// Four processes open a store that does not exist yet, all at once: it is
// made once (one root, one pod of each name), and each finds the others'
// objects.
TEST_P(StoreProcesses, ProcessesMakeANewStoreAtOnce) {
  std::string fresh = GetParam() == backing::shm ? larder_test::unique_shm_name("fresh") : dir_.file("fresh.heap");
  larder_test::client_processes clients;
  for (int c = 0; c < 4; ++c) {
    pid_t pid = fork();
    if (pid == 0) {
      store s;
      if (!store::open(options_for(GetParam(), fresh), &s).ok()) std::_Exit(2);
      larder::object_buffer b;
      if (!s.create(object_id(static_cast<std::uint64_t>(c)), 64, 0, &b).ok()) std::_Exit(3);
      for (std::size_t i = 0; i < 64; ++i) b.data[i] = pattern(static_cast<std::uint64_t>(c), i);
      if (!s.seal(object_id(static_cast<std::uint64_t>(c))).ok()) std::_Exit(4);
      std::_Exit(s.close().ok() ? 0 : 5);
    }
    clients.add(pid);
  }
  ASSERT_NO_FATAL_FAILURE(clients.expect_clean_exits());
  store s;
  ASSERT_TRUE(store::open(options_for(GetParam(), fresh), &s).ok());
  EXPECT_TRUE(s.check().ok()) << s.check().to_string();
  for (std::uint64_t c = 0; c < 4; ++c) EXPECT_TRUE(s.contains(object_id(c))) << c;
  std::size_t objects_pods = 0;
  for (const larder::pod_info& p : s.owner().pods()) objects_pods += p.name == "larder.store.objects";
  EXPECT_EQ(objects_pods, 1u);
  EXPECT_TRUE(s.close().ok());
  if (GetParam() == backing::shm) (void)larder::heap::remove(backing::shm, fresh);
}

INSTANTIATE_TEST_SUITE_P(Backings, StoreProcesses, ::testing::Values(backing::shm, backing::file),
                         [](const auto& info) { return info.param == backing::shm ? "shm" : "file"; });

}  // namespace

// The store against a reference model: several clients (threads, each its
// own handle, or processes, each opening the store by name) run random
// operations at once. Each client owns a range of
// ids, whose state it models exactly (absent, unsealed, sealed); it gets and
// releases ids of every client. Every get must return the bytes the id's
// creator wrote, every answer must agree with what the model allows, and
// at the end the store must check clean and hold what the owners expect.
#include <gtest/gtest.h>

#include <larder/heap.hpp>
#include <larder/store.hpp>

#include "../client_processes.hpp"
#include "../runtime_test_util.hpp"

#include <unistd.h>

#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using larder::errc;
using larder::object_id;

constexpr int kClients = 4;
constexpr std::uint64_t kIdsPerClient = 64;
constexpr int kSteps = 100000;

std::size_t size_of(std::uint64_t id) { return 1 + (id * 131) % 2000; }
std::byte pattern(std::uint64_t id, std::size_t i) { return static_cast<std::byte>((id * 17 + i * 13 + (i >> 8)) & 0xff); }

enum class state { absent, unsealed, sealed };

struct client_run {
  int index;
  std::map<std::uint64_t, state> own;      // the ids this client creates
  std::map<std::uint64_t, int> references;  // references it holds, any id
  std::string failure;

  void fail(const std::string& what) {
    if (failure.empty()) failure = what;
  }

  bool bytes_ok(std::uint64_t id, const larder::object_view& v) {
    if (v.data.size() != size_of(id)) return false;
    for (std::size_t i = 0; i < v.data.size(); ++i)
      if (v.data[i] != pattern(id, i)) return false;
    return true;
  }

  void step(larder::store& s, std::mt19937_64& rng) {
    std::uint64_t mine = index * kIdsPerClient + rng() % kIdsPerClient;
    std::uint64_t any = rng() % (kClients * kIdsPerClient);
    state& st = own[mine];
    switch (rng() % 7) {
      case 0: {  // create (and write)
        larder::object_buffer b;
        larder::status r = s.create(object_id(mine), size_of(mine), 0, &b);
        if (st == state::absent) {
          if (!r.ok()) return fail("create " + std::to_string(mine) + ": " + r.to_string());
          for (std::size_t i = 0; i < b.data.size(); ++i) b.data[i] = pattern(mine, i);
          st = state::unsealed;
        } else if (!r.is(errc::already_exists)) {
          fail("create of an existing " + std::to_string(mine) + ": " + r.to_string());
        }
        break;
      }
      case 1: {  // seal
        larder::status r = s.seal(object_id(mine));
        if (st == state::unsealed) {
          if (!r.ok()) return fail("seal " + r.to_string());
          st = state::sealed;
        } else if (st == state::sealed ? !r.is(errc::already_sealed) : !r.is(errc::not_found)) {
          fail("seal in the wrong state: " + r.to_string());
        }
        break;
      }
      case 2: {  // delete or abort
        larder::status r = st == state::unsealed ? s.abort(object_id(mine)) : s.remove(object_id(mine));
        if (st == state::absent ? !r.is(errc::not_found) : !r.ok()) fail("delete: " + r.to_string());
        st = state::absent;
        break;
      }
      case 3:
      case 4: {  // get any
        larder::object_view v;
        larder::status r = s.get(object_id(any), &v);
        if (r.ok()) {
          if (!bytes_ok(any, v)) fail("wrong bytes in object " + std::to_string(any));
          references[any] += 1;
        } else if (!r.is(errc::not_found) && !r.is(errc::not_sealed)) {
          fail("get: " + r.to_string());
        }
        bool owned = any / kIdsPerClient == static_cast<std::uint64_t>(index);
        if (owned && (own[any] == state::sealed) != r.ok()) fail("get disagrees with the owner's model");
        break;
      }
      case 5: {  // release something held, and check it still reads right
        if (references.empty()) break;
        auto it = references.begin();
        std::advance(it, rng() % references.size());
        std::uint64_t id = it->first;
        larder::status r = s.release(object_id(id));
        if (!r.ok()) fail("release of a held reference: " + r.to_string());
        if (--it->second == 0) references.erase(it);
        break;
      }
      case 6: {  // release without a reference
        if (references.count(any) != 0) break;
        larder::status r = s.release(object_id(any));
        if (!r.is(errc::not_referenced) && !r.is(errc::not_found)) fail("release without get: " + r.to_string());
        break;
      }
    }
  }
};

// One client's whole run: its steps, then giving back what it holds.
void run_client(larder::store& s, client_run& run) {
  std::mt19937_64 rng(1234 + run.index);
  for (int i = 0; i < kSteps && run.failure.empty(); ++i) run.step(s, rng);
  for (auto& [id, count] : run.references)
    for (int k = 0; k < count; ++k)
      if (!s.release(object_id(id)).ok()) run.fail("final release");
  // Objects it left unsealed go at close.
  for (auto& [id, st] : run.own)
    if (st == state::unsealed) st = state::absent;
  if (!s.close().ok()) run.fail("close");
}

// How the clients run: threads, each with a handle of its own, or
// processes (run_in_processes).
void run_in_threads(larder::store& first, const larder::store_options& options, std::vector<client_run>* runs) {
  std::vector<std::thread> threads;
  for (client_run& run : *runs)
    threads.emplace_back([&] {
      larder::store s;
      if (larder::status st = larder::store::open(first.owner(), options, &s); !st.ok()) return run.fail(st.to_string());
      run_client(s, run);
    });
  for (auto& t : threads) t.join();
}

// A client process's model, sent back to the test through a pipe: its
// failure on the first line (empty for none), then an id and a state per
// line.
std::string encode(const client_run& run) {
  std::string text = run.failure;
  for (char& c : text)
    if (c == '\n') c = ' ';
  text += '\n';
  for (const auto& [id, st] : run.own) text += std::to_string(id) + " " + std::to_string(static_cast<int>(st)) + "\n";
  return text;
}

void decode(const std::string& text, client_run* run) {
  std::istringstream in(text);
  std::string failure;
  if (!std::getline(in, failure)) return run->fail("the client process sent nothing back");
  if (!failure.empty()) run->fail(failure);
  std::uint64_t id = 0;
  int st = 0;
  while (in >> id >> st) run->own[id] = static_cast<state>(st);
}

// Processes: each opens the store by name (the first ones make it, at
// once), runs the same run_client, and sends its model back; the test
// opens the store only after they all closed it (a process forked from a
// client could not attach).
void run_in_processes(const larder::store_options& options, std::vector<client_run>* runs) {
  larder_test::client_processes clients;
  std::vector<int> answers;
  for (client_run& run : *runs) {
    int channel[2];
    ASSERT_EQ(pipe(channel), 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(channel[0]);
      larder::store s;
      if (larder::status st = larder::store::open(options, &s); !st.ok()) {
        run.fail("open: " + st.to_string());
      } else {
        run_client(s, run);
      }
      std::string text = encode(run);
      for (std::size_t done = 0; done < text.size();) {
        ssize_t n = write(channel[1], text.data() + done, text.size() - done);
        if (n <= 0) std::_Exit(3);
        done += static_cast<std::size_t>(n);
      }
      std::_Exit(0);
    }
    close(channel[1]);
    clients.add(pid);
    answers.push_back(channel[0]);
  }
  for (std::size_t c = 0; c < runs->size(); ++c) {
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = read(answers[c], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    close(answers[c]);
    decode(text, &(*runs)[c]);
  }
  clients.expect_clean_exits();
}

void check_against_model(larder::store& first, const std::vector<client_run>& runs) {
  for (const auto& r : runs) EXPECT_EQ(r.failure, "") << "client " << r.index;
  larder::status checked = first.check();
  EXPECT_TRUE(checked.ok()) << checked.to_string();
  std::vector<larder::object_info> all;
  ASSERT_TRUE(first.list(&all).ok());
  std::size_t expected = 0;
  for (const auto& r : runs)
    for (const auto& [id, st] : r.own) {
      expected += st == state::sealed ? 1 : 0;
      EXPECT_EQ(first.contains(object_id(id)), st == state::sealed) << id;
    }
  EXPECT_EQ(all.size(), expected);
  for (const auto& info : all) EXPECT_EQ(info.refcount, 0u);
}

void model_test(larder::store_protection protection) {
  larder::store_options options;
  options.heap.kind = larder::backing::anonymous;
  options.heap.reserve = std::size_t{1} << 30;
  options.protection = protection;
  larder::store first;
  ASSERT_TRUE(larder::store::open(options, &first).ok());
  std::vector<client_run> runs(kClients);
  for (int c = 0; c < kClients; ++c) runs[c].index = c;
  run_in_threads(first, options, &runs);
  check_against_model(first, runs);
}

TEST(StoreModelTest, ClientsInThreadsAgainstTheModel) { model_test(larder::store_protection::none); }

// Four client processes on one shm store (shared writers), no server.
TEST(StoreModelTest, ClientProcessesAgainstTheModel) {
  larder::store_options options;
  options.heap.kind = larder::backing::shm;
  options.heap.name = larder_test::unique_shm_name("model");
  options.heap.reserve = std::size_t{1} << 30;
  std::vector<client_run> runs(kClients);
  for (int c = 0; c < kClients; ++c) runs[c].index = c;
  run_in_processes(options, &runs);
  {
    larder::store first;
    ASSERT_TRUE(larder::store::open(options, &first).ok());
    check_against_model(first, runs);
    EXPECT_TRUE(first.close().ok());
  }
  EXPECT_TRUE(larder::heap::remove(larder::backing::shm, options.heap.name).ok());
}

// The same with the metadata guarded: every operation unprotects and
// protects it again, so a write outside one would kill the test.
TEST(StoreModelTest, ClientsInThreadsWithGuardedMetadata) { model_test(larder::store_protection::guard); }

}  // namespace

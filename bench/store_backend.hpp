// What bench/store_bench.cpp measures, behind one interface: an object store
// or key-value server (store_service: started once per run) and a client
// connection to it (store_client: one per client process). Each backend is
// one file, store_backend_<name>.cpp, with a make_<name>_service() factory.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

namespace larder_bench {

using value_view = std::span<const std::byte>;

// One client's connection. Not shared between processes or threads.
//
// Object operations (the latency part, each timed on its own) are
// synchronous: put is create + write + seal (or SET), get finds a value (a
// reference held on it where the store has references), release drops that
// reference, remove deletes.
//
// YCSB operations may be queued by a pipelining client: sync() waits for the
// answers of everything queued. A read copies the value out (what a client
// that uses the value pays); a scan reads `count` records from `first` on in
// record order, as one batch where the store has a batch read.
//
// Every operation counts what it did not find or could not do in misses().
class store_client {
 public:
  virtual ~store_client() = default;

  virtual bool put(std::uint64_t key, value_view value) = 0;
  virtual bool get(std::uint64_t key) = 0;
  virtual bool has_release() const { return false; }
  virtual bool release(std::uint64_t /*key*/) { return false; }
  virtual bool remove(std::uint64_t key) = 0;

  virtual void insert(std::uint64_t key, value_view value) = 0;
  virtual void update(std::uint64_t key, value_view value) = 0;
  virtual void read(std::uint64_t key) = 0;
  virtual void scan(std::uint64_t first, std::uint32_t count) = 0;
  virtual void sync() {}

  std::uint64_t misses() const { return misses_; }

 protected:
  void miss() { ++misses_; }

 private:
  std::uint64_t misses_ = 0;
};

// A store as the benchmark runs it: start() brings up a fresh, empty store
// (a server process in `dir`, a shared heap, …), connect() is called in each
// client process after the fork, client_exited() in the parent after a
// client process is reaped, stop() takes everything down. start() and
// connect() return an empty string / a client, or describe what failed.
class store_service {
 public:
  virtual ~store_service() = default;
  virtual std::string name() const = 0;
  virtual std::string version() const = 0;
  virtual std::string start(const std::filesystem::path& dir) = 0;
  virtual std::unique_ptr<store_client> connect(std::string* error) = 0;
  virtual void client_exited(pid_t /*pid*/) {}
  virtual void stop() = 0;
  // True when the clients queue operations: the latency part, one operation
  // at a time, is left to the same store without pipelining.
  virtual bool pipelined() const { return false; }
  // Records the store can hold at once (0: no fixed limit).
  virtual std::uint64_t capacity() const { return 0; }
};

// The backends. Each returns nullptr, with `why` set, where it was not built
// or cannot run here.
std::unique_ptr<store_service> make_redis_service(unsigned pipeline_depth, std::string* why);
std::unique_ptr<store_service> make_memcached_service(std::string* why);
std::unique_ptr<store_service> make_lightning_service(std::string* why);
std::unique_ptr<store_service> make_larder_service(std::string* why);

}  // namespace larder_bench

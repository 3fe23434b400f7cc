// The memcached backend of the store benchmark: a memcached started on a Unix
// socket (no TCP or UDP) and libmemcached clients, one round trip per
// operation; a scan is one multi-get.
#include <libmemcached/memcached.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "server_process.hpp"
#include "store_backend.hpp"
#include "ycsb.hpp"

namespace larder_bench {
namespace {

class memcached_client final : public store_client {
 public:
  explicit memcached_client(memcached_st* mc) : mc_(mc) {}
  ~memcached_client() override { memcached_free(mc_); }

  bool put(std::uint64_t key, value_view value) override { return set(key, value); }
  bool get(std::uint64_t key) override {
    const std::string name = ycsb::key_name(key);
    size_t length = 0;
    std::uint32_t flags = 0;
    memcached_return_t rc;
    char* value = memcached_get(mc_, name.data(), name.size(), &length, &flags, &rc);
    const bool ok = value != nullptr && rc == MEMCACHED_SUCCESS;
    if (ok) buffer_.assign(value, value + length);
    std::free(value);
    if (!ok) miss();
    return ok;
  }
  bool remove(std::uint64_t key) override {
    const std::string name = ycsb::key_name(key);
    const bool ok = memcached_delete(mc_, name.data(), name.size(), 0) == MEMCACHED_SUCCESS;
    if (!ok) miss();
    return ok;
  }

  void insert(std::uint64_t key, value_view value) override { set(key, value); }
  void update(std::uint64_t key, value_view value) override { set(key, value); }
  void read(std::uint64_t key) override { get(key); }
  void scan(std::uint64_t first, std::uint32_t count) override {
    std::vector<std::string> names;
    std::vector<const char*> keys;
    std::vector<size_t> lengths;
    for (std::uint32_t i = 0; i < count; ++i) names.push_back(ycsb::key_name(first + i));
    for (const std::string& n : names) {
      keys.push_back(n.data());
      lengths.push_back(n.size());
    }
    if (memcached_mget(mc_, keys.data(), lengths.data(), keys.size()) != MEMCACHED_SUCCESS) {
      miss();
      return;
    }
    std::size_t found = 0;
    memcached_return_t rc;
    while (memcached_result_st* r = memcached_fetch_result(mc_, nullptr, &rc)) {
      const char* value = memcached_result_value(r);
      buffer_.assign(value, value + memcached_result_length(r));
      memcached_result_free(r);
      ++found;
    }
    if (found == 0) miss();
  }

 private:
  bool set(std::uint64_t key, value_view value) {
    const std::string name = ycsb::key_name(key);
    const bool ok = memcached_set(mc_, name.data(), name.size(), reinterpret_cast<const char*>(value.data()),
                                  value.size(), 0, 0) == MEMCACHED_SUCCESS;
    if (!ok) miss();
    return ok;
  }

  memcached_st* mc_;
  std::vector<char> buffer_;
};

class memcached_service final : public store_service {
 public:
  std::string name() const override { return "memcached"; }
  std::string version() const override { return command_output_line("memcached -V"); }

  std::string start(const std::filesystem::path& dir) override {
    socket_ = dir / "memcached.sock";
    std::filesystem::remove(socket_);
    // 2 GiB of item memory (larger than any run), the socket only for this
    // user; memcached refuses to run as root unless told which user to be.
    std::vector<std::string> argv{"memcached", "-s", socket_.string(), "-a", "0700", "-m", "2048", "-U", "0"};
    if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "root"});
    if (std::string error = server_.start(argv, dir / "memcached.log"); !error.empty()) return error;
    return server_.wait_until([this] { return unix_socket_accepts(socket_); }, std::chrono::seconds(10));
  }

  std::unique_ptr<store_client> connect(std::string* error) override {
    memcached_st* mc = memcached_create(nullptr);
    if (mc == nullptr || memcached_server_add_unix_socket(mc, socket_.c_str()) != MEMCACHED_SUCCESS) {
      *error = "cannot set up a memcached client for " + socket_.string();
      if (mc != nullptr) memcached_free(mc);
      return nullptr;
    }
    return std::make_unique<memcached_client>(mc);
  }

  void stop() override { server_.stop(); }

 private:
  std::filesystem::path socket_;
  server_process server_;
};

}  // namespace

std::unique_ptr<store_service> make_memcached_service(std::string* why) {
  if (command_output_line("command -v memcached").empty()) {
    *why = "memcached is not installed (scripts/install-deps.sh --bench)";
    return nullptr;
  }
  return std::make_unique<memcached_service>();
}

}  // namespace larder_bench

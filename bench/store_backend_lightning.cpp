// The Lightning backend of the store benchmark: Lightning's store daemon
// (built by bench/lightning/build.sh, MPK off) and its client library.
//
// Lightning's store listens on the fixed socket /tmp/lightning, so one
// Lightning run at a time per machine. Its semantics shape the mapping:
//   * put = Create + copy + Seal; the creator keeps the reference Create
//     takes (as Lightning's own benchmarks do); get = Get, release =
//     Release, remove = Delete.
//   * YCSB records are single-field objects written with MultiPut (insert)
//     and MultiUpdate (update: delete and re-create under one lock hold,
//     Lightning's way to change an immutable object). A read is Get + copy
//     of the object, without Release: a Release racing with another
//     client's MultiUpdate would drop the reference of the re-created object
//     and free it. (MultiGet also keeps its reference, and builds a hash map
//     of the fields on every call.) A scan is a Get of each record.
//   * A client that exits is treated by the store's monitor as crashed: it
//     drops the client's references. The benchmark starts a fresh store for
//     each run, so this never frees a record a run still reads.
#include <signal.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "client.h"  // Lightning's client (LARDER_BENCH_LIGHTNING_DIR/include)
#include "server_process.hpp"
#include "store_backend.hpp"
#include "ycsb.hpp"

namespace larder_bench {
namespace {

constexpr char kStoreSocket[] = "/tmp/lightning";  // fixed in Lightning's store.cc
constexpr std::uint64_t kStoreObjects = MAX_NUM_OBJECTS;  // Lightning's fixed object table
const std::vector<std::string> kField{"value"};

std::uint64_t object_id(std::uint64_t key) { return ycsb::fnv1a64(key); }

class lightning_client final : public store_client {
 public:
  lightning_client() : client_(kStoreSocket, "password") {}

  bool put(std::uint64_t key, value_view value) override {
    std::uint8_t* buffer = nullptr;
    if (client_.Create(object_id(key), &buffer, value.size()) != 0) {
      miss();
      return false;
    }
    std::memcpy(buffer, value.data(), value.size());
    return client_.Seal(object_id(key)) == 0;
  }
  bool get(std::uint64_t key) override {
    std::uint8_t* data = nullptr;
    size_t size = 0;
    if (client_.Get(object_id(key), &data, &size) != 0) {
      miss();
      return false;
    }
    return true;
  }
  bool has_release() const override { return true; }
  bool release(std::uint64_t key) override { return client_.Release(object_id(key)) == 0; }
  bool remove(std::uint64_t key) override { return client_.Delete(object_id(key)) == 0; }

  void insert(std::uint64_t key, value_view value) override {
    if (client_.MultiPut(object_id(key), kField, {static_cast<std::int64_t>(value.size())}, {writable(value)}) != 0) {
      miss();
    }
  }
  void update(std::uint64_t key, value_view value) override {
    if (client_.MultiUpdate(object_id(key), kField, {static_cast<std::int64_t>(value.size())}, {writable(value)}) !=
        0) {
      miss();
    }
  }
  void read(std::uint64_t key) override { copy_out(key); }
  void scan(std::uint64_t first, std::uint32_t count) override {
    std::uint32_t found = 0;
    for (std::uint32_t i = 0; i < count; ++i) found += copy_out(first + i) ? 1 : 0;
    if (found == 0) miss();
  }

 private:
  // Lightning's Multi* calls take the field contents as uint8_t*; they only read them.
  static std::uint8_t* writable(value_view value) {
    return const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(value.data()));
  }

  bool copy_out(std::uint64_t key) {
    std::uint8_t* data = nullptr;
    size_t size = 0;
    if (client_.Get(object_id(key), &data, &size) != 0) return false;
    buffer_.assign(data, data + size);
    return true;
  }

  LightningClient client_;
  std::vector<std::uint8_t> buffer_;
};

class lightning_service final : public store_service {
 public:
  std::string name() const override { return "lightning"; }
  std::string version() const override { return "github.com/danyangz/lightning, MPK off"; }

  std::string start(const std::filesystem::path& dir) override {
    const std::filesystem::path log = dir / "lightning.log";
    std::filesystem::remove(log);
    if (std::string error = server_.start({LARDER_BENCH_LIGHTNING_STORE}, log); !error.empty()) return error;
    return server_.wait_until([log] { return file_contains(log, "Store is ready!"); }, std::chrono::seconds(30));
  }

  // Lightning's client exits the process when the store does not answer.
  std::unique_ptr<store_client> connect(std::string* /*error*/) override {
    return std::make_unique<lightning_client>();
  }

  // Lightning leaves each client's undo log and object log in shared memory.
  // Its monitor, which looks for exited clients once a second, opens them
  // again (creating them) to recover the client and removes them after; a
  // store stopped in between leaves them behind, so they go after the stop.
  void client_exited(pid_t pid) override { exited_.push_back(pid); }

  void stop() override {
    server_.stop(SIGINT);  // the store's own clean exit
    for (pid_t pid : exited_) {
      ::shm_unlink(("log-" + std::to_string(pid)).c_str());
      ::shm_unlink(("object-log-" + std::to_string(pid)).c_str());
    }
    exited_.clear();
  }
  std::uint64_t capacity() const override { return kStoreObjects; }

 private:
  server_process server_;
  std::vector<pid_t> exited_;
};

}  // namespace

std::unique_ptr<store_service> make_lightning_service(std::string* /*why*/) {
  return std::make_unique<lightning_service>();
}

}  // namespace larder_bench

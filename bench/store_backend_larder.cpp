// The larder backend of the store benchmark: larder's object store
// (include/larder/store.hpp) in one shm heap that every client process
// opens itself, as shared writers; no server.
//
//   * put = create + copy + seal; get = get (the reference held), release =
//     release, remove = delete. Object ids are the record numbers hashed
//     with FNV-1a, as Lightning's.
//   * YCSB records are single-field objects: insert = put_fields, update =
//     update_fields, which seals a new version under the same id in one
//     step (a delete and a create would leave a moment in which a read
//     of another client finds no record). A read is get_fields + a pass
//     over the value's bytes in place (the store hands out the mapped
//     bytes: nothing is copied) + release; a scan reads each record so.
#include <larder/store.hpp>

#include <unistd.h>

#include <cstring>
#include <string_view>

#include "store_backend.hpp"
#include "ycsb.hpp"

namespace larder_bench {
namespace {

constexpr std::string_view kField = "value";

larder::object_id object_id(std::uint64_t key) { return larder::object_id(ycsb::fnv1a64(key)); }

// Every byte of `value` read where it lies, folded so the reads stay.
std::uint64_t fold(std::span<const std::byte> value) {
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + sizeof(std::uint64_t) <= value.size(); i += sizeof(std::uint64_t)) {
    std::uint64_t word;
    std::memcpy(&word, value.data() + i, sizeof word);
    sum ^= word;
  }
  for (; i < value.size(); ++i) sum = (sum << 8) ^ std::to_integer<std::uint64_t>(value[i]);
  return sum;
}

class larder_client final : public store_client {
 public:
  explicit larder_client(larder::store s) : store_(std::move(s)) {}
  ~larder_client() override { (void)store_.close(); }

  bool put(std::uint64_t key, value_view value) override {
    const larder::object_id id = object_id(key);
    larder::object_buffer buffer;
    if (!store_.create(id, value.size(), 0, &buffer).ok()) {
      miss();
      return false;
    }
    std::memcpy(buffer.data.data(), value.data(), value.size());
    return store_.seal(id).ok();
  }
  bool get(std::uint64_t key) override {
    larder::object_view view;
    if (!store_.get(object_id(key), &view).ok()) {
      miss();
      return false;
    }
    return true;
  }
  bool has_release() const override { return true; }
  bool release(std::uint64_t key) override { return store_.release(object_id(key)).ok(); }
  bool remove(std::uint64_t key) override { return store_.remove(object_id(key)).ok(); }

  void insert(std::uint64_t key, value_view value) override {
    const larder::field f{kField, value};
    if (!store_.put_fields(object_id(key), {&f, 1}).ok()) miss();
  }
  void update(std::uint64_t key, value_view value) override {
    const larder::field f{kField, value};
    if (!store_.update_fields(object_id(key), {&f, 1}).ok()) miss();
  }
  void read(std::uint64_t key) override {
    if (!read_in_place(key)) miss();
  }
  void scan(std::uint64_t first, std::uint32_t count) override {
    std::uint32_t found = 0;
    for (std::uint32_t i = 0; i < count; ++i) found += read_in_place(first + i) ? 1 : 0;
    if (found == 0) miss();
  }

 private:
  bool read_in_place(std::uint64_t key) {
    const larder::object_id id = object_id(key);
    if (!store_.get_fields(id, {&kField, 1}, &values_).ok()) return false;
    const bool has_value = !values_[0].empty();
    folded_ ^= fold(values_[0]);
    return store_.release(id).ok() && has_value;
  }

  larder::store store_;
  std::vector<std::span<const std::byte>> values_;
  std::uint64_t folded_ = 0;  // what the reads folded: kept, so the reads are not optimised away
};

class larder_service final : public store_service {
 public:
  std::string name() const override { return "larder"; }
  std::string version() const override { return "larder store, shm heap, shared writers, protection none"; }

  // Makes the heap and the store in it, then leaves them to the clients.
  std::string start(const std::filesystem::path& /*dir*/) override {
    options_.heap.kind = larder::backing::shm;
    options_.heap.name = "/larder-store-compare-" + std::to_string(::getpid());
    (void)larder::heap::remove(larder::backing::shm, options_.heap.name);  // left by a killed run
    options_.heap.mode = larder::open_mode::create;
    larder::store made;
    if (larder::status st = larder::store::open(options_, &made); !st.ok()) return st.to_string();
    if (larder::status st = made.close(); !st.ok()) return st.to_string();
    options_.heap.mode = larder::open_mode::open;
    return {};
  }

  std::unique_ptr<store_client> connect(std::string* error) override {
    larder::store s;
    if (larder::status st = larder::store::open(options_, &s); !st.ok()) {
      *error = "store::open: " + st.to_string();
      return nullptr;
    }
    return std::make_unique<larder_client>(std::move(s));
  }

  void stop() override {
    if (!options_.heap.name.empty()) (void)larder::heap::remove(larder::backing::shm, options_.heap.name);
  }

 private:
  larder::store_options options_;
};

}  // namespace

std::unique_ptr<store_service> make_larder_service(std::string* /*why*/) {
  return std::make_unique<larder_service>();
}

}  // namespace larder_bench

// remote_store over a Ceph pool (rados_store.hpp), through port/rados.hpp.
#include "tiers/chunks/rados_store.hpp"

#include "port/os.hpp"
#include "port/rados.hpp"
#include "tiers/chunks/pack_reader.hpp"
#include "tiers/chunks/pack_writer.hpp"

#include <xxhash.h>
#include <zstd.h>

#include <cstring>

namespace larder::chunks {
namespace {

constexpr const char* kMarker = "chunks.store";
constexpr std::string_view kChunkPrefix = "chunk.", kVersionPrefix = "version.", kTablePrefix = "table.",
                           kRefPrefix = "ref.";
// Requests in flight at once in a batch.
constexpr unsigned kInFlight = 64;
constexpr std::size_t kMaxRecord = sizeof(record_header) + kPageSize;

std::string chunk_object(const fingerprint& f) { return std::string(kChunkPrefix) + f.hex(); }

port::rados_op read_op(std::string object, void* buffer, std::size_t length) {
  port::rados_op op{};
  op.what = port::rados_op::kind::read;
  op.object = std::move(object);
  op.buffer = buffer;
  op.length = length;
  return op;
}

class rados_store final : public remote_store {
 public:
  rados_store(std::unique_ptr<port::rados_pool> pool, std::string where)
      : pool_(std::move(pool)), where_(std::move(where)), zstd_(ZSTD_createDCtx()) {}
  ~rados_store() override { ZSTD_freeDCtx(zstd_); }
  rados_store(const rados_store&) = delete;
  rados_store& operator=(const rados_store&) = delete;

  const std::string& where() const override { return where_; }

  // A one-byte read of each: present where it succeeds.
  status has_chunks(const fingerprint* names, std::size_t count, std::vector<bool>* present) override {
    std::vector<port::rados_op> ops(count);
    std::vector<char> bytes(count);
    for (std::size_t i = 0; i < count; ++i) {
      ops[i] = read_op(chunk_object(names[i]), &bytes[i], 1);
    }
    status s = pool_->run(ops.data(), count, kInFlight);
    present->assign(count, false);
    for (std::size_t i = 0; i < count; ++i) {
      if (names[i] == zero_page() || ops[i].result.ok()) {
        (*present)[i] = true;
      } else if (!ops[i].result.is(errc::not_found)) {
        return ops[i].result;
      }
    }
    return s.is(errc::not_found) ? status{} : s;
  }

  status get_chunks(const fingerprint* names, std::size_t count, std::vector<stored_chunk>* out) override {
    std::vector<port::rados_op> ops(count);
    std::vector<char> records(count * kMaxRecord);
    for (std::size_t i = 0; i < count; ++i) {
      ops[i] = read_op(chunk_object(names[i]), records.data() + i * kMaxRecord, kMaxRecord);
    }
    if (status s = pool_->run(ops.data(), count, kInFlight); !s.ok()) {
      for (std::size_t i = 0; i < count; ++i) {
        if (ops[i].result.is(errc::not_found)) {
          return status(errc::not_found, where_ + ": chunk " + names[i].hex() + " is not there");
        }
      }
      return s;
    }
    out->assign(count, stored_chunk{});
    char page[kPageSize];
    for (std::size_t i = 0; i < count; ++i) {
      const char* record = records.data() + i * kMaxRecord;
      if (const char* why = decode_record(record, ops[i].transferred, names[i], zstd_, page)) {
        return status(errc::corrupt, where_ + ": " + chunk_object(names[i]) + ": " + why);
      }
      record_header h;
      std::memcpy(&h, record, sizeof h);
      (*out)[i] = stored_chunk{names[i], static_cast<encoding>(h.encoding), std::string(record + sizeof h, h.stored_size)};
    }
    return {};
  }

  status put_chunks(const std::vector<stored_chunk>& chunks) override {
    std::vector<std::string> records(chunks.size());
    std::vector<port::rados_op> ops(chunks.size());
    char page[kPageSize];
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      const stored_chunk& c = chunks[i];
      if (const char* why = check_payload(c.name, c.how, c.payload, zstd_, page)) {
        return status(errc::corrupt, "chunk " + c.name.hex() + " as received: " + why);
      }
      const record_header h = record_header_of(c.name, c.how, c.payload.size());
      records[i].assign(reinterpret_cast<const char*>(&h), sizeof h);
      records[i] += c.payload;
      ops[i].what = port::rados_op::kind::write_full;
      ops[i].object = chunk_object(c.name);
      ops[i].data = records[i].data();
      ops[i].length = records[i].size();
    }
    return pool_->run(ops.data(), ops.size(), kInFlight);
  }

  // Each write is durable once acknowledged.
  status sync_chunks() override { return {}; }

  status list_versions(std::vector<version_id>* out) override {
    out->clear();
    std::vector<std::string> objects;
    if (status s = pool_->list(std::string(kVersionPrefix), &objects); !s.ok()) return s;
    for (const std::string& o : objects) {
      version_id id;
      if (fingerprint::parse(std::string_view(o).substr(kVersionPrefix.size()), &id)) out->push_back(id);
    }
    return {};
  }

  status get_version(const version_id& id, std::string* manifest, std::string* table) override {
    const std::string name = std::string(kVersionPrefix) + id.hex();
    status s = read_checked(name, id, manifest);
    if (s.is(errc::not_found)) return status(errc::not_found, where_ + ": no version " + id.hex());
    table->clear();
    version_record header;
    if (s.ok()) s = decode_manifest(*manifest, where_ + ": " + name, true, &header);
    if (!s.ok() || !header.has_table) return s;
    s = read_checked(std::string(kTablePrefix) + header.table.hex(), header.table, table);
    if (s.is(errc::not_found)) return status(errc::corrupt, where_ + ": " + name + ": its base table is missing");
    return s;
  }

  status has_table(const fingerprint& id, bool* present) override {
    std::uint64_t size = 0;
    status s = pool_->stat(std::string(kTablePrefix) + id.hex(), &size);
    *present = s.ok();
    return s.is(errc::not_found) ? status{} : s;
  }

  // The transfer asked which chunks are here before it sent the rest, so
  // the manifest is written without reading every chunk back.
  status put_version(std::string_view manifest, std::string_view table, version_id* id) override {
    *id = fingerprint_of(manifest.data(), manifest.size());
    version_record header;
    if (status s = decode_manifest(manifest, "versions/" + id->hex(), true, &header); !s.ok()) return s;
    if (header.has_table && !table.empty()) {
      if (fingerprint_of(table.data(), table.size()) != header.table) {
        return status(errc::corrupt, "versions/" + id->hex() + ": its base table does not match its id");
      }
      if (status s = pool_->write_full(std::string(kTablePrefix) + header.table.hex(), table.data(), table.size());
          !s.ok()) {
        return s;
      }
    }
    return pool_->write_full(std::string(kVersionPrefix) + id->hex(), manifest.data(), manifest.size());
  }

  status list_refs(std::vector<ref_entry>* out) override {
    out->clear();
    std::vector<std::string> objects;
    if (status s = pool_->list(std::string(kRefPrefix), &objects); !s.ok()) return s;
    for (const std::string& o : objects) {
      std::string text;
      status s = read_whole(o, &text);
      if (s.is(errc::not_found)) continue;  // removed since listed
      if (!s.ok()) return s;
      ref_entry r{o.substr(kRefPrefix.size()), {}};
      if (text.ends_with('\n')) text.pop_back();
      if (!fingerprint::parse(text, &r.id)) return status(errc::corrupt, where_ + ": " + o + ": not a version id");
      out->push_back(std::move(r));
    }
    return {};
  }

  status set_ref(const std::string& name, const version_id& id, const version_id* expected) override {
    std::vector<ref_entry> refs;
    if (status s = list_refs(&refs); !s.ok()) return s;
    const ref_entry* now = nullptr;
    for (const ref_entry& r : refs) now = r.name == name ? &r : now;
    if ((now == nullptr) != (expected == nullptr) || (now != nullptr && now->id != *expected)) {
      return status(errc::already_exists, where_ + ": " + name + " has moved on");
    }
    const std::string text = id.hex() + "\n";
    return pool_->write_full(std::string(kRefPrefix) + name, text.data(), text.size());
  }

  status release() override { return {}; }

  // The marker: made in an empty pool with `create`, else checked.
  status check_marker(bool create) {
    std::string bytes;
    status s = read_whole(kMarker, &bytes);
    if (s.is(errc::not_found)) {
      std::vector<std::string> objects;
      if (status l = pool_->list("", &objects); !l.ok()) return l;
      if (!create || !objects.empty()) {
        return status(errc::not_a_heap, where_ + " holds no chunk store" + (objects.empty() ? "" : ", and is not empty"));
      }
      store_header h{};
      h.magic = kStoreMagic;
      h.major = kFormatMajor;
      h.minor = kFormatMinor;
      std::uint64_t a = port::random64(), b = port::random64();
      std::memcpy(h.uuid, &a, 8);
      std::memcpy(h.uuid + 8, &b, 8);
      h.created_ns = port::realtime_ns();
      h.checksum = XXH3_64bits(&h, offsetof(store_header, checksum));
      return pool_->write_full(kMarker, &h, sizeof h);
    }
    if (!s.ok()) return s;
    store_header h;
    if (bytes.size() != sizeof h) return status(errc::not_a_heap, where_ + ": " + kMarker + " is not a store's marker");
    std::memcpy(&h, bytes.data(), sizeof h);
    if (h.magic != kStoreMagic) return status(errc::not_a_heap, where_ + ": " + kMarker + " is not a store's marker");
    if (h.checksum != XXH3_64bits(&h, offsetof(store_header, checksum))) {
      return status(errc::corrupt, where_ + ": " + kMarker + ": checksum mismatch");
    }
    if (h.major > kFormatMajor) return status(errc::newer_format, where_);
    return {};
  }

 private:
  status read_whole(const std::string& object, std::string* out) {
    std::uint64_t size = 0;
    if (status s = pool_->stat(object, &size); !s.ok()) return s;
    out->resize(size);
    std::size_t got = 0;
    if (status s = pool_->read(object, 0, out->data(), size, &got); !s.ok()) return s;
    if (got != size) return status(errc::truncated, where_ + ": " + object + " shrank while being read");
    return {};
  }

  status read_checked(const std::string& object, const fingerprint& id, std::string* out) {
    if (status s = read_whole(object, out); !s.ok()) return s;
    if (fingerprint_of(out->data(), out->size()) != id) {
      return status(errc::corrupt, where_ + ": " + object + ": its bytes do not match its id");
    }
    return {};
  }

  std::unique_ptr<port::rados_pool> pool_;
  std::string where_;
  ZSTD_DCtx_s* zstd_;
};

}  // namespace

status open_rados_store(const std::string& spec, bool create, std::unique_ptr<remote_store>* out) {
  const std::size_t at = spec.find('@');
  const std::string pool_name = spec.substr(0, at), conf = at == std::string::npos ? "" : spec.substr(at + 1);
  if (pool_name.empty()) return status(errc::invalid_argument, "rados:" + spec + ": no pool named (rados:POOL[@CONF])");
  std::unique_ptr<port::rados_pool> pool;
  if (status s = port::rados_pool::connect(conf, pool_name, {}, &pool); !s.ok()) return s;
  auto store = std::make_unique<rados_store>(std::move(pool), "rados:" + pool_name);
  if (status s = store->check_marker(create); !s.ok()) return s;
  *out = std::move(store);
  return {};
}

}  // namespace larder::chunks

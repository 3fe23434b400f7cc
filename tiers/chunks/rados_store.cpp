// remote_store over a Ceph pool (rados_store.hpp), through port/rados.hpp.
#include "tiers/chunks/rados_store.hpp"

#include "port/os.hpp"
#include "port/rados.hpp"
#include "tiers/chunks/pack_reader.hpp"
#include "tiers/chunks/pack_writer.hpp"
#include "tiers/chunks/store_marker.hpp"

#include <xxhash.h>
#include <zstd.h>

#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace larder::chunks {
namespace {

// The names of a directory store's files (docs/format/chunks.md).
constexpr const char* kMarker = "store";
constexpr std::string_view kPacks = "packs/", kVersionPrefix = "versions/", kTablePrefix = "tables/",
                           kRefPrefix = "refs/";
// Requests in flight at once in a batch.
constexpr unsigned kInFlight = 64;
// Chunks are written in pack objects of about this size: one write of
// 4 MiB costs far less than a thousand of 4 KiB.
constexpr std::size_t kPackObjectBytes = std::size_t{4} << 20;

std::string pack_object(std::uint64_t id) { return std::string(kPacks) + pack_name(id); }
std::string index_object(std::uint64_t id) { return std::string(kPacks) + index_name(id); }

class rados_store final : public remote_store {
 public:
  rados_store(std::unique_ptr<port::rados_pool> pool, std::string where)
      : pool_(std::move(pool)), where_(std::move(where)), zstd_(ZSTD_createDCtx()) {}
  ~rados_store() override { ZSTD_freeDCtx(zstd_); }
  rados_store(const rados_store&) = delete;
  rados_store& operator=(const rados_store&) = delete;

  const std::string& where() const override { return where_; }

  // From the indexes loaded: a chunk of a pack whose index another writer
  // published since is taken for missing, and sent again (harmless).
  status has_chunks(const fingerprint* names, std::size_t count, std::vector<bool>* present) override {
    present->assign(count, false);
    for (std::size_t i = 0; i < count; ++i) {
      (*present)[i] = names[i] == zero_page() || index_.contains(names[i]) || pending_names_.contains(names[i]);
    }
    return {};
  }

  status get_chunks(const fingerprint* names, std::size_t count, std::vector<stored_chunk>* out) override {
    if (status s = flush_pack(); !s.ok()) return s;
    std::vector<port::rados_op> ops(count);
    std::vector<char> records(count * kMaxRecord);
    bool reloaded = false;
    for (std::size_t i = 0; i < count; ++i) {
      const location* at = nullptr;
      if (status s = find_chunk(names[i], &reloaded, &at); !s.ok()) return s;
      if (at == nullptr) return status(errc::not_found, where_ + ": chunk " + names[i].hex() + " is not there");
      ops[i].what = port::rados_op::kind::read;
      ops[i].object = pack_object(at->pack);
      ops[i].buffer = records.data() + i * kMaxRecord;
      ops[i].offset = at->offset;
      ops[i].length = sizeof(record_header) + at->stored_size;  // at most kMaxRecord: decode_index checked
    }
    if (status s = pool_->run(ops.data(), count, kInFlight); !s.ok()) return s;
    out->assign(count, stored_chunk{});
    char page[kPageSize];
    for (std::size_t i = 0; i < count; ++i) {
      const char* record = records.data() + i * kMaxRecord;
      if (const char* why = decode_record(record, ops[i].transferred, names[i], zstd_, page)) {
        return status(errc::corrupt, where_ + ": chunk " + names[i].hex() + " in " + ops[i].object + ": " + why);
      }
      record_header h;
      std::memcpy(&h, record, sizeof h);
      (*out)[i] = stored_chunk{names[i], static_cast<encoding>(h.encoding), std::string(record + sizeof h, h.stored_size)};
    }
    return {};
  }

  // Into the pack being filled, written out once it is large enough.
  status put_chunks(const std::vector<stored_chunk>& chunks) override {
    char page[kPageSize];
    for (const stored_chunk& c : chunks) {
      if (c.name == zero_page() || index_.contains(c.name) || pending_names_.contains(c.name)) continue;
      if (const char* why = check_payload(c.name, c.how, c.payload, zstd_, page)) {
        return status(errc::corrupt, "chunk " + c.name.hex() + " as received: " + why);
      }
      const record_header h = record_header_of(c.name, c.how, c.payload.size());
      pending_.push_back(index_entry{h.fingerprint, pack_bytes_.size(), h.stored_size, h.encoding, {}});
      pending_names_.insert(c.name);
      pack_bytes_.append(reinterpret_cast<const char*>(&h), sizeof h);
      pack_bytes_ += c.payload;
      if (pack_bytes_.size() >= kPackObjectBytes) {
        if (status s = flush_pack(); !s.ok()) return s;
      }
    }
    return {};
  }

  status sync_chunks() override { return flush_pack(); }

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

  status put_version(std::string_view manifest, std::string_view table, version_id* id) override {
    if (status s = flush_pack(); !s.ok()) return s;
    *id = fingerprint_of(manifest.data(), manifest.size());
    const std::string name = where_ + ": versions/" + id->hex();
    version_record v;
    status s = decode_manifest(manifest, name, true, &v);
    std::string held;
    const bool table_given = !table.empty();
    if (s.ok() && v.has_table && !table_given) {
      s = read_checked(std::string(kTablePrefix) + v.table.hex(), v.table, &held);
      table = held;
    }
    if (s.ok()) s = decode_version(manifest, table, name, &v);
    bool reloaded = false;
    for (std::size_t i = 0; s.ok() && i < v.pages.size(); ++i) {
      const location* at = nullptr;
      s = find_chunk(v.pages[i].chunk, &reloaded, &at);
      if (s.ok() && at == nullptr) {
        s = status(errc::not_found, name + " names chunk " + v.pages[i].chunk.hex() + ", which is not there");
      }
    }
    if (s.ok() && v.has_table && table_given) {
      s = pool_->write_full(std::string(kTablePrefix) + v.table.hex(), table.data(), table.size());
    }
    return s.ok() ? pool_->write_full(std::string(kVersionPrefix) + id->hex(), manifest.data(), manifest.size()) : s;
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

  // One conditional write, which the cluster applies whole or not at all.
  status set_ref(const std::string& name, const version_id& id, const version_id* expected) override {
    const std::string text = id.hex() + "\n";
    const std::string expected_text = expected != nullptr ? expected->hex() + "\n" : "";
    status s = pool_->write_full_if(std::string(kRefPrefix) + name, text.data(), text.size(),
                                    expected != nullptr ? &expected_text : nullptr);
    return s.is(errc::already_exists) ? status(errc::already_exists, where_ + ": " + name + " has moved on") : s;
  }

  status release() override { return flush_pack(); }

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
      const store_header h = new_store_marker();
      return pool_->write_full(kMarker, &h, sizeof h);
    }
    if (!s.ok()) return s;
    return check_store_marker(bytes, where_ + ": " + kMarker);
  }

  // The index of every pack published and not loaded yet.
  status load_indexes() {
    std::vector<std::string> objects;
    if (status s = pool_->list(std::string(kPacks), &objects); !s.ok()) return s;
    for (const std::string& o : objects) {
      std::uint64_t id = 0;
      if (!parse_pack_name(std::string_view(o).substr(kPacks.size()), &id) || loaded_.contains(id)) continue;
      std::string bytes;
      status s = read_whole(index_object(id), &bytes);
      if (s.is(errc::not_found)) continue;  // its writer stopped before the index: never read
      if (!s.ok()) return s;
      std::vector<index_entry> entries;
      std::uint64_t size = 0;
      if (s = decode_index(bytes, where_ + ": " + index_object(id), id, &entries, &size); !s.ok()) return s;
      for (const index_entry& e : entries) index_.emplace(fingerprint::from(e.fingerprint), location{id, e.offset, e.stored_size});
      loaded_.insert(id);
    }
    return {};
  }

 private:
  struct location {
    std::uint64_t pack;
    std::uint64_t offset;
    std::uint32_t stored_size;
  };

  // Where the chunk is (nullptr: nowhere). On a miss the indexes published
  // since by other writers are loaded first, once per `*reloaded`.
  status find_chunk(const fingerprint& name, bool* reloaded, const location** where) {
    auto it = index_.find(name);
    if (it == index_.end() && !*reloaded) {
      *reloaded = true;
      if (status s = load_indexes(); !s.ok()) return s;
      it = index_.find(name);
    }
    *where = it == index_.end() ? nullptr : &it->second;
    return {};
  }

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

  // The pack being filled, then its index: durable once both writes
  // returned. A pack without its index (a writer stopped between them) is
  // never read; its chunks are sent again.
  status flush_pack() {
    if (pending_.empty()) return {};
    const std::uint64_t id = port::random64();
    status s = pool_->write_full(pack_object(id), pack_bytes_.data(), pack_bytes_.size());
    const std::string index = encode_index(id, pack_bytes_.size(), pending_);
    if (s.ok()) s = pool_->write_full(index_object(id), index.data(), index.size());
    if (s.ok()) {
      for (const index_entry& e : pending_) index_.emplace(fingerprint::from(e.fingerprint), location{id, e.offset, e.stored_size});
      loaded_.insert(id);
    }
    pending_.clear();
    pending_names_.clear();
    pack_bytes_.clear();
    return s;
  }

  static constexpr std::size_t kMaxRecord = sizeof(record_header) + kPageSize;

  std::unique_ptr<port::rados_pool> pool_;
  std::string where_;
  ZSTD_DCtx_s* zstd_;
  std::unordered_map<fingerprint, location, fingerprint_hash> index_;
  std::unordered_set<std::uint64_t> loaded_;  // packs whose index is in index_
  std::string pack_bytes_;                    // the pack being filled
  std::vector<index_entry> pending_;          // its records
  std::unordered_set<fingerprint, fingerprint_hash> pending_names_;
};

}  // namespace

status open_rados_store(const std::string& pool_name, const std::string& conf, bool create,
                        std::unique_ptr<remote_store>* out) {
  std::unique_ptr<port::rados_pool> pool;
  if (status s = port::rados_pool::connect(conf, pool_name, {}, &pool); !s.ok()) return s;
  auto store = std::make_unique<rados_store>(std::move(pool), "rados:" + pool_name);
  if (status s = store->check_marker(create); !s.ok()) return s;
  if (status s = store->load_indexes(); !s.ok()) return s;
  *out = std::move(store);
  return {};
}

}  // namespace larder::chunks

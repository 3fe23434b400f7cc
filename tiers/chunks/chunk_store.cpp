// The chunk store: opening, the in-memory index of all packs, writing and
// reading chunks, and versions. Refs are in refs.cpp, gc/verify/du in
// housekeeping.cpp.
#include "tiers/chunks/chunk_store.hpp"

#include "port/directory.hpp"
#include "port/os.hpp"
#include "port/uring.hpp"
#include "tiers/chunks/file_ops.hpp"
#include "tiers/chunks/files.hpp"
#include "tiers/chunks/pack_reader.hpp"
#include "tiers/chunks/pack_writer.hpp"
#include "tiers/chunks/store_marker.hpp"

#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <unordered_set>

namespace larder::chunks {

static_assert(std::endian::native == std::endian::little, "the store's files are little-endian");

namespace {

// Reads in flight at once.
constexpr unsigned kQueueDepth = 64;
// A manifest lists its changes to a base table until they pass
// 1/kRebaseDivisor of the table's pages (or kMinRebasePages), then a new
// base table is written: a manifest costs what changed since the base, and
// the table written now and then about as much again, spread over the
// versions between.
constexpr std::size_t kRebaseDivisor = 8;
constexpr std::size_t kMinRebasePages = 4096;

// A store whose marker survives a power failure has its whole layout:
// refs/ is synced first, and the marker's own publication syncs the
// store's directory, which holds packs/, versions/ and refs/.
status create_layout(file_ops& ops, const std::string& root) {
  bool created = false;
  auto make = [&](const std::string& path) -> status {
    int err = ops.make_directory(path.c_str(), &created);
    return err == 0 ? status{} : status::from_errno(err, "creating " + path);
  };
  auto sync = [&](const std::string& path) -> status {
    int err = ops.sync_directory(path.c_str());
    return err == 0 ? status{} : status::from_errno(err, "syncing " + path);
  };
  if (status s = make(root); !s.ok()) return s;
  if (created) {
    if (status s = sync(parent_directory(root)); !s.ok()) return s;
  }
  for (const char* sub : {"/packs", "/versions", "/tables", "/refs", "/refs/heads", "/refs/tags"}) {
    if (status s = make(root + sub); !s.ok()) return s;
  }
  if (status s = sync(root + "/refs"); !s.ok()) return s;
  const store_header h = new_store_marker();
  return publish_file(ops, root, "store", std::string_view(reinterpret_cast<const char*>(&h), sizeof h), false);
}

status check_marker(const std::string& root) {
  std::string bytes;
  status s = read_file(root + "/store", &bytes);
  if (s.is(errc::not_found)) return status(errc::not_a_heap, root + " is not a chunk store");
  if (!s.ok()) return s;
  return check_store_marker(bytes, root + "/store");
}

}  // namespace

status chunk_store::open(const std::string& directory, const store_options& options,
                         std::unique_ptr<chunk_store>* out) {
  std::unique_ptr<chunk_store> store(new chunk_store());
  store->root_ = directory;
  store->packs_dir_ = directory + "/packs";
  store->versions_dir_ = directory + "/versions";
  store->tables_dir_ = directory + "/tables";
  store->refs_dir_ = directory + "/refs";
  store->options_ = options;
  store->files_ = options.files != nullptr ? options.files : &process_file_ops();
  status s = check_marker(directory);
  if (s.is(errc::not_a_heap) && options.create) s = create_layout(*store->files_, directory);
  if (!s.ok()) return s;
  bool created = false;
  std::string lock = directory + "/lock";
  if (int err = port::open_file(lock.c_str(), true, false, true, &store->lock_fd_, &created)) {
    return status::from_errno(err, "opening " + lock);
  }
  if (int err = port::io_queue::create(kQueueDepth, options.use_uring, &store->io_)) {
    return status::from_errno(err, "setting up I/O");
  }
  store->zstd_ = ZSTD_createDCtx();
  if (store->zstd_ == nullptr) return status::from_errno(ENOMEM, "creating a zstd context");
  if (s = store->refresh(false); !s.ok()) return s;
  *out = std::move(store);
  return {};
}

chunk_store::~chunk_store() {
  writer_.reset();  // an unfinished pack is abandoned
  for (pack_state& p : packs_) {
    if (p.fd >= 0) port::close_fd(p.fd);
  }
  if (lock_fd_ >= 0) port::close_fd(lock_fd_);
  ZSTD_freeDCtx(zstd_);
}

std::string chunk_store::pack_path(std::uint64_t pack_id) const { return packs_dir_ + "/" + pack_name(pack_id); }

void chunk_store::forget_pack(std::uint32_t slot, chunk_set* unindexed) {
  pack_state& p = packs_[slot];
  chunk_set here;
  for (const index_entry& e : p.entries) {
    auto it = index_.find(fingerprint::from(e.fingerprint));
    if (it != index_.end() && it->second.pack == slot) {
      (unindexed != nullptr ? *unindexed : here).insert(it->first);
      index_.erase(it);
    }
  }
  if (p.fd >= 0) port::close_fd(p.fd);
  p.fd = -1;
  p.removed = true;
  p.entries.clear();
  p.entries.shrink_to_fit();
  if (unindexed == nullptr) index_other_copies(&here);
}

// A chunk the index found in a forgotten pack may be in another too (two
// writers put it at once, or gc copied it): without this the store would
// take it for missing, and its gc would drop the copy that is left.
void chunk_store::index_other_copies(chunk_set* unindexed) {
  for (std::uint32_t slot = 0; !unindexed->empty() && slot < packs_.size(); ++slot) {
    if (packs_[slot].removed) continue;
    for (const index_entry& e : packs_[slot].entries) {
      fingerprint name = fingerprint::from(e.fingerprint);
      if (unindexed->erase(name) != 0) index_.emplace(name, location{slot, e.stored_size, e.offset});
    }
  }
}

// Loads the packs published since the last refresh. With `drop_removed`,
// also forgets packs gc has removed, so that no chunk is deduplicated
// against a copy that is gone (the caller holds the store lock).
status chunk_store::refresh(bool drop_removed) {
  std::vector<std::string> names;
  if (status s = list_directory(packs_dir_, &names); !s.ok()) return s;
  std::unordered_set<std::uint64_t> present;
  for (const std::string& name : names) {
    std::uint64_t id;
    if (parse_pack_name(name, &id)) present.insert(id);
  }
  std::unordered_set<std::uint64_t> known;
  chunk_set unindexed;
  for (std::uint32_t slot = 0; slot < packs_.size(); ++slot) {
    pack_state& p = packs_[slot];
    bool writing = writer_ && slot == writer_slot_;
    if (!p.removed && !writing && drop_removed && !present.contains(p.id)) forget_pack(slot, &unindexed);
    if (!p.removed || writing) known.insert(p.id);
  }
  index_other_copies(&unindexed);
  for (std::uint64_t id : present) {
    if (known.contains(id)) continue;
    if (status s = load_pack(id); !s.ok()) return s;
  }
  return {};
}

// Adds one published pack to the index: from its index file, or rebuilt
// from the pack (and the index file rewritten) when that is missing or
// damaged. A damaged pack is kept with what can be read of it.
status chunk_store::load_pack(std::uint64_t pack_id) {
  pack_state p;
  p.id = pack_id;
  std::string path = pack_path(pack_id);
  bool created = false;
  int err = port::open_file(path.c_str(), false, false, false, &p.fd, &created);
  if (err == ENOENT) return {};  // removed by gc since it was listed
  if (err == 0) err = port::file_size(p.fd, &p.size);
  if (err != 0) {
    if (p.fd >= 0) port::close_fd(p.fd);
    return status::from_errno(err, "opening " + path);
  }
  std::uint64_t indexed_size = 0;
  status s = load_index(packs_dir_, pack_id, &p.entries, &indexed_size);
  if (s.is(errc::newer_format)) {
    port::close_fd(p.fd);
    return s;
  }
  if (s.ok() && indexed_size != p.size) {
    p.damage = "the pack is " + std::to_string(p.size) + " bytes, its index says " + std::to_string(indexed_size);
  } else if (!s.ok()) {
    status scan = scan_pack(p.fd, pack_id, path, &p.entries);
    if (!scan.ok()) {
      p.damage = scan.message();
    } else {
      (void)publish_index(*files_, packs_dir_, pack_id, p.size, p.entries);  // best effort: a reader may lack write access
    }
  }
  auto slot = static_cast<std::uint32_t>(packs_.size());
  for (const index_entry& e : p.entries) {
    index_.try_emplace(fingerprint::from(e.fingerprint), location{slot, e.stored_size, e.offset});
  }
  packs_.push_back(std::move(p));
  return {};
}

status chunk_store::ensure_locked() {
  if (locked_) return {};
  if (int err = port::lock_file(lock_fd_, false, true)) return status::from_errno(err, "locking " + root_);
  locked_ = true;
  status s = refresh(true);
  if (!s.ok()) (void)release();
  return s;
}

status chunk_store::ensure_writer() {
  if (writer_) return {};
  if (status s = pack_writer::create(*files_, packs_dir_, io_.get(), options_.use_direct_io, options_.compress, &writer_);
      !s.ok()) {
    return s;
  }
  last_direct_ = writer_->direct();
  writer_slot_ = static_cast<std::uint32_t>(packs_.size());
  pack_state p;
  p.id = writer_->id();
  packs_.push_back(std::move(p));
  return {};
}

status chunk_store::put(const void* pages, std::size_t count, fingerprint* names) {
  if (status s = ensure_locked(); !s.ok()) return s;
  const char* page = static_cast<const char*>(pages);
  for (std::size_t i = 0; i < count; ++i, page += kPageSize) {
    fingerprint name = page_fingerprint(page);
    names[i] = name;
    if (name == zero_page() || index_.contains(name)) continue;
    if (status s = ensure_writer(); !s.ok()) return s;
    index_entry e;
    if (status s = note_added(writer_->add(name, page, &e), name, e); !s.ok()) return s;
  }
  return {};
}

// After the pack writer took chunk `name` (or failed to): the index and
// the counts, and the pack finished once it is large enough; or the pack
// abandoned.
status chunk_store::note_added(status added, const fingerprint& name, const index_entry& e) {
  if (!added.ok()) {
    // The pack's slot lists its chunks only once flushed: the writer's
    // list is what the index holds of it now.
    packs_[writer_slot_].entries = writer_->entries();
    forget_pack(writer_slot_);
    writer_.reset();
    return added;
  }
  index_.emplace(name, location{writer_slot_, e.stored_size, e.offset});
  ++chunks_put_;
  bytes_put_ += e.stored_size;
  return writer_->size() >= options_.pack_target_bytes ? flush() : status{};
}

status chunk_store::flush() {
  if (!writer_) return {};
  std::unique_ptr<pack_writer> writer = std::move(writer_);
  pack_state& p = packs_[writer_slot_];
  p.entries = writer->entries();
  status s = writer->finish();
  bool created = false;
  if (s.ok()) {
    p.size = writer->size();
    if (int err = port::open_file(pack_path(p.id).c_str(), false, false, false, &p.fd, &created)) {
      s = status::from_errno(err, "opening " + pack_path(p.id));
    }
  }
  if (!s.ok()) forget_pack(writer_slot_);
  return s;
}

status chunk_store::release() {
  status s = flush();
  if (locked_) {
    if (int err = port::unlock_file(lock_fd_); err != 0 && s.ok()) s = status::from_errno(err, "unlocking " + root_);
    locked_ = false;
  }
  return s;
}

status chunk_store::get(const fingerprint& name, void* page) {
  return read_records(&name, 1, static_cast<char*>(page), nullptr, true);
}

status chunk_store::get_batch(const fingerprint* names, std::size_t count, void* pages) {
  return read_records(names, count, static_cast<char*>(pages), nullptr, true);
}

status chunk_store::read_records(const fingerprint* names, std::size_t count, char* pages, stored_chunk* stored,
                                 bool refresh_on_miss) {
  char scratch[kPageSize];
  std::vector<wanted_record>& reads = reads_;
  reads.clear();
  reads.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (names[i] == zero_page()) {
      if (stored != nullptr) {
        stored[i] = stored_chunk{names[i], encoding::raw, std::string(kPageSize, '\0')};
      } else {
        std::memset(pages + i * kPageSize, 0, kPageSize);
      }
      continue;
    }
    auto it = index_.find(names[i]);
    if (it == index_.end() && refresh_on_miss) {
      if (status s = refresh(false); !s.ok()) return s;
      refresh_on_miss = false;
      it = index_.find(names[i]);
    }
    if (it == index_.end()) return status(errc::not_found, "chunk " + names[i].hex() + " is not in the store");
    if (writer_ && it->second.pack == writer_slot_) {
      if (status s = flush(); !s.ok()) return s;
    }
    reads.push_back(wanted_record{it->second, i});
  }
  std::sort(reads.begin(), reads.end(), [](const wanted_record& a, const wanted_record& b) {
    return a.where.pack != b.where.pack ? a.where.pack < b.where.pack : a.where.offset < b.where.offset;
  });
  for (std::size_t first = 0; first < reads.size();) {
    std::size_t end = plan_reads(reads, first);
    if (int err = io_->read(read_requests_.data(), read_requests_.size())) return status::from_errno(err, "reading chunks");
    std::size_t span = 0;
    for (std::size_t k = first; k < end; ++k) {
      const wanted_record& w = reads[k];
      const fingerprint& name = names[w.index];
      while (read_spans_[span].last < k) ++span;
      const port::io_request& r = read_requests_[span];
      auto pack = [&] { return pack_name(packs_[w.where.pack].id); };
      if (r.result < 0) {
        return status::from_errno(static_cast<int>(-r.result), "reading chunk " + name.hex() + " in pack " + pack());
      }
      const std::uint64_t at = w.where.offset - r.offset;
      const std::size_t length = at < static_cast<std::uint64_t>(r.result) ? static_cast<std::size_t>(r.result - at) : 0;
      const char* record = static_cast<const char*>(r.buffer) + at;
      char* page = stored != nullptr ? scratch : pages + w.index * kPageSize;
      const char* why = decode_record(record, length, name, zstd_, page);
      if (why != nullptr) return status(errc::corrupt, "chunk " + name.hex() + " in pack " + pack() + ": " + why);
      if (stored != nullptr) {
        record_header h;
        std::memcpy(&h, record, sizeof h);
        stored[w.index] = stored_chunk{name, static_cast<encoding>(h.encoding), std::string(record + sizeof h, h.stored_size)};
      }
    }
    first = end;
  }
  return {};
}

// Plans one round of reads from reads[first]: records of one pack no more
// than kMaxReadGap apart become one request (a gap costs less read
// through than a request of its own, on disk and in the page cache alike),
// up to kReadRoundBytes in all. Returns the end of the round.
std::size_t chunk_store::plan_reads(const std::vector<wanted_record>& reads, std::size_t first) {
  read_requests_.clear();
  read_spans_.clear();
  if (read_buffer_ == nullptr) read_buffer_.reset(new char[kReadRoundBytes]);
  std::size_t used = 0, k = first;
  for (; k < reads.size(); ++k) {
    const location& w = reads[k].where;
    const std::uint64_t end = w.offset + sizeof(record_header) + w.stored_size;
    if (!read_requests_.empty()) {
      port::io_request& r = read_requests_.back();
      const location& last = reads[k - 1].where;
      const std::uint64_t span_end = r.offset + r.length;
      if (w.pack == last.pack && w.offset <= span_end + kMaxReadGap && end - r.offset <= kMaxReadSpan) {
        if (end > span_end) {
          if (used + (end - span_end) > kReadRoundBytes) break;
          used += end - span_end;
          r.length = end - r.offset;
        }
        read_spans_.back().last = k;
        continue;
      }
    }
    const std::size_t length = end - w.offset;
    if (used + length > kReadRoundBytes) break;
    read_requests_.push_back(port::io_request{packs_[w.pack].fd, read_buffer_.get() + used, length, w.offset, 0});
    read_spans_.push_back(read_span{k});
    used += length;
  }
  return k;
}

bool chunk_store::exists(const std::string& path) const {
  int fd = -1;
  bool created = false;
  if (port::open_file(path.c_str(), false, false, false, &fd, &created) != 0) return false;
  port::close_fd(fd);
  return true;
}

// Whether `v` is the child of this object's last commit and that version
// and its base table are still there (gc, which removes them, locks the
// store exclusively): then every chunk `v` shares with its parent is in
// the store, and `v` may be written on the same base table.
bool chunk_store::follows_last(const version_record& v) const {
  return last_.known && v.has_parent && v.parent == last_.version &&
         exists(versions_dir_ + "/" + last_.version.hex()) && exists(tables_dir_ + "/" + last_.table.hex());
}

status chunk_store::commit(const version_record& v, version_id* id) {
  if (status s = ensure_locked(); !s.ok()) return s;
  status s = flush();
  const bool follows = s.ok() && follows_last(v);
  // Only pages that differ from the parent's can name a chunk the store lacks.
  const std::vector<page_entry> named = follows ? table_changes(last_.pages, v.pages) : v.pages;
  for (std::size_t i = 0; s.ok() && i < named.size(); ++i) {
    const fingerprint& chunk = named[i].chunk;
    if (!index_.contains(chunk) && chunk != zero_page()) {
      s = status(errc::not_found, "version names chunk " + chunk.hex() + ", which is not in the store");
    }
  }
  std::vector<page_entry> changes;
  if (follows) changes = table_changes(last_.table_pages, v.pages);
  const bool on_base = follows && changes.size() <= std::max(last_.table_pages.size() / kRebaseDivisor, kMinRebasePages);
  last_.known = false;
  std::string bytes;
  if (s.ok() && !on_base) {
    // A new base table, published (and durable) before the manifest on it.
    s = encode_table(v.pages, &bytes);
    const fingerprint table = fingerprint_of(bytes.data(), bytes.size());
    if (s.ok()) s = publish_table(bytes, table);
    last_.table = table;
    last_.table_pages = v.pages;
    changes.clear();
  }
  if (s.ok()) {
    version_record stamped = v;
    if (stamped.created_ns == 0) stamped.created_ns = port::realtime_ns();
    s = encode_manifest(stamped, &last_.table, changes, &bytes);
  }
  if (s.ok()) {
    *id = fingerprint_of(bytes.data(), bytes.size());
    s = publish_file(*files_, versions_dir_, id->hex(), bytes, false);
  }
  if (s.ok()) {
    last_.known = true;
    last_.version = *id;
    last_.pages = v.pages;
  }
  status r = release();
  return s.ok() ? r : s;
}

// Reads `name` (relative to the store) and checks its bytes against `id`:
// not_found when absent, corrupt when they do not match.
status chunk_store::read_named(const std::string& name, const fingerprint& id, std::string* bytes) {
  status s = read_file(root_ + "/" + name, bytes);
  if (!s.ok()) return s;
  if (fingerprint_of(bytes->data(), bytes->size()) != id) return status(errc::corrupt, name + ": its bytes do not match its id");
  return {};
}

status chunk_store::read_version_files(const version_id& id, std::string* manifest, std::string* table) {
  const std::string name = "versions/" + id.hex();
  status s = read_named(name, id, manifest);
  if (s.is(errc::not_found)) return status(errc::not_found, "no version " + id.hex());
  table->clear();
  version_record header;
  if (s.ok()) s = decode_manifest(*manifest, name, true, &header);
  if (!s.ok() || !header.has_table) return s;
  s = read_named("tables/" + header.table.hex(), header.table, table);
  if (s.is(errc::not_found)) return status(errc::corrupt, name + ": its base tables/" + header.table.hex() + " is missing");
  return s.ok() ? s : status(errc::corrupt, name + ": its base " + s.message());
}

// Durable once this returns OK. tables/ is made (and the store's directory
// synced) by the first 1.1 writer of a 1.0 store.
status chunk_store::publish_table(const std::string& bytes, const fingerprint& id) {
  bool created = false;
  if (int err = files_->make_directory(tables_dir_.c_str(), &created)) return status::from_errno(err, "creating " + tables_dir_);
  if (created) {
    if (int err = files_->sync_directory(root_.c_str())) return status::from_errno(err, "syncing " + root_);
  }
  return publish_file(*files_, tables_dir_, id.hex(), bytes, false);
}

status chunk_store::read_version(const version_id& id, version_record* out) {
  std::string manifest, table;
  if (status s = read_version_files(id, &manifest, &table); !s.ok()) return s;
  return decode_version(manifest, table, "versions/" + id.hex(), out);
}

status chunk_store::list_versions(std::vector<version_summary>* out) {
  out->clear();
  std::vector<std::string> names;
  if (status s = list_directory(versions_dir_, &names); !s.ok()) return s;
  for (const std::string& name : names) {
    version_summary v;
    if (!fingerprint::parse(name, &v.id)) continue;
    std::string bytes;
    status s = read_file(versions_dir_ + "/" + name, &bytes);
    if (s.is(errc::not_found)) continue;  // deleted since listed
    if (!s.ok()) return s;
    version_record r;
    if (fingerprint_of(bytes.data(), bytes.size()) != v.id) {
      s = status(errc::corrupt, "versions/" + name + ": its bytes do not match its id");
    } else {
      s = decode_manifest(bytes, "versions/" + name, true, &r);
    }
    if (!s.ok()) {
      v.damaged = true;
      v.message = s.to_string();
    } else {
      v.has_parent = r.has_parent;
      v.parent = r.parent;
      v.created_ns = r.created_ns;
      v.message = std::move(r.message);
      manifest_header h;
      std::memcpy(&h, bytes.data(), sizeof h);
      v.page_count = h.page_count;
    }
    out->push_back(std::move(v));
  }
  std::sort(out->begin(), out->end(), [](const version_summary& a, const version_summary& b) {
    return a.created_ns != b.created_ns ? a.created_ns < b.created_ns : a.id < b.id;
  });
  return {};
}

status chunk_store::delete_version(const version_id& id, bool force) {
  if (!force) {
    std::vector<ref_entry> refs;
    if (status s = list_refs(&refs); !s.ok()) return s;
    head_state head;
    if (status s = get_head(&head); !s.ok()) return s;
    if (head.detached && head.id == id) refs.push_back(ref_entry{"HEAD", id});
    for (const ref_entry& r : refs) {
      if (r.id == id) return status(errc::invalid_argument, "version " + id.hex() + " is named by " + r.name);
    }
  }
  std::string path = versions_dir_ + "/" + id.hex();
  if (int err = files_->remove(path.c_str())) {
    return err == ENOENT ? status(errc::not_found, "no version " + id.hex()) : status::from_errno(err, "removing " + path);
  }
  int err = files_->sync_directory(versions_dir_.c_str());
  return err == 0 ? status{} : status::from_errno(err, "syncing " + versions_dir_);
}

store_info chunk_store::info() const {
  store_info i;
  i.uring = io_->uses_uring();
  i.direct_io = last_direct_;
  for (std::uint32_t slot = 0; slot < packs_.size(); ++slot) {
    const pack_state& p = packs_[slot];
    if (p.removed || (writer_ && slot == writer_slot_)) continue;
    ++i.packs;
    i.pack_bytes += p.size;
    for (const index_entry& e : p.entries) {
      if (!canonical(slot, e)) continue;
      ++i.chunks;
      i.stored_bytes += sizeof(record_header) + e.stored_size;
      i.compressed_chunks += e.encoding == static_cast<std::uint8_t>(encoding::zstd);
    }
  }
  return i;
}

bool chunk_store::canonical(std::uint32_t slot, const index_entry& e) const {
  auto it = index_.find(fingerprint::from(e.fingerprint));
  return it != index_.end() && it->second.pack == slot && it->second.offset == e.offset;
}

}  // namespace larder::chunks

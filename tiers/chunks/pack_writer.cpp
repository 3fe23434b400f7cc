// Pack writing: staging, compression, large writes, the commit of a pack.
#include "tiers/chunks/pack_writer.hpp"

#include "port/os.hpp"
#include "tiers/chunks/compressibility.hpp"
#include "tiers/chunks/files.hpp"

#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace larder::chunks {
namespace {

// zstd's fastest standard level: pages are compressed on the checkpoint path.
constexpr int kZstdLevel = 1;

std::string hex16(std::uint64_t id) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(id));
  return text;
}

std::uint32_t record_check(const record_header& h) { return XXH32(&h, offsetof(record_header, check), 0); }

index_entry entry_at(const record_header& h, std::uint64_t offset) {
  index_entry e{};
  e.fingerprint = h.fingerprint;
  e.offset = offset;
  e.stored_size = h.stored_size;
  e.encoding = h.encoding;
  return e;
}

}  // namespace

record_header record_header_of(const fingerprint& name, encoding how, std::size_t stored) {
  record_header h{};
  h.magic = kRecordMagic;
  h.stored_size = static_cast<std::uint32_t>(stored);
  h.encoding = static_cast<std::uint8_t>(how);
  h.fingerprint = name.bytes();
  h.check = record_check(h);
  return h;
}

std::uint64_t pack_size_for(std::uint64_t record_bytes) {
  return (sizeof(pack_header) + record_bytes + kPackAlign - 1) / kPackAlign * kPackAlign + kPackAlign;
}

std::string pack_name(std::uint64_t pack_id) { return hex16(pack_id) + ".pack"; }
std::string index_name(std::uint64_t pack_id) { return hex16(pack_id) + ".index"; }

status pack_writer::create(file_ops& ops, const std::string& packs_dir, port::io_queue* io, bool try_direct,
                           bool compress, std::unique_ptr<pack_writer>* out) {
  std::unique_ptr<pack_writer> w(new pack_writer());
  w->dir_ = packs_dir;
  w->ops_ = &ops;
  w->io_ = io;
  w->id_ = port::random64();
  w->temporary_ = temporary_name(packs_dir + "/" + pack_name(w->id_));
  w->buffers_ = static_cast<char*>(std::aligned_alloc(kPackAlign, 2 * kStagingBytes));
  if (w->buffers_ == nullptr) return status::from_errno(ENOMEM, "allocating a pack's staging buffers");
  w->staging_ = w->buffers_;
  if (compress) {
    w->zstd_ = ZSTD_createCCtx();
    if (w->zstd_ == nullptr) return status::from_errno(ENOMEM, "creating a zstd context");
  }
  if (int err = ops.create(w->temporary_.c_str(), try_direct, &w->fd_, &w->direct_)) {
    return status::from_errno(err, "creating " + w->temporary_);
  }
  pack_header h{};
  h.magic = kPackMagic;
  h.major = kFormatMajor;
  h.minor = kFormatMinor;
  h.pack_id = w->id_;
  h.created_ns = port::realtime_ns();
  h.checksum = XXH3_64bits(&h, offsetof(pack_header, checksum));
  if (status s = w->append(&h, sizeof h); !s.ok()) return s;
  *out = std::move(w);
  return {};
}

pack_writer::~pack_writer() {
  abandon();
  ZSTD_freeCCtx(zstd_);
  std::free(buffers_);
}

void pack_writer::abandon() {
  if (fd_ < 0) return;
  if (in_flight_ > 0) (void)ops_->finish_writes(*io_);  // the writes in flight read from buffers_
  in_flight_ = 0;
  ops_->close(fd_);
  ops_->remove(temporary_.c_str());
  fd_ = -1;
}

status pack_writer::append(const void* bytes, std::size_t length) {
  const char* in = static_cast<const char*>(bytes);
  while (length > 0) {
    std::size_t n = std::min(length, kStagingBytes - staged_);
    std::memcpy(staging_ + staged_, in, n);
    staged_ += n;
    in += n;
    length -= n;
    if (staged_ == kStagingBytes) {
      if (status s = write_staged(); !s.ok()) return s;
    }
  }
  return {};
}

// Starts the writes of every staged byte (a kPackAlign multiple), in
// blocks of kPackBlock all in flight together, once the previous buffer's
// writes are done; then fills that buffer while these are on their way.
status pack_writer::write_staged() {
  if (status s = wait_written(); !s.ok()) return s;
  std::size_t count = 0;
  for (std::size_t at = 0; at < staged_; at += kPackBlock) {
    requests_[count++] = port::io_request{fd_, staging_ + at, std::min(kPackBlock, staged_ - at), written_ + at, 0};
  }
  in_flight_ = count;
  if (int err = ops_->start_write(*io_, requests_, count)) {
    abandon();
    return status::from_errno(err, "writing pack " + temporary_);
  }
  written_ += staged_;
  staged_ = 0;
  staging_ = staging_ == buffers_ ? buffers_ + kStagingBytes : buffers_;
  return {};
}

// Completes the writes write_staged started.
status pack_writer::wait_written() {
  if (in_flight_ == 0) return {};
  int err = ops_->finish_writes(*io_);
  for (std::size_t i = 0; err == 0 && i < in_flight_; ++i) {
    const port::io_request& r = requests_[i];
    if (r.result < 0) err = static_cast<int>(-r.result);
    if (err == 0 && static_cast<std::size_t>(r.result) != r.length) err = EIO;
  }
  in_flight_ = 0;
  if (err != 0) {
    abandon();
    return status::from_errno(err, "writing pack " + temporary_);
  }
  return {};
}

status pack_writer::add(const fingerprint& name, const void* page, index_entry* where) {
  if (fd_ < 0) return status(errc::invalid_argument, "the pack is finished or abandoned");
  // The frame goes straight into the staging buffer when a whole record
  // fits there. Its room stops short of the saving a frame must make.
  const bool fits = kStagingBytes - staged_ >= sizeof(record_header) + kPageSize;
  char* frame = fits ? staging_ + staged_ + sizeof(record_header) : compressed_;
  std::size_t stored = kPageSize;
  encoding how = encoding::raw;
  if (zstd_ != nullptr && worth_compressing(page)) {
    std::size_t n = ZSTD_compressCCtx(zstd_, frame, kPageSize - kMinCompressionSaving, page, kPageSize, kZstdLevel);
    if (!ZSTD_isError(n)) {
      stored = n;
      how = encoding::zstd;
    }
  }
  const record_header h = record_header_of(name, how, stored);
  const index_entry e = entry_at(h, size());
  if (fits) {
    std::memcpy(staging_ + staged_, &h, sizeof h);
    if (how == encoding::raw) std::memcpy(frame, page, kPageSize);
    staged_ += sizeof h + stored;
    if (staged_ == kStagingBytes) {
      if (status s = write_staged(); !s.ok()) return s;
    }
  } else {
    if (status s = append(&h, sizeof h); !s.ok()) return s;
    if (status s = append(how == encoding::raw ? page : frame, stored); !s.ok()) return s;
  }
  entries_.push_back(e);
  *where = e;
  return {};
}

status pack_writer::add_stored(const fingerprint& name, encoding how, std::string_view payload, index_entry* where) {
  if (fd_ < 0) return status(errc::invalid_argument, "the pack is finished or abandoned");
  const record_header h = record_header_of(name, how, payload.size());
  const index_entry e = entry_at(h, size());
  if (status s = append(&h, sizeof h); !s.ok()) return s;
  if (status s = append(payload.data(), payload.size()); !s.ok()) return s;
  entries_.push_back(e);
  *where = e;
  return {};
}

status pack_writer::finish() {
  if (fd_ < 0) return status(errc::invalid_argument, "the pack is finished or abandoned");
  std::uint64_t records_end = size();
  std::size_t padding = (kPackAlign - records_end % kPackAlign) % kPackAlign;
  static const char kZeros[kPackAlign] = {};
  pack_footer f{};
  f.magic = kFooterMagic;
  f.pack_id = id_;
  f.record_count = entries_.size();
  f.records_end = records_end;
  f.checksum = XXH3_64bits(&f, offsetof(pack_footer, checksum));
  status s = append(kZeros, padding);
  if (s.ok()) s = append(&f, sizeof f);
  if (s.ok()) s = append(kZeros, kPackAlign - sizeof f);
  if (s.ok() && staged_ > 0) s = write_staged();
  if (s.ok()) s = wait_written();
  if (!s.ok()) return s;
  std::string final_path = dir_ + "/" + pack_name(id_);
  int err = ops_->sync(fd_);
  if (err == 0) err = ops_->rename(temporary_.c_str(), final_path.c_str(), false);
  if (err == 0) err = ops_->sync_directory(dir_.c_str());
  if (err != 0) {
    abandon();
    return status::from_errno(err, "publishing pack " + final_path);
  }
  ops_->close(fd_);
  fd_ = -1;
  return publish_index(*ops_, dir_, id_, size(), entries_);
}

std::string encode_index(std::uint64_t pack_id, std::uint64_t pack_size, std::vector<index_entry> entries) {
  std::sort(entries.begin(), entries.end(), [](const index_entry& a, const index_entry& b) {
    return fingerprint::from(a.fingerprint) < fingerprint::from(b.fingerprint);
  });
  index_header h{};
  h.magic = kIndexMagic;
  h.major = kFormatMajor;
  h.minor = kFormatMinor;
  h.pack_id = pack_id;
  h.pack_size = pack_size;
  h.record_count = entries.size();
  std::uint64_t seed = XXH3_64bits(&h, offsetof(index_header, checksum));
  h.checksum = XXH3_64bits_withSeed(entries.data(), entries.size() * sizeof(index_entry), seed);
  std::string bytes(reinterpret_cast<const char*>(&h), sizeof h);
  bytes.append(reinterpret_cast<const char*>(entries.data()), entries.size() * sizeof(index_entry));
  return bytes;
}

status publish_index(file_ops& ops, const std::string& packs_dir, std::uint64_t pack_id, std::uint64_t pack_size,
                     std::vector<index_entry> entries) {
  // Not synced: a lost or torn index fails its checks and is rebuilt from the pack.
  return publish_file(ops, packs_dir, index_name(pack_id), encode_index(pack_id, pack_size, std::move(entries)),
                      true, false);
}

}  // namespace larder::chunks

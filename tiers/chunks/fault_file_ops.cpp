// The power-failure layer: recording what is durable, and the roll-back.
#include "tiers/chunks/fault_file_ops.hpp"

#include "port/directory.hpp"
#include "port/os.hpp"
#include "port/uring.hpp"
#include "recovery/persist.hpp"
#include "tiers/chunks/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace larder::chunks {
namespace {

// One spelling per path ("a//b/" and "a/b" name one directory), so that a
// change and the sync of its directory meet.
std::string normal(const char* path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

int read_whole(const std::string& path, bool* exists, std::string* out) {
  int fd = -1;
  bool created = false;
  *exists = false;
  int err = port::open_file(path.c_str(), false, false, false, &fd, &created);
  if (err == ENOENT) return 0;
  if (err != 0) return err;
  *exists = true;
  std::uint64_t size = 0;
  err = port::file_size(fd, &size);
  if (err == 0) {
    out->resize(size);
    err = port::read_at(fd, out->data(), size, 0);
  }
  port::close_fd(fd);
  return err;
}

int write_whole(const std::string& path, const std::string& bytes) {
  int fd = -1;
  bool created = false;
  if (int err = port::open_file(path.c_str(), true, true, true, &fd, &created)) return err;
  int err = port::write_at(fd, bytes.data(), bytes.size(), 0);
  port::close_fd(fd);
  return err;
}

}  // namespace

fault_file_ops::fault_file_ops(const fault_plan& plan) : plan_(plan), random_(plan.seed) {}

fault_file_ops::~fault_file_ops() = default;

void fault_file_ops::point() {
  ++points_;
  if (!plan_.joins_heap_simulation) {
    if (points_ == plan_.crash_at) power_off();
    return;
  }
  std::uint64_t point = recovery::next_persistence_point();
  if (point == plan_.crash_at) recovery::power_failure(point);
}

void fault_file_ops::power_off() {
  status s = roll_back();
  if (!s.ok()) {
    std::fprintf(stderr, "power failure at point %llu: rolling back failed: %s\n",
                 static_cast<unsigned long long>(points_), s.to_string().c_str());
    std::_Exit(1);
  }
  std::_Exit(recovery::kCrashExitCode);
}

// What a power failure now would leave of `path`: its bytes up to its last
// sync, with the synced bytes overwritten since put back.
int fault_file_ops::durable_content(const std::string& path, bool* exists, std::string* out) const {
  if (int err = read_whole(path, exists, out)) return err;
  auto it = by_path_.find(path);
  if (!*exists || it == by_path_.end()) return 0;
  const file_record& f = *it->second;
  out->resize(f.synced_size);
  for (auto e = f.overwritten.rbegin(); e != f.overwritten.rend(); ++e) out->replace(e->offset, e->bytes.size(), e->bytes);
  return 0;
}

int fault_file_ops::create(const char* path, bool, int* fd, bool* direct) {
  std::string p = normal(path);
  bool created = false;
  *direct = false;
  if (int err = port::open_file(p.c_str(), true, true, true, fd, &created)) return err;
  auto f = std::make_shared<file_record>();
  f->path = p;
  by_path_[p] = f;
  by_fd_[*fd] = f;
  pending_.push_back(change{change_kind::created_file, parent_directory(p), p, {}, false, {}});
  return 0;
}

int fault_file_ops::write_one(int fd, const void* bytes, std::size_t length, std::uint64_t offset) {
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return EBADF;
  file_record& f = *it->second;
  if (offset < f.synced_size) {
    extent before{offset, std::string(std::min<std::uint64_t>(length, f.synced_size - offset), '\0')};
    if (int err = port::read_at(fd, before.bytes.data(), before.bytes.size(), offset)) return err;
    f.overwritten.push_back(std::move(before));
  }
  if (plan_.torn) {
    const char* in = static_cast<const char*>(bytes);
    for (std::uint64_t at = offset; at < offset + length;) {
      std::uint64_t end = std::min<std::uint64_t>(offset + length, (at / kTornPiece + 1) * kTornPiece);
      f.unsynced.push_back(extent{at, std::string(in + (at - offset), end - at)});
      at = end;
    }
  }
  return port::write_at(fd, bytes, length, offset);
}

int fault_file_ops::start_write(port::io_queue&, port::io_request* requests, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    port::io_request& r = requests[i];
    int err = write_one(r.fd, r.buffer, r.length, r.offset);
    r.result = err == 0 ? static_cast<std::int64_t>(r.length) : -err;
  }
  return 0;
}

int fault_file_ops::write_at(int fd, const void* bytes, std::size_t length, std::uint64_t offset) {
  return write_one(fd, bytes, length, offset);
}

int fault_file_ops::sync(int fd) {
  point();
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return EBADF;
  file_record& f = *it->second;
  if (int err = port::file_size(fd, &f.synced_size)) return err;
  f.overwritten.clear();
  f.unsynced.clear();
  return 0;
}

int fault_file_ops::close(int fd) {
  by_fd_.erase(fd);
  return port::close_fd(fd);
}

void fault_file_ops::forget_path(const std::string& path) {
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return;
  it->second->path.clear();
  by_path_.erase(it);
}

int fault_file_ops::rename(const char* from, const char* to, bool replace) {
  std::string f = normal(from), t = normal(to);
  change c{change_kind::renamed, parent_directory(t), t, f, false, {}};
  if (replace) {
    if (int err = durable_content(t, &c.had_content, &c.content)) return err;
  }
  if (int err = port::rename_file(f.c_str(), t.c_str(), replace)) return err;
  forget_path(t);
  if (auto it = by_path_.find(f); it != by_path_.end()) {
    std::shared_ptr<file_record> moved = it->second;
    by_path_.erase(it);
    moved->path = t;
    by_path_[t] = std::move(moved);
  }
  pending_.push_back(std::move(c));
  return 0;
}

int fault_file_ops::remove(const char* path) {
  std::string p = normal(path);
  change c{change_kind::removed, parent_directory(p), p, {}, false, {}};
  if (int err = durable_content(p, &c.had_content, &c.content)) return err;
  if (int err = port::remove_file(p.c_str())) return err;
  forget_path(p);
  pending_.push_back(std::move(c));
  return 0;
}

int fault_file_ops::make_directory(const char* path, bool* created) {
  std::string p = normal(path);
  if (int err = port::make_directory(p.c_str(), created)) return err;
  if (*created) pending_.push_back(change{change_kind::created_directory, parent_directory(p), p, {}, false, {}});
  return 0;
}

int fault_file_ops::sync_directory(const char* path) {
  point();
  std::string p = normal(path);
  std::erase_if(pending_, [&](const change& c) { return c.directory == p; });
  return 0;
}

int fault_file_ops::restore_data(const file_record& f) {
  int fd = -1;
  bool created = false;
  if (int err = port::open_file(f.path.c_str(), false, false, true, &fd, &created)) return err;
  int err = port::set_file_size(fd, f.synced_size);
  for (auto e = f.overwritten.rbegin(); err == 0 && e != f.overwritten.rend(); ++e) {
    err = port::write_at(fd, e->bytes.data(), e->bytes.size(), e->offset);
  }
  for (const extent& e : f.unsynced) {
    if (err == 0 && random_() % 2 == 0) err = port::write_at(fd, e.bytes.data(), e.bytes.size(), e.offset);
  }
  port::close_fd(fd);
  return err;
}

int fault_file_ops::undo(const change& c) {
  switch (c.kind) {
    case change_kind::created_file: {
      int err = port::remove_file(c.path.c_str());
      return err == ENOENT ? 0 : err;
    }
    case change_kind::created_directory:
      return port::remove_tree(c.path.c_str());
    case change_kind::renamed:
      if (int err = port::rename_file(c.path.c_str(), c.from.c_str(), false)) return err;
      return c.had_content ? write_whole(c.path, c.content) : 0;
    case change_kind::removed:
      return c.had_content ? write_whole(c.path, c.content) : 0;
  }
  return EINVAL;
}

status fault_file_ops::roll_back() {
  int err = 0;
  for (const auto& [path, f] : by_path_) {
    if (err == 0) err = restore_data(*f);
    if (err != 0) return status::from_errno(err, "restoring " + path);
  }
  // How many of each directory's changes land: all of them were synced
  // away already, so none, or with a torn plan a random prefix.
  std::map<std::string, std::size_t> landing;
  if (plan_.torn) {
    std::map<std::string, std::size_t> counts;
    for (const change& c : pending_) ++counts[c.directory];
    for (const auto& [directory, n] : counts) landing[directory] = random_() % (n + 1);
  }
  std::vector<const change*> undone;
  for (const change& c : pending_) {
    std::size_t& lands = landing[c.directory];
    if (lands > 0) {
      --lands;
    } else {
      undone.push_back(&c);
    }
  }
  for (auto c = undone.rbegin(); c != undone.rend(); ++c) {
    if (int e = undo(**c)) return status::from_errno(e, "undoing a change to " + (*c)->path);
  }
  by_path_.clear();
  by_fd_.clear();
  pending_.clear();
  return {};
}

file_ops& process_file_ops() {
  const recovery::crash_settings& cs = recovery::crash_simulation();
  if (!cs.active) return real_file_ops();
  static fault_file_ops* simulated = [&] {
    auto* ops = new fault_file_ops(fault_plan{cs.crash_at, cs.seed != 0, cs.seed, true});
    auto roll_back = [](void* context) noexcept {
      status s = static_cast<fault_file_ops*>(context)->roll_back();
      if (!s.ok()) {
        std::fprintf(stderr, "power failure: rolling the chunk store back failed: %s\n", s.to_string().c_str());
        std::_Exit(1);
      }
    };
    if (!recovery::on_power_failure(roll_back, ops)) {
      std::fputs("power failure simulation: no room for the chunk store's hook\n", stderr);
      std::abort();
    }
    return ops;
  }();
  return *simulated;
}

}  // namespace larder::chunks

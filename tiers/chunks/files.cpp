// Publishing and reading the small files of a chunk store.
#include "tiers/chunks/files.hpp"

#include "port/os.hpp"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <vector>

namespace larder::chunks {

std::string temporary_name(const std::string& path) {
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, "%d-%016llx", port::process_id(),
                static_cast<unsigned long long>(port::random64()));
  return path + std::string(kTemporaryMark) + suffix;
}

bool is_temporary(std::string_view name) { return name.find(kTemporaryMark) != std::string_view::npos; }

status publish_file(file_ops& ops, const std::string& directory, const std::string& name, std::string_view bytes,
                    bool replace, bool durable) {
  std::string path = directory + "/" + name;
  std::string temporary = temporary_name(path);
  int fd = -1;
  bool direct = false;
  if (int err = ops.create(temporary.c_str(), false, &fd, &direct)) {
    return status::from_errno(err, "creating " + temporary);
  }
  int err = ops.write_at(fd, bytes.data(), bytes.size(), 0);
  if (err == 0 && durable) err = ops.sync(fd);
  ops.close(fd);
  if (err == 0) err = ops.rename(temporary.c_str(), path.c_str(), replace);
  bool existed = !replace && err == EEXIST;
  if (existed) err = ops.remove(temporary.c_str());
  // Also when the name existed: another writer may not have synced it yet.
  if (err == 0 && durable) err = ops.sync_directory(directory.c_str());
  if (err != 0) {
    if (!existed) ops.remove(temporary.c_str());
    return status::from_errno(err, "writing " + path);
  }
  return {};
}

std::string parent_directory(const std::string& path) {
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  p = p.parent_path();
  return p.empty() ? "." : p.string();
}

status read_file(const std::string& path, std::string* out) {
  int fd = -1;
  bool created = false;
  if (int err = port::open_file(path.c_str(), false, false, false, &fd, &created)) {
    return err == ENOENT ? status(errc::not_found, path) : status::from_errno(err, "opening " + path);
  }
  std::uint64_t size = 0;
  int err = port::file_size(fd, &size);
  if (err == 0) {
    out->resize(size);
    err = port::read_at(fd, out->data(), size, 0);
  }
  port::close_fd(fd);
  if (err == ENODATA) return status(errc::truncated, path + " shrank while being read");
  return err == 0 ? status{} : status::from_errno(err, "reading " + path);
}

namespace {
void collect_name(const char* name, void* context) { static_cast<std::vector<std::string>*>(context)->emplace_back(name); }
}  // namespace

status list_directory(const std::string& directory, std::vector<std::string>* out) {
  out->clear();
  int err = port::for_each_directory_entry(directory.c_str(), "", collect_name, out);
  return err == 0 ? status{} : status::from_errno(err, "listing " + directory);
}

}  // namespace larder::chunks

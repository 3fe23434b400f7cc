// Publishing and reading the small files of a chunk store.
#include "tiers/chunks/files.hpp"

#include "port/directory.hpp"
#include "port/os.hpp"

#include <cerrno>
#include <cstdio>
#include <vector>

namespace larder::chunks {

std::string temporary_name(const std::string& path) {
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, "%d-%016llx", port::process_id(),
                static_cast<unsigned long long>(port::random64()));
  return path + std::string(kTemporaryMark) + suffix;
}

bool is_temporary(std::string_view name) { return name.find(kTemporaryMark) != std::string_view::npos; }

status publish_file(const std::string& directory, const std::string& name, std::string_view bytes, bool replace) {
  std::string path = directory + "/" + name;
  std::string temporary = temporary_name(path);
  int fd = -1;
  bool created = false;
  if (int err = port::open_file(temporary.c_str(), true, true, true, &fd, &created)) {
    return status::from_errno(err, "creating " + temporary);
  }
  int err = port::write_at(fd, bytes.data(), bytes.size(), 0);
  if (err == 0) err = port::sync_file(fd);
  port::close_fd(fd);
  if (err == 0) {
    if (replace) {
      err = port::replace_durably(temporary.c_str(), path.c_str(), directory.c_str());
    } else {
      err = port::rename_durably(temporary.c_str(), path.c_str());
      if (err == EEXIST) err = 0;
    }
  }
  if (err != 0) {
    port::remove_file(temporary.c_str());
    return status::from_errno(err, "writing " + path);
  }
  if (!replace) port::remove_file(temporary.c_str());  // left when the name existed
  return {};
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

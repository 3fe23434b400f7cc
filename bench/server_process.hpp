// Starting and stopping the server processes the store benchmark compares
// against (redis-server, memcached, Lightning's store): spawn with output to
// a log file, wait until the server is ready, stop. Entry point:
// server_process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace larder_bench {

class server_process {
 public:
  server_process() = default;
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;
  ~server_process() { stop(); }

  // Runs `argv` (argv[0] looked up in PATH) with stdout and stderr appended
  // to `log`. Returns an empty string, or why it could not start.
  std::string start(const std::vector<std::string>& argv, const std::filesystem::path& log);

  // Polls `ready` until it returns true (an empty string) or the process
  // exits or `timeout` passes (a message naming the log to read).
  std::string wait_until(const std::function<bool()>& ready, std::chrono::milliseconds timeout);

  // SIGTERM (or `signal`), then SIGKILL after two seconds; reaps it.
  void stop(int signal = SIGTERM);

 private:
  pid_t pid_ = -1;
  std::string name_;
  std::filesystem::path log_;
};

// True when `path` holds `text` (a server's readiness line in its log).
bool file_contains(const std::filesystem::path& path, const std::string& text);

// True when a connection to the Unix socket `path` is accepted.
bool unix_socket_accepts(const std::filesystem::path& path);

// The first line the shell command `command` prints (a version), or an
// empty string.
std::string command_output_line(const std::string& command);

}  // namespace larder_bench

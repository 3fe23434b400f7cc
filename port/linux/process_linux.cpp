// Linux implementation of port/process.hpp: posix_spawn, pidfd + ppoll.
#include "port/process.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // Linux 5.3, the same number on every architecture
#endif

extern char** environ;

namespace larder::port {

namespace {

struct spawn_setup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  bool have_actions = false;
  bool have_attributes = false;
  ~spawn_setup() {
    if (have_actions) posix_spawn_file_actions_destroy(&actions);
    if (have_attributes) posix_spawnattr_destroy(&attributes);
  }
};

// The child starts with no signal blocked and every signal at its default,
// whatever the driver has set up for itself.
int prepare(spawn_setup* s, const char* output_path) {
  if (int err = posix_spawn_file_actions_init(&s->actions)) return err;
  s->have_actions = true;
  if (int err = posix_spawnattr_init(&s->attributes)) return err;
  s->have_attributes = true;
  if (int err = posix_spawn_file_actions_addopen(&s->actions, 0, "/dev/null", O_RDONLY, 0)) return err;
  if (output_path != nullptr) {
    if (int err = posix_spawn_file_actions_addopen(&s->actions, 1, output_path, O_WRONLY | O_CREAT | O_TRUNC, 0600))
      return err;
    if (int err = posix_spawn_file_actions_adddup2(&s->actions, 1, 2)) return err;
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (int err = posix_spawnattr_setsigmask(&s->attributes, &none)) return err;
  if (int err = posix_spawnattr_setsigdefault(&s->attributes, &all)) return err;
  // A process group of its own, so that kill_process reaches whatever the
  // program starts too.
  if (int err = posix_spawnattr_setpgroup(&s->attributes, 0)) return err;
  return posix_spawnattr_setflags(&s->attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
}

process_exit decode(int raw) {
  process_exit e;
  if (WIFSIGNALED(raw)) {
    e.signaled = true;
    e.code = WTERMSIG(raw);
  } else {
    e.code = WEXITSTATUS(raw);
  }
  return e;
}

// 0 with *done true and *out filled when the child has ended.
int try_reap(int pid, bool* done, process_exit* out) {
  int raw = 0;
  pid_t got;
  do {
    got = waitpid(pid, &raw, WNOHANG);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return errno;
  *done = got == pid;
  if (*done) *out = decode(raw);
  return 0;
}

std::int64_t now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

timespec to_timespec(std::int64_t ns) {
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

// Kernels without pidfd_open: poll waitpid, sleeping 50 us growing to 2 ms.
int wait_polling(int pid, std::int64_t deadline, process_exit* out) {
  std::int64_t nap = 50000;
  for (;;) {
    bool done = false;
    if (int err = try_reap(pid, &done, out)) return err;
    if (done) return 0;
    std::int64_t left = deadline < 0 ? nap : deadline - now_ns();
    if (left <= 0) return ETIMEDOUT;
    timespec t = to_timespec(left < nap ? left : nap);
    nanosleep(&t, nullptr);
    if (nap < 2000000) nap *= 2;
  }
}

}  // namespace

int spawn_process(const char* const* argv, const char* const* envp, const char* output_path, int* pid) {
  spawn_setup setup;
  if (int err = prepare(&setup, output_path)) return err;
  pid_t child = 0;
  // posix_spawnp's prototype predates const-correctness; it does not write.
  int err = posix_spawnp(&child, argv[0], &setup.actions, &setup.attributes, const_cast<char* const*>(argv),
                         const_cast<char* const*>(envp));
  if (err != 0) return err;
  *pid = child;
  return 0;
}

int wait_process(int pid, std::int64_t timeout_ns, process_exit* out) {
  std::int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return ECHILD;
    return wait_polling(pid, deadline, out);
  }
  int result = 0;
  for (;;) {
    bool done = false;
    if ((result = try_reap(pid, &done, out)) != 0 || done) break;
    pollfd p{fd, POLLIN, 0};
    std::int64_t left = deadline < 0 ? 0 : deadline - now_ns();
    if (deadline >= 0 && left <= 0) {
      result = ETIMEDOUT;
      break;
    }
    timespec t = to_timespec(left);
    if (ppoll(&p, 1, deadline < 0 ? nullptr : &t, nullptr) < 0 && errno != EINTR) {
      result = errno;
      break;
    }
  }
  close(fd);
  return result;
}

int kill_process(int pid) {
  // The group first (the child leads it), then the child itself in case it
  // left the group.
  int group = ::kill(-pid, SIGKILL) == 0 ? 0 : errno;
  int self = ::kill(pid, SIGKILL) == 0 ? 0 : errno;
  return group == 0 || self == 0 ? 0 : self;
}

void kill_process_group(int pid) { (void)::kill(-pid, SIGKILL); }

const char* const* current_environment() { return environ; }

}  // namespace larder::port

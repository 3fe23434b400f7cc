// Child processes, for the crash-test driver (runtime/crashtest.cpp):
// start a program with an environment of its own, wait for it with a
// deadline, kill it. Like the rest of port/, each function returns 0 or an
// errno value. Not for the malloc path: these may allocate.
#pragma once

#include <cstdint>

namespace larder::port {

// How a child ended: its exit status, or the signal that killed it.
struct process_exit {
  bool signaled = false;
  int code = 0;  // exit status (0..255), or the signal number when signaled
};

// Starts `argv[0]` (looked up in PATH when it has no '/') with arguments
// `argv` and exactly the environment `envp` (both nullptr-terminated).
// Standard input reads /dev/null; standard output and error go to
// `output_path`, created or truncated with mode 0600, or are inherited when
// it is nullptr. The child is a new process; `*pid` receives its id and it
// must be waited for with wait_process. Errors: ENOENT or EACCES when the
// program cannot be run, or the errno of opening `output_path`.
int spawn_process(const char* const* argv, const char* const* envp, const char* output_path, int* pid);

// Waits for child `pid` to end, for at most `timeout_ns` nanoseconds (a
// negative value waits as long as it takes). 0 with `*out` filled when it
// ended (it is then reaped); ETIMEDOUT when it is still running after the
// timeout (wait again or kill it); ECHILD when it is not our child.
// Uses a pidfd (Linux 5.3) where the kernel has one, else polls.
int wait_process(int pid, std::int64_t timeout_ns, process_exit* out);

// Sends SIGKILL to child `pid`; it must still be waited for. 0 also when
// it has ended but not been waited for yet (a zombie); ESRCH when there is
// no such process.
int kill_process(int pid);
// SIGKILL to what is left of the process group the child led (processes
// it started), after the child itself has ended. ESRCH is not an error.
void kill_process_group(int pid);

// The calling process's environment (nullptr-terminated "NAME=value"
// strings), owned by libc: valid until the environment is changed.
const char* const* current_environment();

}  // namespace larder::port

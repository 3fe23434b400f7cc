// A progress line on stderr for commands that may take more than a second
// (checkpoint, checkout, versions gc and verify): shown only when stderr is
// a terminal, only after the first second, and never with --json. The
// library reports no fraction done, so it shows a moving bar and the time
// so far, and erases itself when the work ends.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace larder_tool {

class progress {
 public:
  // `enabled` false (--json): nothing is ever drawn.
  progress(std::string what, bool enabled);
  ~progress();
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;

 private:
  void draw();

  std::string what_;
  std::mutex lock_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::thread drawer_;
};

}  // namespace larder_tool

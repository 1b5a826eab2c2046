#pragma once
// Running the qnas binary from the end-to-end tests.

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace qnas::testing {

struct RunResult {
  int code;
  std::string output;  // stdout and stderr together
};

/// Runs `qnas args` (after `env`, e.g. "RANK=1 WORLD_SIZE=2") and waits.
inline RunResult run(const std::string& args, const std::string& env = "") {
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + std::string(QNAS_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// `qnas args` started in the background (after `env`), its output into
/// the file `log`; wait for it with wait_exit.
inline pid_t spawn(const std::string& args, const std::string& env, const std::string& log) {
  const std::string cmd = "exec env " + env + " " + std::string(QNAS_BINARY) + " " + args + " > " + log + " 2>&1";
  const pid_t pid = fork();  // the child only execs: nothing else is safe in a threaded parent
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

/// The exit code of a spawned process (-1 when a signal ended it).
inline int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A tiny mbv3 supernet on Fashion-MNIST, one thread.
inline std::string tiny_yaml(const std::string& out_dir, int epochs) {
  return "seed: 1\nthreads: 1\n"
         "data: {dir: " QNAS_FMNIST_DIR ", train_subset: 1500, val_size: 300}\n"
         "supernet: {stem_width: 8, stages: [{width: 16, stride: 2}, {width: 24, stride: 2, se: true, act: hswish}],"
         " kernel: [3, 5], expand: [2, 3], depth: [1, 2], head_width: 48, feature_width: 32}\n"
         "train: {epochs: " + std::to_string(epochs) + ", batch_size: 50, lr: 0.3, random_subnets: 1, eval_images: 300}\n"
         "eval: {batch_size: 150, bn_calib_images: 150}\n"
         "output: {dir: " + out_dir + "}\n";
}

inline void expect_contains(const std::string& text, const std::string& fragment) {
  EXPECT_NE(text.find(fragment), std::string::npos) << "output: " << text << "\nmissing: " << fragment;
}

}  // namespace qnas::testing

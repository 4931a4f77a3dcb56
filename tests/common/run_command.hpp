// Runs a program the way a person would from a shell, for the tests that drive the built binaries
// (`statewall check`, `lint`, `explain`, `ctl`, ...): arguments passed as they are (no shell
// between), stdout and stderr captured separately, the exit code as the shell reports it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

extern char** environ;

namespace statewall::testing {

struct CommandResult {
  int exit_code = -1;  // 128 + N when killed by signal N; -1 when it could not be started
  std::string out;
  std::string err;
};

// argv[0] is the program's path. `input` is written to its stdin (then closed).
inline CommandResult runCommand(const std::vector<std::string>& argv,
                                const std::string& input = "") {
  CommandResult r;
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      ::close(fd);
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0]})
      ::close(fd);
    r.err = std::string("cannot start ") + argv[0];
    return r;
  }
  // Write the input and read both outputs together, so that a child filling one pipe never
  // blocks while the other is being waited on. SIGPIPE from a child that does not read its
  // input must not kill the test.
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old);
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  int open_outputs = 2;
  pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
  char buf[65536];
  while (open_outputs > 0 || fds[2].fd >= 0) {
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_outputs;
      }
    }
    if (fds[2].fd >= 0 && fds[2].revents != 0) {
      const ssize_t n = ::write(fds[2].fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 && errno != EINTR && errno != EAGAIN) written = input.size();
      if (written == input.size()) {
        ::close(fds[2].fd);
        fds[2].fd = -1;
      }
    }
  }
  ::sigaction(SIGPIPE, &old, nullptr);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.exit_code = 128 + WTERMSIG(status);
  }
  return r;
}

// `command` run by /bin/sh -c: for the tests that write command lines as a person types them.
inline CommandResult runShell(const std::string& command, const std::string& input = "") {
  return runCommand({"/bin/sh", "-c", command}, input);
}

#ifdef STATEWALL_BINARY_DIR
// The built `statewall` command-line tool.
inline std::string statewallBinary() {
  return STATEWALL_BINARY_DIR "/apps/statewall/statewall";
}

// `statewall ARGS...`.
inline CommandResult runStatewall(const std::vector<std::string>& args,
                                  const std::string& input = "") {
  std::vector<std::string> argv{statewallBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, input);
}
#endif

}  // namespace statewall::testing

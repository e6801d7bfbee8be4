// Starts N local data-parallel training workers, like torchrun on one host:
//
//   bazel run //training:launch -- --nproc=2 -- --config=training/configs/synthetic.pbtxt
// and on several machines, the same command on each with --nnodes=M
// --node_rank=<0..M-1> --master_addr=<node 0's address>.
//
// Each worker gets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT
// and its share of the cores (--num_threads = cores / N, at least 1), since
// workers that each spin 2 OpenMP threads on 2 cores slow each other down
// many times over. Ctrl-C is forwarded (each worker saves and exits); if a
// worker fails, the others are stopped.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dmue/base/workspace.h"
#include "gflags/gflags.h"

DEFINE_int32(nproc, 2, "number of worker processes on this machine");
DEFINE_int32(nnodes, 1, "number of machines, each running this launcher with the same --nproc");
DEFINE_int32(node_rank, 0, "this machine's index in [0, nnodes); its workers get RANK node_rank * nproc + i");
DEFINE_string(master_addr, "127.0.0.1", "address of node 0, which hosts the rendezvous");
DEFINE_int32(master_port, 29500, "rendezvous port on --master_addr");
DEFINE_string(train_binary, "", "trainer binary (default: `train` next to this launcher)");

namespace {
std::vector<pid_t> g_children;
void Forward(int signal) {
  for (pid_t pid : g_children) kill(pid, signal);
}
}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("launch N local DMUE training workers: --nproc=N -- <train flags>");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (absl::Status s = dmue::EnterWorkspace(); !s.ok()) {
    std::cerr << "launch: " << s.message() << "\n";
    return 2;
  }
  if (FLAGS_nproc < 1) {
    std::cerr << "--nproc must be >= 1\n";
    return 2;
  }
  if (FLAGS_nnodes < 1 || FLAGS_node_rank < 0 || FLAGS_node_rank >= FLAGS_nnodes) {
    std::cerr << "--node_rank=" << FLAGS_node_rank << " must be in [0, --nnodes=" << FLAGS_nnodes << ")\n";
    return 2;
  }
  std::string binary = FLAGS_train_binary;
  if (binary.empty()) {
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) return 2;
    self[n] = '\0';
    std::string dir(self);
    binary = dir.substr(0, dir.rfind('/')) + "/train";
  }
  if (access(binary.c_str(), X_OK) != 0) {
    std::cerr << "trainer binary '" << binary << "' not found (set --train_binary)\n";
    return 2;
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = std::max(1, static_cast<int>(cores) / FLAGS_nproc);
  for (int rank = 0; rank < FLAGS_nproc; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      Forward(SIGTERM);
      return 1;
    }
    if (pid == 0) {
      setenv("RANK", std::to_string(FLAGS_node_rank * FLAGS_nproc + rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(FLAGS_nnodes * FLAGS_nproc).c_str(), 1);
      setenv("MASTER_ADDR", FLAGS_master_addr.c_str(), 1);
      setenv("MASTER_PORT", std::to_string(FLAGS_master_port).c_str(), 1);
      setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
      std::vector<std::string> args = {binary, absl::StrCat("--num_threads=", threads)};
      for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
      std::vector<char*> cargs;
      for (std::string& a : args) cargs.push_back(a.data());
      cargs.push_back(nullptr);
      execv(binary.c_str(), cargs.data());
      std::perror("execv");
      _exit(127);
    }
    g_children.push_back(pid);
  }
  signal(SIGINT, Forward);
  signal(SIGTERM, Forward);
  int failures = 0;
  for (size_t done = 0; done < g_children.size(); ++done) {
    int status = 0;
    const pid_t pid = wait(&status);
    if (pid < 0) break;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failures;
      std::cerr << "worker " << pid << " failed (status " << status << "); stopping the others\n";
      Forward(SIGTERM);
    }
  }
  return failures == 0 ? 0 : 1;
}

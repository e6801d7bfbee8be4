// Every absl entry point that tsan_absl.cc annotates or replaces, used
// across threads the way serving/ uses them: absl::Mutex / CondVar guarding
// data, and absl::Status values shared between threads. Under --config=tsan
// a missing or wrong annotation shows up here as a data race report (or an
// "unlock of an unlocked mutex" error) before it shows up in serving/.
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace dmue::fuzz {
namespace {

struct Shared {
  absl::Mutex mu;
  absl::CondVar cv;
  int value = 0;  // Guarded by mu.
};

constexpr int kThreads = 4;
constexpr int kRounds = 200;

template <typename Fn>
void RunThreads(Fn fn) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(fn, t);
  for (std::thread& t : threads) t.join();
}

TEST(TsanAbslTest, LockUnlockAndTryLock) {
  Shared s;
  RunThreads([&s](int t) {
    for (int i = 0; i < kRounds; ++i) {
      if (t % 2 == 0 || !s.mu.TryLock()) s.mu.Lock();
      ++s.value;
      s.mu.Unlock();
    }
  });
  absl::MutexLock lock(&s.mu);
  EXPECT_EQ(s.value, kThreads * kRounds);
}

TEST(TsanAbslTest, ReadersSeeWriters) {
  Shared s;
  RunThreads([&s](int t) {
    for (int i = 0; i < kRounds; ++i) {
      if (t == 0) {
        absl::MutexLock lock(&s.mu);
        ++s.value;
      } else if (s.mu.ReaderTryLock()) {
        EXPECT_GE(s.value, 0);
        s.mu.ReaderUnlock();
      } else {
        absl::ReaderMutexLock lock(&s.mu);
        EXPECT_GE(s.value, 0);
      }
    }
  });
  EXPECT_EQ(s.value, kRounds);
}

// Thread t waits for value == t, then passes the turn on: every handover
// goes through the condition machinery (Await, LockWhen, CondVar).
TEST(TsanAbslTest, ConditionsAndCondVarHandOver) {
  Shared s;
  RunThreads([&s](int t) {
    auto my_turn = [&s, t] { return s.value % kThreads == t; };
    for (int i = 0; i < kRounds / 10; ++i) {
      switch (t) {
        case 0: {
          s.mu.LockWhen(absl::Condition(&my_turn));
          break;
        }
        case 1: {
          s.mu.Lock();
          s.mu.Await(absl::Condition(&my_turn));
          break;
        }
        case 2: {
          s.mu.Lock();
          while (!my_turn()) s.cv.WaitWithTimeout(&s.mu, absl::Milliseconds(5));
          break;
        }
        default: {
          s.mu.Lock();
          while (!s.mu.AwaitWithTimeout(absl::Condition(&my_turn),
                                        absl::Milliseconds(5))) {
          }
          break;
        }
      }
      ++s.value;
      s.cv.SignalAll();
      s.mu.Unlock();
    }
  });
  EXPECT_EQ(s.value, kThreads * (kRounds / 10));
}

// The batcher's pattern: one error Status copied to every waiting thread,
// whose copies die there in any order; the last one frees the shared rep.
TEST(TsanAbslTest, StatusCopiesDieOnOtherThreads) {
  for (int round = 0; round < kRounds / 10; ++round) {
    absl::Status status = absl::InternalError(std::string(64, 'x'));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([copy = status] { EXPECT_FALSE(copy.ok()); });
    }
    status = absl::OkStatus();  // Our reference may go first or last.
    for (std::thread& t : threads) t.join();
  }
}

}  // namespace
}  // namespace dmue::fuzz

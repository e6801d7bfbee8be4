// ThreadSanitizer support for Debian's (uninstrumented) absl.
//
// libabsl_synchronization.so and libabsl_status.so were built without
// -fsanitize=thread, so TSan never sees what they do with their mutexes and
// atomics, and every access they order looks like a race (the batcher's
// queue under absl::Mutex; an absl::Status whose last reference dies on
// another thread). This file interposes the entry points involved:
//
//  - Mutex and CondVar: each forwards to the library's own definition
//    (found with dlsym(RTLD_NEXT)) between the __tsan_mutex_* calls that
//    absl's mutex.cc itself makes when it is built with TSan. Blocking calls
//    that release the mutex inside (Await, CondVar::Wait) are annotated as a
//    release before and an acquire after, LockWhen as an acquire; TSan
//    ignores the memory accesses in between (the library's own, and
//    condition callbacks run while the mutex is held), which loses only race
//    checks on what a condition reads.
//  - Status::UnrefNonInlined, the one place libabsl_status decrements a
//    Status's reference count (the increment is inline in status.h, so
//    instrumented): replaced by status.cc's own three lines, compiled here so
//    TSan sees the decrement that orders the final delete after every use.
//
// Linked into every binary of --config=tsan through --custom_malloc (see
// .bazelrc), because the binaries' own BUILD rules cannot know about it; it
// defines no allocator. The names and the code below are those of absl LTS
// 2022-06-23 with inline namespace `debian3` as Debian ships it; a
// different absl fails loudly at the first lock instead of going unchecked.
//
// Without TSan the file is empty: the library must not change absl::Mutex
// in any other build.
#if defined(__SANITIZE_THREAD__)
#define DMUE_TSAN_ABSL 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DMUE_TSAN_ABSL 1
#endif
#endif

#ifdef DMUE_TSAN_ABSL
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/options.h"
#include "absl/status/internal/status_internal.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if !ABSL_OPTION_USE_INLINE_NAMESPACE
#error "the mangled names below assume absl's inline namespace"
#endif

namespace {

#define DMUE_TSAN_STR2(x) #x
#define DMUE_TSAN_STR(x) DMUE_TSAN_STR2(x)

// "_ZN4absl" <len><inline namespace> <class> <member>: the Itanium mangling
// of absl::<ns>::<class>::<member>; `member` carries its own length prefix
// and parameter encoding (NS0_ refers back to absl::<ns>).
std::string Mangled(const char* cls, const char* member) {
  const std::string ns = DMUE_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return "_ZN4absl" + std::to_string(ns.size()) + ns + cls + member;
}

template <typename Fn>
Fn Real(const char* cls, const char* member) {
  const std::string name = Mangled(cls, member);
  void* fn = ::dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl: %s not found in absl: %s\n", name.c_str(),
                 ::dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// Mutexes this thread holds in shared mode: Await and CondVar::Wait release
// and retake the mutex in the mode it is held in, which TSan must be told.
std::vector<const void*>& ReaderHeld() {
  thread_local std::vector<const void*> held;
  return held;
}

unsigned ModeFlags(const void* mu) {
  for (const void* m : ReaderHeld()) {
    if (m == mu) return __tsan_mutex_read_lock;
  }
  return 0;
}

void NoteReader(const void* mu, bool held) {
  std::vector<const void*>& v = ReaderHeld();
  if (held) {
    v.push_back(mu);
    return;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == mu) {
      v.erase(v.begin() + static_cast<long>(i));
      return;
    }
  }
}

// Entry points of absl call each other through the PLT (WaitWithTimeout
// calls WaitWithDeadline): only the outermost call on a thread is annotated.
thread_local int tls_depth = 0;

class Outermost {
 public:
  Outermost() : outermost_(tls_depth++ == 0) {}
  ~Outermost() { --tls_depth; }
  explicit operator bool() const { return outermost_; }

 private:
  const bool outermost_;
};

// Runs `call` (which takes the mutex in mode `flags`) between the lock
// annotations.
template <typename Call>
auto Locking(void* mu, unsigned flags, Call&& call) {
  Outermost outermost;
  if (!outermost) return call();
  __tsan_mutex_pre_lock(mu, flags);
  auto result = call();
  __tsan_mutex_post_lock(mu, flags, 0);
  if (flags & __tsan_mutex_read_lock) NoteReader(mu, true);
  return result;
}

// Runs `call` (which releases the mutex and takes it again before returning)
// as an unlock followed by a lock in the same mode.
template <typename Call>
auto Waiting(void* mu, Call&& call) {
  Outermost outermost;
  if (!outermost) return call();
  const unsigned flags = ModeFlags(mu);
  __tsan_mutex_pre_unlock(mu, flags);
  auto result = call();
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

void Unlocking(void* mu, unsigned flags, void (*real)(absl::Mutex*)) {
  Outermost outermost;
  if (!outermost) return real(static_cast<absl::Mutex*>(mu));
  if (flags & __tsan_mutex_read_lock) NoteReader(mu, false);
  __tsan_mutex_pre_unlock(mu, flags);
  real(static_cast<absl::Mutex*>(mu));
  __tsan_mutex_post_unlock(mu, flags);
}

template <typename Call>
bool TryLocking(void* mu, unsigned flags, Call&& call) {
  Outermost outermost;
  if (!outermost) return call();
  flags |= __tsan_mutex_try_lock;
  __tsan_mutex_pre_lock(mu, flags);
  const bool locked = call();
  __tsan_mutex_post_lock(
      mu, locked ? flags : flags | __tsan_mutex_try_lock_failed, 0);
  if (locked && (flags & __tsan_mutex_read_lock)) NoteReader(mu, true);
  return locked;
}

// For the void entry points, which Locking/Waiting expect to return a value.
struct Done {};

using Cond = const absl::Condition&;
constexpr const char* kMutex = "5Mutex";
constexpr const char* kCondVar = "7CondVar";

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

Mutex::~Mutex() {
  static const auto real = Real<void (*)(Mutex*)>(kMutex, "D1Ev");
  __tsan_mutex_destroy(this, 0);
  real(this);
}

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>(kMutex, "4LockEv");
  Locking(this, 0, [&] {
    real(this);
    return Done{};
  });
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>(kMutex, "10ReaderLockEv");
  Locking(this, __tsan_mutex_read_lock, [&] {
    real(this);
    return Done{};
  });
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>(kMutex, "7TryLockEv");
  return TryLocking(this, 0, [&] { return real(this); });
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real<bool (*)(Mutex*)>(kMutex, "13ReaderTryLockEv");
  return TryLocking(this, __tsan_mutex_read_lock, [&] { return real(this); });
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>(kMutex, "6UnlockEv");
  Unlocking(this, 0, real);
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>(kMutex, "12ReaderUnlockEv");
  Unlocking(this, __tsan_mutex_read_lock, real);
}

void Mutex::LockWhen(Cond cond) {
  static const auto real =
      Real<void (*)(Mutex*, Cond)>(kMutex, "8LockWhenERKNS0_9ConditionE");
  Locking(this, 0, [&] {
    real(this, cond);
    return Done{};
  });
}

void Mutex::ReaderLockWhen(Cond cond) {
  static const auto real = Real<void (*)(Mutex*, Cond)>(
      kMutex, "14ReaderLockWhenERKNS0_9ConditionE");
  Locking(this, __tsan_mutex_read_lock, [&] {
    real(this, cond);
    return Done{};
  });
}

bool Mutex::LockWhenWithTimeout(Cond cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, Cond, Duration)>(
      kMutex, "19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locking(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithTimeout(Cond cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, Cond, Duration)>(
      kMutex, "25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locking(this, __tsan_mutex_read_lock,
                 [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(Cond cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, Cond, Time)>(
      kMutex, "20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locking(this, 0, [&] { return real(this, cond, deadline); });
}

bool Mutex::ReaderLockWhenWithDeadline(Cond cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, Cond, Time)>(
      kMutex, "26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locking(this, __tsan_mutex_read_lock,
                 [&] { return real(this, cond, deadline); });
}

void Mutex::Await(Cond cond) {
  static const auto real =
      Real<void (*)(Mutex*, Cond)>(kMutex, "5AwaitERKNS0_9ConditionE");
  Waiting(this, [&] {
    real(this, cond);
    return Done{};
  });
}

bool Mutex::AwaitWithTimeout(Cond cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, Cond, Duration)>(
      kMutex, "16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Waiting(this, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(Cond cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, Cond, Time)>(
      kMutex, "17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Waiting(this, [&] { return real(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  static const auto real =
      Real<void (*)(CondVar*, Mutex*)>(kCondVar, "4WaitEPNS0_5MutexE");
  Waiting(mu, [&] {
    real(this, mu);
    return Done{};
  });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      kCondVar, "15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return Waiting(mu, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Time)>(
      kCondVar, "16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return Waiting(mu, [&] { return real(this, mu, deadline); });
}

void Status::UnrefNonInlined(uintptr_t rep) {
  status_internal::StatusRep* r = RepToPointer(rep);
  // As in status.cc: a count of 1 means no other thread holds a reference.
  if (r->ref.load(std::memory_order_acquire) == 1 ||
      r->ref.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) {
    delete r;
  }
}

ABSL_NAMESPACE_END
}  // namespace absl

#endif  // DMUE_TSAN_ABSL
